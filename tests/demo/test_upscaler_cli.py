"""`kaika train-demo --upscaler` and `kaika eval-demo --upscaler` as a user runs them."""

from __future__ import annotations

import json

from cli.main import main
from pipeline.demo.upscaler import load_esrgan_file


def test_train_demo_upscaler_writes_a_loadable_model_and_resumes_from_its_checkpoint(tmp_path, capsys):
    out, work = tmp_path / "upscaler", tmp_path / "work"
    common = ["train-demo", "--upscaler", "--out", str(out), "--work-dir", str(work), "--no-progress"]
    common += ["--upscaler-batch", "2", "--upscaler-crop", "32"]
    assert main([*common, "--upscaler-steps", "2"]) == 0
    assert load_esrgan_file(out / "model.safetensors").scale == 4
    assert json.loads((out / "training.json").read_text())["steps"] == 2
    assert main([*common, "--upscaler-steps", "3"]) == 0
    assert "[upscaler] resumed at step 2" in capsys.readouterr().out
    assert json.loads((out / "training.json").read_text())["steps"] == 3
    assert json.loads((out / "config.json").read_text())["architecture"] == "SRVGGNetCompact"


def test_eval_demo_upscaler_scores_every_method_and_writes_the_sheet(tmp_path, capsys):
    assert main(["eval-demo", "--upscaler", "--images", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for method in ("nearest", "bicubic", "lanczos", "gan"):
        assert method in printed
    assert "NOT MET" not in printed and "met: PSNR above Lanczos'" in printed
    report = json.loads((tmp_path / "upscaler-eval.json").read_text())
    assert report["scores"]["gan"]["psnr"] > report["scores"]["lanczos"]["psnr"]
    assert (tmp_path / "upscaler-sheet.png").stat().st_size > 0


def test_eval_demo_upscaler_without_weights_says_how_to_make_them(tmp_path, capsys):
    missing = tmp_path / "none.safetensors"
    assert main(["eval-demo", "--upscaler", "--upscaler-weights", str(missing), "--out", str(tmp_path)]) == 2
    assert "kaika train-demo --upscaler" in capsys.readouterr().out
    assert not (tmp_path / "upscaler-sheet.png").exists()
