"""Admission rules alone: capacity places, button policy, which daily quota applies."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from pipeline.errors import EmptyPrompt, QueueFull
from pipeline.request import GenerationRequest
from service.admission import Capacity, Requester, check_may_press, check_prompt, daily_quota
from service.errors import BlockedPrompt, OwnerOnly
from storage.errors import NotAllowed, QuotaExceeded
from storage.records import ButtonPolicy, GuildSettings, JobKind, JobRecord, JobStatus

ADA, BO = Requester(1, "ada"), Requester(2, "bo")


def guild(**changes: object) -> GuildSettings:
    return GuildSettings(**{"guild_id": 5, "daily_quota": 3, **changes})  # type: ignore[arg-type]


def job_owned_by(owner_id: int) -> JobRecord:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return JobRecord(
        id="j1", kind=JobKind.IMAGINE, status=JobStatus.DONE, prompt="a cat", negative_prompt="", params={},
        seed=1, model=None, requester_id=owner_id, owner_id=owner_id, parent_job_id=None,
        parent_image_index=None, guild_id=5, channel_id=6, message_id=None, queued_at=now, started_at=now,
        finished_at=now, compute_seconds=1.0, error=None,
    )  # fmt: skip


def test_a_user_holds_at_most_so_many_places_and_gets_them_back_once():
    capacity = Capacity(max_queue=10, max_jobs_per_user=2)
    first, second = capacity.admit(ADA), capacity.admit(ADA)
    with pytest.raises(
        QueueFull, match=r"You already have 2 jobs queued or running; wait for one to finish\."
    ):
        capacity.admit(ADA)
    assert capacity.in_flight(ADA.user_id) == 2 and capacity.in_flight(BO.user_id) == 0
    capacity.admit(BO)  # another user is not held back
    first.release()
    first.release()  # a second release of the same place gives nothing back
    assert capacity.in_flight(ADA.user_id) == 1 and capacity.in_flight() == 2
    capacity.admit(ADA)
    second.release()
    assert capacity.in_flight(ADA.user_id) == 1


def test_the_queue_limit_counts_everyone_and_resumed_jobs():
    capacity = Capacity(max_queue=2, max_jobs_per_user=5)
    capacity.resume(BO.user_id)  # a job a previous process admitted is counted, never refused
    capacity.admit(ADA)
    with pytest.raises(QueueFull, match=r"The queue is full \(2 jobs\); try again in a few minutes\."):
        capacity.admit(Requester(3, "cy"))
    capacity.resume(ADA.user_id)
    assert capacity.in_flight() == 3


def test_blocked_terms_in_the_prompt_or_its_no_text_are_refused():
    settings = guild(blocklist=("gore",))
    check_prompt("a quiet lake", "boats", settings)
    with pytest.raises(BlockedPrompt, match="blocked term 'gore'"):
        check_prompt("a quiet lake", "Gore, boats", settings)


@pytest.mark.parametrize(
    "prompt",
    ["", "   ", "\u200b", "\u200b\u200c\u200d\u2060\ufeff", " \u200b\t\u2060 \u3000", "\u200e\u200f"],
)
def test_a_prompt_of_only_invisible_characters_is_refused_as_empty(prompt):
    with pytest.raises(EmptyPrompt) as refused:
        check_prompt(prompt, "", guild())
    assert str(refused.value) == "The prompt is empty: describe the image you want."
    # The same refusal, word for word, as a prompt the parser finds empty.
    with pytest.raises(EmptyPrompt, match=re.escape(str(refused.value))):
        GenerationRequest(prompt="", seed=1).validate()


def test_a_prompt_with_something_visible_between_invisible_characters_is_taken():
    check_prompt("\u200ba\u200b", "", guild())
    check_prompt("\u200d🦊\u200d", "", guild())


def test_limits_count_their_jobs_in_words():
    full = Capacity(max_queue=1, max_jobs_per_user=5)
    full.admit(ADA)
    with pytest.raises(QueueFull, match=r"The queue is full \(1 job\);"):
        full.admit(BO)
    one_each = Capacity(max_queue=5, max_jobs_per_user=1)
    one_each.admit(ADA)
    with pytest.raises(QueueFull, match=r"You already have 1 job queued or running"):
        one_each.admit(ADA)
    resets = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert str(QuotaExceeded(1, 1, resets)) == (
        "You have used your 1 job for the last 24 hours. Your next slot opens at 09:30 UTC."
    )
    assert str(QuotaExceeded(3, 3, None)) == "You have used your 3 jobs for the last 24 hours."


def test_only_owners_and_admins_may_press_where_the_guild_says_so():
    parent = job_owned_by(ADA.user_id)
    check_may_press(BO, parent, guild())  # anyone may, by default
    owners_only = guild(button_policy=ButtonPolicy.OWNER)
    check_may_press(ADA, parent, owners_only)
    check_may_press(Requester(9, "admin", is_admin=True), parent, owners_only)
    with pytest.raises(OwnerOnly) as refused:
        check_may_press(BO, parent, owners_only)
    # Front-end neutral: it names nobody; each front end writes the owner its own way (a mention, a name).
    assert isinstance(refused.value, NotAllowed) and refused.value.owner_id == ADA.user_id
    assert str(refused.value) == "Only the owner of this image can use its buttons in this server."
    assert (
        refused.value.explain("Ada")
        == "Only the owner of this image, Ada, can use its buttons in this server."
    )


def test_admins_have_no_daily_quota():
    assert daily_quota(ADA, guild(daily_quota=3)) == 3
    assert daily_quota(Requester(9, "admin", is_admin=True), guild(daily_quota=3)) is None
    assert daily_quota(ADA, guild(daily_quota=None)) is None
