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
    job_id, *printed = capsys.readouterr().out.split()
    # The stem is unique per job, so several jobs can write into one folder.
    names = [f"a-lighthouse-at-dusk-7-{job_id}-{suffix}.png" for suffix in ("grid", 1, 2, 3, 4)]
    assert printed == [str(out / name) for name in names]
    assert sorted(path.name for path in out.iterdir()) == sorted(names)
    grid = Image.open(out / names[0])
    # 2x2 of 80x48 (16:9 for a 64-pixel model whose sides are multiples of 16), each enlarged 6x for display
    assert grid.size == (960, 576)
    for index, name in enumerate(names[1:]):
        metadata = read_png_metadata((out / name).read_bytes())
        assert metadata["seed"] == str(7 + index)
        assert metadata["prompt"] == "a lighthouse at dusk"
        assert metadata["negative_prompt"] == "boats"
        assert metadata["steps"] == "3"
        assert metadata["size"] == "80x48"
        assert metadata["model"] == tiny_settings_env.name
        assert metadata["job_id"] == job_id


def test_imagine_is_repeatable(tiny_settings_env, in_empty_folder, capsys):
    out = in_empty_folder / "out"
    runs = []
    for _ in range(2):
        assert main(["imagine", "a cat --seed 3 --steps 2", "--out", str(out)]) == 0
        runs.append(capsys.readouterr().out.split()[1:])  # the paths after the job id
    first, second = runs
    assert len(set(first + second)) == 10  # two jobs, ten files: the second overwrote nothing
    for one, other in zip(first, second, strict=True):
        assert Image.open(one).tobytes() == Image.open(other).tobytes()


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
