"""The job service's Remix (an edited prompt on a button's job) and the saved suffix and negative prompt."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import RequestError
from service.admission import Place, Requester
from service.errors import NotRemixable
from service.jobs import ButtonAction
from service.readback import describe_parameters, parameters_of, prompt_line
from service.wiring import Services
from storage.records import JobKind
from tests.fixtures.reporters import outcome_of

ADA, BO = Requester(1, "ada"), Requester(2, "bo")
GUILD = Place(5, 6)


async def run(pending: Any) -> Any:
    return (await outcome_of(pending)).job


async def imagined(services: Services, user: Requester, prompt: str) -> Any:
    request = await services.jobs.parse_for(user.user_id, prompt)
    return await run(await services.jobs.imagine(user, GUILD, request))


async def test_suffix_and_negative_prompt_apply_to_every_prompt_that_lacks_them(services: Services):
    jobs = services.jobs
    saved = await jobs.save_defaults(ADA.user_id, {"suffix": "oil painting --steps 2", "no": "blurry"})
    assert saved == {"suffix": "oil painting --steps 2", "no": "blurry"}

    plain = await imagined(services, ADA, "a harbour --seed 3")
    assert (plain.prompt, plain.negative_prompt, plain.params["steps"]) == (
        "a harbour oil painting",
        "blurry",
        2,
    )
    assert prompt_line(plain) == "a harbour oil painting --seed 3 --steps 2 --no blurry"
    own = await imagined(services, ADA, "a harbour --no boats --steps 1")
    assert (own.negative_prompt, own.params["steps"]) == ("boats", 1)  # the prompt's own flags win

    assert await jobs.save_defaults(ADA.user_id, {"suffix": "none"}) == {"no": "blurry"}
    assert (await imagined(services, BO, "a harbour --steps 1")).negative_prompt == ""  # Ada's alone


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"suffix": "oil painting --ar sideways"}, "--ar needs W:H"),
        ({"suffix": "--wings 2"}, "Unknown flag --wings"),
        ({"suffix": "oil --no"}, "--no needs a value"),
    ],
)
async def test_a_bad_suffix_is_refused_and_nothing_saved(services: Services, given, message):
    await services.jobs.save_defaults(ADA.user_id, {"ar": "2:1"})
    with pytest.raises(RequestError, match=message):
        await services.jobs.save_defaults(ADA.user_id, given)
    assert await services.storage.users.defaults(ADA.user_id) == {"ar": "2:1"}


async def test_remix_prompt_is_offered_only_with_remix_on_and_for_buttons_that_start_from_a_prompt(
    services: Services,
):
    jobs = services.jobs
    grid = await imagined(services, ADA, "a harbour --seed 3 --steps 1")
    assert await jobs.remix_prompt(BO, GUILD, ButtonAction.VARY, grid.id, 0) is None
    assert await jobs.toggle_remix(BO.user_id) is True
    assert await jobs.remix_prompt(BO, GUILD, ButtonAction.VARY, grid.id, 0) == "a harbour --seed 3 --steps 1"
    assert await jobs.remix_prompt(BO, GUILD, ButtonAction.UPSCALE, grid.id, 0) is None
    with pytest.raises(NotRemixable):
        await jobs.press(BO, GUILD, ButtonAction.UPSCALE_SUBTLE, grid.id, 0, prompt="a boat")
    assert await jobs.toggle_remix(BO.user_id) is False


async def test_a_remixed_variation_records_its_lineage_and_parameters(services: Services):
    jobs = services.jobs
    grid = await imagined(services, ADA, "a harbour --seed 3 --steps 1")
    pending = await jobs.press(
        BO, GUILD, ButtonAction.VARY_SUBTLE, grid.id, 3, prompt="a harbour at night --steps 2"
    )
    remix = await run(pending)
    assert (remix.kind, remix.owner_id, remix.parent_job_id, remix.parent_image_index) == (
        JobKind.REMIX,
        BO.user_id,
        grid.id,
        3,
    )
    parameters = parameters_of(remix)
    assert parameters.seeds == [image.seed for image in remix.images] and parameters.strength == 0.35
    assert (parameters.steps, parameters.flags, parameters.parent_image_index) == (2, "--steps 2", 3)
    assert describe_parameters(parameters)[:2] == [
        f"Job {remix.id}: remix, done",
        "Prompt: a harbour at night --steps 2",
    ]
    assert f"From job {grid.id}, image #4" in describe_parameters(parameters)


async def test_a_remix_keeps_a_seed_the_edit_gives_and_draws_one_otherwise(services: Services):
    jobs = services.jobs
    grid = await imagined(services, ADA, "a harbour --seed 3 --steps 1")
    seeded = await run(
        await jobs.press(ADA, GUILD, ButtonAction.REROLL, grid.id, 0, prompt="a boat --seed 9 --steps 1")
    )
    assert (seeded.kind, seeded.seed, prompt_line(seeded)) == (JobKind.REMIX, 9, "a boat --seed 9 --steps 1")
    drawn = await run(
        await jobs.press(ADA, GUILD, ButtonAction.REROLL, grid.id, 0, prompt="a boat --steps 1")
    )
    assert drawn.seed not in (3, 9)
