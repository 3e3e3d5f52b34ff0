"""The job service: admit → record → run → store → report, for every front end.

It knows nothing of discord.py: where a job's progress and result go is a `Reporter`, which the
bot implements with an interaction's message, the command line with a progress bar, and a test
with anything else. What may start is decided by `service.admission`; jobs a previous process left
unfinished are resumed by `service.recovery`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from PIL import Image

from pipeline import editing
from pipeline.errors import PipelineError, RequestError
from pipeline.executor.base import (
    Cancelled,
    Executor,
    Failed,
    Finished,
    JobHandle,
    Queued,
    ResumableExecutor,
    Started,
    Step,
)
from pipeline.executor.fair import FAST_TIER, RELAX_TIER
from pipeline.families import ModelFamily
from pipeline.images import display_grid, display_png, encode_png, image_metadata
from pipeline.prompt import (
    DEFAULT_STYLIZE,
    PromptDefaults,
    is_weighted,
    parse_prompt,
    parse_prompts,
    prompt_parts,
    split_prompt,
)
from pipeline.request import (
    GenerationRequest,
    GenerationResult,
    Limits,
    Mode,
    animate_request,
    image_prompt_request,
    upscale_request,
    variation_request,
)
from pipeline.uploads import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    CleanUpload,
    check_declared_size,
    clean_upload,
    fit_image,
)
from pipeline.video_files import VideoTooLarge, decode_mp4, encode_mp4
from service.admission import (
    Capacity,
    FastTime,
    Place,
    Requester,
    Slot,
    check_may_press,
    check_prompt,
    daily_quota,
    queue_tier,
)
from service.defaults import DEFAULT_FLAGS, MODE, MODES, REMIX, SAVED_KEYS, SUFFIX, remix_on, with_defaults
from service.errors import (
    JobGone,
    JobNotDone,
    NotAnimatable,
    NotEnhanceable,
    NotExplainable,
    NotOffered,
    NotRemixable,
    TooManyJobs,
    UserError,
)
from service.metrics import JobMeter, JobMetrics
from service.readback import BLENDED, IMAGE_PROMPT, prompt_line
from storage import Storage
from storage.errors import IllegalTransition, StorageError, StorageUnavailable
from storage.errors import JobNotFound as StorageJobNotFound
from storage.records import (
    VIDEO_KINDS,
    GeneratedImage,
    GuildSettings,
    JobKind,
    JobRecord,
    JobStatus,
    UploadRecord,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# While storage is unavailable, a job's outcome waits to be recorded: the first retry comes after this
# many seconds, each next one after twice as long, up to the second figure.
RECORD_RETRY_SECONDS = (0.5, 5.0)

# A job drawn from an image prompt keeps in its `params` under IMAGE_PROMPT the upload it came from (its id,
# sha256 and size) and the --iw it was drawn with, so a re-roll or a restart can draw from the same picture.
# What a /blend keeps in its `params` under this key: the uploads it mixes (each as `upload_params`).
BLEND = BLENDED
BLEND_IMAGES = (2, 5)  # the fewest and most pictures a /blend mixes
# How far img2img moves from the mixed pictures: enough for the model to draw one scene of what they share.
BLEND_STRENGTH = 0.7
IW_NEEDS_IMAGE = (
    "--iw sets how closely the images follow an image prompt; attach an image to use it "
    "(on the command line, --image PATH)."
)

# Where a job's `params` keep the queue it waited in: "fast" or "relax" (its fast time is counted from it).
QUEUE = "queue"


def job_tier(job: JobRecord) -> int:
    """The queue tier `job` was given when it was admitted, for submitting it again after a restart."""
    return FAST_TIER if job.params.get(QUEUE) == "fast" else RELAX_TIER


# The request fields a job's `params` keep, so a button can rebuild the request later.
REQUEST_PARAMS = (
    "width",
    "height",
    "steps",
    "guidance",
    "num_images",
    "mode",
    "strength",
    "chaos",
    "stylize",
    "flags",
    "tile",
    "quality",
    "draft",
    "video",
    "motion",
    "frames",
)
# The motion a text-to-video prompt (--video) animates its image with.
VIDEO_MOTION = "high"


class ButtonAction(StrEnum):
    """What a pressed button asks for; the values are the custom_id's action field."""

    UPSCALE = "u"  # U1–U4: the grid's image alone at full size
    VARY = "v"  # V1–V4: four variations of a grid's image
    REROLL = "r"  # 🔄: the same prompt with a new seed
    VARY_SUBTLE = "vs"
    VARY_STRONG = "vx"
    UPSCALE_SUBTLE = "us"
    UPSCALE_CREATIVE = "uc"
    # The editing buttons of a single image; each inpaints (see `pipeline.editing`).
    VARY_REGION = "vr"  # asks which part first (`EDIT_ASKS`)
    ZOOM_OUT_2X = "zt"
    ZOOM_OUT_15X = "zh"
    ZOOM_CUSTOM = "zc"  # asks the factor first
    MAKE_SQUARE = "sq"
    PAN_LEFT = "pl"
    PAN_RIGHT = "pr"
    PAN_UP = "pu"
    PAN_DOWN = "pd"
    DESCRIBED = "i"  # under a /describe: /imagine with one of its four prompts
    ENHANCE = "e"  # under a --draft grid: one of its images made again at full quality, with its seed
    PROCESS = "px"  # 🔬 under a single image: its diffusion, forward and reverse, as one picture
    ANIMATE_LOW = "al"  # 🎞 under a single image: a short video of it, with little motion
    ANIMATE_HIGH = "ah"  # … with much motion
    EXTEND = "ex"  # under a video: a few seconds more, from its last frame

    @property
    def remixable(self) -> bool:
        """Whether, with Remix on, this button opens its prompt to edit before the job starts."""
        return self in REMIXABLE


# The buttons Remix acts on: each starts from a job's prompt (a new button opts in by joining this set).
REMIXABLE = (
    frozenset({ButtonAction.VARY, ButtonAction.VARY_SUBTLE, ButtonAction.VARY_STRONG, ButtonAction.REROLL})
    | {  # and the edits, which keep their image and take the new prompt for what they generate
        ButtonAction.VARY_REGION,
        ButtonAction.ZOOM_OUT_2X,
        ButtonAction.ZOOM_OUT_15X,
        ButtonAction.ZOOM_CUSTOM,
        ButtonAction.MAKE_SQUARE,
        ButtonAction.PAN_LEFT,
        ButtonAction.PAN_RIGHT,
        ButtonAction.PAN_UP,
        ButtonAction.PAN_DOWN,
    }
    | {  # and the videos, whose edited prompt says how the image moves
        ButtonAction.ANIMATE_LOW,
        ButtonAction.ANIMATE_HIGH,
        ButtonAction.EXTEND,
    }
)
# The buttons that make a video, and the motion each asks for (Extend keeps its video's).
VIDEO_ACTIONS = frozenset({ButtonAction.ANIMATE_LOW, ButtonAction.ANIMATE_HIGH, ButtonAction.EXTEND})
ANIMATE_MOTIONS = {ButtonAction.ANIMATE_LOW: "low", ButtonAction.ANIMATE_HIGH: "high"}


def remixed_kind(kind: JobKind) -> JobKind:
    """The kind a job gets when its button's prompt was edited with Remix: a variation or a re-roll becomes
    a remix; a kind that says more about its images (an upscale) keeps saying it."""
    return JobKind.REMIX if kind in (JobKind.VARIATION, JobKind.REROLL) else kind


# What a button needs of the model that made the job's images.
_VARIATIONS = frozenset({ButtonAction.VARY, ButtonAction.VARY_SUBTLE, ButtonAction.VARY_STRONG})


# What each editing button does to its image; the two that ask first take the edit given with the press.
PRESET_EDITS = {
    ButtonAction.ZOOM_OUT_2X: editing.zoom(2),
    ButtonAction.ZOOM_OUT_15X: editing.zoom(1.5),
    ButtonAction.MAKE_SQUARE: editing.square(),
    ButtonAction.PAN_LEFT: editing.pan("left"),
    ButtonAction.PAN_RIGHT: editing.pan("right"),
    ButtonAction.PAN_UP: editing.pan("up"),
    ButtonAction.PAN_DOWN: editing.pan("down"),
}
EDIT_ASKS = {ButtonAction.VARY_REGION: "region", ButtonAction.ZOOM_CUSTOM: "zoom"}
EDITS = frozenset(PRESET_EDITS) | frozenset(EDIT_ASKS)
EDIT_KINDS = {
    "region": JobKind.REGION,
    "zoom": JobKind.ZOOM,
    "pan": JobKind.PAN,
    "square": JobKind.SQUARE,
}


def offered_actions(modes: Collection[Mode]) -> frozenset[ButtonAction]:
    """The buttons a finished job offers, given what its model can make: variations need image-to-image,
    the edits (Vary Region, Zoom Out, Pan, Make Square) inpainting; upscales fall back to a plain
    enlargement, so they are always there."""
    missing = (frozenset() if Mode.IMG2IMG in modes else _VARIATIONS) | (
        frozenset() if Mode.INPAINT in modes else EDITS
    )
    if Mode.PROCESS not in modes:
        missing |= {ButtonAction.PROCESS}
    if Mode.ANIMATE not in modes:  # no VIDEO_MODEL beside the model
        missing |= VIDEO_ACTIONS
    return frozenset(ButtonAction) - missing


def enhanceable(job: JobRecord) -> bool:
    """Whether Enhance is offered under `job`: a --draft grid drawn from its prompt alone (an image prompt's
    picture is not kept in the job's parameters), whose images can be made again at full quality."""
    text_to_image = job.params.get("mode", Mode.TXT2IMG) == Mode.TXT2IMG
    return bool(job.params.get("draft")) and text_to_image and len(job.images) > 1


def explainable(job: JobRecord) -> bool:
    """Whether 🔬 Process is offered under `job`: its images were drawn from its prompt alone (text to image,
    no member's picture), so one can be made again step by step."""
    text_to_image = job.params.get("mode", Mode.TXT2IMG) == Mode.TXT2IMG
    return text_to_image and IMAGE_PROMPT not in job.params and BLEND not in job.params


def asked_edit(action: ButtonAction, answer: str) -> editing.Edit:
    """The edit a member typed for a button that asks (`EDIT_ASKS`): a region, or a zoom factor."""
    return editing.region(answer) if EDIT_ASKS.get(action) == "region" else editing.zoom(answer)


def edit_of(action: ButtonAction, given: editing.Edit | None) -> editing.Edit | None:
    """The edit a press of `action` makes: its preset, or `given` for the buttons that ask (a RequestError
    when that is missing or of another kind); None for the buttons that do not edit."""
    if action in PRESET_EDITS:
        return PRESET_EDITS[action]
    asked = EDIT_ASKS.get(action)
    if asked is None:
        return None
    if given is None or given.kind != asked:
        wanted = "the region to vary" if asked == "region" else "the zoom factor"
        raise RequestError(f"This button needs {wanted}.")
    return given


@dataclass(frozen=True)
class Outcome:
    """A finished job as the reporter shows it: the record, its images and a grid of them (PNG bytes).

    `result` is what the executor returned (None for a U press, which copies a stored image).
    """

    job: JobRecord
    images: list[bytes]
    grid: bytes
    result: GenerationResult | None = None
    offered: frozenset[ButtonAction] = frozenset(ButtonAction)  # the buttons its model can serve
    video: bytes | None = (
        None  # a video job's MP4 (`images` holds it and its PNG thumbnail; `grid` the thumbnail)
    )


class Reporter(Protocol):
    """Where one job's progress and result are shown."""

    async def waiting(self, position: int) -> None: ...

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None: ...

    async def finished(self, outcome: Outcome) -> None: ...

    async def failed(self, message: str) -> None: ...


def request_notes(request: GenerationRequest, family: ModelFamily) -> list[str]:
    """What `family`'s model will not do of what `request` asks, said to the person beside the job."""
    notes = []
    if request.negative_prompt and not family.negative_prompt:
        notes.append(
            "This model does not use --no (it runs without a negative prompt); the rest is used as written."
        )
    if request.stylize != DEFAULT_STYLIZE and family.default_guidance == 0 and request.guidance == 0:
        notes.append("This model runs without guidance, so --stylize does not change its images.")
    if not family.prompt_weights and is_weighted(prompt_parts(request.prompt)):
        notes.append(
            f"This model (a {family.name} model) does not weigh the parts of a multi-prompt; "
            "they are used as one prompt, the negative ones as --no."
        )
    if request.tile and not family.tile:
        notes.append(
            f"--tile needs a model with a UNet; this one (a {family.name} model) makes an ordinary image."
        )
    if request.chaos and not family.chaos:
        notes.append(
            f"--chaos does not change this model's images (its family, {family.name}, is not one Kaika varies)."
        )
    return notes


def request_params(request: GenerationRequest) -> dict[str, Any]:
    return {name: (str(v) if isinstance(v := getattr(request, name), Mode) else v) for name in REQUEST_PARAMS}


def request_of(job: JobRecord) -> GenerationRequest:
    """The request a job ran (without its source image), rebuilt from what storage kept."""
    params = dict(job.params)
    params["mode"] = Mode(params.get("mode", Mode.TXT2IMG))
    return GenerationRequest(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        seed=job.seed or 0,
        model=job.model,
        **{k: v for k, v in params.items() if k in REQUEST_PARAMS},
    )


async def pressable(storage: Storage, job_id: str, action: ButtonAction) -> JobRecord:
    """The job a press of `action` would start from, for a front end whose buttons are not on a result.

    JobGone when there is none (or it was deleted); JobNotDone while it is queued or running, and for
    any button but a re-roll when it has no images (it failed or was cancelled). `JobService.press`
    checks the image index and the rest. Needs storage only, so it can answer before a model loads.
    """
    job = await storage.jobs.get(job_id)
    if job is None:
        raise JobGone()
    if not job.status.finished or (
        action is not ButtonAction.REROLL and (job.status is not JobStatus.DONE or not job.images)
    ):
        raise JobNotDone(job)
    return job


class JobService:
    def __init__(
        self,
        storage: Storage,
        executor: Executor,
        *,
        limits: Limits | None = None,
        defaults: PromptDefaults | None = None,
        models: Collection[str] | None = None,
        max_queue: int = 100,
        max_jobs_per_user: int = 2,
        max_jobs_per_prompt: int = 4,
        seed_source: random.Random | None = None,
        max_upload_bytes: int = DEFAULT_MAX_BYTES,
        max_upload_pixels: int = DEFAULT_MAX_PIXELS,
        fast_time: FastTime | None = None,
        metrics: JobMetrics | None = None,
        video_frames: int = 0,
        video_max_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.storage = storage
        self.executor = executor
        self.limits = limits or Limits()
        self.defaults = defaults or PromptDefaults()
        self.models = models  # the names --model accepts; None: the executor's `model_names`
        self.capacity = Capacity(max_queue=max_queue, max_jobs_per_user=max_jobs_per_user)
        self.max_jobs_per_prompt = max_jobs_per_prompt  # --repeat x {a, b} permutations
        self.seeds = seed_source or random.Random()
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_pixels = max_upload_pixels
        self.fast_time = fast_time or FastTime()  # who runs --fast, and for how long a day
        self.video_frames = video_frames  # frames of a video (VIDEO_FRAMES); 0: the video family's
        self.video_max_bytes = video_max_bytes  # the largest MP4 a front end posts (VIDEO_MAX_MB)
        # Every job's figures for /metrics, measured here, where every front end's jobs pass.
        self.metrics = metrics or JobMetrics(queue_depth=lambda: self.executor.queue_depth())
        self._tasks: set[asyncio.Task[None]] = set()
        self._handles: set[JobHandle] = set()  # submitted and not yet ended
        self._closed = False

    # ---- checks (fast: they run before the interaction is acknowledged) ----------------------------

    def parse(self, text: str) -> GenerationRequest:
        """/imagine text → a validated request; raises RequestError naming the bad flag."""
        return parse_prompt(text, **self._parse_options())

    def parse_all(self, text: str) -> list[GenerationRequest]:
        """/imagine text → the validated request of each job it asks for (--repeat, {a, b} permutations; at
        most `max_jobs_per_prompt`); raises RequestError naming what is wrong."""
        return parse_prompts(text, **self._parse_options())

    def _parse_options(self) -> dict[str, Any]:
        return {
            "family": self.executor.family,
            "defaults": self.defaults,
            "limits": self.limits,
            "seed_source": self.seeds,
            # The executor's list is read each time (fleet workers announce theirs after the bot
            # starts); an empty one (no worker yet) leaves the name to the executor.
            "models": self.models if self.models is not None else (self.executor.model_names or None),
            "max_jobs": self.max_jobs_per_prompt,
        }

    async def parse_for(self, user_id: int, prompt: str, model: str | None = None) -> GenerationRequest:
        """`prompt` with `--model model` and the user's saved defaults (/settings) for flags it lacks."""
        saved = await self.storage.users.defaults(user_id)
        return self.parse(with_defaults(prompt, model, saved))

    async def parse_all_for(
        self, user_id: int, prompt: str, model: str | None = None
    ) -> list[GenerationRequest]:
        """Every job of `prompt` (see `parse_all`), with `--model model` and the user's saved defaults."""
        saved = await self.storage.users.defaults(user_id)
        return self.parse_all(with_defaults(prompt, model, saved))

    async def save_defaults(
        self, user_id: int, given: dict[str, object], *, reset: bool = False
    ) -> dict[str, object]:
        """Forget the user's defaults (`reset`), then save `given` ones; returns the defaults now saved.

        `given` holds flags (`DEFAULT_FLAGS`: "ar", …, "no" for the negative prompt), "suffix" (text added to
        every prompt; "none" forgets it), "remix" (a bool) and "mode" (`MODES`: "draft" adds --draft to every
        prompt). The prompt parser judges what a flag and a suffix may be: a bad value raises its RequestError,
        saving nothing.
        """
        values = {k: v for k, v in given.items() if k in DEFAULT_FLAGS}
        suffix = given.get(SUFFIX)
        if isinstance(suffix, str):
            suffix = " ".join(suffix.split())
            values[SUFFIX] = None if suffix.lower() in ("", "none") else suffix
        if REMIX in given:
            values[REMIX] = True if given[REMIX] else None  # off is the default: nothing kept
        if MODE in given:
            if given[MODE] not in MODES:
                raise RequestError(f"The mode is one of {', '.join(MODES)} (got {given[MODE]!r}).")
            values[MODE] = None if given[MODE] == "standard" else given[MODE]  # standard: nothing kept
        checked = " ".join(f"--{k} {v}" for k, v in values.items() if k in DEFAULT_FLAGS)
        if values.get(SUFFIX):
            checked = f"{values[SUFFIX]} {checked}"
        if checked:
            self.parse(with_defaults("settings check", None, {SUFFIX: checked}))
        if reset:
            await self.storage.users.set_defaults(user_id, **dict.fromkeys(SAVED_KEYS))
        if values:
            await self.storage.users.set_defaults(user_id, **values)  # type: ignore[arg-type]
        return await self.storage.users.defaults(user_id)

    async def toggle_remix(self, user_id: int) -> bool:
        """Turn the user's Remix on if it was off, off if it was on; returns whether it is on now."""
        on = not remix_on(await self.storage.users.defaults(user_id))
        await self.storage.users.set_defaults(user_id, **{REMIX: True if on else None})
        return on

    def resume(
        self,
        job: JobRecord,
        request: GenerationRequest,
        *,
        handle: JobHandle | None = None,
        copy_of: tuple[JobRecord, int] | None = None,
    ) -> PendingJob:
        """A job a previous process admitted, to follow again after a restart (no limit applies again)."""
        if handle is not None:
            self._handles.add(handle)
        pending = PendingJob(
            self, job, request, self.capacity.resume(job.requester_id), handle, copy_of, resumed=True
        )
        if request.video and job.kind is JobKind.IMAGINE and handle is not None:
            # A --video prompt's image: its video still follows (the member's name is kept as it is).
            pending.animate_for = (
                Requester(job.requester_id, ""),
                Place(job.guild_id, job.channel_id, job.front_end),
            )
        return pending

    def offered(self, model: str | None) -> frozenset[ButtonAction]:
        """The buttons a finished job of `model` offers (see `offered_actions`)."""
        return offered_actions(self.executor.family(model).modes)

    def offered_for(self, job: JobRecord) -> frozenset[ButtonAction]:
        """The buttons of finished `job`: those its model can serve, but Make Square under a square image."""
        offered = self.offered(job.model)
        if job.images and all(image.width == image.height for image in job.images):
            offered -= {ButtonAction.MAKE_SQUARE}
        if not enhanceable(job):
            offered -= {ButtonAction.ENHANCE}
        if job.kind is JobKind.PROCESS:  # a sheet of frames, not an image to vary or edit
            return frozenset()
        if job.kind in VIDEO_KINDS:  # a video: made longer, nothing else
            return offered & {ButtonAction.EXTEND}
        offered -= {ButtonAction.EXTEND}
        if not explainable(job):
            offered -= {ButtonAction.PROCESS}
        return offered

    def in_flight(self, user_id: int) -> int:
        """Jobs of `user_id` this service has queued or running now."""
        return self.capacity.in_flight(user_id)

    async def guild_settings(self, guild_id: int | None) -> GuildSettings:
        return await self.storage.guilds.settings(guild_id or 0)

    # ---- uploads (image prompts) ------------------------------------------------------------------

    def check_upload_size(self, byte_size: int, name: str) -> None:
        """Refuse an upload by its declared size (`UploadRefused`), before it is downloaded."""
        check_declared_size(byte_size, name=name, max_bytes=self.max_upload_bytes)

    async def check_upload(self, data: bytes, name: str) -> CleanUpload:
        """`data` checked and re-encoded off the event loop (`pipeline.uploads.clean_upload`), or `UploadRefused`
        in one line; nothing of a refused upload is kept."""
        return await asyncio.to_thread(
            clean_upload, data, name=name, max_bytes=self.max_upload_bytes, max_pixels=self.max_upload_pixels
        )

    async def image_prompt_source(self, params: dict[str, Any], width: int, height: int) -> bytes:
        """The picture of a job's image prompt (`params[IMAGE_PROMPT]`) fitted to `width` x `height`, as PNG;
        JobGone when the upload is no longer there."""
        upload = await self.storage.uploads.get(str(params[IMAGE_PROMPT]["upload"]))
        if upload is None:
            raise JobGone()
        try:
            data = await self.storage.uploads.data(upload)
        except FileNotFoundError:
            raise JobGone() from None
        return await asyncio.to_thread(_fitted_png, data, width, height)

    async def blend(
        self,
        requester: Requester,
        place: Place,
        images: list[CleanUpload],
        prompt: str = "",
        model: str | None = None,
    ) -> PendingJob:
        """Check and record a /blend: four images mixing `images` (2–5, each checked by `check_upload`), steered
        by `prompt` (words and flags; may be empty). The pictures are cropped to the job's size (`--ar`),
        averaged, and drawn from image-to-image at `BLEND_STRENGTH`; each is kept as the requester's upload,
        and taken back again should the blend be refused."""
        check_blend(len(images), prompt)
        description, _ = split_prompt(prompt)
        # The pictures are a blend's prompt: words are optional, so an empty description is parsed as one word.
        request = await self.parse_for(requester.user_id, prompt if description else f"blend {prompt}", model)
        request = request.replace(
            prompt=description if description else request.prompt.removeprefix("blend").strip()
        )
        family = self.executor.family(request.model)
        if Mode.IMG2IMG not in family.modes:
            raise RequestError(
                f"This model (a {family.name} model) cannot blend images (it has no image-to-image pipeline)."
            )
        settings = await self.guild_settings(place.guild_id)
        check_prompt(request.prompt or BLEND, request.negative_prompt, settings)  # its pictures need no words
        source = await asyncio.to_thread(
            _blended_png, [image.png for image in images], request.width, request.height
        )
        request = request.replace(mode=Mode.IMG2IMG, source_image=source, strength=BLEND_STRENGTH)
        uploads: list[UploadRecord] = []
        try:
            for image in images:
                uploads.append(
                    await self.storage.uploads.add(
                        requester.user_id, image.png, image.width, image.height, owner_name=requester.name
                    )
                )
            extra = {BLEND: [upload_params(upload) for upload in uploads]}
            return await self._admit(requester, place, settings, JobKind.BLEND, request, extra=extra)
        except BaseException:
            for upload in uploads:
                await self.storage.uploads.discard(upload.id)
            raise

    async def blend_source(self, params: dict[str, Any], width: int, height: int) -> bytes:
        """The pictures of a /blend (`params[BLEND]`) mixed again at `width` x `height`, as PNG; JobGone when
        one of its uploads is no longer there."""
        pictures = []
        for kept in params[BLEND]:
            upload = await self.storage.uploads.get(str(kept["upload"]))
            if upload is None:
                raise JobGone()
            try:
                pictures.append(await self.storage.uploads.data(upload))
            except FileNotFoundError:
                raise JobGone() from None
        return await asyncio.to_thread(_blended_png, pictures, width, height)

    async def _with_image(
        self, requests: list[GenerationRequest], image: CleanUpload | None
    ) -> list[GenerationRequest]:
        """`requests` drawn from `image` (an image prompt, see `image_prompt_request`); without one, refuses
        an --iw, which has nothing to weigh."""
        if image is None:
            if any(request.image_weight is not None for request in requests):
                raise RequestError(IW_NEEDS_IMAGE)
            return requests
        for request in requests:
            family = self.executor.family(request.model)
            if Mode.IMG2IMG not in family.modes:
                raise RequestError(
                    f"This model (a {family.name} model) cannot start from an image (it has no "
                    "image-to-image pipeline); send the prompt without one."
                )
        sources = {
            size: await asyncio.to_thread(_fitted_png, image.png, *size)
            for size in {(request.width, request.height) for request in requests}
        }
        return [image_prompt_request(r, sources[r.width, r.height]) for r in requests]

    # ---- starting jobs -----------------------------------------------------------------------------

    async def imagine(
        self,
        requester: Requester,
        place: Place,
        request: GenerationRequest,
        *,
        image_prompt: UploadRecord | None = None,
    ) -> PendingJob:
        """Check and record an /imagine; raises the user's error (nothing recorded) or returns the job to run."""
        settings = await self.guild_settings(place.guild_id)
        check_prompt(request.prompt, request.negative_prompt, settings)
        return await self._admit(
            requester,
            place,
            settings,
            JobKind.IMAGINE,
            request,
            extra=_image_prompt_params(image_prompt, request),
        )

    async def imagine_all(
        self,
        requester: Requester,
        place: Place,
        requests: list[GenerationRequest],
        *,
        image: CleanUpload | None = None,
    ) -> list[PendingJob]:
        """Check and record the jobs of one /imagine prompt (`parse_all`), all or none: a refusal (blocked
        term, the daily quota left, the queue's room) records nothing.

        With `image` (checked by `check_upload`), each job is drawn from it at the strength its --iw asks for
        (`pipeline.request.image_prompt_request`); the picture is kept as the requester's upload, and taken
        back again should the prompt be refused."""
        requests = await self._with_image(requests, image)
        if image is None:
            return await self._imagine_all(requester, place, requests)
        settings = await self.guild_settings(place.guild_id)
        for request in requests:  # refused before anything is kept
            check_prompt(request.prompt, request.negative_prompt, settings)
        upload = await self.storage.uploads.add(
            requester.user_id, image.png, image.width, image.height, owner_name=requester.name
        )
        try:
            return await self._imagine_all(requester, place, requests, upload)
        except BaseException:
            await self.storage.uploads.discard(upload.id)
            raise

    async def _imagine_all(
        self,
        requester: Requester,
        place: Place,
        requests: list[GenerationRequest],
        image_prompt: UploadRecord | None = None,
    ) -> list[PendingJob]:
        if len(requests) == 1:
            return [await self.imagine(requester, place, requests[0], image_prompt=image_prompt)]
        settings = await self.guild_settings(place.guild_id)
        for request in requests:
            check_prompt(request.prompt, request.negative_prompt, settings)
        quota = daily_quota(requester, settings)
        if quota is not None:
            left = max(quota - await self.storage.jobs.jobs_last_24h(requester.user_id), 0)
            if len(requests) > left:
                raise TooManyJobs(
                    f"This prompt makes {len(requests)} jobs, but {left} of your {quota} jobs a day "
                    f"{'is' if left == 1 else 'are'} left; ask for fewer (--repeat, {{…}} options)."
                )
        slots = self.capacity.admit_group(requester, len(requests))
        admitted: list[PendingJob] = []
        try:
            for request, slot in zip(requests, slots, strict=True):
                admitted.append(
                    await self._admit(
                        requester,
                        place,
                        settings,
                        JobKind.IMAGINE,
                        request,
                        slot=slot,
                        extra=_image_prompt_params(image_prompt, request),
                    )
                )
        except BaseException:
            for slot in slots[len(admitted) :]:
                slot.release()
            for pending in admitted:  # one refused (a quota race): the prompt's jobs go together
                await pending.withdraw()
            raise
        return admitted

    async def _admit(
        self,
        requester: Requester,
        place: Place,
        settings: GuildSettings,
        kind: JobKind,
        request: GenerationRequest,
        *,
        parent: JobRecord | None = None,
        index: int | None = None,
        copy: bool = False,
        edit: editing.Edit | None = None,
        slot: Slot | None = None,
        extra: dict[str, Any] | None = None,
    ) -> PendingJob:
        """Take a place in flight (or the `slot` already taken), record the job (storage enforces ban and quota)
        and queue it — or, for `copy` (a U press), keep the parent's image to copy; any refusal gives the place
        back."""
        slot = slot or self.capacity.admit(requester)
        try:
            if not copy:  # a U press copies its image: it waits in no queue
                tier = await self.queue_tier(requester, request.speed)
                extra = {**(extra or {}), QUEUE: "fast" if tier == FAST_TIER else "relax"}
            job = await self.storage.jobs.create(
                kind,
                requester.user_id,
                requester_name=requester.name,
                daily_quota=daily_quota(requester, settings),
                guild_id=place.guild_id,
                channel_id=place.channel_id,
                front_end=place.front_end,
                parent_job_id=None if parent is None else parent.id,
                parent_image_index=index,
                **self._job_fields(request, edit, extra),
            )
            if copy:
                assert parent is not None and index is not None
                return PendingJob(self, job, request, slot, copy_of=(parent, index))
            pending = PendingJob(
                self, job, request, slot, await self._submit(job, request, requester.user_id, tier)
            )
            if request.video and kind is JobKind.IMAGINE:  # --video: its image is animated once made
                pending.animate_for = (requester, place)
            return pending
        except BaseException:
            slot.release()
            raise

    async def queue_tier(self, requester: Requester, asked: str = "") -> int:
        """The queue tier a job of `requester` gets (see `service.admission.queue_tier`)."""
        used = (
            await self.storage.jobs.fast_seconds_last_24h(requester.user_id)
            if self.fast_time.seconds_per_day
            else 0.0
        )
        return queue_tier(asked, requester, self.fast_time, used)

    async def fast_time_line(self, requester: Requester) -> str:
        """Which queue the member's jobs wait in and the fast time they have left today, as /info says it."""
        used = await self.storage.jobs.fast_seconds_last_24h(requester.user_id)
        left = self.fast_time.left(requester, used)
        if left is None:
            return f"Your jobs run fast (fast time used today: {used / 60:.1f} min; --relax lets others go first)"
        if left <= 0:
            why = (
                "your fast time is used up"
                if self.fast_time.allowed(requester)
                else "fast time is for some roles"
            )
            return f"Your jobs run relaxed, after fast ones ({why})"
        total = self.fast_time.seconds_per_day / 60
        return f"Your jobs run fast: {left / 60:.1f} of {total:g} fast minutes left today"

    async def _submit(
        self, job: JobRecord, request: GenerationRequest, owner: int, priority: int = 0
    ) -> JobHandle:
        """Queue a recorded job; if the executor refuses it (its queue is full, the workers are unreachable),
        the record is withdrawn, so the refusal is neither a failure nor a use of the quota, and the error
        raised."""
        try:
            handle = await self.executor.submit(request, owner=str(owner), job_id=job.id, priority=priority)
        except PipelineError:
            try:
                await self.storage.jobs.withdraw(job.id)
            except StorageError:
                log.warning("Could not withdraw job %s, which the executor refused", job.id, exc_info=True)
            raise
        self._handles.add(handle)
        return handle

    async def press(
        self,
        requester: Requester,
        place: Place,
        action: ButtonAction,
        parent_id: str,
        index: int,
        *,
        prompt: str | None = None,
        edit: editing.Edit | None = None,
    ) -> PendingJob:
        """Check and record the job a button on job `parent_id` asks for.

        The buttons that ask before they edit (Vary Region, Custom Zoom: `EDIT_ASKS`) take the `edit`
        asked; 🔄 on an edited grid makes the same edit of the same image again with a new seed.

        With `prompt` (Remix: the job's prompt and flags as the member edited them), the new job starts from
        the same image with that prompt instead, recorded as a remix (see `remixed_kind`).

        Raises JobGone for a job that does not exist (deleted, forged id) or has no such image,
        NotAllowed where the guild lets only owners press buttons, NotRemixable for a `prompt` on a button
        Remix does not act on, and the errors of `imagine` (of the edited prompt too).
        """
        if action is ButtonAction.DESCRIBED:
            return await self._imagine_described(requester, place, parent_id, index)
        parent, settings = await self._pressable(requester, place, action, parent_id, index)
        start_from = request_of(parent)
        edit = edit_of(action, edit)
        if action is ButtonAction.REROLL and (again := await self._edited_image(parent)) is not None:
            parent, index, edit = again
        if prompt is not None:
            if not action.remixable:
                raise NotRemixable()
            start_from = self.parse(prompt)
            check_prompt(start_from.prompt, start_from.negative_prompt, settings)
            if action not in self.offered(start_from.model):
                raise NotOffered()
        if edit is not None and edit.kind == "zoom" and prompt is not None and editing.reshapes(prompt):
            # Custom Zoom with a new --ar (Remix): the canvas takes the shape of the edited prompt.
            edit = editing.zoom(edit.factor or 1, canvas=(start_from.width, start_from.height))
        kind, request = await self._derive(action, parent, start_from, index, edit)
        image_index = None if kind is JobKind.REROLL else index
        if prompt is not None and any(flag.canonical == "seed" for flag in split_prompt(prompt)[1]):
            request = request.replace(seed=start_from.seed)  # an edit that gives --seed keeps it
        extra = None
        if kind is JobKind.REROLL and IMAGE_PROMPT in parent.params:
            # 🔄 of an image prompt draws from the same picture (at a Remix edit's --iw, when it gives one).
            kept = parent.params[IMAGE_PROMPT]
            weight = start_from.image_weight if start_from.image_weight is not None else kept["iw"]
            source = await self.image_prompt_source(parent.params, request.width, request.height)
            request = image_prompt_request(request.replace(image_weight=weight), source)
            extra = {IMAGE_PROMPT: {**kept, "iw": weight}}
        elif kind is JobKind.REROLL and BLEND in parent.params:
            # 🔄 of a blend mixes the same pictures again.
            source = await self.blend_source(parent.params, request.width, request.height)
            request = request.replace(mode=Mode.IMG2IMG, source_image=source, strength=BLEND_STRENGTH)
            extra = {BLEND: parent.params[BLEND]}
        elif start_from.image_weight is not None:
            raise RequestError(IW_NEEDS_IMAGE)
        return await self._admit(
            requester,
            place,
            settings,
            kind if prompt is None else remixed_kind(kind),
            request,
            parent=parent,
            index=image_index,
            copy=action is ButtonAction.UPSCALE,
            edit=edit,
            extra=extra,
        )

    # ---- /describe ---------------------------------------------------------------------------------

    async def _imagine_described(
        self, requester: Requester, place: Place, describe_id: str, index: int
    ) -> PendingJob:
        """/imagine with prompt `index` of /describe job `describe_id`, recorded with where its prompt came from."""
        described = await self.storage.jobs.get(describe_id)
        prompts = (
            [] if described is None or described.kind is not JobKind.DESCRIBE else described.params["prompts"]
        )
        if described is None or described.deleted or not 0 <= index < len(prompts):
            raise JobGone()
        settings = await self.guild_settings(place.guild_id)
        request = await self.parse_for(requester.user_id, prompts[index])
        check_prompt(request.prompt, request.negative_prompt, settings)
        extra = {"described_by": {"job": described.id, "index": index}}
        return await self._admit(requester, place, settings, JobKind.IMAGINE, request, extra=extra)

    async def _edited_image(self, job: JobRecord) -> tuple[JobRecord, int, editing.Edit] | None:
        """The image an edit job (Zoom Out, Pan, …) started from and its edit; None for any other job."""
        edit = editing.Edit.from_params(job.params)
        if edit is None or job.parent_job_id is None or job.parent_image_index is None:
            return None
        parent = await self.storage.jobs.get(job.parent_job_id)
        if parent is None or not 0 <= job.parent_image_index < len(parent.images):
            raise JobGone()
        return parent, job.parent_image_index, edit

    async def edit_request(
        self, start_from: GenerationRequest, source: bytes, edit: editing.Edit, *, seed: int
    ) -> GenerationRequest:
        """`edit` of image `source` with the settings of `start_from`, sized for its model's family
        (`pipeline.editing.edit_request`); its PNGs are made off the event loop. A drawn region's mask is
        read from the upload it was kept as (JobGone when it is no longer there)."""
        family = self.executor.family(start_from.model)
        drawn = None
        if edit.drawn is not None:
            upload = await self.storage.uploads.get(edit.drawn)
            if upload is None:
                raise JobGone()
            try:
                drawn = await self.storage.uploads.data(upload)
            except FileNotFoundError:
                raise JobGone() from None
        return await asyncio.to_thread(
            editing.edit_request,
            start_from,
            source,
            edit,
            seed=seed,
            native=family.native_size,
            multiple=family.size_multiple,
            drawn_png=drawn,
        )

    async def press_drawn_region(
        self,
        requester: Requester,
        place: Place,
        parent_id: str,
        index: int,
        mask_png: bytes,
        *,
        prompt: str | None = None,
    ) -> PendingJob:
        """Vary (Region) of the part a member painted in the region editor: `mask_png` light (or opaque)
        where the image is made again (`pipeline.editing.check_drawn_mask`), stretched to the image. The
        press is checked first, then the mask is kept as the requester's upload (so a 🔄 or a restart makes
        the same edit), and taken back again should the press be refused."""
        await self.check_press(requester, place, ButtonAction.VARY_REGION, parent_id, index)
        self.check_upload_size(len(mask_png), "The mask")
        png, width, height = await asyncio.to_thread(editing.check_drawn_mask, mask_png)
        upload = await self.storage.uploads.add(
            requester.user_id, png, width, height, owner_name=requester.name
        )
        try:
            return await self.press(
                requester,
                place,
                ButtonAction.VARY_REGION,
                parent_id,
                index,
                prompt=prompt,
                edit=editing.drawn_region(upload.id),
            )
        except BaseException:
            await self.storage.uploads.discard(upload.id)
            raise

    async def remix_prompt(
        self, requester: Requester, place: Place, action: ButtonAction, parent_id: str, index: int
    ) -> str | None:
        """The text a Remix editor opens with (the job's prompt and flags) when the member has Remix on and
        `action` is one Remix acts on; None when the press should start its job as it is.

        Refuses what `press` would refuse of the job itself before anyone types (JobGone, NotAllowed, …).
        """
        if not action.remixable or not remix_on(await self.storage.users.defaults(requester.user_id)):
            return None
        parent, _ = await self._pressable(requester, place, action, parent_id, index)
        return prompt_line(parent)

    async def check_press(
        self, requester: Requester, place: Place, action: ButtonAction, parent_id: str, index: int
    ) -> JobRecord:
        """The job a press would start from, or what `press` would refuse of the job itself (JobGone,
        NotAllowed, NotOffered, …): for a front end that asks the member something first."""
        parent, _ = await self._pressable(requester, place, action, parent_id, index)
        return parent

    async def _pressable(
        self, requester: Requester, place: Place, action: ButtonAction, parent_id: str, index: int
    ) -> tuple[JobRecord, GuildSettings]:
        """The job a press of `action` on image `index` of `parent_id` starts from, and the guild's settings,
        once the press is allowed."""
        parent = await self.storage.jobs.get(parent_id)
        if parent is None:
            raise JobGone()
        if action is not ButtonAction.REROLL and not 0 <= index < len(parent.images):
            raise JobGone()
        settings = await self.guild_settings(place.guild_id)
        # Terms blocked since the parent ran are refused on its buttons too.
        check_prompt(parent.prompt or BLEND, parent.negative_prompt, settings)  # a blend may have no words
        check_may_press(requester, parent, settings)
        if action is ButtonAction.PROCESS and (
            action not in self.offered(parent.model)
            or parent.kind is JobKind.PROCESS
            or not explainable(parent)
        ):
            raise NotExplainable(model=action not in self.offered(parent.model))
        if action in VIDEO_ACTIONS and action not in self.offered(parent.model):
            raise NotAnimatable(model=True)
        if action not in self.offered(parent.model):
            raise NotOffered(inpainting=action in EDITS)
        if action is ButtonAction.ENHANCE and not enhanceable(parent):
            raise NotEnhanceable()
        if action in VIDEO_ACTIONS and action not in self.offered_for(parent):
            raise NotAnimatable(video=parent.kind in VIDEO_KINDS)
        return parent, settings

    async def _derive(
        self,
        action: ButtonAction,
        parent: JobRecord,
        parent_request: GenerationRequest,
        index: int,
        edit: editing.Edit | None = None,
    ) -> tuple[JobKind, GenerationRequest]:
        if edit is not None:
            source = await self.storage.images.get(parent.images[index].storage_key)
            request = await self.edit_request(parent_request, source, edit, seed=self.seeds.randrange(2**32))
            return EDIT_KINDS[edit.kind], request
        if action is ButtonAction.REROLL:
            return JobKind.REROLL, parent_request.replace(seed=self.seeds.randrange(2**32), num_images=4)
        image = parent.images[index]
        if action in VIDEO_ACTIONS:
            return await self._video_request(action, parent, parent_request, index)
        if action is ButtonAction.ENHANCE:
            return JobKind.ENHANCE, self.full_quality(parent).replace(seed=image.seed, num_images=1)
        if action is ButtonAction.PROCESS:  # the image made again from its seed, its process recorded
            return JobKind.PROCESS, parent_request.replace(
                seed=image.seed, num_images=1, width=image.width, height=image.height, mode=Mode.PROCESS
            )
        if action is ButtonAction.UPSCALE:
            # U: the image itself, alone; no generation (as Midjourney's U buttons).
            return JobKind.UPSCALE, parent_request.replace(
                seed=image.seed, num_images=1, width=image.width, height=image.height, mode=Mode.TXT2IMG
            )
        source = await self.storage.images.get(image.storage_key)
        if action in (ButtonAction.VARY, ButtonAction.VARY_STRONG, ButtonAction.VARY_SUBTLE):
            single = parent_request.replace(width=image.width, height=image.height)
            strong = action is not ButtonAction.VARY_SUBTLE
            return JobKind.VARIATION, variation_request(
                single, source, seed=self.seeds.randrange(2**32), strong=strong
            )
        single = parent_request.replace(width=image.width, height=image.height, seed=image.seed)
        return JobKind.UPSCALE, upscale_request(
            single, source, creative=action is ButtonAction.UPSCALE_CREATIVE
        )

    async def _video_request(
        self, action: ButtonAction, parent: JobRecord, parent_request: GenerationRequest, index: int
    ) -> tuple[JobKind, GenerationRequest]:
        """🎞 Animate: a short video of image `index` of `parent`, at the button's motion; Extend: a few seconds
        more of video `parent`, from its last frame, at the motion it was made with. A new seed each time."""
        image = parent.images[index]
        seed = self.seeds.randrange(2**32)
        if action is ButtonAction.EXTEND:
            source = await self.last_frame(parent)
            motion = str(parent.params.get("motion") or "low")
            kind = JobKind.EXTEND
        else:
            source = await self.storage.images.get(image.storage_key)
            motion = ANIMATE_MOTIONS[action]
            kind = JobKind.ANIMATE
        request = animate_request(
            parent_request,
            source,
            width=image.width,
            height=image.height,
            seed=seed,
            motion=motion,
            frames=self.video_frames,
        )
        return kind, request

    async def last_frame(self, video_job: JobRecord) -> bytes:
        """The last frame of video job `video_job`'s MP4, as PNG (what Extend starts from); JobGone without it."""
        stored = video_mp4(video_job)
        if stored is None:
            raise JobGone()
        try:
            data = await self.storage.images.get(stored.storage_key)
        except FileNotFoundError:
            raise JobGone() from None
        return await asyncio.to_thread(lambda: encode_png(decode_mp4(data)[-1]))

    async def animate_made_image(self, requester: Requester, place: Place, imagined: JobRecord) -> PendingJob:
        """The video of a --video prompt's image (`imagined`, done): an animate job of its first image, with
        its prompt, seed and model, at `VIDEO_MOTION`; admitted as any button's job (quota, ban, blocklist)."""
        settings = await self.guild_settings(place.guild_id)
        image = imagined.images[0]
        source = await self.storage.images.get(image.storage_key)
        request = animate_request(
            request_of(imagined),
            source,
            width=image.width,
            height=image.height,
            seed=image.seed,
            motion=VIDEO_MOTION,
            frames=self.video_frames,
        )
        return await self._admit(
            requester,
            place,
            settings,
            JobKind.ANIMATE,
            request,
            parent=imagined,
            index=0,
            slot=self.capacity.resume(requester.user_id),  # the prompt's own place, already admitted
        )

    def full_quality(self, job: JobRecord) -> GenerationRequest:
        """The request of --draft `job` without --draft: its prompt and every other flag parsed again, so the
        steps are the model's (or the member's --steps and --q) and the rest is what the draft ran."""
        _, flags = split_prompt(str(job.params.get("flags", "")))
        text = " ".join([job.prompt, *(str(flag) for flag in flags if flag.canonical != "draft")])
        return self.parse(text)

    def _job_fields(
        self,
        request: GenerationRequest,
        edit: editing.Edit | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            # An edit is kept too, so its canvas and mask can be made again (recovery, 🔄).
            "params": {**request_params(request), **(edit.params() if edit else {}), **(extra or {})},
            "seed": request.seed,
            "model": request.model,
        }

    # ---- running -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait until every job this service started has been reported."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self, grace: float) -> bool:
        """Take no new jobs (each request is refused with `Restarting`) and give the jobs in flight up to
        `grace` seconds to finish and be reported; True when they all did. `close` then leaves the rest."""
        self.capacity.stop_admitting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # asyncio.wait, unlike wait_for(gather), never cancels the jobs when the grace runs out.
        while self._tasks and (left := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._tasks), timeout=left)
        return not self._tasks

    async def close(self) -> None:
        """Stop following jobs; stop the executor working on them unless it keeps them (`ResumableExecutor`).

        Their records stay queued or running, so the next start resumes them and reports to their
        channels (see `service.recovery`) rather than this process editing messages on its way out.
        """
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not isinstance(self.executor, ResumableExecutor):
            for handle in list(self._handles):
                await handle.cancel()
        self._handles.clear()

    async def _run(self, pending: PendingJob, reporter: Reporter) -> None:
        job = pending.job
        told = _TellOnce(reporter)
        try:
            if pending.handle is None:
                await self._copy(pending, told)
            elif pending.animate_for is not None:
                await self._follow_then_animate(pending, told)
            else:
                await self._follow(job, pending.handle, told, pending.meter)
                self._handles.discard(pending.handle)
        except asyncio.CancelledError:
            raise
        except (IllegalTransition, StorageJobNotFound):
            # Deleted (so cancelled) while it ran: stop the work and say so.
            pending.meter.cancelled()
            if pending.handle is not None:
                await pending.handle.cancel()
                self._handles.discard(pending.handle)
            await _report_quietly(told.failed("This job was deleted."))
        except Exception as error:
            if told.told:
                # The outcome is recorded and the member has it: what fails afterwards takes nothing back.
                log.exception("Job %s: an error after its outcome was reported", job.id)
            else:
                log.exception("Job %s failed in the service", job.id)
                # Told only once recorded: a failure storage never heard of would be resumed at the next
                # start and end in a result, contradicting what the member was told.
                if await self._fail_quietly(job.id, f"{type(error).__name__}: {error}", wait=True):
                    pending.meter.failed("internal")
                    await _report_quietly(
                        told.failed("Kaika could not finish this job; the error has been logged.")
                    )
        finally:
            pending.slot.release()

    async def _follow_then_animate(self, pending: PendingJob, reporter: _TellOnce) -> None:
        """A --video prompt: its image is made (its progress shown, its result kept back), then animated as a
        child job whose progress and video the member is shown; a refused animate job is said as the failure."""
        assert pending.handle is not None and pending.animate_for is not None
        image_phase = _KeepResult(reporter)
        await self._follow(pending.job, pending.handle, image_phase, pending.meter)
        self._handles.discard(pending.handle)
        if image_phase.outcome is None:
            return  # failed or cancelled: already said
        requester, place = pending.animate_for
        try:
            child = await self.animate_made_image(requester, place, image_phase.outcome.job)
        except (UserError, PipelineError, StorageError) as error:
            await reporter.failed(f"The image is made, but its video could not start: {error}")
            return
        assert child.handle is not None
        child.meter.admitted()
        try:
            await self._follow(child.job, child.handle, reporter, child.meter)
        finally:
            self._handles.discard(child.handle)
            child.slot.release()

    async def _follow(self, job: JobRecord, handle: JobHandle, reporter: Reporter, meter: JobMeter) -> None:
        """Report the job's events, recording each change first: an outcome is told only once storage has it
        (while storage is unavailable it waits, see `_until_recorded`); progress never waits for storage."""
        # A job resumed after a restart may be recorded as running already.
        started = job.status is JobStatus.RUNNING
        async for event in handle.events():
            if isinstance(event, Queued):
                await reporter.waiting(event.position)
            elif isinstance(event, Started):
                meter.started()
                started = started or await self._try_start(job.id)
                if handle.request.mode is Mode.TXT2IMG:
                    # Other modes run a share of the schedule that the pipeline counts its own way (SD and
                    # FLUX round differently): their total comes with the first step, so it never jumps.
                    await reporter.progress(0, handle.request.steps, None)
            elif isinstance(event, Step):
                meter.step()
                started = started or await self._try_start(job.id)
                await reporter.progress(event.step, event.total, event.preview_png)
            elif isinstance(event, Finished):
                try:
                    outcome = await self._store(job, event.result, started)
                except VideoTooLarge:
                    message = (
                        f"The video does not fit in {self.video_max_bytes / 1024 / 1024:g} MB, even small."
                    )
                    await self._until_recorded(
                        job.id, lambda m=message: self._end(job.id, JobStatus.FAILED, m)
                    )
                    meter.failed("generation")
                    await reporter.failed(f"The job failed: {message}")
                    continue
                meter.done()
                await reporter.finished(outcome)
            elif isinstance(event, Failed):
                await self._until_recorded(
                    job.id, lambda m=event.message: self._end(job.id, JobStatus.FAILED, m)
                )
                meter.failed("generation")
                await reporter.failed(f"The job failed: {event.message}")
            elif isinstance(event, Cancelled):
                await self._until_recorded(job.id, lambda: self._end(job.id, JobStatus.CANCELLED))
                meter.cancelled()
                await reporter.failed("The job was cancelled.")

    async def delete(self, job_id: str, requester: Requester) -> JobRecord:
        """Delete a job for its owner or an admin (storage's rule), stopping it if it is still running."""
        deleted = await self.storage.jobs.delete(job_id, requester.user_id, is_admin=requester.is_admin)
        await self._cancel_work(deleted.id)
        return deleted

    async def _cancel_work(self, job_id: str) -> None:
        for handle in list(self._handles):
            if handle.job_id == job_id:
                await handle.cancel()
                self._handles.discard(handle)

    # ---- recording a job's changes ------------------------------------------------------------------

    async def _until_recorded(self, job_id: str, write: Callable[[], Awaitable[T]]) -> T:
        """`write()`, again and again while storage is unavailable (a database restart, a cut network, a
        full disk), so that an outcome is recorded before anyone is told of it. `close` stops the wait;
        the job then stays unfinished in storage and the next start resumes it."""
        delay, longest = RECORD_RETRY_SECONDS
        while True:
            try:
                return await write()
            except StorageUnavailable:
                log.warning("Job %s waits for storage; next try in %.1f s", job_id, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)

    async def _start(self, job_id: str) -> None:
        """queued → running; a job already running is fine (a write whose answer was lost with the database)."""
        try:
            await self.storage.jobs.start(job_id)
        except IllegalTransition as error:
            if error.current != JobStatus.RUNNING:
                raise

    async def _try_start(self, job_id: str) -> bool:
        """Record that the job runs; False while storage is unavailable (the next event tries again)."""
        try:
            await self._start(job_id)
        except StorageUnavailable:
            return False
        return True

    async def _end(self, job_id: str, status: JobStatus, message: str = "") -> None:
        """queued | running → failed or cancelled; a job already there is fine (see `_start`)."""
        try:
            if status is JobStatus.FAILED:
                await self.storage.jobs.fail(job_id, message)
            else:
                await self.storage.jobs.cancel(job_id)
        except IllegalTransition as error:
            if error.current != status:
                raise

    async def _finish(
        self, job_id: str, images: list[GeneratedImage], compute_seconds: float, started: bool
    ) -> JobRecord:
        """(queued →) running → done; a job already done is read back (see `_start`)."""
        if not started:
            await self._start(job_id)
        try:
            return await self.storage.jobs.finish(job_id, images, compute_seconds)
        except IllegalTransition as error:
            done = await self.storage.jobs.get(job_id) if error.current == JobStatus.DONE else None
            if done is None:
                raise
            return done

    async def _store(self, job: JobRecord, result: GenerationResult, started: bool) -> Outcome:
        request = request_of(job)
        if job.kind in VIDEO_KINDS:
            return await self._store_video(job, request, result, started)
        encoded = await asyncio.to_thread(_encode_result, request, result, job.id)
        images = [
            GeneratedImage(data=data, seed=seed, width=image.width, height=image.height)
            for data, seed, image in zip(encoded.images, result.seeds, result.images, strict=True)
        ]
        seconds = result.timings.compute_seconds
        done = await self._until_recorded(job.id, lambda: self._finish(job.id, images, seconds, started))
        return Outcome(done, encoded.images, encoded.grid, result, self.offered_for(done))

    async def _store_video(
        self, job: JobRecord, request: GenerationRequest, result: GenerationResult, started: bool
    ) -> Outcome:
        """A video job's frames kept as an MP4 (within `video_max_bytes`) and its first frame as a PNG thumbnail;
        an Extend's MP4 holds its parent's frames, then the new ones."""
        frames = result.images
        if job.kind is JobKind.EXTEND and job.parent_job_id is not None:
            parent = await self.storage.jobs.get(job.parent_job_id)
            stored = video_mp4(parent) if parent is not None else None
            if stored is not None:
                earlier = await asyncio.to_thread(
                    decode_mp4, await self.storage.images.get(stored.storage_key)
                )
                # The new video starts from the old one's last frame: that frame is shown once.
                frames = [*earlier, *result.images[1:]]
        mp4, thumbnail = await asyncio.to_thread(
            _encode_video, request, result, frames, job.id, self.video_max_bytes
        )
        seed = result.seeds[0]
        width, height = frames[0].size
        kept = [
            GeneratedImage(data=mp4, seed=seed, width=width, height=height, suffix=VIDEO_SUFFIX),
            GeneratedImage(data=thumbnail, seed=seed, width=width, height=height),
        ]
        seconds = result.timings.compute_seconds
        done = await self._until_recorded(job.id, lambda: self._finish(job.id, kept, seconds, started))
        shown = await asyncio.to_thread(display_png, thumbnail)
        return Outcome(done, [mp4, thumbnail], shown, result, self.offered_for(done), video=mp4)

    async def _copy(self, pending: PendingJob, reporter: Reporter) -> None:
        assert pending.copy_of is not None
        parent, index = pending.copy_of
        image = parent.images[index]
        data = await self.storage.images.get(image.storage_key)
        copied = [GeneratedImage(data=data, seed=image.seed, width=image.width, height=image.height)]
        started = pending.job.status is JobStatus.RUNNING
        done = await self._until_recorded(
            pending.job.id, lambda: self._finish(pending.job.id, copied, 0.0, started)
        )
        pending.meter.done()
        shown = await asyncio.to_thread(display_png, data)
        await reporter.finished(Outcome(done, [data], shown, offered=self.offered_for(done)))

    async def _fail_quietly(self, job_id: str, message: str, *, wait: bool = False) -> bool:
        """Record the job failed; False (logged) when it could not be, or had ended otherwise. With `wait`,
        an unavailable storage is waited for (`_until_recorded`)."""
        try:
            if wait:
                await self._until_recorded(job_id, lambda: self._end(job_id, JobStatus.FAILED, message))
            else:
                await self._end(job_id, JobStatus.FAILED, message)
        except Exception:
            log.warning("Could not mark job %s failed", job_id, exc_info=True)
            return False
        return True


class _KeepResult:
    """The reporter of a --video prompt's image: progress passes on, the image's outcome is kept (its video
    follows), a failure is told."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self.outcome: Outcome | None = None

    async def waiting(self, position: int) -> None:
        await self._reporter.waiting(position)

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        await self._reporter.progress(step, total, preview_png)

    async def finished(self, outcome: Outcome) -> None:
        self.outcome = outcome

    async def failed(self, message: str) -> None:
        await self._reporter.failed(message)


class _TellOnce:
    """A job's reporter that is told the job's outcome (a result or a failure) at most once: a result a
    member has seen is never replaced by an error, nor an error by a result."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self.told = False

    async def waiting(self, position: int) -> None:
        if not self.told:
            await self._reporter.waiting(position)

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        if not self.told:
            await self._reporter.progress(step, total, preview_png)

    async def finished(self, outcome: Outcome) -> None:
        if self._tell():
            await self._reporter.finished(outcome)

    async def failed(self, message: str) -> None:
        if self._tell():
            await self._reporter.failed(message)

    def _tell(self) -> bool:
        told, self.told = self.told, True
        return not told


@dataclass
class PendingJob:
    """A recorded, admitted job not yet followed: `start(reporter)` follows it; `abandon` gives it up.

    It holds its place among the jobs in flight (`slot`) until it has been reported or abandoned.
    """

    service: JobService
    job: JobRecord
    request: GenerationRequest
    slot: Slot
    handle: JobHandle | None = None  # None for a U press: the image is copied, not generated
    copy_of: tuple[JobRecord, int] | None = None
    resumed: bool = False  # admitted by an earlier process, followed again after a restart
    meter: JobMeter = field(init=False)  # its figures for /metrics
    # --video: who asked and where, to animate the image once made (`JobService.animate_made_image`).
    animate_for: tuple[Requester, Place] | None = None

    def __post_init__(self) -> None:
        self.meter = self.service.metrics.job(self.job, resumed=self.resumed)

    @property
    def notes(self) -> list[str]:
        """What the job's model will not do of what was asked (see `request_notes`), and a --fast that runs
        relaxed."""
        notes = request_notes(self.request, self.service.executor.family(self.request.model))
        if self.request.speed == "fast" and self.job.params.get(QUEUE) == "relax":
            notes.append("You have no fast time left today; this job runs relaxed, after fast ones.")
        return notes

    def start(self, reporter: Reporter) -> asyncio.Task[None] | None:
        """Follow the job, reporting to `reporter`; None when the service is closing (the job stays recorded)."""
        if self.service._closed:
            self.slot.release()
            if self.handle is not None:
                self.service._spawn(self.handle.cancel())
            return None
        if not self.resumed:
            self.meter.admitted()
        return self.service._spawn(self.service._run(self, reporter))

    async def abandon(self, reason: str) -> None:
        """Give the job up before it is followed (its front end could not show it): stop the work,
        record it failed with `reason` (a failure does not count against the quota), free its place."""
        self.slot.release()
        await self.service._cancel_work(self.job.id)
        if await self.service._fail_quietly(self.job.id, reason):
            if not self.resumed:
                self.meter.admitted()
            self.meter.failed("unacknowledged")

    async def withdraw(self) -> None:
        """Take the job back before it is followed, as if never asked for (`storage.jobs.withdraw`): stop the
        work, remove its record (no failure, no use of the quota), free its place."""
        self.slot.release()
        await self.service._cancel_work(self.job.id)
        try:
            await self.service.storage.jobs.withdraw(self.job.id)
        except StorageError:
            log.warning("Could not withdraw job %s", self.job.id, exc_info=True)


def upload_params(upload: UploadRecord) -> dict[str, Any]:
    """What a job keeps of the upload it was given: its id, sha256 and size."""
    return {"upload": upload.id, "sha256": upload.sha256, "width": upload.width, "height": upload.height}


def _image_prompt_params(upload: UploadRecord | None, request: GenerationRequest) -> dict[str, Any] | None:
    if upload is None:
        return None
    return {IMAGE_PROMPT: {**upload_params(upload), "iw": request.image_weight}}


def check_blend(count: int, prompt: str) -> None:
    """Refuse a /blend of too few or too many pictures, or with an --iw (it weighs its pictures evenly)."""
    fewest, most = BLEND_IMAGES
    if not fewest <= count <= most:
        raise RequestError(f"/blend mixes {fewest} to {most} images (got {count}).")
    if any(flag.canonical == "iw" for flag in split_prompt(prompt)[1]):
        raise RequestError("/blend weighs its images evenly; --iw is for an image prompt on /imagine.")


def _blended_png(pictures: list[bytes], width: int, height: int) -> bytes:
    """Pictures each cropped and resized to `width` x `height`, then averaged pixel by pixel, as PNG."""
    fitted = []
    for data in pictures:
        with Image.open(io.BytesIO(data)) as image:
            fitted.append(fit_image(image, width, height))
    blended = fitted[0]
    for count, image in enumerate(fitted[1:], start=2):
        blended = Image.blend(blended, image, 1 / count)  # a running mean: each picture weighs the same
    return encode_png(blended)


def _fitted_png(data: bytes, width: int, height: int) -> bytes:
    """An uploaded picture cropped to the ratio and resized to the size of the job drawn from it, as PNG."""
    with Image.open(io.BytesIO(data)) as image:
        return encode_png(fit_image(image, width, height))


@dataclass(frozen=True)
class _Encoded:
    images: list[bytes]
    grid: bytes


# The suffix a video's MP4 is stored with; its thumbnail beside it is a PNG.
VIDEO_SUFFIX = ".mp4"


def video_mp4(job: JobRecord) -> Any:
    """The stored MP4 of a video job (an `ImageRecord`), or None for a job without one."""
    return next((image for image in job.images if image.storage_key.endswith(VIDEO_SUFFIX)), None)


def _encode_video(
    request: GenerationRequest,
    result: GenerationResult,
    frames: list[Image.Image],
    job_id: str,
    max_bytes: int,
) -> tuple[bytes, bytes]:
    """The MP4 of `frames` with the job's provenance in its metadata, and its first frame as a PNG with the same
    provenance; runs in a worker thread. Raises `VideoTooLarge` when no encoding fits `max_bytes`."""
    seed = result.seeds[0]
    metadata = image_metadata(request, seed=seed, model_id=result.model_id, job_id=job_id)
    metadata.update(motion=request.motion, frames=str(len(frames)), fps=str(result.fps))
    mp4 = encode_mp4(frames, result.fps, metadata, max_bytes=max_bytes)
    return mp4, encode_png(frames[0], metadata)


def _encode_result(request: GenerationRequest, result: GenerationResult, job_id: str) -> _Encoded:
    """PNG bytes of every image (with its metadata) and of the 2x2 grid; runs in a worker thread."""
    images = [
        encode_png(image, image_metadata(request, seed=seed, model_id=result.model_id, job_id=job_id))
        for image, seed in zip(result.images, result.seeds, strict=True)
    ]
    grid = display_png(images[0]) if len(images) == 1 else encode_png(display_grid(result.images))
    return _Encoded(images, grid)


async def _report_quietly(call: Awaitable[None]) -> None:
    try:
        await call
    except Exception:
        log.warning("Could not report a failure", exc_info=True)
