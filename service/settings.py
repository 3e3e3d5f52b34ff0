"""The one place settings are read: environment variables and an optional `.env` file."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import SettingError
from storage import sqlite_url

# `name=source` in MODELS: a name is one word (hub ids and paths may hold "=" only after one).
_NAMED_MODEL = re.compile(r"(?P<name>[\w.-]+)=(?P<source>.+)")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# WEB_BASE_URL: a scheme and a host (and port); the companion's pages are at its root.
_WEB_ADDRESS = re.compile(r"https?://[^/?#\s]+/?")


def configure_logging(level: str) -> None:
    """The one logging set-up of every Kaika process."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def load_settings(**values: object) -> Settings:
    """Settings from the environment and `.env` (and `values`), or a SettingError naming each bad one."""
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            name = str(problem["loc"][0]).upper() if problem["loc"] else "a setting"
            given = problem.get("input")
            shown = f"{name}={given!r}" if isinstance(given, str | int | float) else name
            problems.append(f"{shown}: {problem['msg']}")
        raise SettingError("; ".join(problems) + " (see .env.example).") from None


class Settings(BaseSettings):
    """Every field is documented in `.env.example`; keep the two in step."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- models and devices ---
    model: str = Field(
        default="",
        description="Hub id, local diffusers folder or .safetensors/.ckpt file; empty = embedded demo model",
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra models users may pick with --model"
    )
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    loras: Annotated[list[str], NoDecode] = Field(default_factory=list, description="path[:weight] entries")
    upscaler: str = ""
    # Named MODEL_CONFIG in the environment; `model_config` itself is pydantic's.
    single_file_config: str = Field(
        default="",
        validation_alias="MODEL_CONFIG",
        description="Local diffusers folder a single-file MODEL is loaded with (configs and tokenizers are enough)",
    )
    video_model: str = Field(
        default="",
        description="Image-to-video model for Animate: hub id or folder of SVD, LTX-Video, Wan, CogVideoX image-to-video, "
        "or an AnimateDiff motion adapter for an SD 1.x MODEL; empty = the demo motion model (with the demo MODEL)",
    )
    video_frames: int = Field(
        default=0, ge=0, le=128, description="Frames of a video; 0 = the video family's"
    )
    video_quota_weight: int = Field(
        default=4, ge=1, description="How many jobs of a daily quota one video (Animate, Extend) counts for"
    )
    video_max_mb: float = Field(
        default=10.0, gt=0, description="Largest MP4 posted, in MB; a larger video is encoded again smaller"
    )
    model_memory_gb: float = Field(
        default=0.0,
        ge=0,
        description="Memory the loaded models may take; the least recently used is unloaded past it; 0 = 80% of the device's",
    )
    model_steps: int = Field(
        default=0, ge=0, description="Steps when a prompt gives no --steps; 0 = the model family's"
    )
    model_guidance: float | None = Field(
        default=None, ge=0, description="Guidance at --stylize 100; empty = the family's"
    )

    # --- executor ---
    executor: Literal["local", "celery"] = "local"
    max_batch: int = Field(default=4, ge=1)
    max_jobs_per_user: int = Field(default=2, ge=1)
    max_jobs_per_prompt: int = Field(default=4, ge=1)
    max_queue: int = Field(default=100, ge=1)
    preview_every: int = Field(default=5, ge=0)
    max_upload_mb: float = Field(
        default=10.0, gt=0, description="Largest picture a member may hand in (an image prompt), in MB"
    )
    max_upload_pixels: int = Field(
        default=4096 * 4096,
        ge=64 * 64,
        description="Most pixels an uploaded picture may have; read from its header before it is decoded",
    )
    describer: str = Field(
        default="",
        description="Transformers image-to-text model (hub id or folder) /describe uses; empty = the demo scene checker",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_in_flight: int = Field(
        default=8,
        ge=1,
        description="Jobs handed to the workers at once; the rest wait in the bot's fair queue",
    )
    celery_visibility_timeout: int = Field(
        default=3600,
        ge=1,
        description="Seconds before the broker hands an unacknowledged job out again (a backstop to the lease)",
    )
    celery_lease_seconds: int = Field(
        default=15,
        ge=3,
        description="Seconds a running job's worker may go silent before the job is given to another worker",
    )
    celery_result_ttl: int = Field(
        default=86400, ge=60, description="Seconds images and progress of fleet jobs stay in Redis"
    )
    celery_max_retries: int = Field(
        default=2, ge=0, description="Extra deliveries of a job after a lost worker before it fails"
    )
    celery_key_prefix: str = Field(
        default="kaika", min_length=1, description="Prefix of every Redis key and queue of the fleet"
    )

    # --- storage ---
    # KAIKA_DATA_DIR, which the container image sets to its /data volume, wins over a DATA_DIR from an
    # env file, so `docker run --env-file .env` cannot move the data out of the volume.
    data_dir: Path = Field(
        default=Path("./data"), validation_alias=AliasChoices("KAIKA_DATA_DIR", "DATA_DIR")
    )
    database_url: str = ""

    # --- Discord ---
    discord_token: str = Field(default="", repr=False)
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = ""
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    fast_roles: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Role ids whose members' jobs run fast (ahead of relaxed ones); empty: everyone's",
    )
    fast_minutes_per_day: float = Field(
        default=0.0,
        ge=0,
        description="Minutes of generation a member's fast jobs may take a day; 0: no limit",
    )
    allow_dms: bool = Field(
        default=False,
        description="Offer Kaika in members' direct messages, where no server's quota or blocklist applies",
    )
    progress_edit_interval: float = Field(default=1.5, gt=0)

    # --- web companion (`kaika web`) ---
    web_base_url: str = Field(
        default="",
        description="The address members reach `kaika web` at (sign-in links, the OAuth2 redirect); empty: http://127.0.0.1:8080",
    )
    cookie_secret: str = Field(
        default="",
        repr=False,
        description="Key the web companion signs its session cookies with; empty: one kept in DATA_DIR/cookie-secret",
    )
    discord_client_id: str = Field(
        default="", description="OAuth2 client id; empty: sign-in by /web link only"
    )
    discord_client_secret: str = Field(default="", repr=False, description="OAuth2 client secret")

    # --- metrics and health (/metrics, /healthz, /readyz) ---
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the bot's and the workers' metrics ports listen on"
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Port of the bot's /metrics, /healthz and /readyz; 0: none"
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of a `kaika worker`'s /metrics, /healthz and /readyz; 0: none",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- shutdown ---
    shutdown_grace: float = Field(
        default=8.0, ge=0, description="Seconds running jobs get to finish on SIGTERM before they are parked"
    )

    _split = field_validator("models", "loras", "admin_user_ids", "fast_roles", mode="before")(_split_csv)
    _no_port = field_validator("metrics_port", "worker_metrics_port", mode="before")(
        lambda value: 0 if value == "" else value
    )
    _upper = field_validator("log_level", mode="before")(
        lambda value: value.upper() if isinstance(value, str) else value
    )
    _empty_is_unset = field_validator("model_guidance", mode="before")(
        lambda value: None if value == "" else value
    )

    @field_validator("web_base_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if value and not _WEB_ADDRESS.fullmatch(value):
            raise ValueError(
                "must be the address members open, a scheme and a host such as https://kaika.example.org (no path)"
            )
        return value

    def fleet_config(
        self,
    ):  # -> pipeline.executor.celery_jobs.FleetConfig (imported late: it pulls in Celery)
        """What `kaika worker` processes and a bot with `EXECUTOR=celery` must agree on."""
        from pipeline.executor.celery_jobs import FleetConfig

        return FleetConfig(
            redis_url=self.redis_url,
            key_prefix=self.celery_key_prefix,
            visibility_timeout=self.celery_visibility_timeout,
            result_ttl=self.celery_result_ttl,
            max_retries=self.celery_max_retries,
            lease_seconds=self.celery_lease_seconds,
        )

    @property
    def named_models(self) -> dict[str, str]:
        """MODELS as `--model` name → MODEL-style source; an entry `name=source` names its model, a bare
        source is its own name."""
        named = {}
        for entry in self.models:
            match = _NAMED_MODEL.fullmatch(entry)
            name, source = (match["name"], match["source"]) if match else (entry, entry)
            named[name] = source
        return named

    @property
    def resolved_database_url(self) -> str:
        """`DATABASE_URL`, or a SQLite file inside `DATA_DIR`."""
        return self.database_url or sqlite_url(self.data_dir)
