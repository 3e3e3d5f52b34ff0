"""Plain data describing what to generate and what came out. Importable without torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from pipeline.errors import EmptyPrompt, RequestError

if TYPE_CHECKING:
    from PIL import Image


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"  # variations
    UPSCALE = "upscale"
    INPAINT = "inpaint"
    PROCESS = "process"  # one image made again, its forward and reverse diffusion shown (`pipeline.process`)
    ANIMATE = "animate"  # a short video from one image (`pipeline.video`); its frames are the result's images


@dataclass(frozen=True)
class Limits:
    """What a request may ask for; the bot shows these numbers in its error messages."""

    max_steps: int = 100
    max_pixels: int = 1024 * 1024
    max_images: int = 4
    max_prompt_chars: int = 1000


@dataclass(frozen=True)
class GenerationRequest:
    """One job: `num_images` images, image i seeded with `seed + i`.

    `source_image` and `mask_image` are encoded image bytes (PNG), so a request is plain,
    picklable data that can cross threads, processes and a broker unchanged.
    """

    prompt: str
    seed: int
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 25
    guidance: float = 7.0
    num_images: int = 4
    mode: Mode = Mode.TXT2IMG
    strength: float = 0.75
    chaos: int = 0
    stylize: int = 100  # as asked; `guidance` already holds what it means for the model
    source_image: bytes | None = None
    mask_image: bytes | None = None
    model: str | None = None  # None = the default model
    tile: bool = False  # --tile: the image repeats seamlessly across its edges
    quality: float = 1.0  # --q as asked; `steps` already holds what it means
    flags: str = ""  # the flags as the member typed them (`--ar 3:2 --s 200`), shown back beside the prompt
    draft: bool = False  # --draft: the family's fastest settings (see `pipeline.speed`)
    speed: str = ""  # "fast" (--fast) or "relax" (--relax) as asked; "": the member's usual queue
    image_weight: float | None = None  # --iw as asked; `strength` holds what it means once an image is given
    video: bool = False  # --video: the image is animated once made (the service chains an animate job)
    motion: str = ""  # an animate job's motion: "low" or "high" (`pipeline.video.MOTIONS`)
    frames: int = 0  # an animate job's frames; 0: its video family's default

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.num_images)]

    def replace(self, **changes: object) -> GenerationRequest:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self, limits: Limits = Limits()) -> GenerationRequest:
        """Raise `RequestError` naming the first value out of bounds; return self otherwise."""
        if not self.prompt.strip() and self.mode is Mode.TXT2IMG:
            raise EmptyPrompt()
        if len(self.prompt) > limits.max_prompt_chars:
            raise RequestError(
                f"The prompt is {len(self.prompt)} characters; the limit is {limits.max_prompt_chars}."
            )
        if not 1 <= self.steps <= limits.max_steps:
            raise RequestError(f"--steps must be between 1 and {limits.max_steps} (got {self.steps}).")
        if not 1 <= self.num_images <= limits.max_images:
            raise RequestError(
                f"The number of images must be between 1 and {limits.max_images} (got {self.num_images})."
            )
        if self.width % 8 or self.height % 8 or self.width < 8 or self.height < 8:
            raise RequestError(
                f"Width and height must be positive multiples of 8 (got {self.width}x{self.height})."
            )
        # An upscale doubles each side of an image that was within the budget; inpainting (Vary Region)
        # works at the size of the image it edits, which may be such an upscale.
        enlarged = self.mode in (Mode.UPSCALE, Mode.INPAINT)
        max_pixels = limits.max_pixels * (UPSCALE_FACTOR**2 if enlarged else 1)
        if self.width * self.height > max_pixels:
            raise RequestError(
                f"{self.width}x{self.height} is {self.width * self.height:,} pixels; the limit is {max_pixels:,}."
            )
        if not 0 <= self.seed < 2**32:
            raise RequestError(f"--seed must be between 0 and {2**32 - 1} (got {self.seed}).")
        if self.guidance < 0:
            raise RequestError(f"Guidance must not be negative (got {self.guidance}).")
        if not 0 <= self.chaos <= 100:
            raise RequestError(f"--chaos must be between 0 and 100 (got {self.chaos}).")
        if self.mode not in (Mode.TXT2IMG, Mode.PROCESS):  # a process draws its image from the prompt
            if self.source_image is None:
                raise RequestError(f"A {self.mode} request needs a source image.")
            if not 0 < self.strength <= 1:
                raise RequestError(f"Strength must be above 0 and at most 1 (got {self.strength}).")
        if self.mode is Mode.INPAINT and self.mask_image is None:
            raise RequestError("An inpaint request needs a mask image.")
        if self.mode is Mode.ANIMATE:
            if self.motion not in ("low", "high"):
                raise RequestError(f"The motion is low or high (got {self.motion!r}).")
            if not 0 <= self.frames <= MAX_FRAMES:
                raise RequestError(f"A video has at most {MAX_FRAMES} frames (got {self.frames}).")
        return self


def can_share_call(a: GenerationRequest, b: GenerationRequest) -> bool:
    """Whether `a` and `b` can run in one pipeline call: same model, mode, size, steps, guidance, --tile and
    --draft."""
    same = (
        a.model == b.model
        and a.mode == b.mode
        and (a.width, a.height) == (b.width, b.height)
        and a.steps == b.steps
        and a.guidance == b.guidance
        and a.tile == b.tile  # --tile changes the model's convolutions for the whole call
        and a.draft == b.draft  # --draft changes the scheduler and guidance of the whole call
    )
    # A 🔬 Process runs alone: it keeps every step's latents of its one image; a video takes the whole call.
    alone = (Mode.PROCESS, Mode.ANIMATE)
    return same and a.mode not in alone and (a.mode is Mode.TXT2IMG or a.strength == b.strength)


def size_for_aspect(aspect_w: int, aspect_h: int, native: int, multiple: int = 8) -> tuple[int, int]:
    """Width and height in the ratio aspect_w:aspect_h with at most `native`² pixels (a model's budget),
    as multiples of `multiple`.

    Each side is rounded to the nearest multiple, or down where the nearest would go over the budget;
    of those choices, the one closest to the asked ratio (then the larger) wins.
    """
    if aspect_w <= 0 or aspect_h <= 0:
        raise RequestError(f"--ar needs two positive whole numbers such as 16:9 (got {aspect_w}:{aspect_h}).")
    ratio = aspect_w / aspect_h
    exact_width, exact_height = native * ratio**0.5, native / ratio**0.5

    def choices(exact: float) -> set[int]:
        return {
            max(multiple, int(exact // multiple) * multiple),
            max(multiple, round(exact / multiple) * multiple),
        }

    sizes = [(w, h) for w in choices(exact_width) for h in choices(exact_height) if w * h <= native * native]
    if not sizes:  # the smallest size a model makes is over its own budget: take the smallest
        return min(choices(exact_width)), min(choices(exact_height))
    return min(sizes, key=lambda size: (abs(size[0] / size[1] / ratio - 1), -size[0] * size[1]))


@dataclass(frozen=True)
class Timings:
    queued_seconds: float
    compute_seconds: float


# Where a video's frame rate travels in `GenerationResult.metadata` (so executors carry it unchanged).
VIDEO_FPS = "video_fps"


@dataclass
class GenerationResult:
    """What a finished job produced: `images[i]` was made with `seeds[i]`; for a video (Mode.ANIMATE), the
    images are its frames, all made with the job's seed, shown at `fps` frames a second."""

    images: list[Image.Image]
    seeds: list[int]
    timings: Timings
    model_id: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> int:
        """Frames a second of a video result; 0 for images."""
        return int(self.metadata.get(VIDEO_FPS, 0))


# Strengths of the derived jobs behind the U and V buttons.
VARIATION_SUBTLE = 0.35
VARIATION_STRONG = 0.75
UPSCALE_SUBTLE = 0.25
UPSCALE_CREATIVE = 0.5
UPSCALE_FACTOR = 2
# The most frames an animate job may ask for (a few seconds at a video family's frame rate).
MAX_FRAMES = 128
# --iw: how strongly an image prompt's results follow the image, 0–2 (Midjourney's range and default).
MAX_IMAGE_WEIGHT = 2.0
DEFAULT_IMAGE_WEIGHT = 1.0


def variation_request(
    parent: GenerationRequest, image_png: bytes, *, seed: int, strong: bool = False
) -> GenerationRequest:
    """Four new images from one of `parent`'s images (img2img with a new seed)."""
    return parent.replace(
        mode=Mode.IMG2IMG,
        source_image=image_png,
        mask_image=None,
        seed=seed,
        strength=VARIATION_STRONG if strong else VARIATION_SUBTLE,
        num_images=4,
    )


def upscale_request(
    parent: GenerationRequest, image_png: bytes, *, seed: int | None = None, creative: bool = False
) -> GenerationRequest:
    """One image at twice `parent`'s size: Lanczos enlargement refined by low- (or higher-) strength img2img."""
    return parent.replace(
        mode=Mode.UPSCALE,
        source_image=image_png,
        mask_image=None,
        seed=parent.seed if seed is None else seed,
        width=parent.width * UPSCALE_FACTOR,
        height=parent.height * UPSCALE_FACTOR,
        strength=UPSCALE_CREATIVE if creative else UPSCALE_SUBTLE,
        num_images=1,
    )


def image_weight_strength(image_weight: float) -> float:
    """The img2img strength of an --iw: 0 → 1.0 (the image is all but noised away), 1 → 0.55, 2 → 0.1 (the
    results keep the image's layout and colours and change its details)."""
    return round(1.0 - 0.45 * image_weight, 4)


def image_prompt_request(request: GenerationRequest, image_png: bytes) -> GenerationRequest:
    """`request` drawn from an image prompt: img2img from `image_png` (already at the request's size) at the
    strength its --iw asks for (`DEFAULT_IMAGE_WEIGHT` without one)."""
    weight = DEFAULT_IMAGE_WEIGHT if request.image_weight is None else request.image_weight
    return request.replace(
        mode=Mode.IMG2IMG,
        source_image=image_png,
        mask_image=None,
        strength=image_weight_strength(weight),
        image_weight=weight,
    )


def animate_request(
    parent: GenerationRequest,
    image_png: bytes,
    *,
    width: int,
    height: int,
    seed: int,
    motion: str,
    frames: int = 0,
) -> GenerationRequest:
    """A short video from one image (`image_png`, `width` x `height`) of `parent`: image to video at `motion`
    ("low" or "high"), `frames` frames (0: the video family's default)."""
    return parent.replace(
        mode=Mode.ANIMATE,
        source_image=image_png,
        mask_image=None,
        width=width,
        height=height,
        seed=seed,
        motion=motion,
        frames=frames,
        num_images=1,
        video=False,
        tile=False,
        draft=False,
    )
