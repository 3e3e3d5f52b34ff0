"""The committed demo model, loaded offline through the normal MODEL path, draws what fixed prompts ask.

Generation is deterministic for a seed, so each case below is a fixed outcome; the cases assert only
what the model does robustly (see the model card for the measured adherence on held-out prompts).
"""

import pytest

from bot.config import Settings
from pipeline.demo.checker import read
from pipeline.engine import DEMO_MODEL_DIR, DEMO_MODEL_ID, Engine
from pipeline.request import GenerationRequest


@pytest.fixture(scope="module")
def demo_engine():
    settings = Settings(_env_file=None, model="")
    return Engine.load(settings.model, device="cpu", dtype="float32")


def test_empty_model_setting_loads_the_packaged_demo_folder(demo_engine):
    assert (DEMO_MODEL_DIR / "model_index.json").is_file()
    assert demo_engine.model_id == DEMO_MODEL_ID
    assert demo_engine.native_size == 64
    weights = sum(path.stat().st_size for path in DEMO_MODEL_DIR.rglob("*.safetensors"))
    assert weights <= 25 * 2**20


def generate(engine, prompt: str, seed: int):
    request = GenerationRequest(prompt=prompt, seed=seed, width=64, height=64).validate()
    (result,) = engine.run([request])
    return [read(image) for image in result.images]


@pytest.mark.parametrize(
    ("prompt", "seed", "background"),
    [
        ("a red circle on a blue background", 1, "blue"),
        ("a yellow star on a black background", 2, "black"),
        ("white backdrop, green square", 3, "white"),
    ],
)
def test_the_background_colour_follows_the_prompt(demo_engine, prompt, seed, background):
    readings = generate(demo_engine, prompt, seed)
    assert [reading.background for reading in readings] == [background] * 4
