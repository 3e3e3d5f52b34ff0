"""`kaika imagine`: the command line over the same parser and executor as the bot."""

from __future__ import annotations

import pytest
from PIL import Image

from cli.main import main
from pipeline.images import read_png_metadata


@pytest.fixture
def in_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path


def test_imagine_writes_the_grid_and_four_pngs_with_metadata(tiny_settings_env, in_empty_folder, capsys):
    out = in_empty_folder / "out"
    assert (
        main(["imagine", "a lighthouse at dusk --ar 16:9 --seed 7 --steps 3 --no boats", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out.split()
    names = [f"a-lighthouse-at-dusk-7-{suffix}.png" for suffix in ("grid", 1, 2, 3, 4)]
    assert printed == [str(out / name) for name in names]
    assert sorted(path.name for path in out.iterdir()) == sorted(names)
    grid = Image.open(out / names[0])
    assert grid.size == (1056, 576)  # 2x2 of 88x48 (16:9 for a 64-pixel model), each enlarged 6x for display
    for index, name in enumerate(names[1:]):
        metadata = read_png_metadata((out / name).read_bytes())
        assert metadata["seed"] == str(7 + index)
        assert metadata["prompt"] == "a lighthouse at dusk"
        assert metadata["negative_prompt"] == "boats"
        assert metadata["steps"] == "3"
        assert metadata["size"] == "88x48"
        assert metadata["model"] == tiny_settings_env.name
        assert metadata["job_id"]


def test_imagine_is_repeatable(tiny_settings_env, in_empty_folder):
    first, second = in_empty_folder / "first", in_empty_folder / "second"
    for out in (first, second):
        assert main(["imagine", "a cat --seed 3 --steps 2", "--out", str(out)]) == 0
    for path in first.iterdir():
        assert Image.open(path).tobytes() == Image.open(second / path.name).tobytes()


def test_a_bad_flag_is_one_line_and_nothing_is_written(tiny_settings_env, in_empty_folder, capsys):
    out = in_empty_folder / "out"
    assert main(["imagine", "a cat --ar wide", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "kaika imagine: --ar needs W:H such as 16:9 (got 'wide').\n"
    assert not out.exists()


def test_a_missing_model_is_one_line_naming_model(in_empty_folder, monkeypatch, capsys):
    monkeypatch.setenv("MODEL", str(in_empty_folder / "no-such-model"))
    monkeypatch.setenv("DEVICE", "cpu")
    assert main(["imagine", "a cat", "--out", str(in_empty_folder / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        err.splitlines()[-1]
        == f"kaika imagine: MODEL='{in_empty_folder / 'no-such-model'}' does not exist: no such file or folder, and it is not a hub id (owner/name)."
    )
