"""Whether a job may start: who asks, where, and what every front end refuses — one place, one wording.

Bans and the daily quota are enforced by storage when the job is recorded (one transaction, so two
requests at once cannot both take the last slot); which quota applies is decided here. The blocklist,
who may press another owner's buttons, and how many jobs may be in flight are checked here.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from gettext import ngettext

from pipeline.errors import EmptyPrompt, QueueFull
from pipeline.executor.fair import FAST_TIER, RELAX_TIER
from service.errors import BlockedPrompt, OwnerOnly, Restarting, UserError
from storage.records import ButtonPolicy, FrontEnd, GuildSettings, JobRecord


@dataclass(frozen=True)
class Requester:
    """Who asks for a job (the front end decides who is an admin)."""

    user_id: int
    name: str
    is_admin: bool = False
    role_ids: frozenset[int] = frozenset()  # the member's roles where the job was asked (FAST_ROLES)


@dataclass(frozen=True)
class FastTime:
    """Who runs fast (FAST_ROLES: members with one of these roles, and admins; empty: everyone) and for how
    many seconds of generation a day (FAST_MINUTES_PER_DAY; 0: no limit)."""

    roles: frozenset[int] = frozenset()
    seconds_per_day: float = 0.0

    def allowed(self, requester: Requester) -> bool:
        """Whether `requester` runs fast at all (time left aside)."""
        return not self.roles or requester.is_admin or bool(self.roles & requester.role_ids)

    def left(self, requester: Requester, used_seconds: float) -> float | None:
        """Seconds of fast time `requester` has left today; None without a limit, 0 when they have none."""
        if not self.allowed(requester):
            return 0.0
        if not self.seconds_per_day:
            return None
        return max(self.seconds_per_day - used_seconds, 0.0)


def queue_tier(asked: str, requester: Requester, fast: FastTime, used_seconds: float) -> int:
    """The queue a job waits in: relaxed jobs (`RELAX_TIER`) start only while no fast one (`FAST_TIER`)
    waits. --relax always relaxes; otherwise (--fast, or nothing asked) a member runs fast while they may and
    have fast time left today, and relaxed once it is spent."""
    if asked == "relax":
        return RELAX_TIER
    left = fast.left(requester, used_seconds)
    return FAST_TIER if left is None or left > 0 else RELAX_TIER


@dataclass(frozen=True)
class Place:
    """Where a job was asked for; its result and any restart notice go there, and after a restart the front
    end it was asked from resumes it (`service.recovery`; None: none does)."""

    guild_id: int | None
    channel_id: int | None
    front_end: FrontEnd | None = None


def blocked_term(text: str, blocklist: Collection[str]) -> str | None:
    """The first blocklist entry `text` contains as whole words (case-insensitive), if any."""
    words = f" {_words(text)} "
    for term in blocklist:
        normalised = _words(term)
        if normalised and f" {normalised} " in words:
            return term
    return None


def _words(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def draws_nothing(text: str) -> bool:
    """Whether `text` is only whitespace and invisible format characters (zero-width space and joiners,
    word joiner, byte order mark, direction marks…), which `str.strip()` keeps but nobody can see."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def check_prompt(prompt: str, negative_prompt: str, settings: GuildSettings) -> None:
    """Raise EmptyPrompt when the prompt shows nothing, BlockedPrompt when it or its --no text uses a
    blocked term."""
    if draws_nothing(prompt):
        raise EmptyPrompt()
    term = blocked_term(f"{prompt} {negative_prompt}", settings.blocklist)
    if term is not None:
        raise BlockedPrompt(term)


def check_showable(job: JobRecord, settings: GuildSettings) -> None:
    """Raise BlockedPrompt when a recorded job (made elsewhere: another server, a DM, the command line) uses
    a term this server's blocklist refuses, so /show cannot post it there."""
    term = blocked_term(f"{job.prompt} {job.negative_prompt or ''}", settings.blocklist)
    if term is not None:
        raise UserError(
            f"Job {job.id}'s prompt contains '{term}', which this server's blocklist refuses; it cannot be shown here."
        )


def daily_quota(requester: Requester, settings: GuildSettings) -> int | None:
    """The jobs per 24 hours `requester` may start here; None is unlimited (admins always are)."""
    return None if requester.is_admin else settings.daily_quota


def check_may_press(requester: Requester, parent: JobRecord, settings: GuildSettings) -> None:
    """Where only owners may press a job's buttons, anyone else (but an admin) is refused."""
    if (
        settings.button_policy is ButtonPolicy.OWNER
        and requester.user_id != parent.owner_id
        and not requester.is_admin
    ):
        raise OwnerOnly(parent.owner_id)


class Slot:
    """The place one job holds among the jobs in flight, from admission until it has been reported."""

    def __init__(self, counts: Counter[int], user_id: int) -> None:
        self._counts = counts
        self.user_id = user_id
        self._held = True
        counts[user_id] += 1

    def release(self) -> None:
        """Give the place back; later calls do nothing, so every path that ends a job may call it."""
        if self._held:
            self._held = False
            self._counts[self.user_id] -= 1
            if self._counts[self.user_id] <= 0:
                del self._counts[self.user_id]


class Capacity:
    """How many jobs may be queued or running: at most `max_queue` in all, `max_jobs_per_user` each.

    A place is taken by `admit` in the same synchronous step as the check, so two requests of one
    user arriving together cannot both pass it. Once `stop_admitting` is called (the process is
    shutting down), every request is refused with `Restarting`.
    """

    def __init__(self, *, max_queue: int, max_jobs_per_user: int) -> None:
        self.max_queue = max_queue
        self.max_jobs_per_user = max_jobs_per_user
        self._counts: Counter[int] = Counter()
        self.admitting = True

    def stop_admitting(self) -> None:
        self.admitting = False

    def in_flight(self, user_id: int | None = None) -> int:
        """Jobs queued or running now: `user_id`'s, or everyone's."""
        return self._counts.total() if user_id is None else self._counts[user_id]

    def admit(self, requester: Requester) -> Slot:
        """A place for one more job of `requester`, or QueueFull saying which limit was reached
        (Restarting while the process shuts down)."""
        if not self.admitting:
            raise Restarting()
        if self.in_flight() >= self.max_queue:
            raise QueueFull(
                f"The queue is full ({self.max_queue} {ngettext('job', 'jobs', self.max_queue)}); "
                "try again in a few minutes."
            )
        if self.in_flight(requester.user_id) >= self.max_jobs_per_user:
            raise QueueFull(
                f"You already have {self.max_jobs_per_user} "
                f"{ngettext('job', 'jobs', self.max_jobs_per_user)} queued or running; wait for one to finish."
            )
        return Slot(self._counts, requester.user_id)

    def admit_group(self, requester: Requester, count: int) -> list[Slot]:
        """Places for the `count` jobs of one prompt (--repeat, {a, b} permutations), all or none.

        They are admitted together as one job would be (the requester has fewer than `max_jobs_per_user` in
        flight), so a prompt's jobs may take the requester past that limit; the queue must have room for all.
        """
        if not self.admitting:
            raise Restarting()
        room = self.max_queue - self.in_flight()
        if count > room:
            raise QueueFull(
                f"This prompt makes {count} jobs and the queue has room for {max(room, 0)} now; "
                "try again in a few minutes or ask for fewer."
            )
        self.admit(requester).release()  # the usual refusal when the requester has too many in flight
        return [Slot(self._counts, requester.user_id) for _ in range(count)]

    def resume(self, user_id: int) -> Slot:
        """A place for a job a previous process had already admitted (no limit applies again)."""
        return Slot(self._counts, user_id)
