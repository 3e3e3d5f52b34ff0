"""Single-file checkpoints (.safetensors in the original layout), loaded offline with MODEL_CONFIG."""

from __future__ import annotations

from pathlib import Path

import pytest
from diffusers import DiffusionPipeline
from PIL import Image

from cli.main import main
from pipeline.engine import Engine
from pipeline.errors import ModelLoadError
from pipeline.request import GenerationRequest
from service.settings import Settings
from testkit.families import save_tiny_family
from testkit.single_file import save_single_file


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def checkpoint(request, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a single file, the diffusers folder it was written from)."""
    root = tmp_path_factory.mktemp(request.param)
    folder = tiny_model_dir if request.param == "sd15" else save_tiny_family("sdxl", root / "folder")
    file = save_single_file(
        DiffusionPipeline.from_pretrained(folder), root / f"tiny-{request.param}.safetensors"
    )
    return file, folder


def pixels(engine: Engine) -> bytes:
    multiple = engine.family.size_multiple
    request = GenerationRequest(
        prompt="a red circle", seed=3, width=3 * multiple, height=2 * multiple, steps=2
    )
    [result] = engine.run([request.replace(num_images=1)])
    return result.images[0].tobytes()


def test_a_single_file_loads_offline_with_model_config_and_draws_what_its_folder_draws(checkpoint):
    file, folder = checkpoint
    single = Engine.load(str(file), device="cpu", dtype="float32", config=str(folder))
    from_folder = Engine.load(str(folder), device="cpu", dtype="float32")
    assert single.model_id == file.stem
    assert type(single.txt2img) is type(from_folder.txt2img)
    assert single.family == from_folder.family
    assert pixels(single) == pixels(from_folder)


def test_without_model_config_offline_the_error_says_to_set_it(checkpoint):
    file, _ = checkpoint
    with pytest.raises(ModelLoadError) as raised:
        Engine.load(str(file), device="cpu", dtype="float32")
    message = str(raised.value)
    assert "\n" not in message
    assert f"MODEL='{file}'" in message and "set MODEL_CONFIG to a local diffusers folder" in message


def test_a_model_config_that_is_not_a_diffusers_folder_is_named(checkpoint, tmp_path):
    file, _ = checkpoint
    with pytest.raises(
        ModelLoadError, match=r"MODEL_CONFIG='.*' is not a diffusers folder \(no model_index.json\)"
    ):
        Engine.load(str(file), device="cpu", dtype="float32", config=str(tmp_path))


def test_model_config_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_CONFIG", str(tmp_path))
    assert Settings(_env_file=None).single_file_config == str(tmp_path)


def test_kaika_imagine_runs_a_single_file_model(checkpoint, tmp_path, monkeypatch, capsys):
    file, folder = checkpoint
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL", str(file))
    monkeypatch.setenv("MODEL_CONFIG", str(folder))
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["imagine", "a lighthouse --ar 3:2 --steps 2", "--out", str(tmp_path / "out")]) == 0
    _, _grid, *images = capsys.readouterr().out.split()
    width, height = Image.open(images[0]).size
    assert len(images) == 4 and abs(width / height / 1.5 - 1) < 0.2
