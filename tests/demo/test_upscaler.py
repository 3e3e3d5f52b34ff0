"""The demo model's own GAN upscaler: packaged small, loaded beside the demo model, making its 256 px images
sharper than Lanczos would; without its weights the demo model still works, at 64 px."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.demo import upscaler as demo_upscaler
from pipeline.demo.evaluate_upscaler import evaluate, transition_share, verdicts
from pipeline.demo.upscaler import DEMO_UPSCALER_DIR, SRVGGNetCompact, load_demo_upscaler
from pipeline.engine import Engine
from pipeline.request import GenerationRequest
from pipeline.upscaling import enlarge

CPU = torch.device("cpu")
PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def demo_engine() -> Engine:
    return Engine.load("", device="cpu", dtype="float32")


def test_the_packaged_upscaler_is_small_described_and_in_real_esrgan_format():
    weights = DEMO_UPSCALER_DIR / "model.safetensors"
    assert weights.stat().st_size <= 5 * 2**20
    config = json.loads((DEMO_UPSCALER_DIR / "config.json").read_text())
    assert config["architecture"] == "SRVGGNetCompact" and config["upscale"] == 4
    model = load_demo_upscaler()
    assert isinstance(model, SRVGGNetCompact) and model.scale == 4
    card = (DEMO_UPSCALER_DIR / "README.md").read_text()
    assert "kaika train-demo --upscaler" in card and "kaika eval-demo --upscaler" in card


def test_the_demo_model_makes_256_px_images_that_are_its_gan_enlargements(demo_engine):
    assert demo_engine.output_scale == 4 and demo_engine.family.native_size == 256
    request = GenerationRequest(prompt=PROMPT, seed=1, width=256, height=256).validate()
    (result,) = demo_engine.run([request])
    assert [image.size for image in result.images] == [(256, 256)] * 4
    # The same seeds at the model's own 64 px, enlarged by the packaged GAN, are exactly those images.
    native_engine = Engine(demo_engine.txt2img, model_id="demo-64", device=CPU)
    (native,) = native_engine.run([request.replace(width=64, height=64)])
    for image, small in zip(result.images, native.images, strict=True):
        assert small.size == (64, 64)
        expected = enlarge(demo_engine.upscaler, small, 256, 256, CPU)
        assert np.array_equal(np.asarray(image), np.asarray(expected))
        # Sharper than Lanczos: fewer pixels inside edges. The model's own images are softer than drawings
        # (its autoencoder rounds edges), so less than on drawings: 0.78-0.81 of Lanczos' here, 0.53 there.
        lanczos = small.resize((256, 256), Image.Resampling.LANCZOS)
        assert transition_share(image) <= 0.85 * transition_share(lanczos)


def test_the_packaged_gan_beats_lanczos_on_held_out_drawings_without_a_staircase():
    torch.set_num_threads(1)
    means, _ = evaluate(load_demo_upscaler(), CPU, count=6)
    assert all(verdicts(means).values()), means


def test_without_its_upscaler_the_demo_model_makes_64_px_images(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(demo_upscaler, "DEMO_UPSCALER_DIR", tmp_path / "no-upscaler")
    with caplog.at_level(logging.WARNING, logger="pipeline.loading"):
        engine = Engine.load("", device="cpu", dtype="float32")
    assert "no demo upscaler" in caplog.text
    assert engine.upscaler is None and engine.output_scale == 1 and engine.family.native_size == 64
    request = GenerationRequest(prompt=PROMPT, seed=1, width=64, height=64, steps=3, num_images=1)
    (result,) = engine.run([request.validate()])
    assert result.images[0].size == (64, 64)
