"""Image to video: what differs between video model families (SVD, AnimateDiff, LTX-Video, Wan, CogVideoX and
Kaika's demo motion model), how VIDEO_MODEL is loaded beside the image model, and one animate call.

A `VideoFamily` keeps each family's facts in one place: its default frames and frame rate, the frame counts
its temporal VAE accepts, its steps and guidance, and how "low" and "high" motion reach it (SVD's motion
bucket, the strength with which AnimateDiff moves away from the still image, words added to the prompt, or
the demo model's motion scale). The engine asks it instead of testing pipeline classes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.errors import ModelLoadError
from pipeline.families import takes

log = logging.getLogger(__name__)

MOTIONS = ("low", "high")


@dataclass(frozen=True)
class VideoFamily:
    """The facts about one video model family that an animate call needs."""

    name: str  # "svd", "animatediff", "ltx", "wan", "cogvideox" or "demo"
    frames: int  # frames of a video when VIDEO_FRAMES does not say
    fps: int  # frames per second the family was trained to show
    frame_step: int  # valid frame counts are frame_step * k + 1 (1: any count)
    steps: int  # denoising steps at most (a job asks for fewer with the image's --steps)
    guidance: float | None  # the guidance_scale passed (None: the pipeline's own default)
    # How motion reaches the model: "bucket" (SVD's motion_bucket_id), "strength" (AnimateDiff's
    # video-to-video strength from the still image repeated), "prompt" (words added to the prompt),
    # "scale" (the demo pipeline's `motion`).
    motion_control: str
    low: float | str
    high: float | str
    # The demo motion model is no diffusion model: its step callback comes once a frame, with the frames so far
    # as RGB in [-1, 1] instead of latents.
    steps_are_frames: bool = False
    # The side of the square pixel budget the family animates at (its frames are enlarged back to the image's
    # size); 0: what its pipeline's configuration says.
    native_side: int = 0
    # The family moves the image's own pixels (the demo motion model's warp) instead of drawing new ones: it
    # animates the image at the image's own size, so the video starts on the very image and keeps its
    # sharpness, with no frame to enlarge.
    warps_image: bool = False

    def motion_value(self, motion: str) -> float | str:
        if motion not in MOTIONS:
            raise ValueError(f"motion is low or high, not {motion!r}")
        return self.low if motion == "low" else self.high

    def frame_count(self, asked: int) -> int:
        """`asked` frames (0: the default) as a count the family's temporal VAE makes: the nearest k*step+1
        (at least step+1)."""
        frames = asked or self.frames
        if self.frame_step <= 1:
            return max(2, frames)
        k = max(1, round((frames - 1) / self.frame_step))
        return k * self.frame_step + 1

    def prompt(self, prompt: str, motion: str) -> str:
        """The prompt the video model is given: with the motion's words for a family steered by its prompt."""
        if self.motion_control != "prompt":
            return prompt
        words = str(self.motion_value(motion))
        return f"{prompt}, {words}" if prompt else words


VIDEO_FAMILIES: dict[str, VideoFamily] = {
    family.name: family
    for family in (
        VideoFamily("svd", 14, 7, 1, 25, None, "bucket", 60, 180),
        VideoFamily("animatediff", 16, 8, 1, 25, 7.5, "strength", 0.55, 0.8),
        VideoFamily("ltx", 25, 24, 8, 30, 3.0, "prompt", "subtle slow motion", "fast dynamic motion"),
        VideoFamily("wan", 33, 16, 4, 30, 5.0, "prompt", "subtle slow motion", "fast dynamic motion"),
        VideoFamily("cogvideox", 49, 8, 4, 30, 6.0, "prompt", "subtle slow motion", "fast dynamic motion"),
        # The demo motion model warps the image at the size it is given: on the demo engine, the member's 256 px
        # image (the demo GAN's), not the 64 px the demo model draws.
        VideoFamily("demo", 8, 8, 1, 20, None, "scale", 0.3, 0.8, steps_are_frames=True, warps_image=True),
    )
}

# Pipeline class name prefixes → video family names.
_VIDEO_PREFIXES = (
    ("StableVideoDiffusion", "svd"),
    ("AnimateDiff", "animatediff"),
    ("LTX", "ltx"),
    ("Wan", "wan"),
    ("CogVideoX", "cogvideox"),
    ("DemoVideo", "demo"),
)
# What each loadable class is, said to whoever set VIDEO_MODEL to something else.
VIDEO_KINDS = (
    "Stable Video Diffusion, an AnimateDiff motion adapter, LTX-Video, Wan or CogVideoX image-to-video"
)


def video_family_of(pipe: Any) -> VideoFamily:
    """The family of a loaded image-to-video pipeline; ValueError for a pipeline that is not one."""
    class_name = type(pipe).__name__
    for prefix, name in _VIDEO_PREFIXES:
        if class_name.startswith(prefix):
            return VIDEO_FAMILIES[name]
    raise ValueError(f"{class_name} is not an image-to-video pipeline Kaika runs ({VIDEO_KINDS})")


# ----------------------------------------------------------------------------------------------- loading


def load_video_pipeline(source: str, image_pipe: Any, *, image_model_id: str, dtype: Any, device: Any) -> Any:
    """The image-to-video pipeline of VIDEO_MODEL `source` beside the loaded image model, or None when there is
    none: an empty VIDEO_MODEL means the demo motion model for the demo image model, and no video otherwise.

    A folder or hub id of a diffusers image-to-video pipeline (SVD, LTX, Wan, CogVideoX) is loaded as it is;
    one of an AnimateDiff `MotionAdapter` animates the loaded SD 1.x image model (`from_pipe`, sharing its
    weights). Raises `ModelLoadError` naming VIDEO_MODEL for anything else.
    """
    from pipeline.loading import DEMO_MODEL_ID, first_line

    if not source:
        if image_model_id != DEMO_MODEL_ID:
            return None
        pipe = _demo_video_pipeline(image_pipe)
    else:
        pipe = _video_from_source(source, image_pipe, dtype)
    if pipe is None:
        return None
    try:
        video_family_of(pipe)
    except ValueError as error:
        raise ModelLoadError(f"VIDEO_MODEL={source!r}: {error}.") from None
    try:
        # Loaded in its dtype already (a cast after loading would undo the float32 some models keep, as Wan's);
        # the demo motion model keeps its own.
        pipe.to(device)
    except Exception as error:
        raise ModelLoadError(
            f"VIDEO_MODEL={source!r} could not be moved to {device}: {first_line(error)}"
        ) from error
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    log.info("loaded video model %s (%s)", source or "kaika-demo-motion", type(pipe).__name__)
    return pipe


def _demo_video_pipeline(image_pipe: Any) -> Any:
    """The demo motion model on the demo image model; None (no Animate) while it is not built."""
    try:
        from pipeline.demo.motion import DEMO_VIDEO_DIR, DemoVideoPipeline  # type: ignore[import-not-found]
    except ImportError:
        log.info("The demo motion model is not part of this install; Animate is not offered")
        return None
    if not Path(DEMO_VIDEO_DIR).is_dir():
        log.warning(
            "The demo motion model is not built (%s is missing); Animate is not offered", DEMO_VIDEO_DIR
        )
        return None
    try:
        return DemoVideoPipeline.from_pretrained(Path(DEMO_VIDEO_DIR), image_pipe)
    except Exception as error:
        from pipeline.loading import first_line

        raise ModelLoadError(
            f"VIDEO_MODEL is empty, which means the demo motion model, but it could not be loaded from "
            f"{DEMO_VIDEO_DIR}: {first_line(error)}"
        ) from error


def _video_from_source(source: str, image_pipe: Any, dtype: Any) -> Any:
    from diffusers import DiffusionPipeline, MotionAdapter

    from pipeline.loading import first_line

    path = Path(source).expanduser()
    local = path.is_dir()
    if not local and (source.startswith(("/", ".", "~")) or source.count("/") != 1):
        raise ModelLoadError(
            f"VIDEO_MODEL={source!r} does not exist: no such folder, and it is not a hub id (owner/name)."
        )
    location = str(path) if local else source
    if local and not (path / "model_index.json").is_file() and not (path / "config.json").is_file():
        raise ModelLoadError(
            f"VIDEO_MODEL={source!r} is a folder with neither model_index.json nor config.json; point it at a "
            f"diffusers folder of {VIDEO_KINDS}."
        )
    if local and not (path / "model_index.json").is_file():
        return _animatediff(source, MotionAdapter, location, image_pipe, dtype)
    try:
        return DiffusionPipeline.from_pretrained(location, dtype=dtype)
    except Exception as error:
        if not local:  # a hub id may name a motion adapter, which has no model_index.json
            try:
                return _animatediff(source, MotionAdapter, location, image_pipe, dtype)
            except ModelLoadError:
                pass
        raise ModelLoadError(f"VIDEO_MODEL={source!r} could not be loaded: {first_line(error)}") from error


def _animatediff(source: str, adapter_class: Any, location: str, image_pipe: Any, dtype: Any) -> Any:
    """An AnimateDiff video-to-video pipeline of the motion adapter at `location` on the loaded image model."""
    from diffusers import AnimateDiffVideoToVideoPipeline

    from pipeline.loading import first_line

    try:
        adapter = adapter_class.from_pretrained(location, dtype=dtype)
    except Exception as error:
        raise ModelLoadError(
            f"VIDEO_MODEL={source!r} is neither a diffusers pipeline nor a motion adapter: {first_line(error)}"
        ) from error
    if not type(image_pipe).__name__.startswith("StableDiffusion") or type(image_pipe).__name__.startswith(
        ("StableDiffusionXL", "StableDiffusion3")
    ):
        raise ModelLoadError(
            f"VIDEO_MODEL={source!r} is an AnimateDiff motion adapter, which animates an SD 1.x model; MODEL is a "
            f"{type(image_pipe).__name__}. Use an SD 1.x MODEL, or set VIDEO_MODEL to an image-to-video pipeline."
        )
    try:
        return AnimateDiffVideoToVideoPipeline.from_pipe(image_pipe, motion_adapter=adapter)
    except Exception as error:
        raise ModelLoadError(
            f"VIDEO_MODEL={source!r} does not fit MODEL ({type(image_pipe).__name__}): {first_line(error)}"
        ) from error


# ----------------------------------------------------------------------------------------------- running


def video_size(pipe: Any, width: int, height: int, native_side: int = 0) -> tuple[int, int]:
    """The size a video of a `width` x `height` image is made at: the image's own, in multiples the pipeline's
    VAE and patches divide, within its native pixel budget (`native_side` squared, when the family says); a
    transformer with learned positional embeddings (CogVideoX 1.0) makes its trained size only."""
    denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
    config = getattr(denoiser, "config", None)
    scale = int(getattr(pipe, "vae_scale_factor_spatial", 0) or getattr(pipe, "vae_scale_factor", 8) or 8)
    patch = getattr(config, "patch_size", 1) or 1
    patch = patch[-1] if isinstance(patch, list | tuple) else patch
    multiple = scale * int(patch)
    if getattr(config, "use_learned_positional_embeddings", False):
        return int(config.sample_width) * scale, int(config.sample_height) * scale
    native = getattr(config, "sample_size", None)
    budget = (int(native) * scale) ** 2 if isinstance(native, int) and native * scale >= 256 else 1024 * 576
    if native_side:
        budget = native_side**2
    shrink = min(1.0, (budget / (width * height)) ** 0.5)
    return (
        max(multiple, int(width * shrink) // multiple * multiple),
        max(multiple, int(height * shrink) // multiple * multiple),
    )


StepEnd = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


def animate_arguments(
    pipe: Any,
    family: VideoFamily,
    *,
    image: Image.Image,
    prompt: str,
    negative_prompt: str,
    motion: str,
    frames: int,
    steps: int,
    generator: Any,
    on_step_end: StepEnd | None,
) -> dict[str, Any]:
    """The keyword arguments of one animate call of `pipe`: only those its `__call__` takes."""
    width, height = image.size
    arguments: dict[str, Any] = {"num_inference_steps": steps, "generator": generator, "output_type": "pil"}
    if takes(pipe, "video"):  # AnimateDiff video to video: the still image repeated, moved away from
        arguments["video"] = [image] * frames
    else:
        arguments["image"] = image
        arguments["num_frames"] = frames
    if takes(pipe, "prompt"):
        arguments["prompt"] = family.prompt(prompt, motion)
    if negative_prompt and takes(pipe, "negative_prompt"):
        arguments["negative_prompt"] = negative_prompt
    if takes(pipe, "height"):
        arguments.update(height=height, width=width)
    if family.guidance is not None and takes(pipe, "guidance_scale"):
        arguments["guidance_scale"] = family.guidance
    control = {"bucket": "motion_bucket_id", "strength": "strength", "scale": "motion"}.get(
        family.motion_control
    )
    if control is not None:
        arguments[control] = family.motion_value(motion)
    if control == "strength":  # video to video runs strength x steps: ask for enough to run `steps`
        arguments["num_inference_steps"] = math.ceil(steps / float(family.motion_value(motion)))
    text_length = getattr(
        getattr(getattr(pipe, "transformer", None), "config", None), "max_text_seq_length", None
    )
    if text_length and takes(pipe, "max_sequence_length"):  # CogVideoX's positions cover this many tokens
        arguments["max_sequence_length"] = int(text_length)
    if on_step_end is not None and takes(pipe, "callback_on_step_end"):
        arguments["callback_on_step_end"] = on_step_end
        if takes(pipe, "callback_on_step_end_tensor_inputs"):
            arguments["callback_on_step_end_tensor_inputs"] = ["latents"]
    return arguments


def output_frames(output: Any) -> list[Image.Image]:
    """The frames of a video pipeline's output (`.frames[0]`, a batch of one) as RGB PIL images."""
    import numpy as np

    frames = output.frames[0]
    if isinstance(frames, list) and frames and isinstance(frames[0], Image.Image):
        return [frame.convert("RGB") for frame in frames]
    array = np.asarray(frames.cpu() if hasattr(frames, "cpu") else frames, dtype=np.float32)
    if array.ndim == 4 and array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(0, 2, 3, 1)  # (frames, channels, h, w) → (frames, h, w, channels)
    return [
        Image.fromarray((np.clip(frame, 0, 1) * 255).round().astype("uint8")).convert("RGB")
        for frame in array
    ]


# How each family lays out a step's latents (the frame strip of a progress preview): batch, channels,
# frames, height, width — or frames before channels. Packed sequences (LTX) have no preview.
_LATENT_LAYOUTS = {
    "svd": "bfchw",
    "cogvideox": "bfchw",
    "animatediff": "bcfhw",
    "wan": "bcfhw",
    "demo": "bcfhw",
}
STRIP_FRAMES = 8  # frames a progress preview shows at most


def frame_strip(latents: Any, family: VideoFamily) -> Image.Image | None:
    """A progress preview of a video's latents: up to STRIP_FRAMES frames side by side, each its first three
    latent channels stretched to RGB; None for a layout without frames to show."""
    import numpy as np

    layout = _LATENT_LAYOUTS.get(family.name)
    if layout is None or getattr(latents, "ndim", 0) != 5:
        return None
    video = latents[0].detach().float().cpu()
    if layout == "bcfhw":
        video = video.permute(1, 0, 2, 3)  # (frames, channels, h, w)
    frames = video.shape[0]
    count = min(frames, STRIP_FRAMES)
    picked = sorted({round(i * (frames - 1) / max(1, count - 1)) for i in range(count)})
    channels = video[picked, :3] if video.shape[1] >= 3 else video[picked, :1].repeat(1, 3, 1, 1)
    if family.steps_are_frames:  # RGB frames in [-1, 1]: shown in their own colours
        scaled = ((channels.clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    else:
        low, high = float(channels.min()), float(channels.max())
        scaled = ((channels - low) / max(high - low, 1e-6) * 255).round().clamp(0, 255).byte().numpy()
    tiles = [Image.fromarray(np.ascontiguousarray(frame.transpose(1, 2, 0))) for frame in scaled]
    side = max(32, min(96, 256 // max(1, len(tiles))))
    # Latents are enlarged cell for cell; frames larger than a tile (a warped image's) are averaged down.
    resample = Image.Resampling.NEAREST if tiles[0].width <= side else Image.Resampling.BOX
    tiles = [tile.resize((side, round(side * tile.height / tile.width)), resample) for tile in tiles]
    strip = Image.new("RGB", (sum(tile.width for tile in tiles), tiles[0].height))
    for index, tile in enumerate(tiles):
        strip.paste(tile, (index * tiles[0].width, 0))
    return strip


# A GAN enlarges a video's frames when they are at most 1/this of the image's size on a side (a family's frames
# made within its pixel budget for an upscaled image, or at the size a GAN engine's model draws); nearer the
# image's size Lanczos does nearly as well, without a 4x GAN pass per frame.
GAN_FRAMES_MIN_FACTOR = 2


def gan_enlarges_frames(upscaler: Any, frame_size: tuple[int, int], width: int, height: int) -> bool:
    """Whether a video's frames of `frame_size`, made below the image's `width` x `height`, are enlarged by the
    engine's GAN `upscaler` (the demo model's, or UPSCALER's) rather than with Lanczos."""
    if upscaler is None:
        return False
    return frame_size[0] * GAN_FRAMES_MIN_FACTOR <= width and frame_size[1] * GAN_FRAMES_MIN_FACTOR <= height


def frames_at_size(engine: Any, frames: list[Image.Image], width: int, height: int) -> list[Image.Image]:
    """A video's `frames` at the image's `width` x `height`: frames a family made within its pixel budget, or
    at the size a GAN engine's model draws, enlarged by the engine's GAN (`gan_enlarges_frames`) or with Lanczos."""
    from pipeline.upscaling import enlarge_all

    if not frames or frames[0].width >= width:  # a family's own larger size (CogVideoX 1.0) is kept
        return frames
    if gan_enlarges_frames(engine.upscaler, frames[0].size, width, height):
        return enlarge_all(engine.upscaler, frames, width, height, engine.device)
    return [frame.resize((width, height), Image.Resampling.LANCZOS) for frame in frames]


def first_frame_request(engine: Any, request: Any) -> Any:
    """A --video prompt's image drawn as its video model asks: the demo motion model's `first_frame_prompt`
    puts the shape where its motion starts ("moving right": on the left); other requests are unchanged."""
    from pipeline.request import Mode

    rewrite = getattr(engine.video, "first_frame_prompt", None)
    if not request.video or request.mode is not Mode.TXT2IMG or rewrite is None:
        return request
    return request.replace(prompt=rewrite(request.prompt))


def animate(
    engine: Any,
    request: Any,
    on_step: Callable[[int, int, list[bytes | None]], None] | None,
    should_stop: Callable[[], bool] | None,
    preview_every: int,
) -> Any:
    """One animate request on `engine` (a `pipeline.engine.Engine` with a video pipeline): a short video from the
    request's image, whose frames are the result's images, all made with the request's seed; the frame rate is
    in the result's metadata (`GenerationResult.fps`). A JobFailed when the device runs out of memory."""
    import time

    import torch

    from pipeline.errors import JobCancelled, JobFailed
    from pipeline.images import decode_image, encode_png, request_metadata
    from pipeline.loading import release_memory
    from pipeline.request import VIDEO_FPS, GenerationResult, Timings
    from pipeline.upscaling import native_request

    engine.check(request)
    pipe, family = engine.video, engine.video_family
    started = time.perf_counter()
    # An engine whose GAN enlarges every image (the demo model) animates at the size its model draws, the
    # frames enlarged by the GAN as its images are; a family that warps the image animates the image itself.
    at_drawn_size = engine.output_scale > 1 and not family.warps_image
    drawn = native_request(request, engine.output_scale) if at_drawn_size else request
    size = video_size(pipe, drawn.width, drawn.height, family.native_side)
    image = decode_image(drawn.source_image)
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    steps = max(1, min(request.steps, family.steps))
    frames = family.frame_count(request.frames)
    previews = {"broken": False}

    def strip_png(latents: Any) -> bytes | None:
        if previews["broken"] or latents is None:
            return None
        try:
            strip = frame_strip(latents, family)
        except Exception:  # a preview is a nicety: the job goes on without
            log.exception("Video previews of %s failed; going on without previews", engine.model_id)
            previews["broken"] = True
            return None
        return None if strip is None else encode_png(strip)

    def on_step_end(pipe: Any, step_index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if should_stop is not None and should_stop():
            raise JobCancelled("The job was cancelled.")
        if on_step is not None:
            step = step_index + 1
            total = frames if family.steps_are_frames else int(getattr(pipe, "num_timesteps", 0) or steps)
            shown = preview_every and step % preview_every == 0 and step < total
            on_step(step, total, [strip_png(tensors.get("latents")) if shown else None])
        return {}

    arguments = animate_arguments(
        pipe,
        family,
        image=image,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        motion=request.motion,
        frames=frames,
        steps=steps,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        on_step_end=on_step_end,
    )
    try:
        with torch.inference_mode():
            made = output_frames(pipe(**arguments))
        made = frames_at_size(engine, made, request.width, request.height)
    except torch.OutOfMemoryError:
        release_memory(engine.device)
        return JobFailed(
            f"The {engine.device.type} device ran out of memory for a {size[0]}x{size[1]} video of {frames} "
            "frames; try fewer frames (VIDEO_FRAMES)."
        )
    return GenerationResult(
        images=made,
        seeds=[request.seed] * len(made),
        timings=Timings(queued_seconds=0.0, compute_seconds=time.perf_counter() - started),
        model_id=engine.model_id,
        metadata={
            **request_metadata(request, model_id=engine.model_id),
            "motion": request.motion,
            "video_family": family.name,
            VIDEO_FPS: str(family.fps),
        },
    )
