"""--draft on every model family, loaded as a user's MODEL folder: what each family's draft uses, and that it runs."""

from __future__ import annotations

import pytest

from pipeline.engine import Engine
from pipeline.families import draft_steps
from pipeline.request import GenerationRequest

# Eight families loaded and run once each as a draft.
pytestmark = pytest.mark.slow

# (scheduler, guidance share) of each family's draft: a solver for the UNet families whose DDIM/PNDM
# schedules it replaces, a guidance cut-off where the guided tensors are known.
DRAFTS = {
    "sd15": ("DPMSolverMultistepScheduler", 0.5),
    "sdxl": ("DPMSolverMultistepScheduler", 0.5),
    "sd3": (None, None),
    "flux": (None, None),
    "pixart": (None, None),
    "sana": (None, None),
    "lcm": (None, None),
    "kandinsky3": (None, None),
}


@pytest.fixture(scope="module")
def engine(family_dir):
    family, folder = family_dir
    return family, Engine.load(str(folder), device="cpu", dtype="float32")


def test_each_family_drafts_as_described(engine):
    tiny, loaded = engine
    family = loaded.family
    assert (family.draft_scheduler, family.draft_guidance_share) == DRAFTS[tiny.name]
    assert family.draft_steps == draft_steps(family.default_steps) <= family.default_steps


def test_a_draft_runs_its_steps_and_gives_its_images(engine):
    tiny, loaded = engine
    side = loaded.family.size_multiple * 2
    request = GenerationRequest(
        prompt="a red circle", seed=2, width=side, height=side, steps=4, num_images=2, draft=True
    ).validate()
    denoiser = loaded.txt2img.components.get("unet") or loaded.txt2img.components["transformer"]
    batches: list[int] = []
    hook = denoiser.register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(
            (args[0] if args else kwargs.get("hidden_states", kwargs.get("sample"))).shape[0]
        ),
        with_kwargs=True,
    )
    steps: list[int] = []
    try:
        (result,) = loaded.run([request], on_step=lambda step, total, previews: steps.append(step))
    finally:
        hook.remove()
    assert len(result.images) == 2 and result.images[0].size == (side, side)
    assert steps == [1, 2, 3, 4]
    if DRAFTS[tiny.name][1] is not None:  # guided for the first half, then the prompt alone
        assert batches == [4, 4, 2, 2]
