"""The Discord-free pieces of the bot: custom_id grammar, defaults, blocklist matching, progress text."""

from __future__ import annotations

import pytest

from bot.limits import fit
from bot.progress import EditThrottle, progress_text, waiting_text
from bot.views import CUSTOM_ID, custom_id, header, result_view
from pipeline.errors import RequestError
from pipeline.families import UNKNOWN_FAMILY, ModelFamily
from pipeline.request import Mode
from service.admission import blocked_term
from service.defaults import with_defaults
from service.jobs import ButtonAction, JobService, offered_actions
from storage.records import JobKind


def test_custom_ids_round_trip_through_the_one_regex():
    value = custom_id(ButtonAction.VARY, "AbC_d-9", 3)
    assert value == "kaika:v:AbC_d-9:3"
    match = CUSTOM_ID.fullmatch(value)
    assert (match["action"], match["job_id"], match["index"]) == ("v", "AbC_d-9", "3")
    assert CUSTOM_ID.fullmatch("kaika:v:has space:1") is None
    assert len(custom_id(ButtonAction.UPSCALE_CREATIVE, "x" * 64, 99)) <= 100  # Discord's limit


@pytest.mark.parametrize(
    ("prompt", "model", "defaults", "expected"),
    [
        ("a cat", None, {"ar": "16:9"}, "a cat --ar 16:9"),
        ("a cat --ar 1:1", None, {"ar": "16:9"}, "a cat --ar 1:1"),
        ("a cat --s 50", None, {"stylize": 200}, "a cat --s 50"),
        ("a cat --c 5", None, {"chaos": 9, "steps": 3}, "a cat --c 5 --steps 3"),
        ("a cat", "other", {"model": "mine"}, "a cat --model other"),
        ("a cat", None, {"model": "mine", "unknown": 1}, "a cat --model mine"),
        ("a cat —ar 1:1", None, {}, "a cat --ar 1:1"),
        ("a cat", None, {"no": "blurry", "ar": "2:1"}, "a cat --ar 2:1 --no blurry"),
        ("a cat --no dogs", None, {"no": "blurry"}, "a cat --no dogs"),
        ("a cat", None, {"suffix": "oil painting --ar 3:2"}, "a cat oil painting --ar 3:2"),
        (
            "a cat --ar 1:1",
            None,
            {"suffix": "oil --ar 3:2 --s 50", "stylize": 9},
            "a cat oil --ar 1:1 --s 50",
        ),
        ("a cat", None, {"suffix": "--steps 4", "steps": 9}, "a cat --steps 4"),
    ],
)
def test_saved_defaults_fill_only_missing_flags(prompt, model, defaults, expected):
    assert with_defaults(prompt, model, defaults) == expected


@pytest.mark.parametrize(
    ("prompt", "blocked"),
    [
        ("a GORE scene", "gore"),
        ("gore.", "gore"),
        ("gorgeous", None),
        ("nasi goreng", None),
        ("a blood bath here", "blood bath"),
        ("bloodbath", None),
    ],
)
def test_blocklist_matches_whole_words_case_insensitively(prompt, blocked):
    assert blocked_term(prompt, ["gore", "blood bath"]) == blocked


def test_progress_text_and_waiting_text():
    assert progress_text(5, 20) == "`[█████░░░░░░░░░░░░░░░]` 25% (step 5/20)"
    assert progress_text(20, 20).startswith("`[" + "█" * 20 + "]` 100%")
    assert progress_text(0, 0).endswith("0% (step 0/1)")
    assert waiting_text(3) == "Waiting to start (position 3)"


def test_edit_throttle_allows_one_edit_per_interval():
    now = [100.0]
    throttle = EditThrottle(1.5, clock=lambda: now[0])
    assert throttle.ready()
    throttle.mark()
    now[0] += 1.0
    assert not throttle.ready()
    now[0] += 0.5
    assert throttle.ready()


class AnnouncingExecutor:
    """Only what parsing asks of an executor: the models it serves, which a fleet learns over time."""

    def __init__(self) -> None:
        self.model_names: list[str] = []

    def family(self, model: str | None = None) -> ModelFamily:
        return UNKNOWN_FAMILY


def test_model_names_are_read_from_the_executor_at_each_imagine():
    executor = AnnouncingExecutor()
    jobs = JobService(None, executor)  # type: ignore[arg-type]  # parsing touches no storage
    executor.model_names = ["tiny-sd"]  # a worker announced its model after the bot started
    with pytest.raises(RequestError, match=r"--model 'nosuch' is not available; choose one of: tiny-sd\."):
        jobs.parse("a cat --model nosuch")
    executor.model_names = ["sketch", "tiny-sd"]
    assert jobs.parse("a cat --model sketch").model == "sketch"


def test_result_views_show_only_the_buttons_offered():
    # 🔄 and ℹ️ have an emoji, no label; ℹ️ and 🖌 Remix end every result.
    every = [item.item.label for item in result_view("job1", 4).children]
    enhance = [f"Enhance {i}" for i in range(1, 5)]  # a --draft grid's third row
    assert every == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", None, *enhance, None, "Remix"]
    no_variations = offered_actions({Mode.TXT2IMG, Mode.UPSCALE})
    grid = [item.item.label for item in result_view("job1", 4, no_variations).children]
    assert grid == ["U1", "U2", "U3", "U4", None, *enhance, None, "Remix"]
    single = [item.item.label for item in result_view("job1", 1, no_variations).children]
    assert single == ["Upscale (Subtle)", "Upscale (Creative)", None, "Remix"]


def test_a_jobs_header_carries_its_notes_as_small_print():
    assert fit(*header("a *lake*", JobKind.IMAGINE, "<@1>")) == "**a \\*lake\\*** — <@1>"
    noted = fit(*header("a lake", JobKind.VARIATION, "<@1>", ["This model does not use --no."]))
    assert noted == "**a lake** (variations) — <@1>\n-# This model does not use --no."
