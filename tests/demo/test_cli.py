"""`kaika eval-demo` and `kaika train-demo` as a user runs them."""

import json

import pytest

from cli.main import main


def test_eval_demo_on_the_scenes_own_drawings_scores_everything_and_writes_a_contact_sheet(tmp_path, capsys):
    assert (
        main(["eval-demo", "--source", "renders", "--prompts", "6", "--seeds", "2", "--out", str(tmp_path)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "6 held-out prompts x 2 seeds" in printed
    assert "all/background" in printed and "below" not in printed
    report = json.loads((tmp_path / "demo-eval-renders.json").read_text())
    assert report["summary"]["all/background"] == {"rate": 1.0, "count": 12}
    assert (tmp_path / "demo-eval-renders.png").stat().st_size > 0


def test_eval_demo_without_a_model_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["eval-demo", "--model", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert "model_index.json missing" in str(stopped.value) and "kaika train-demo" in str(stopped.value)
    assert not (tmp_path / "demo-eval-model.png").exists()


@pytest.mark.parametrize("arguments", [["--prompts", "0"], ["--seeds", "0"]])
def test_eval_demo_refuses_empty_runs(tmp_path, arguments):
    with pytest.raises(SystemExit) as stopped:
        main(["eval-demo", "--source", "renders", "--out", str(tmp_path), *arguments])
    assert "at least 1" in str(stopped.value)


def test_train_demo_lists_its_budget_options(capsys):
    with pytest.raises(SystemExit):
        main(["train-demo", "--help"])
    printed = capsys.readouterr().out
    for option in ("--vae-minutes", "--unet-minutes", "--seed", "--work-dir", "--restart"):
        assert option in printed
