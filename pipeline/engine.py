"""One loaded diffusers model on one device, turning batches of requests into images.

`Engine.load(MODEL)` loads the text-to-image pipeline once and derives image-to-image and
inpainting pipelines from it with `AutoPipelineFor*.from_pipe`, so the weights are shared.
`Engine.run(requests)` runs compatible requests in one pipeline call; every image has its own
CPU `torch.Generator` seeded with its seed, so an image's pixels do not depend on what else was
in the batch. An engine is used by one thread at a time (the executor's worker).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from pipeline.errors import JobCancelled, JobFailed, ModelLoadError, PipelineError
from pipeline.images import compose_grid, decode_image, encode_png, request_metadata
from pipeline.request import GenerationRequest, GenerationResult, Mode, Timings

log = logging.getLogger(__name__)

DEMO_MODEL_DIR = Path(__file__).parent / "demo" / "model"
DEMO_MODEL_ID = "kaika-demo"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")

# --chaos 100 adds noise of this many standard deviations of the prompt embedding.
CHAOS_STRENGTH = 0.6
# Chaos noise is drawn from seed + this offset, so it does not repeat the image's latent noise.
CHAOS_SEED_OFFSET = 2**32

# Approximate latent → RGB map of the Stable Diffusion 1.x/2.x VAE (rows: latent channels).
SD_LATENT_RGB_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)

OnStep = Callable[[int, int, list[bytes | None]], None]
ShouldStop = Callable[[], bool]


def resolve_device(device: str) -> torch.device:
    """`auto` → CUDA, then MPS, then CPU; otherwise the named device, checked to exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ModelLoadError(
            f"DEVICE={device!r} is not a device name; use auto, cpu, cuda, cuda:1 or mps."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            f"DEVICE={device!r} but this machine has no usable CUDA GPU; use DEVICE=auto or cpu."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"DEVICE={device!r} but MPS is not available here; use DEVICE=auto or cpu.")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` → bfloat16 on CUDA GPUs that support it, float16 on other GPUs, float32 on CPU."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    named = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in named:
        raise ModelLoadError(f"DTYPE={dtype!r} is not supported; use auto, float32, float16 or bfloat16.")
    return named[dtype]


def parse_lora(entry: str) -> tuple[str, float]:
    """`path[:weight]` → (path, weight); the weight defaults to 1.0."""
    path, _, weight = entry.rpartition(":")
    if path and weight:
        try:
            return path, float(weight)
        except ValueError:
            pass  # a colon inside the path (C:\\...), not a weight
    return entry, 1.0


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

    def __init__(self, txt2img: Any, *, model_id: str, device: torch.device, upscaler: Any = None) -> None:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        self.model_id = model_id
        self.device = device
        self.txt2img = txt2img
        self.img2img = AutoPipelineForImage2Image.from_pipe(txt2img)
        self.inpaint = AutoPipelineForInpainting.from_pipe(txt2img)
        for pipe in (self.txt2img, self.img2img, self.inpaint):
            pipe.set_progress_bar_config(disable=True)
        self.upscaler = upscaler
        self.native_size = _native_size(txt2img)
        self._latent_rgb = _latent_rgb_factors(txt2img)

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
    ) -> Engine:
        """Load `source` (the MODEL setting): hub id, diffusers folder, single file, or "" for the demo model.

        Raises `ModelLoadError` with a message naming the setting at fault.
        """
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        pipe, model_id = _load_pipeline(source, torch_dtype)
        for index, entry in enumerate(loras):
            _load_lora(pipe, entry, index)
        if loras:
            pipe.set_adapters([f"lora{i}" for i in range(len(loras))], [parse_lora(e)[1] for e in loras])
        try:
            pipe.to(torch_device)
        except torch.OutOfMemoryError:
            raise ModelLoadError(
                f"MODEL={source!r} does not fit in the memory of {torch_device}; try DTYPE=float16 or a smaller model."
            ) from None
        gan = load_gan_upscaler(upscaler, torch_device) if upscaler else None
        log.info("loaded %s on %s (%s)", model_id, torch_device, torch_dtype)
        return cls(pipe, model_id=model_id, device=torch_device, upscaler=gan)

    # ------------------------------------------------------------------ running

    def compatible(self, a: GenerationRequest, b: GenerationRequest) -> bool:
        """Whether `a` and `b` can share one pipeline call."""
        same = (
            a.model == b.model
            and a.mode == b.mode
            and (a.width, a.height) == (b.width, b.height)
            and a.steps == b.steps
            and a.guidance == b.guidance
        )
        return same and (a.mode is Mode.TXT2IMG or a.strength == b.strength)

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

    def _free_memory(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    def _call(
        self,
        requests: Sequence[GenerationRequest],
        slots: list[_Slot],
        on_step: OnStep | None,
        should_stop: ShouldStop | None,
        preview_every: int,
    ) -> list[Image.Image]:
        """One pipeline call making the images of `slots`."""
        first = requests[slots[0].request_index]
        if first.mode is Mode.UPSCALE and self.upscaler is not None:
            return [self._gan_upscale(requests[slot.request_index]) for slot in slots]

        def callback(pipe: Any, step_index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if should_stop is not None and should_stop():
                raise JobCancelled("The job was cancelled.")
            if on_step is not None:
                step, total = step_index + 1, pipe.num_timesteps
                previews: list[bytes | None] = [None] * len(requests)
                if preview_every and step % preview_every == 0 and step < total:
                    previews = self._previews(tensors["latents"], requests, slots)
                on_step(step, total, previews)
            return {}

        steps = first.steps
        if first.mode is not Mode.TXT2IMG:
            # img2img runs strength x steps; keep that at least one step for low strengths and few steps.
            steps = max(steps, math.ceil(1 / first.strength))
        arguments: dict[str, Any] = {
            "num_inference_steps": steps,
            "guidance_scale": first.guidance,
            "generator": [torch.Generator("cpu").manual_seed(slot.seed) for slot in slots],
            "callback_on_step_end": callback,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
        pipe = {Mode.TXT2IMG: self.txt2img, Mode.INPAINT: self.inpaint}.get(first.mode, self.img2img)
        arguments.update(self._prompt_arguments(pipe, requests, slots, first.guidance))
        if first.mode in (Mode.TXT2IMG, Mode.INPAINT):
            arguments.update(height=first.height, width=first.width)  # img2img takes the source's size
        if first.mode is not Mode.TXT2IMG:
            sources = {r: self._source_image(requests[r]) for r in {slot.request_index for slot in slots}}
            arguments["image"] = [sources[slot.request_index] for slot in slots]
            arguments["strength"] = first.strength
        if first.mode is Mode.INPAINT:
            masks = {
                r: decode_image(requests[r].mask_image).convert("L") for r in {s.request_index for s in slots}
            }  # type: ignore[arg-type]
            arguments["mask_image"] = [masks[slot.request_index] for slot in slots]
        with torch.inference_mode():
            return list(pipe(**arguments).images)

    def _source_image(self, request: GenerationRequest) -> Image.Image:
        image = decode_image(request.source_image)  # type: ignore[arg-type]
        if image.size != (request.width, request.height):
            # Upscales start from a Lanczos enlargement that img2img then refines.
            image = image.resize((request.width, request.height), Image.Resampling.LANCZOS)
        return image

    def _prompt_arguments(
        self, pipe: Any, requests: Sequence[GenerationRequest], slots: list[_Slot], guidance: float
    ) -> dict[str, Any]:
        """Per-image prompt embeddings (with --chaos noise) for Stable Diffusion pipelines; plain text otherwise."""
        from diffusers import StableDiffusionPipeline

        if not isinstance(self.txt2img, StableDiffusionPipeline):
            return {
                "prompt": [requests[s.request_index].prompt for s in slots],
                "negative_prompt": [requests[s.request_index].negative_prompt for s in slots],
            }
        use_guidance = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
        encoded: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        positive, negative = [], []
        with torch.inference_mode():
            for slot in slots:
                request = requests[slot.request_index]
                if slot.request_index not in encoded:
                    # Encoded one request at a time so a prompt's embedding never depends on the batch.
                    encoded[slot.request_index] = pipe.encode_prompt(
                        request.prompt, self.device, 1, use_guidance, request.negative_prompt
                    )
                embedding, negative_embedding = encoded[slot.request_index]
                positive.append(_with_chaos(embedding, request.chaos, slot.seed))
                if negative_embedding is not None:
                    negative.append(negative_embedding)
        arguments = {"prompt_embeds": torch.cat(positive)}
        if negative:
            arguments["negative_prompt_embeds"] = torch.cat(negative)
        return arguments

    def _previews(
        self, latents: torch.Tensor, requests: Sequence[GenerationRequest], slots: list[_Slot]
    ) -> list[bytes | None]:
        """One small PNG per request of this call: its images' latents mapped linearly to RGB, as a grid."""
        factors = self._latent_rgb.to(latents.device, torch.float32)
        rgb = torch.einsum("nchw,cr->nrhw", latents.float(), factors)
        pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        by_request: dict[int, list[Image.Image]] = {}
        for slot, array in zip(slots, pixels, strict=True):
            by_request.setdefault(slot.request_index, []).append(Image.fromarray(array))
        return [
            encode_png(compose_grid(by_request[r])) if r in by_request else None for r in range(len(requests))
        ]

    def _gan_upscale(self, request: GenerationRequest) -> Image.Image:
        import numpy as np

        source = decode_image(request.source_image)  # type: ignore[arg-type]
        tensor = torch.from_numpy(np.asarray(source, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
        with torch.inference_mode():
            output = self.upscaler(tensor.to(self.device)).clamp(0, 1)
        array = (output[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().astype("uint8")
        return Image.fromarray(array).resize((request.width, request.height), Image.Resampling.LANCZOS)


def _with_chaos(embedding: torch.Tensor, chaos: int, seed: int) -> torch.Tensor:
    """The prompt embedding with noise scaled by --chaos, drawn from the image's own seed."""
    if not chaos:
        return embedding
    generator = torch.Generator("cpu").manual_seed(seed + CHAOS_SEED_OFFSET)
    noise = torch.randn(embedding.shape, generator=generator, dtype=torch.float32)
    scale = (chaos / 100) * CHAOS_STRENGTH * embedding.float().std()
    return (embedding.float() + scale * noise.to(embedding.device)).to(embedding.dtype)


def _native_size(pipe: Any) -> int:
    scale = getattr(pipe, "vae_scale_factor", 8)
    unet = getattr(pipe, "unet", None)
    if unet is not None and isinstance(unet.config.sample_size, int):
        return int(unet.config.sample_size * scale)
    default = getattr(pipe, "default_sample_size", None)
    return int(default * scale) if default else 512


def _latent_rgb_factors(pipe: Any) -> torch.Tensor:
    channels = getattr(getattr(pipe, "vae", None), "config", None)
    channels = getattr(channels, "latent_channels", 4)
    if channels == 4:
        return torch.tensor(SD_LATENT_RGB_FACTORS)
    # Unknown latent space: show the first three channels as grey-ish RGB.
    factors = torch.zeros(channels, 3)
    for index in range(min(3, channels)):
        factors[index, index] = 0.5
    return factors


def _load_pipeline(source: str, dtype: torch.dtype) -> tuple[Any, str]:
    from diffusers import AutoPipelineForText2Image

    if not source:
        if not (DEMO_MODEL_DIR / "model_index.json").is_file():
            raise ModelLoadError(
                f"MODEL is empty, which means the built-in demo model, but it is not built ({DEMO_MODEL_DIR} "
                "has no model_index.json). Build it, or set MODEL to a hub id, a diffusers folder or a "
                ".safetensors file."
            )
        return _from_pretrained(
            AutoPipelineForText2Image, str(DEMO_MODEL_DIR), "MODEL (demo model)", dtype
        ), DEMO_MODEL_ID

    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"MODEL={source!r} is a folder without model_index.json, so it is not a diffusers pipeline; "
                "point MODEL at a folder saved with save_pretrained, a .safetensors/.ckpt file or a hub id."
            )
        return _from_pretrained(AutoPipelineForText2Image, str(path), f"MODEL={source!r}", dtype), path.name
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelLoadError(f"MODEL={source!r} is a file but not a .safetensors or .ckpt checkpoint.")
        return _from_single_file(path, source, dtype), path.stem
    if (
        path.suffix.lower() in SINGLE_FILE_SUFFIXES
        or source.startswith(("/", ".", "~"))
        or source.count("/") != 1
    ):
        raise ModelLoadError(
            f"MODEL={source!r} does not exist: no such file or folder, and it is not a hub id (owner/name)."
        )
    return _from_pretrained(AutoPipelineForText2Image, source, f"MODEL={source!r}", dtype), source


def _from_pretrained(loader: Any, location: str, setting: str, dtype: torch.dtype) -> Any:
    try:
        return loader.from_pretrained(location, dtype=dtype)
    except Exception as error:  # diffusers raises OSError, ValueError, EnvironmentError… for bad models
        raise ModelLoadError(f"{setting} could not be loaded: {_first_line(error)}") from error


def _from_single_file(path: Path, source: str, dtype: torch.dtype) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    try:
        checkpoint = load_single_file_checkpoint(str(path))
        model_type = infer_diffusers_model_type(checkpoint)
        pipeline_class = StableDiffusionXLPipeline if "xl" in model_type else StableDiffusionPipeline
        del checkpoint
        return pipeline_class.from_single_file(str(path), dtype=dtype)
    except Exception as error:
        raise ModelLoadError(
            f"MODEL={source!r} could not be loaded as a single-file checkpoint: {_first_line(error)} "
            "(from_single_file fetches the model's configuration from the Hugging Face hub once; offline, "
            "convert the file to a diffusers folder and point MODEL at that)."
        ) from error


def _load_lora(pipe: Any, entry: str, index: int) -> None:
    path, _ = parse_lora(entry)
    if not Path(path).expanduser().exists():
        raise ModelLoadError(f"LORAS entry {entry!r}: {path} does not exist.")
    try:
        pipe.load_lora_weights(str(Path(path).expanduser()), adapter_name=f"lora{index}")
    except Exception as error:
        raise ModelLoadError(f"LORAS entry {entry!r} could not be loaded: {_first_line(error)}") from error


def load_gan_upscaler(path: str, device: torch.device) -> Any:
    """An ESRGAN-family upscaler from `path` (the UPSCALER setting), loaded with spandrel."""
    if not Path(path).expanduser().is_file():
        raise ModelLoadError(
            f"UPSCALER={path!r} does not exist; leave it empty to upscale with Lanczos + img2img."
        )
    try:
        import spandrel
    except ImportError:
        raise ModelLoadError(
            f"UPSCALER={path!r} needs the spandrel package: pip install -e '.[gan]' (with a torchvision "
            "matching your torch); or leave UPSCALER empty."
        ) from None
    try:
        model = spandrel.ModelLoader().load_from_file(str(Path(path).expanduser()))
    except Exception as error:
        raise ModelLoadError(f"UPSCALER={path!r} could not be loaded: {_first_line(error)}") from error
    return model.to(device).eval()


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
