"""What differs between model families (SD 1.x, SDXL, SD3, FLUX, PixArt, Sana, LCM, …), in one place.

The engine and the executors ask the loaded model's `ModelFamily` ("can this model inpaint?", "what
size multiple?", "how do I turn its latents into a preview?") instead of testing pipeline classes
in many places. A family is described from the loaded pipeline itself: its class, its VAE and its
denoiser's config, and which arguments its `__call__` takes.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import RequestError
from pipeline.request import GenerationRequest, Mode

if TYPE_CHECKING:  # the prompt parser imports this module; it needs no torch
    import torch

log = logging.getLogger(__name__)

# Pipeline class name prefixes → family names; the first match wins (SDXL and SD3 before SD).
_FAMILY_PREFIXES = (
    ("StableDiffusionXL", "sdxl"),
    ("StableDiffusion3", "sd3"),
    ("StableDiffusion", "sd"),
    ("LatentConsistencyModel", "lcm"),
    ("Flux", "flux"),
    ("PixArt", "pixart"),
    ("Sana", "sana"),
    ("Kandinsky3", "kandinsky3"),
)

# Families whose denoiser needs coarser sizes than VAE scale x patch (Kandinsky 3's UNet does not pad
# odd latent sizes between its down and up blocks).
_SIZE_MULTIPLES = {"kandinsky3": 64}

# Denoising steps a family runs when the prompt gives no --steps: the pipeline's own default, capped
# here (SD 1.x's 50 take twice as long for little gain); SD 1.x keeps Kaika's long-standing 25.
MAX_DEFAULT_STEPS = 30
_DEFAULT_STEPS = {"sd": 25}
# Timestep-distilled models without classifier-free guidance (FLUX.1-schnell) run this many steps.
DISTILLED_STEPS = 4

# --draft: the share of a family's default steps it runs (never fewer than DRAFT_MIN_STEPS, never more than
# the default), with a few-step solver for the UNet families whose DDIM/PNDM schedules it replaces, and
# classifier-free guidance for the first DRAFT_GUIDANCE_SHARE of the steps only where Kaika knows which
# tensors hold the unconditional half (`pipeline.speed`). Measured by bench/speed.py. A schedule rescaled to
# zero terminal SNR (the demo model's trailing DDIM) keeps its own sampler: it already does well in few steps,
# and DPM-Solver++ at 10 steps drew the demo model's held-out shapes worse (93% against DDIM's 95%).
DRAFT_STEP_SHARE = 0.4
DRAFT_MIN_STEPS = 4
DRAFT_SOLVER = "DPMSolverMultistepScheduler"
DRAFT_SOLVER_FAMILIES = ("sd", "sdxl")
DRAFT_GUIDANCE_SHARE = 0.5
# The step callback's tensors whose first half is the unconditional batch, per family.
GUIDED_TENSORS = {"sd": ("prompt_embeds",), "sdxl": ("prompt_embeds", "add_text_embeds", "add_time_ids")}

# What each family's `encode_prompt` returns, named as its `__call__` takes them (None: not passed on).
# Kaika encodes prompts itself so that --chaos can add noise to the embeddings (and the pooled ones).
ENCODED_PROMPT = {
    "sd": ("prompt_embeds", "negative_prompt_embeds"),
    "lcm": ("prompt_embeds", "negative_prompt_embeds"),
    "sdxl": (
        "prompt_embeds",
        "negative_prompt_embeds",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    ),
    "sd3": (
        "prompt_embeds",
        "negative_prompt_embeds",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    ),
    "flux": (
        "prompt_embeds",
        "pooled_prompt_embeds",
        None,
    ),  # the third is text_ids, derived again in __call__
    "pixart": (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    ),
    "sana": (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    ),
    "kandinsky3": ("prompt_embeds", "negative_prompt_embeds", "attention_mask", "negative_attention_mask"),
}
# Families whose text encoders compel knows, so a multi-prompt's parts are weighed (`pipeline.weighting`).
WEIGHTED_FAMILIES = ("sd", "sdxl")

# The encoded outputs --chaos perturbs: what the prompt says, not the negative prompt or the masks.
CHAOS_OUTPUTS = ("prompt_embeds", "pooled_prompt_embeds")

# What a family cannot do, in the words a user is shown.
MODE_NAMES = {
    Mode.IMG2IMG: "variations",
    Mode.UPSCALE: "upscales",
    Mode.INPAINT: "inpainting (Vary Region)",
    Mode.PROCESS: "the 🔬 Process view",
    Mode.ANIMATE: "videos (Animate)",
}


@dataclass(frozen=True)
class ModelFamily:
    """The facts about a loaded model that the engine, the executors and the front ends need."""

    name: str  # "sd", "sdxl", "sd3", "flux", "pixart", "sana", "lcm", "kandinsky3" or "other"
    native_size: int  # the side in pixels it was trained at
    size_multiple: int  # width and height must be multiples of this: VAE scale x patch size
    vae_scale: int
    latent_channels: int
    packed_latents: bool  # FLUX packs 2x2 latent patches into a sequence: (batch, h/2 * w/2, channels * 4)
    modes: frozenset[Mode]  # what it can make; UPSCALE is always there (plain Lanczos at worst)
    step_callback: str | None  # "on_step_end", "legacy" (callback(i, t, latents)) or None: no progress
    negative_prompt: bool  # whether a negative prompt (--no) changes its images
    chaos: bool = True  # whether --chaos changes its images (Kaika encodes its prompts: ENCODED_PROMPT)
    default_steps: int = 25
    default_guidance: float = 7.5  # at --stylize 100; 0 for models distilled to run without guidance
    prompt_weights: bool = False  # whether a multi-prompt's weights (`cat:: dog::0.5`) change its images
    tile: bool = False  # whether --tile makes seamless tiles: its denoiser is a UNet of convolutions
    draft_steps: int = 10  # steps without --steps under --draft
    draft_scheduler: str | None = None  # the diffusers scheduler --draft samples with (None: the model's own)
    draft_guidance_share: float | None = None  # --draft guides this share of the steps (None: all of them)
    video: str | None = (
        None  # the video family (`pipeline.video.VIDEO_FAMILIES`) animating its images, if any
    )

    def supports(self, mode: Mode) -> bool:
        return mode in self.modes

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, as fleet workers announce their model."""
        return {**dataclasses.asdict(self), "modes": sorted(mode.value for mode in self.modes)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelFamily:
        known = {field.name for field in dataclasses.fields(cls)}
        fields = {name: value for name, value in values.items() if name in known}
        return cls(**{**fields, "modes": frozenset(Mode(mode) for mode in fields["modes"])})


# What is assumed of a model nobody has described yet (a fleet before any worker announced its model).
UNKNOWN_FAMILY = ModelFamily(
    name="unknown",
    native_size=512,
    size_multiple=8,
    vae_scale=8,
    latent_channels=4,
    packed_latents=False,
    modes=frozenset(Mode),
    step_callback="on_step_end",
    negative_prompt=True,
    prompt_weights=True,
    tile=True,
)


def check_request(family: ModelFamily, model_id: str, request: GenerationRequest) -> None:
    """Raise RequestError when a model of `family` cannot make what `request` asks for."""
    multiple = family.size_multiple
    if request.width % multiple or request.height % multiple:
        raise RequestError(
            f"This model ({model_id}) makes images whose sides are multiples of {multiple} pixels; "
            f"{request.width}x{request.height} is not."
        )
    if not family.supports(request.mode):
        raise RequestError(
            f"This model ({model_id}, a {family.name} model) cannot do "
            f"{MODE_NAMES.get(request.mode, str(request.mode))}: its family has no pipeline for it."
        )


def describe(txt2img: Any, img2img: Any | None, inpaint: Any | None, video: str | None = None) -> ModelFamily:
    """The family of a loaded text-to-image pipeline and the image-to-image / inpainting ones derived from it;
    `video` names the video family of the image-to-video pipeline beside it (VIDEO_MODEL), if there is one."""
    class_name = type(txt2img).__name__
    name = next((family for prefix, family in _FAMILY_PREFIXES if class_name.startswith(prefix)), "other")
    vae_scale = int(getattr(txt2img, "vae_scale_factor", 8) or 8)
    denoiser = getattr(txt2img, "unet", None) or getattr(txt2img, "transformer", None)
    config = getattr(denoiser, "config", None)
    packed = name == "flux"
    patch = 2 if packed else int(getattr(config, "patch_size", None) or 1)
    steps, guidance = _defaults(txt2img, name, config)
    guided_tensors = GUIDED_TENSORS.get(name, ())
    cuts_guidance = guidance > 1 and all(
        tensor in getattr(txt2img, "_callback_tensor_inputs", ()) for tensor in guided_tensors
    )
    modes = {Mode.TXT2IMG, Mode.UPSCALE}
    if img2img is not None:
        modes.add(Mode.IMG2IMG)
    if inpaint is not None:
        modes.add(Mode.INPAINT)
    if _shows_process(txt2img):
        modes.add(Mode.PROCESS)
    if video is not None:
        modes.add(Mode.ANIMATE)
    return ModelFamily(
        name=name,
        native_size=_native_size(txt2img, config, vae_scale),
        # Never below 8, the multiple every request keeps (`GenerationRequest.validate`), even for a VAE
        # that downsamples less (the demo model's 4x).
        size_multiple=max(vae_scale * patch, 8, _SIZE_MULTIPLES.get(name, 1)),
        vae_scale=vae_scale,
        latent_channels=_latent_channels(txt2img, config, packed),
        packed_latents=packed,
        modes=frozenset(modes),
        step_callback=_step_callback(txt2img),
        negative_prompt=_uses_negative_prompt(txt2img, name, guidance),
        chaos=name in ENCODED_PROMPT and hasattr(txt2img, "encode_prompt"),
        default_steps=steps,
        default_guidance=guidance,
        prompt_weights=name in WEIGHTED_FAMILIES and getattr(txt2img, "text_encoder", None) is not None,
        tile=getattr(txt2img, "unet", None) is not None,
        draft_steps=draft_steps(steps),
        draft_scheduler=DRAFT_SOLVER
        if name in DRAFT_SOLVER_FAMILIES and not _zero_terminal_snr(txt2img)
        else None,
        draft_guidance_share=DRAFT_GUIDANCE_SHARE if guided_tensors and cuts_guidance else None,
        video=video,
    )


def _zero_terminal_snr(pipe: Any) -> bool:
    config = getattr(getattr(pipe, "scheduler", None), "config", None) or {}
    return bool(config.get("rescale_betas_zero_snr"))


def draft_steps(default_steps: int) -> int:
    """The steps --draft runs for a family whose default is `default_steps`."""
    return min(default_steps, max(DRAFT_MIN_STEPS, round(default_steps * DRAFT_STEP_SHARE)))


def _shows_process(pipe: Any) -> bool:
    """Whether 🔬 Process works: a step callback that hands over the latents, and a VAE and noise schedule
    `pipeline.process` can use."""
    from pipeline.process import supports_process  # needs torch, which this module's importers may not

    return _step_callback(pipe) == "on_step_end" and supports_process(pipe)


def _uses_negative_prompt(pipe: Any, name: str, guidance: float) -> bool:
    """A negative prompt works through classifier-free guidance: not for pipelines without one (LCM), models
    run without guidance, or FLUX, whose guidance is distilled into the model (its `negative_prompt` needs
    a second, "true" guidance pass Kaika does not run)."""
    return takes(pipe, "negative_prompt") and name != "flux" and guidance > 0


def _defaults(pipe: Any, name: str, config: Any) -> tuple[int, float]:
    """Steps and guidance (at --stylize 100) from the pipeline's own `__call__` defaults."""
    if name == "flux" and getattr(config, "guidance_embeds", True) is False:
        return DISTILLED_STEPS, 0.0  # FLUX.1-schnell: distilled to a few steps, no guidance
    parameters = inspect.signature(type(pipe).__call__).parameters
    steps = parameters.get("num_inference_steps")
    guidance = parameters.get("guidance_scale")
    default_steps = steps.default if steps is not None and isinstance(steps.default, int) else 25
    default_guidance = (
        guidance.default if guidance is not None and isinstance(guidance.default, float) else 7.5
    )
    return _DEFAULT_STEPS.get(name, min(default_steps, MAX_DEFAULT_STEPS)), float(default_guidance)


def takes(pipe: Any, argument: str) -> bool:
    """Whether `pipe(...)` accepts `argument`."""
    return argument in inspect.signature(type(pipe).__call__).parameters


def _step_callback(pipe: Any) -> str | None:
    if takes(pipe, "callback_on_step_end"):
        return "on_step_end"
    if takes(pipe, "callback") and takes(pipe, "callback_steps"):
        return "legacy"
    return None


def _native_size(pipe: Any, config: Any, vae_scale: int) -> int:
    sample = getattr(config, "sample_size", None)
    if isinstance(sample, int):
        return sample * vae_scale
    default = getattr(pipe, "default_sample_size", None)
    return int(default) * vae_scale if default else 512


def _latent_channels(pipe: Any, config: Any, packed: bool) -> int:
    vae_config = getattr(getattr(pipe, "vae", None), "config", None)
    channels = getattr(vae_config, "latent_channels", None)
    if channels is None:
        channels = getattr(config, "in_channels", 4) // (4 if packed else 1)
    return int(channels)


def unpack_latents(latents: torch.Tensor, family: ModelFamily, height: int, width: int) -> torch.Tensor:
    """The latents of one pipeline step as (batch, channels, h, w), whatever the family's layout."""
    if not family.packed_latents:
        return latents
    batch = latents.shape[0]
    h, w = height // family.vae_scale // 2, width // family.vae_scale // 2
    grid = latents.reshape(batch, h, w, family.latent_channels, 2, 2)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(batch, family.latent_channels, h * 2, w * 2)
