"""--draft: parsed into the family's draft steps, run with a few-step solver and a guidance cut-off, each alone
or together, on the tiny SD model; the scheduler a draft borrows goes back after the call."""

from __future__ import annotations

import functools

import pytest

from pipeline.errors import RequestError
from pipeline.families import DRAFT_MIN_STEPS, draft_steps
from pipeline.prompt import parse_prompt
from pipeline.request import can_share_call
from pipeline.speed import SpeedUps
from tests.fixtures.requests import tiny_request


@pytest.fixture
def denoiser_batches(tiny_engine):
    """The batch size of every UNet call the tiny engine makes (twice the images while guidance runs)."""
    batches: list[int] = []
    hook = tiny_engine.txt2img.unet.register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(args[0].shape[0]), with_kwargs=True
    )
    yield batches
    hook.remove()


@pytest.fixture
def schedulers_used(tiny_engine, monkeypatch):
    """The scheduler class each text-to-image call sampled with."""
    used: list[str] = []
    pipe_class = type(tiny_engine.txt2img)
    original = pipe_class.__call__

    @functools.wraps(original)  # the engine reads which arguments the pipeline takes from its signature
    def recording(pipe, *args, **kwargs):
        used.append(type(pipe.scheduler).__name__)
        return original(pipe, *args, **kwargs)

    monkeypatch.setattr(pipe_class, "__call__", recording)
    return used


def test_draft_runs_the_family_draft_steps_unless_steps_are_given(tiny_engine):
    family = tiny_engine.family
    plain = parse_prompt("a red circle --seed 1", family=family)
    draft = parse_prompt("a red circle --seed 1 --draft", family=family)
    assert (plain.draft, draft.draft) == (False, True)
    assert plain.steps == family.default_steps == 25
    assert draft.steps == family.draft_steps == 10
    assert draft.flags == "--seed 1 --draft"
    assert parse_prompt("a red circle --draft --steps 20", family=family).steps == 20
    assert parse_prompt("a red circle —draft --q .5", family=family).steps == 5


def test_draft_takes_no_value():
    from pipeline.families import UNKNOWN_FAMILY

    with pytest.raises(RequestError, match=r"--draft takes no value \(got 'please'\)"):
        parse_prompt("a red circle --draft please", family=UNKNOWN_FAMILY)


def test_draft_steps_are_a_share_of_the_default_within_bounds():
    assert draft_steps(25) == 10
    assert draft_steps(50) == 20
    assert draft_steps(8) == DRAFT_MIN_STEPS
    assert draft_steps(4) == 4  # a few-step model (LCM, FLUX.1-schnell) is already its own draft
    assert draft_steps(2) == 2


def test_the_sd_family_drafts_with_a_solver_and_half_the_guidance(tiny_engine):
    assert tiny_engine.family.draft_scheduler == "DPMSolverMultistepScheduler"
    assert tiny_engine.family.draft_guidance_share == 0.5
    assert tiny_engine.draft_speedups == SpeedUps("DPMSolverMultistepScheduler", 0.5)


def test_draft_and_full_quality_jobs_never_share_a_call():
    assert not can_share_call(tiny_request(), tiny_request(draft=True))
    assert can_share_call(tiny_request(draft=True), tiny_request(draft=True, seed=9))


def test_a_draft_samples_with_the_solver_and_drops_guidance_halfway(
    tiny_engine, denoiser_batches, schedulers_used
):
    (result,) = tiny_engine.run([tiny_request(steps=10, draft=True, num_images=2)])
    assert len(result.images) == 2
    assert schedulers_used == ["DPMSolverMultistepScheduler"]
    assert denoiser_batches == [4] * 5 + [2] * 5  # guided (both halves) for 5 steps, then the prompt alone
    assert type(tiny_engine.txt2img.scheduler).__name__ == "DDIMScheduler"  # its own one is back

    denoiser_batches.clear()
    tiny_engine.run([tiny_request(steps=10, num_images=2)])
    assert schedulers_used[-1] == "DDIMScheduler"
    assert denoiser_batches == [4] * 10  # a full-quality job is guided to the end


@pytest.mark.parametrize(
    ("speedups", "scheduler", "batches"),
    [
        (SpeedUps(), "DDIMScheduler", [4] * 10),
        (SpeedUps(scheduler="DPMSolverMultistepScheduler"), "DPMSolverMultistepScheduler", [4] * 10),
        (SpeedUps(scheduler="UniPCMultistepScheduler"), "UniPCMultistepScheduler", [4] * 10),
        (SpeedUps(guidance_share=0.3), "DDIMScheduler", [4] * 3 + [2] * 7),
    ],
)
def test_each_speed_up_works_alone(
    tiny_engine, denoiser_batches, schedulers_used, monkeypatch, speedups, scheduler, batches
):
    monkeypatch.setattr(tiny_engine, "draft_speedups", speedups)
    tiny_engine.run([tiny_request(steps=10, draft=True, num_images=2)])
    assert schedulers_used == [scheduler]
    assert denoiser_batches == batches


def test_a_draft_is_the_same_for_the_same_seed_and_differs_from_full_quality(tiny_engine):
    draft = tiny_request(steps=10, draft=True, seed=5, num_images=1)
    (first,) = tiny_engine.run([draft])
    (again,) = tiny_engine.run([draft])
    (full,) = tiny_engine.run([draft.replace(draft=False)])
    assert first.images[0].tobytes() == again.images[0].tobytes()
    assert first.images[0].tobytes() != full.images[0].tobytes()


def test_variations_of_a_draft_keep_guidance_to_the_end(tiny_engine, denoiser_batches):
    from pipeline.images import encode_png
    from pipeline.request import variation_request

    (source,) = tiny_engine.run([tiny_request(num_images=1)])
    variation = variation_request(
        tiny_request(steps=10, draft=True), encode_png(source.images[0]), seed=3
    ).replace(num_images=1)
    tiny_engine.run([variation])
    assert denoiser_batches and set(denoiser_batches) == {2}
