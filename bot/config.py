"""The one place settings are read: environment variables and an optional `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every field is documented in `.env.example`; keep the two in step."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- models and devices ---
    model: str = Field(default="", description="Hub id, local diffusers folder or .safetensors/.ckpt file; empty = embedded demo model")
    models: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Extra models users may pick with --model")
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    loras: Annotated[list[str], NoDecode] = Field(default_factory=list, description="path[:weight] entries")
    upscaler: str = ""

    # --- executor ---
    executor: Literal["local", "celery"] = "local"
    max_batch: int = Field(default=4, ge=1)
    max_jobs_per_user: int = Field(default=2, ge=1)
    max_queue: int = Field(default=100, ge=1)
    preview_every: int = Field(default=5, ge=0)
    redis_url: str = "redis://127.0.0.1:6379/0"

    # --- storage ---
    data_dir: Path = Path("./data")
    database_url: str = ""

    # --- Discord ---
    discord_token: str = Field(default="", repr=False)
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = ""
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    progress_edit_interval: float = Field(default=1.5, gt=0)

    log_level: str = "INFO"

    _split = field_validator("models", "loras", "admin_user_ids", mode="before")(_split_csv)

    @property
    def resolved_database_url(self) -> str:
        """`DATABASE_URL`, or a SQLite file inside `DATA_DIR`."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'kaika.db').resolve()}"
