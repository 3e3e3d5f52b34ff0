"""One loaded diffusers model on one device, turning batches of requests into images.

`Engine.load(MODEL)` loads the text-to-image pipeline once (`pipeline.loading`) and derives
image-to-image and inpainting pipelines from it with `AutoPipelineFor*.from_pipe`, so the weights
are shared; a family without one of them still loads, without that mode (`pipeline.families`).
`Engine.run(requests)` runs compatible requests in one pipeline call; every image has its own
CPU `torch.Generator` seeded with its seed, so an image's pixels do not depend on what else was
in the batch. An engine is used by one thread at a time (the executor's worker).
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from pipeline import process
from pipeline.editing import paste_back
from pipeline.errors import JobCancelled, JobFailed, ModelLoadError, PipelineError
from pipeline.families import CHAOS_OUTPUTS, ENCODED_PROMPT, check_request, describe, takes, unpack_latents
from pipeline.images import compose_grid, decode_image, encode_png, request_metadata
from pipeline.loading import (
    DEMO_MODEL_DIR,
    DEMO_MODEL_ID,
    derived_pipelines,
    first_line,
    load_model,
    release_memory,
    resolve_dtype,
)
from pipeline.previews import latent_rgb_map, preview_images
from pipeline.request import GenerationRequest, GenerationResult, Mode, Timings, can_share_call
from pipeline.speed import Schedulers, SpeedUps, guidance_cutoff
from pipeline.tiling import circular_padding
from pipeline.upscaling import enlarge, native_request, refines_gan_upscale, with_output_scale
from pipeline.video import animate, first_frame_request, load_video_pipeline, video_family_of
from pipeline.weighting import needs_weighting, plain_request, weighted_embeddings

__all__ = ["DEMO_MODEL_DIR", "DEMO_MODEL_ID", "Engine"]  # the demo model's names, for existing importers

log = logging.getLogger(__name__)

# --chaos 100 adds noise of this many standard deviations of the prompt embedding.
CHAOS_STRENGTH = 0.6
# Chaos noise is drawn from seed + this offset, so it does not repeat the image's latent noise.
CHAOS_SEED_OFFSET = 2**32

OnStep = Callable[[int, int, list[bytes | None]], None]
ShouldStop = Callable[[], bool]


@dataclass
class _Slot:
    """One image to make: request `request_index`, image `image_index`, seeded with `seed`."""

    request_index: int
    image_index: int
    seed: int


@dataclass
class _BatchState:
    images: dict[tuple[int, int], Image.Image] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)


class Engine:
    """A loaded model on one device. Create with `Engine.load`; use from one thread at a time."""

    def __init__(
        self,
        txt2img: Any,
        *,
        model_id: str,
        device: torch.device,
        upscaler: Any = None,
        output_scale: int = 1,
        video: Any = None,
    ) -> None:
        """`output_scale` > 1: every image the model makes is enlarged that many times by `upscaler` (the demo
        model's own GAN), and request sizes are the enlarged sizes."""
        self.model_id = model_id
        self.device = device
        self.txt2img = txt2img
        self.img2img, self.inpaint = derived_pipelines(txt2img)
        for pipe in (self.txt2img, self.img2img, self.inpaint):
            if pipe is not None:
                pipe.set_progress_bar_config(disable=True)
        self.upscaler = upscaler
        self.output_scale = output_scale
        self.video = video  # the image-to-video pipeline of VIDEO_MODEL (`pipeline.video`), or None
        self.video_family = video_family_of(video) if video is not None else None
        video_name = None if self.video_family is None else self.video_family.name
        self.family = with_output_scale(
            describe(txt2img, self.img2img, self.inpaint, video_name), output_scale
        )
        self._latent_rgb = latent_rgb_map(txt2img, self.family)
        self._previews_broken = False  # set when a preview failed once: the rest of the job goes without
        # What --draft jobs use; a benchmark may set it to measure each speed-up alone.
        self.draft_speedups = SpeedUps.draft(self.family)
        self._schedulers = Schedulers(txt2img.scheduler.config) if hasattr(txt2img, "scheduler") else None

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        source: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        loras: Sequence[str] = (),
        upscaler: str = "",
        config: str = "",
        video: str = "",
    ) -> Engine:
        """Load `source` (the MODEL setting): hub id, diffusers folder, single file, or "" for the demo model;
        and beside it `video` (VIDEO_MODEL, see `pipeline.video.load_video_pipeline`).

        Raises `ModelLoadError` with a message naming the setting at fault; see `pipeline.loading`.
        """
        model = load_model(source, device=device, dtype=dtype, loras=loras, upscaler=upscaler, config=config)
        video_pipe = load_video_pipeline(
            video,
            model.pipe,
            image_model_id=model.model_id,
            dtype=resolve_dtype(dtype, model.device),
            device=model.device,
        )
        try:
            return cls(
                model.pipe,
                model_id=model.model_id,
                device=model.device,
                upscaler=model.upscaler,
                output_scale=model.output_scale,
                video=video_pipe,
            )
        except Exception as error:
            raise ModelLoadError(
                f"MODEL={source!r} loaded but cannot be used: {first_line(error)}"
            ) from error

    def check(self, request: GenerationRequest) -> None:
        """Raise RequestError when this model cannot make what `request` asks for."""
        check_request(self.family, self.model_id, request)

    # ------------------------------------------------------------------ running

    compatible = staticmethod(can_share_call)  # whether two requests can share one pipeline call

    def run(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None,
        preview_every: int = 0,
        max_batch: int | None = None,
    ) -> list[GenerationResult]:
        """Results of compatible `requests`, in order; raises the first job's failure, or `JobCancelled`.

        `on_step(step, total, previews)` runs after every denoising step, with one preview PNG (or
        None) per request every `preview_every` steps; `should_stop()` is checked every step.
        At most `max_batch` images go through one pipeline call (None: all of them).
        """
        outcomes = self.run_outcomes(
            requests,
            on_step=on_step,
            should_stop=should_stop,
            preview_every=preview_every,
            max_batch=max_batch,
        )
        for outcome in outcomes:
            if isinstance(outcome, PipelineError):
                raise outcome
        return outcomes  # type: ignore[return-value]

    def run_outcomes(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None,
        preview_every: int = 0,
        max_batch: int | None = None,
    ) -> list[GenerationResult | JobFailed]:
        """Like `run`, but one request failing (out of memory for a single image) fails only that request."""
        if not requests:
            return []
        for other in requests[1:]:
            if not self.compatible(requests[0], other):
                raise ValueError("run() needs compatible requests; check Engine.compatible first")
        if should_stop is not None and should_stop():
            raise JobCancelled("The job was cancelled.")
        if requests[0].mode is Mode.ANIMATE:  # a video runs alone (`can_share_call`)
            return [animate(self, request, on_step, should_stop, preview_every) for request in requests]
        requests = [first_frame_request(self, request) for request in requests]  # --video's image
        started = time.perf_counter()
        slots = [
            _Slot(r, i, seed) for r, request in enumerate(requests) for i, seed in enumerate(request.seeds)
        ]
        state = _BatchState()
        chunk = max_batch or len(slots)
        for start in range(0, len(slots), chunk):
            self._run_splitting_on_oom(
                requests, slots[start : start + chunk], state, on_step, should_stop, preview_every
            )
        elapsed = time.perf_counter() - started

        outcomes: list[GenerationResult | JobFailed] = []
        for r, request in enumerate(requests):
            if r in state.failures:
                outcomes.append(JobFailed(state.failures[r]))
                continue
            outcomes.append(
                GenerationResult(
                    images=[state.images[(r, i)] for i in range(request.num_images)],
                    seeds=request.seeds,
                    timings=Timings(queued_seconds=0.0, compute_seconds=elapsed),
                    model_id=self.model_id,
                    metadata=request_metadata(request, model_id=self.model_id),
                )
            )
        return outcomes

    def _run_splitting_on_oom(
        self,
        requests: Sequence[GenerationRequest],
        slots: list[_Slot],
        state: _BatchState,
        on_step: OnStep | None,
        should_stop: ShouldStop | None,
        preview_every: int,
    ) -> None:
        slots = [slot for slot in slots if slot.request_index not in state.failures]
        if not slots:
            return
        try:
            with self._tiling(requests[slots[0].request_index]):
                images = self._call(requests, slots, on_step, should_stop, preview_every)
        except torch.OutOfMemoryError:
            self._free_memory()
            if len(slots) == 1:
                request = requests[slots[0].request_index]
                state.failures[slots[0].request_index] = (
                    f"The {self.device.type} device ran out of memory for one {request.width}x{request.height} image; "
                    "try a smaller --ar or fewer --steps."
                )
                log.warning("out of memory for a single image; failing that job")
                return
            log.warning("out of memory for %d images; splitting the batch", len(slots))
            half = len(slots) // 2
            self._run_splitting_on_oom(requests, slots[:half], state, on_step, should_stop, preview_every)
            self._run_splitting_on_oom(requests, slots[half:], state, on_step, should_stop, preview_every)
            return
        for slot, image in zip(slots, images, strict=True):
            state.images[(slot.request_index, slot.image_index)] = image

    def _tiling(self, request: GenerationRequest) -> AbstractContextManager[None]:
        """--tile: the UNet's and the VAE's convolutions wrap around the edges for this call (`pipeline.tiling`);
        a family without a UNet makes an ordinary image (the member is told: `service.jobs.request_notes`)."""
        pipe = self.txt2img
        models = (getattr(pipe, "unet", None), getattr(pipe, "vae", None) or getattr(pipe, "movq", None))
        return circular_padding(models, enabled=request.tile and self.family.tile)

    def _scheduler(self, pipe: Any, speedups: SpeedUps) -> AbstractContextManager[None]:
        """The scheduler `speedups` ask for, in `pipe` for one call."""
        if self._schedulers is None:
            return nullcontext()
        return self._schedulers.used_by(pipe, speedups.scheduler)

    def _free_memory(self) -> None:
        release_memory(self.device)

    def _call(
        self,
        requests: Sequence[GenerationRequest],
        slots: list[_Slot],
        on_step: OnStep | None,
        should_stop: ShouldStop | None,
        preview_every: int,
    ) -> list[Image.Image]:
        """One pipeline call making the images of `slots` (compatible requests, so one mode).

        What every mode passes is built once (`_common_arguments`); each mode adds its own inputs in
        one small function. A model family's differences (SDXL, SD3, FLUX, ...: prompt embeddings,
        sizes, extra inputs) will plug in here, chosen from the loaded pipeline.
        """
        first = requests[slots[0].request_index]
        self.check(first)
        used = {slot.request_index for slot in slots}
        if first.mode is Mode.UPSCALE and self.upscaler is not None:
            requests = [self._gan_enlarged(r) if i in used else r for i, r in enumerate(requests)]
            if not refines_gan_upscale(first):
                return [decode_image(requests[slot.request_index].source_image) for slot in slots]  # type: ignore[arg-type]
        scale = self.output_scale
        if scale == 1:
            return self._generate(requests, slots, on_step, should_stop, preview_every)
        # The model works at 1/scale of the sizes asked for; its GAN enlarges what it makes.
        native = [native_request(r, scale) if i in used else r for i, r in enumerate(requests)]
        images = self._generate(native, slots, on_step, should_stop, preview_every)
        if first.mode is Mode.PROCESS:  # a diagram of the model's own steps, at the size it works at
            return images
        images = [
            enlarge(
                self.upscaler,
                image,
                requests[slot.request_index].width,
                requests[slot.request_index].height,
                self.device,
            )
            for image, slot in zip(images, slots, strict=True)
        ]
        if first.mode is Mode.INPAINT:  # the kept pixels exactly as they went in, at full size
            images = [
                paste_back(
                    image,
                    decode_image(requests[slot.request_index].source_image),  # type: ignore[arg-type]
                    decode_image(requests[slot.request_index].mask_image).convert("L"),  # type: ignore[arg-type]
                )
                for image, slot in zip(images, slots, strict=True)
            ]
        return images

    def _generate(
        self,
        requests: Sequence[GenerationRequest],
        slots: list[_Slot],
        on_step: OnStep | None,
        should_stop: ShouldStop | None,
        preview_every: int,
    ) -> list[Image.Image]:
        """The pipeline call of `_call`, at the sizes of `requests`."""
        first = requests[slots[0].request_index]
        if first.mode is Mode.PROCESS:
            return [self._process(requests[slot.request_index], slot, on_step, should_stop) for slot in slots]
        if first.mode is Mode.UPSCALE and self.img2img is None:  # no refining pass: the enlargement alone
            return [self._source_image(requests[slot.request_index]) for slot in slots]
        pipe, mode_arguments = {
            Mode.TXT2IMG: (self.txt2img, self._txt2img_arguments),
            Mode.IMG2IMG: (self.img2img, self._img2img_arguments),  # variations
            Mode.UPSCALE: (self.img2img, self._img2img_arguments),  # img2img refines a Lanczos enlargement
            Mode.INPAINT: (self.inpaint, self._inpaint_arguments),
        }[first.mode]
        speedups = self.draft_speedups if first.draft else SpeedUps()
        arguments = self._common_arguments(
            pipe, requests, slots, on_step, should_stop, preview_every, speedups
        )
        arguments.update(mode_arguments(requests, slots))
        with torch.inference_mode(), self._scheduler(pipe, speedups):
            images = list(pipe(**arguments).images)
        if first.mode is Mode.INPAINT:
            # The kept pixels come back exactly: the VAE's round trip would blur them.
            images = [
                paste_back(image, decode_image(requests[slot.request_index].source_image), mask)  # type: ignore[arg-type]
                for image, slot, mask in zip(images, slots, arguments["mask_image"], strict=True)
            ]
        return images

    def _process(
        self, request: GenerationRequest, slot: _Slot, on_step: OnStep | None, should_stop: ShouldStop | None
    ) -> Image.Image:
        """🔬 Process: `request`'s image made again from its seed with the latents of every step kept, then
        shown forward and reverse (`pipeline.process`)."""
        made = request.replace(mode=Mode.TXT2IMG, num_images=1)
        one = [_Slot(0, 0, slot.seed)]
        arguments = self._common_arguments(self.txt2img, [made], one, on_step, should_stop, 0, SpeedUps())
        arguments.update(self._txt2img_arguments([made], one))
        kept: list[tuple[float, torch.Tensor]] = []
        report = arguments["callback_on_step_end"]

        def keep(pipe: Any, step_index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            kept.append((float(timestep), tensors["latents"].detach().clone()))
            return report(pipe, step_index, timestep, tensors)

        arguments["callback_on_step_end"] = keep
        with torch.inference_mode():
            result = self.txt2img(**arguments).images[0]
            return process.show(self.txt2img, self.family, made, result, kept, slot.seed)

    def _common_arguments(
        self,
        pipe: Any,
        requests: Sequence[GenerationRequest],
        slots: list[_Slot],
        on_step: OnStep | None,
        should_stop: ShouldStop | None,
        preview_every: int,
        speedups: SpeedUps,
    ) -> dict[str, Any]:
        """Steps, guidance, one seeded generator per image, the step callback and the prompt embeddings;
        the guidance cut-off of `speedups` (text to image only: inpainting doubles its masks for guidance)."""
        first = requests[slots[0].request_index]
        steps = _denoising_steps(first)

        def report(step_index: int, total: int, latents: torch.Tensor) -> None:
            if should_stop is not None and should_stop():
                raise JobCancelled("The job was cancelled.")
            if on_step is not None:
                step = step_index + 1
                previews: list[bytes | None] = [None] * len(requests)
                if preview_every and step % preview_every == 0 and step < total:
                    previews = self._previews(latents, requests, slots)
                on_step(step, total, previews)

        arguments: dict[str, Any] = {
            "num_inference_steps": steps,
            "guidance_scale": first.guidance,
            "generator": [torch.Generator("cpu").manual_seed(slot.seed) for slot in slots],
            **self._prompt_arguments(pipe, requests, slots, first.guidance),
        }
        if takes(pipe, "callback_on_step_end"):
            share = speedups.guidance_share if first.mode is Mode.TXT2IMG else None
            guided, cut = guidance_cutoff(self.family.name, share)

            def on_step_end(
                pipe: Any, step_index: int, timestep: Any, tensors: dict[str, Any]
            ) -> dict[str, Any]:
                report(step_index, pipe.num_timesteps, tensors["latents"])
                return cut(pipe, step_index, tensors) if cut is not None else {}

            arguments.update(
                callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents", *guided]
            )
        elif takes(pipe, "callback") and takes(pipe, "callback_steps"):
            # Older pipelines (PixArt, text-to-image only) call callback(step, timestep, latents).
            arguments.update(callback=lambda i, t, latents: report(i, steps, latents), callback_steps=1)
        return arguments

    def _txt2img_arguments(self, requests: Sequence[GenerationRequest], slots: list[_Slot]) -> dict[str, Any]:
        first = requests[slots[0].request_index]
        return {"height": first.height, "width": first.width}

    def _img2img_arguments(self, requests: Sequence[GenerationRequest], slots: list[_Slot]) -> dict[str, Any]:
        """Each image's source (already at the request's size) and the strength; the size is also given
        explicitly to pipelines that would otherwise make their native size (SD3, FLUX)."""
        sources = {r: self._source_image(requests[r]) for r in {slot.request_index for slot in slots}}
        arguments = {
            "image": [sources[slot.request_index] for slot in slots],
            "strength": requests[slots[0].request_index].strength,
        }
        if self.img2img is not None and takes(self.img2img, "height"):
            arguments.update(self._txt2img_arguments(requests, slots))
        return arguments

    def _inpaint_arguments(self, requests: Sequence[GenerationRequest], slots: list[_Slot]) -> dict[str, Any]:
        masks = {
            r: decode_image(requests[r].mask_image).convert("L")  # type: ignore[arg-type]
            for r in {slot.request_index for slot in slots}
        }
        return {
            **self._img2img_arguments(requests, slots),
            **self._txt2img_arguments(requests, slots),
            "mask_image": [masks[slot.request_index] for slot in slots],
        }

    def _source_image(self, request: GenerationRequest) -> Image.Image:
        image = decode_image(request.source_image)  # type: ignore[arg-type]
        if image.size != (request.width, request.height):
            # Upscales start from a Lanczos enlargement that img2img then refines.
            image = image.resize((request.width, request.height), Image.Resampling.LANCZOS)
        return image

    def _prompt_arguments(
        self, pipe: Any, requests: Sequence[GenerationRequest], slots: list[_Slot], guidance: float
    ) -> dict[str, Any]:
        """Per-image prompt embeddings with --chaos noise on what the prompt says (`ENCODED_PROMPT`); plain
        text for a family Kaika does not encode itself (`ModelFamily.chaos` is then False)."""
        if not self.family.prompt_weights:  # compel does not know its text encoders: the parts as one prompt
            requests = [plain_request(r) if needs_weighting(r) else r for r in requests]
        outputs = ENCODED_PROMPT.get(self.family.name) if self.family.chaos else None
        if outputs is None:
            arguments = {"prompt": [requests[s.request_index].prompt for s in slots]}
            if takes(pipe, "negative_prompt"):
                arguments["negative_prompt"] = [requests[s.request_index].negative_prompt for s in slots]
            return arguments
        encoded: dict[int, dict[str, torch.Tensor]] = {}
        per_image: dict[str, list[torch.Tensor]] = {}
        with torch.inference_mode():
            for slot in slots:
                request = requests[slot.request_index]
                if slot.request_index not in encoded:
                    # Encoded one request at a time so a prompt's embedding never depends on the batch.
                    encoded[slot.request_index] = self._encode_prompt(pipe, request, guidance, outputs)
                for name, tensor in encoded[slot.request_index].items():
                    if name in CHAOS_OUTPUTS:
                        tensor = _with_chaos(tensor, request.chaos, slot.seed)
                    per_image.setdefault(name, []).append(tensor)
        arguments = {name: torch.cat(tensors) for name, tensors in per_image.items()}
        if takes(pipe, "negative_prompt"):
            arguments["negative_prompt"] = None  # PixArt's default "" would clash with the embeddings
        return arguments

    def _encode_prompt(
        self, pipe: Any, request: GenerationRequest, guidance: float, outputs: tuple[str | None, ...]
    ) -> dict[str, torch.Tensor]:
        """`pipe.encode_prompt` for one request, called as the pipeline's own `__call__` would call it: the
        `__call__` defaults they share (max_sequence_length, clean_caption, Sana's instruction…) carry over."""
        encode = inspect.signature(pipe.encode_prompt).parameters
        call = inspect.signature(type(pipe).__call__).parameters
        values: dict[str, Any] = {
            name: call[name].default
            for name in encode
            if name in call and call[name].default is not inspect.Parameter.empty
        }
        denoiser = getattr(pipe, "unet", None)
        distilled = getattr(getattr(denoiser, "config", None), "time_cond_proj_dim", None) is not None
        guided = guidance > 1 and not distilled
        if self.family.prompt_weights and needs_weighting(request):
            weighted = weighted_embeddings(pipe, self.family.name, request, guided=guided)
            return {name: tensor.to(self.device) for name, tensor in weighted.items() if takes(pipe, name)}
        values.update(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=guided,
        )
        results = pipe.encode_prompt(**{name: value for name, value in values.items() if name in encode})
        return {
            name: tensor
            for name, tensor in zip(outputs, results, strict=True)
            if name is not None and tensor is not None and takes(pipe, name)
        }

    def _previews(
        self, latents: torch.Tensor, requests: Sequence[GenerationRequest], slots: list[_Slot]
    ) -> list[bytes | None]:
        """One small PNG per request of this call: its images' latents mapped linearly to RGB, as a grid.

        A preview is a nicety: if making one fails, the failure is logged once and the engine goes on
        without previews, never failing the job.
        """
        if self._previews_broken:
            return [None] * len(requests)
        first = requests[slots[0].request_index]
        try:
            images = preview_images(
                unpack_latents(latents, self.family, first.height, first.width), self._latent_rgb
            )
            by_request: dict[int, list[Image.Image]] = {}
            for slot, image in zip(slots, images, strict=True):
                by_request.setdefault(slot.request_index, []).append(image)
            return [
                encode_png(compose_grid(by_request[r])) if r in by_request else None
                for r in range(len(requests))
            ]
        except Exception:
            log.exception("Previews of %s failed; going on without previews", self.model_id)
            self._previews_broken = True
            return [None] * len(requests)

    def _gan_enlarged(self, request: GenerationRequest) -> GenerationRequest:
        """An upscale `request` whose source is the GAN's enlargement at the request's size."""
        source = decode_image(request.source_image)  # type: ignore[arg-type]
        enlarged = enlarge(self.upscaler, source, request.width, request.height, self.device)
        return request.replace(source_image=encode_png(enlarged))


def _denoising_steps(request: GenerationRequest) -> int:
    """The steps to ask the pipeline for: img2img-like modes run strength x steps, so keep that at least one."""
    if request.mode is Mode.TXT2IMG:
        return request.steps
    return max(request.steps, math.ceil(1 / request.strength))


def _with_chaos(embedding: torch.Tensor, chaos: int, seed: int) -> torch.Tensor:
    """The prompt embedding with noise scaled by --chaos, drawn from the image's own seed."""
    if not chaos:
        return embedding
    generator = torch.Generator("cpu").manual_seed(seed + CHAOS_SEED_OFFSET)
    noise = torch.randn(embedding.shape, generator=generator, dtype=torch.float32)
    scale = (chaos / 100) * CHAOS_STRENGTH * embedding.float().std()
    return (embedding.float() + scale * noise.to(embedding.device)).to(embedding.dtype)
