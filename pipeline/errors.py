"""Errors a user can cause or act on. `str(error)` is the message shown to them."""


class PipelineError(Exception):
    """Base of every error the engine reports to a user."""


class RequestError(PipelineError):
    """A request or prompt flag is invalid; the message names the flag and what is allowed."""


class EmptyPrompt(RequestError):
    """The prompt has nothing to draw: no text, or only spaces and invisible characters."""

    def __init__(self) -> None:
        super().__init__("The prompt is empty: describe the image you want.")


class ModelLoadError(PipelineError):
    """The configured model could not be found or loaded."""


class QueueFull(PipelineError):
    """The executor holds `MAX_QUEUE` jobs, or the owner has `MAX_JOBS_PER_USER` in flight."""


class JobFailed(PipelineError):
    """A job ran and failed (for example out of device memory for a single image)."""


class JobCancelled(PipelineError):
    """A job was cancelled before it finished."""
