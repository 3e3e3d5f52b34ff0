"""Errors a person can cause, and which errors are theirs to see.

Every error a caller can act on is a class whose `str()` is the message for the person who caused
it. The cores have their own (`pipeline.errors.PipelineError`, `storage.errors.StorageError`); the
service adds the ones that only make sense across both. A front end shows `user_message(error)` and
treats anything else as a bug of ours.
"""

from __future__ import annotations

from pipeline.errors import PipelineError
from storage.errors import NotAllowed, StorageError
from storage.records import JobRecord


class UserError(Exception):
    """Base of the service's own errors a user can cause; `str(error)` is shown to them."""


class BlockedPrompt(UserError):
    """The prompt contains a term on the guild's blocklist."""

    def __init__(self, term: str) -> None:
        super().__init__(f"Your prompt contains the blocked term '{term}'; remove it and try again.")
        self.term = term


class JobGone(UserError):
    """A job (or the image of a job) someone refers to does not exist: deleted, forged, or never made."""

    def __init__(self) -> None:
        super().__init__("This job no longer exists.")


class NotExplainable(UserError):
    """🔬 Process asked of a job whose model cannot show its process, or whose images were not drawn from a
    prompt alone."""

    def __init__(self, *, model: bool) -> None:
        super().__init__(
            "This job's model cannot show its diffusion process (🔬 Process needs a VAE, a step callback and a "
            "DDPM-style or flow-matching noise schedule)."
            if model
            else "🔬 Process shows images drawn from a prompt alone; this one came from a picture, an edit, a "
            "variation or a Process itself."
        )


class NotOffered(UserError):
    """A button (or its command) asks for what the job's model cannot make: variations, or an edit."""

    def __init__(self, *, inpainting: bool = False) -> None:
        super().__init__(
            "This job's model cannot inpaint (it has no inpainting pipeline), so it has no Vary (Region), "
            "Zoom Out, Pan or Make Square."
            if inpainting
            else "This job's model cannot make variations (it has no image-to-image pipeline); "
            "use U or 🔄 instead."
        )


class NotAnimatable(UserError):
    """🎞 Animate or Extend pressed where it makes no video: a model without a video model, Extend under images,
    Animate under a video."""

    def __init__(self, *, model: bool = False, video: bool = False) -> None:
        if model:
            message = "This job's model has no video model beside it (VIDEO_MODEL), so it cannot animate its images."
        elif video:
            message = "This job is a video; use Extend to make it longer."
        else:
            message = (
                "Extend makes a video longer; this job made images, so use 🎞 Animate on one of them first."
            )
        super().__init__(message)


class NotEnhanceable(UserError):
    """Enhance asked of a job that is not a --draft grid."""

    def __init__(self) -> None:
        super().__init__(
            "Enhance makes an image of a --draft grid again at full quality; this job is not a --draft grid."
        )


class NotRemixable(UserError):
    """An edited prompt (Remix) given to a button that does not start from a prompt (an upscale)."""

    def __init__(self) -> None:
        super().__init__("Remix edits the prompt of Vary and 🔄; this button keeps its image's prompt.")


class SettingError(UserError):
    """A setting keeps Kaika from starting: its value is invalid, or what it points at cannot be reached or
    written. The message names the setting (as in `.env`) and what to fix, on one line."""


class Restarting(UserError):
    """Kaika is shutting down (SIGTERM or Ctrl-C) and takes no new jobs; it will be back after the restart."""

    def __init__(self) -> None:
        super().__init__("Kaika is restarting, try again in a minute.")


class JobNotDone(UserError):
    def __init__(self, job: JobRecord) -> None:
        super().__init__(
            f"Job `{job.id}` is {job.status}; only a finished job's images can be shown or used."
        )


class OwnerOnly(NotAllowed):
    """A server where only owners may press a job's buttons (`/admin buttons`), and someone else pressed one.

    The message names the owner the front end's own way (`explain`): Discord mentions them, the web companion
    writes their name; `str()` names nobody, so it reads right anywhere."""

    def __init__(self, owner_id: int) -> None:
        self.owner_id = owner_id
        super().__init__(self.explain(None))

    def explain(self, owner: str | None) -> str:
        """The message, with the owner written as `owner` (a mention, a name); None leaves them unnamed."""
        named = "" if owner is None else f", {owner},"
        return f"Only the owner of this image{named} can use its buttons in this server."


class TooManyJobs(UserError):
    """One prompt asks for more jobs (--repeat, {a, b} permutations) than the requester may start now."""


# Every error class whose message is meant for the person who caused it.
USER_ERRORS: tuple[type[Exception], ...] = (UserError, PipelineError, StorageError)


def user_message(error: BaseException) -> str | None:
    """The message to show for an error the user can act on; None for a bug of ours."""
    return str(error) if isinstance(error, USER_ERRORS) else None
