"""The motion trainer at tiny settings: it writes a folder the pipeline loads and resumes where it stopped;
`kaika train-demo --video` and `kaika eval-demo --video` reach it and say what is missing."""

import pytest
import torch

import pipeline.demo.train_motion as trainer
from cli.main import main
from pipeline.demo.motion import MotionModel
from pipeline.demo.options import MotionTrainConfig


def tiny_config(tmp_path, **changes) -> MotionTrainConfig:
    settings = dict(
        out=tmp_path / "video_model",
        work_dir=tmp_path / "work",
        steps=4,
        batch=2,
        pool=8,
        checkpoint_seconds=0.0,
        progress=False,
        log_every=0,
    )
    settings.update(changes)
    return MotionTrainConfig(**settings)


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_same_weights_and_writes_a_loadable_folder(tmp_path, monkeypatch):
    straight = MotionModel.from_pretrained(trainer.train_motion(tiny_config(tmp_path / "straight")))

    calls = 0
    real_clip = trainer.training_clip

    def crash_on_third_batch(rng, scene):
        nonlocal calls
        calls += 1
        if calls == 2 * 2 + 1:  # the first clip of the third batch of two
            raise KeyboardInterrupt
        return real_clip(rng, scene)

    config = tiny_config(tmp_path / "stopped")
    monkeypatch.setattr(trainer, "training_clip", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_motion(config)
    monkeypatch.setattr(trainer, "training_clip", real_clip)
    folder = trainer.train_motion(config)
    resumed = MotionModel.from_pretrained(folder)
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert {"config.json", "diffusion_pytorch_model.safetensors", "training.json"} <= {
        path.name for path in folder.iterdir()
    }


def test_train_demo_video_takes_its_own_budget(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(trainer, "train_motion", lambda cfg: seen.setdefault("cfg", cfg))
    assert (
        main(
            [
                "train-demo",
                "--video",
                "--video-steps",
                "7",
                "--video-minutes",
                "0.5",
                "--work-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    cfg = seen["cfg"]
    assert (cfg.steps, cfg.minutes, cfg.threads, cfg.work_dir) == (7, 0.5, 2, tmp_path)
    assert cfg.out.name == "video_model"


def test_eval_demo_video_names_the_missing_motion_model(tmp_path):
    with pytest.raises(SystemExit, match=r"no demo motion model in .*run `kaika train-demo --video`"):
        main(["eval-demo", "--video", "--video-model", str(tmp_path / "none"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--source motion scores the motion model; add --video"):
        main(["eval-demo", "--source", "motion", "--out", str(tmp_path)])


def test_eval_demo_video_on_the_scenes_own_frames_scores_every_check_full(tmp_path, capsys):
    assert (
        main(
            [
                "eval-demo",
                "--video",
                "--source",
                "renders",
                "--prompts",
                "9",
                "--seeds",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for metric in ("all/direction", "all/kept", "all/background"):
        line = next(line for line in printed.splitlines() if line.startswith(metric))
        assert "100%" in line and line.endswith("ok"), line
    assert (tmp_path / "demo-video-eval-renders.png").is_file()
