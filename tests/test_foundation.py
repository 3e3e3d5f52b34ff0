"""The shared contracts every layer builds on."""

import pytest

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


def test_every_setting_is_in_env_example():
    from pathlib import Path

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    names = {
        line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")
    }
    assert names == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(
    ("aspect", "native", "expected"),
    [((1, 1), 512, (512, 512)), ((16, 9), 512, (680, 384)), ((2, 3), 64, (56, 80))],
)
def test_size_for_aspect_keeps_area_and_multiples_of_eight(aspect, native, expected):
    assert size_for_aspect(*aspect, native) == expected


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
