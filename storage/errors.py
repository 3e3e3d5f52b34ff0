"""Errors a caller can act on. `str(error)` is a message fit to show the user who caused it."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from gettext import ngettext
from typing import TypeVar

E = TypeVar("E", bound=Enum)


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class StorageUnavailable(StorageError):
    """The database (or the disk under it) cannot be used right now: unreachable, restarting, full.

    Nothing was changed by the call that raised it; the same call may succeed a minute later.
    """

    def __init__(self) -> None:
        super().__init__("Kaika's storage is unavailable right now; try again in a minute.")


class StorageFault(StorageError):
    """The database refused a statement for a reason no retry mends (a bug of ours); the cause is logged."""

    def __init__(self) -> None:
        super().__init__("Kaika could not read or write its records; the error has been logged.")


class JobNotFound(StorageError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} does not exist (or was deleted).")
        self.job_id = job_id


class IllegalTransition(StorageError):
    """A job was asked to move to a status it cannot reach from its current one."""

    def __init__(self, job_id: str, current: str, target: str) -> None:
        super().__init__(f"Job {job_id} is {current}; it cannot become {target}.")
        self.job_id = job_id
        self.current = current
        self.target = target


class InvalidParent(StorageError):
    """The parent named for an upscale / variation / re-roll is missing or has no such image."""


class NotAllowed(StorageError):
    """The user may not do this to the job (for example delete someone else's job)."""


class UserBanned(StorageError):
    def __init__(self, user_id: int) -> None:
        super().__init__("You are banned from generating images here.")
        self.user_id = user_id


class QuotaExceeded(StorageError):
    def __init__(self, used: int, limit: int, resets_at: datetime | None) -> None:
        self.used = used
        self.limit = limit
        self.resets_at = resets_at
        super().__init__(self.explain(None if resets_at is None else f"at {resets_at:%H:%M} UTC"))

    def explain(self, next_slot: str | None) -> str:
        """The message, with when the next slot opens written as `next_slot` (a front end may write
        times its own way, as Discord's timestamps do)."""
        spent = (
            f"You have used your {self.limit} {ngettext('job', 'jobs', self.limit)} for the last 24 hours."
        )
        return spent if next_slot is None else f"{spent} Your next slot opens {next_slot}."


class InvalidValue(StorageError):
    """A setting or field value is out of range; the message names it and what is allowed."""


def parse_choice(choices: type[E], value: object, what: str) -> E:
    """`choices(value)`, or InvalidValue naming what was given and what is allowed."""
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in choices)
        raise InvalidValue(f"Unknown {what} {value!r}; expected one of {allowed}.") from None
