"""The trainer at tiny settings: it writes a loadable diffusers folder and resumes where it stopped."""

import pytest
import torch
from diffusers import DDIMScheduler, DiffusionPipeline, StableDiffusionPipeline

import pipeline.demo.train as trainer
from pipeline.demo.options import TrainConfig


def tiny_config(tmp_path, **changes) -> TrainConfig:
    settings = dict(
        out=tmp_path / "model",
        work_dir=tmp_path / "work",
        threads=1,
        vae_steps=2,
        vae_batch=2,
        latent_pool=8,
        unet_steps=2,
        unet_batch=2,
        checkpoint_seconds=0.0,
        progress=False,
    )
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.mark.slow
def test_a_few_steps_write_a_folder_that_loads_like_any_diffusers_model(tmp_path):
    folder = trainer.train(tiny_config(tmp_path))
    pipe = DiffusionPipeline.from_pretrained(folder)
    assert isinstance(pipe, StableDiffusionPipeline)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.rescale_betas_zero_snr is True
    assert pipe.vae_scale_factor == 4
    assert pipe.vae.config.scaling_factor != 0.18215  # measured from the latents, not a default
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)
    weights = sum(path.stat().st_size for path in folder.rglob("*.safetensors"))
    assert weights <= 25 * 2**20
    assert {"model_index.json", "training.json"} <= {path.name for path in folder.iterdir()}
    assert (folder / "tokenizer" / "vocab.json").is_file()


@pytest.mark.slow
def test_a_stopped_stage_resumes_to_the_same_weights(tmp_path, monkeypatch):
    straight, _ = trainer.train_vae(tiny_config(tmp_path / "straight", vae_steps=4))

    calls = 0
    real_render = trainer.render_array

    def crash_on_third_batch(scenes):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real_render(scenes)

    config = tiny_config(tmp_path / "stopped", vae_steps=4)
    monkeypatch.setattr(trainer, "render_array", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_vae(config)
    monkeypatch.setattr(trainer, "render_array", real_render)
    resumed, stage = trainer.train_vae(config)
    assert stage.step == 4
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
