"""The shared contracts every layer builds on."""

import pytest
from pydantic import AliasChoices

from pipeline.errors import RequestError
from pipeline.request import GenerationRequest, Limits, Mode, size_for_aspect
from service.settings import Settings


def test_settings_read_lists_and_default_database(monkeypatch, tmp_path):
    monkeypatch.setenv("ADMIN_USER_IDS", "10, 20")
    monkeypatch.setenv("LORAS", "a.safetensors:0.5,b.safetensors")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.admin_user_ids == [10, 20]
    assert settings.loras == ["a.safetensors:0.5", "b.safetensors"]
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/kaika.db"


def test_models_may_be_named(monkeypatch):
    monkeypatch.setenv("MODELS", "flux=black-forest-labs/FLUX.1-schnell, stabilityai/sdxl-turbo,./my=model")
    assert Settings(_env_file=None).named_models == {
        "flux": "black-forest-labs/FLUX.1-schnell",
        "stabilityai/sdxl-turbo": "stabilityai/sdxl-turbo",  # a bare source is its own name
        "./my=model": "./my=model",  # "=" after a path's first word is part of the path
    }


def test_model_defaults_left_empty_are_the_familys(monkeypatch):
    monkeypatch.setenv("MODEL_GUIDANCE", "")
    monkeypatch.setenv("MODEL_STEPS", "0")
    settings = Settings(_env_file=None)
    assert (settings.model_guidance, settings.model_steps) == (None, 0)
    monkeypatch.setenv("MODEL_GUIDANCE", "3.5")
    assert Settings(_env_file=None).model_guidance == 3.5


def test_every_setting_is_in_env_example():
    from pathlib import Path

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    names = {
        line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")
    }
    assert names == {environment_name(field) for field in Settings.model_fields}


def environment_name(field: str) -> str:
    """The variable a setting is read from: its alias (the last one, the documented name) or its own name."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        alias = alias.choices[-1]
    return str(alias or field).upper()


@pytest.mark.parametrize(
    ("aspect", "native", "multiple", "expected"),
    [
        ((1, 1), 512, 8, (512, 512)),
        ((16, 9), 512, 8, (680, 384)),
        ((2, 3), 64, 8, (48, 72)),  # 56x80, the nearest, is over the 64x64 budget
        ((16, 9), 1024, 8, (1360, 768)),  # SDXL: the nearest, 1368x768, is over 1024x1024
        ((3, 2), 1024, 8, (1248, 832)),
        ((5, 4), 1024, 16, (1136, 912)),  # SD3 and FLUX sizes are multiples of 16
        ((21, 9), 1024, 16, (1552, 672)),
    ],
)
def test_size_for_aspect_stays_within_the_budget_at_the_models_multiple(aspect, native, multiple, expected):
    width, height = size_for_aspect(*aspect, native, multiple)
    assert (width, height) == expected
    assert width % multiple == 0 and height % multiple == 0 and width * height <= native * native
    assert abs(width / height / (aspect[0] / aspect[1]) - 1) < 0.03


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"steps": 0}, "--steps"),
        ({"steps": 101}, "--steps"),
        ({"num_images": 5}, "number of images"),
        ({"width": 100}, "multiples of 8"),
        ({"width": 2048, "height": 2048}, "pixels"),
        ({"seed": -1}, "--seed"),
        ({"chaos": 101}, "--chaos"),
        ({"prompt": "  "}, "empty"),
        ({"mode": Mode.IMG2IMG}, "source image"),
        ({"mode": Mode.IMG2IMG, "source_image": b"x", "strength": 0}, "Strength"),
        ({"mode": Mode.INPAINT, "source_image": b"x"}, "mask"),
    ],
)
def test_invalid_requests_name_what_is_wrong(changes, fragment):
    with pytest.raises(RequestError, match=fragment):
        GenerationRequest(prompt="a cat", seed=1).replace(**changes).validate(Limits())


def test_image_seeds_follow_the_request_seed():
    assert GenerationRequest(prompt="a", seed=7, num_images=3).seeds == [7, 8, 9]
