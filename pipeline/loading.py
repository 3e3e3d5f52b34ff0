"""Loading a model for the engine: the MODEL, DEVICE, DTYPE, LORAS and UPSCALER settings turned
into a diffusers pipeline on a device, with errors that name the setting at fault.

`load_model` is what `Engine.load` runs; the functions below it are its steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ModelLoadError
from pipeline.families import ModelFamily, describe

log = logging.getLogger(__name__)

DEMO_MODEL_DIR = Path(__file__).parent / "demo" / "model"
DEMO_MODEL_ID = "kaika-demo"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class LoadedModel:
    """A text-to-image pipeline on its device, and the GAN upscaler beside it: UPSCALER's, or the demo model's
    own, which also enlarges every image the demo model makes `output_scale` times."""

    pipe: Any
    model_id: str
    device: torch.device
    upscaler: Any = None
    output_scale: int = 1


def load_model(
    source: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    loras: Sequence[str] = (),
    upscaler: str = "",
    config: str = "",
) -> LoadedModel:
    """Load `source` (the MODEL setting): hub id, diffusers folder, single file, or "" for the demo model.
    `config` (MODEL_CONFIG) is a local diffusers folder whose configuration a single file is loaded with.

    Raises `ModelLoadError` with a message naming the setting at fault.
    """
    quiet_libraries()
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    pipe, model_id = _load_pipeline(source, torch_dtype, config)
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
    log.info("loaded %s on %s (%s)", model_id, torch_device, torch_dtype)
    if upscaler:
        return LoadedModel(pipe, model_id, torch_device, load_gan_upscaler(upscaler, torch_device))
    if not source:  # the demo model draws 64 px; its own GAN makes them the 256 px members see
        demo_gan = load_demo_gan(torch_device)
        if demo_gan is not None:
            return LoadedModel(pipe, model_id, torch_device, demo_gan, output_scale=demo_gan.scale)
    return LoadedModel(pipe, model_id, torch_device)


def quiet_libraries() -> None:
    """No progress bars or notices from diffusers, transformers and the hub in Kaika's log: loading bars and
    advice such as "install torchvision" fill a bot's or worker's log at every start. Their errors still show;
    LOG_LEVEL=DEBUG keeps everything."""
    import diffusers
    import huggingface_hub
    import transformers

    huggingface_hub.utils.disable_progress_bars()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        diffusers.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()


def derived_pipelines(txt2img: Any) -> tuple[Any | None, Any | None]:
    """The image-to-image and inpainting pipelines sharing `txt2img`'s weights (`from_pipe`); None for a
    mode its family has not."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    return (
        _derived(AutoPipelineForImage2Image, txt2img, "image-to-image"),
        _derived(AutoPipelineForInpainting, txt2img, "inpainting"),
    )


def _derived(auto_pipeline: Any, txt2img: Any, what: str) -> Any | None:
    try:
        return auto_pipeline.from_pipe(txt2img)
    except Exception as error:  # diffusers raises ValueError (no mapping) or others for unusual pipelines
        log.info(
            "%s has no %s pipeline (%s); that mode is not offered",
            type(txt2img).__name__,
            what,
            first_line(error),
        )
        return None


# The components whose configs decide a family (sizes, channels, schedule); the rest stay out of a skeleton.
_DESCRIBING_COMPONENTS = ("unet", "transformer", "vae", "scheduler")


def describe_without_weights(source: str) -> ModelFamily | None:
    """The family of MODEL-style `source` from its configuration files alone, for a model not loaded yet;
    None where only loading tells (a single-file checkpoint) or the configuration cannot be read.

    The pipeline is built as a skeleton: the denoiser, VAE and scheduler from their configs with empty
    weights, every other component None; `describe` needs nothing more.
    """
    import importlib

    import diffusers
    from accelerate import init_empty_weights
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline

    quiet_libraries()
    location = str(DEMO_MODEL_DIR) if not source else str(Path(source).expanduser())
    if Path(location).is_file() or Path(location).suffix.lower() in SINGLE_FILE_SUFFIXES:
        return None
    try:
        index = DiffusionPipeline.load_config(location)
        components: dict[str, Any] = {}
        for name, spec in index.items():
            if name.startswith("_") or not isinstance(spec, list | tuple) or len(spec) != 2:
                continue
            library, class_name = spec
            if library is None or name not in _DESCRIBING_COMPONENTS:
                components[name] = None
                continue
            component_class = getattr(importlib.import_module(library), class_name)
            config = component_class.load_config(location, subfolder=name)
            with init_empty_weights():
                components[name] = component_class.from_config(config)
        skeleton = getattr(diffusers, index["_class_name"])(**components)
        txt2img = AutoPipelineForText2Image.from_pipe(skeleton)
        return describe(txt2img, *derived_pipelines(txt2img))
    except Exception as error:  # any unreadable or unusual configuration: the model is described when loaded
        log.info("MODEL=%r is described when it is loaded (%s)", source, first_line(error))
        return None


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


def _load_pipeline(source: str, dtype: torch.dtype, config: str = "") -> tuple[Any, str]:
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
        ), model_id_of(source)

    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"MODEL={source!r} is a folder without model_index.json, so it is not a diffusers pipeline; "
                "point MODEL at a folder saved with save_pretrained, a .safetensors/.ckpt file or a hub id."
            )
        return _from_pretrained(
            AutoPipelineForText2Image, str(path), f"MODEL={source!r}", dtype
        ), model_id_of(source)
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelLoadError(f"MODEL={source!r} is a file but not a .safetensors or .ckpt checkpoint.")
        return _from_single_file(path, source, dtype, config), model_id_of(source)
    if (
        path.suffix.lower() in SINGLE_FILE_SUFFIXES
        or source.startswith(("/", ".", "~"))
        or source.count("/") != 1
    ):
        raise ModelLoadError(
            f"MODEL={source!r} does not exist: no such file or folder, and it is not a hub id (owner/name)."
        )
    return _from_pretrained(AutoPipelineForText2Image, source, f"MODEL={source!r}", dtype), model_id_of(
        source
    )


def model_id_of(source: str) -> str:
    """The name a model goes by in records and messages: the demo model's, a folder's or file's name, a hub id."""
    if not source:
        return DEMO_MODEL_ID
    path = Path(source).expanduser()
    if path.is_file():
        return path.stem
    if path.is_dir():
        return path.name
    return source


def release_memory(device: torch.device) -> None:
    """Give memory freed by dropped tensors back to the device, so the next allocation can use it."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def _from_pretrained(loader: Any, location: str, setting: str, dtype: torch.dtype) -> Any:
    try:
        return loader.from_pretrained(location, dtype=dtype)
    except Exception as error:  # diffusers raises OSError, ValueError, EnvironmentError… for bad models
        raise ModelLoadError(f"{setting} could not be loaded: {first_line(error)}") from error


# The text-to-image pipeline for each model type diffusers infers from a single file's weights.
SINGLE_FILE_PIPELINES = {
    "v1": "StableDiffusionPipeline",
    "v2": "StableDiffusionPipeline",
    "xl_base": "StableDiffusionXLPipeline",
    "playground-v2-5": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "sd35_medium": "StableDiffusion3Pipeline",
    "sd35_large": "StableDiffusion3Pipeline",
    "flux-dev": "FluxPipeline",
    "flux-schnell": "FluxPipeline",
    "chroma": "ChromaPipeline",
    "z-image-turbo": "ZImagePipeline",
}


def _from_single_file(path: Path, source: str, dtype: torch.dtype, config: str) -> Any:
    """A .safetensors/.ckpt checkpoint: with MODEL_CONFIG, its pipeline class and every configuration come from
    that local folder (nothing is fetched); without, from the model type diffusers infers and the hub."""
    import diffusers

    if config:
        config_dir = Path(config).expanduser()
        if not (config_dir / "model_index.json").is_file():
            raise ModelLoadError(
                f"MODEL_CONFIG={config!r} is not a diffusers folder (no model_index.json); point it at a folder "
                "of the same family as MODEL, saved with save_pretrained (configs and tokenizers are enough)."
            )
        class_name = diffusers.DiffusionPipeline.load_config(str(config_dir))["_class_name"]
        options: dict[str, Any] = {"config": str(config_dir), "local_files_only": True}
    else:
        class_name = _inferred_pipeline(path, source)
        options = {}
    pipeline_class = getattr(diffusers, class_name, None)
    if pipeline_class is None or not hasattr(pipeline_class, "from_single_file"):
        raise ModelLoadError(
            f"MODEL={source!r}: {class_name} cannot load single files; convert the checkpoint to a diffusers "
            "folder and point MODEL at it."
        )
    try:
        return pipeline_class.from_single_file(str(path), dtype=dtype, **options)
    except Exception as error:
        hint = (
            f"MODEL_CONFIG={config!r} must be of the same family as the checkpoint"
            if config
            else "without MODEL_CONFIG, from_single_file fetches the model's configuration from the Hugging Face "
            "hub; offline, set MODEL_CONFIG to a local diffusers folder of the same family"
        )
        raise ModelLoadError(
            f"MODEL={source!r} could not be loaded as a single-file checkpoint: {first_line(error)} ({hint})."
        ) from error


def _inferred_pipeline(path: Path, source: str) -> str:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    try:
        model_type = infer_diffusers_model_type(load_single_file_checkpoint(str(path)))
    except Exception as error:
        raise ModelLoadError(
            f"MODEL={source!r} could not be read as a checkpoint: {first_line(error)}"
        ) from error
    if model_type not in SINGLE_FILE_PIPELINES:
        raise ModelLoadError(
            f"MODEL={source!r} holds a {model_type!r} model, which Kaika does not run from a single file; set "
            "MODEL_CONFIG to a local diffusers folder of its family, or convert it to a diffusers folder."
        )
    return SINGLE_FILE_PIPELINES[model_type]


def _load_lora(pipe: Any, entry: str, index: int) -> None:
    path, _ = parse_lora(entry)
    if not Path(path).expanduser().exists():
        raise ModelLoadError(f"LORAS entry {entry!r}: {path} does not exist.")
    try:
        pipe.load_lora_weights(str(Path(path).expanduser()), adapter_name=f"lora{index}")
    except Exception as error:
        raise ModelLoadError(f"LORAS entry {entry!r} could not be loaded: {first_line(error)}") from error


def load_gan_upscaler(path: str, device: torch.device) -> Any:
    """An ESRGAN-family upscaler from `path` (the UPSCALER setting): loaded with spandrel when it is installed
    (every architecture it knows), else with Kaika's own ESRGAN (RRDBNet) or Real-ESRGAN compact generator."""
    from pipeline.demo.upscaler import load_esrgan_file

    if not Path(path).expanduser().is_file():
        raise ModelLoadError(
            f"UPSCALER={path!r} does not exist; leave it empty to upscale with Lanczos + img2img."
        )
    file = Path(path).expanduser()
    try:
        import spandrel
    except ImportError:
        try:
            return load_esrgan_file(file).to(device)
        except Exception as error:
            raise ModelLoadError(
                f"UPSCALER={path!r} is not an ESRGAN or Real-ESRGAN compact file ({first_line(error)}); other architectures "
                "need the spandrel package: pip install -e '.[gan]' (with a torchvision matching your torch); "
                "or leave UPSCALER empty."
            ) from None
    try:
        model = spandrel.ModelLoader().load_from_file(str(file))
    except Exception as error:
        raise ModelLoadError(f"UPSCALER={path!r} could not be loaded: {first_line(error)}") from error
    return model.to(device).eval()


def load_demo_gan(device: torch.device) -> Any:
    """The demo model's own 4x GAN (`pipeline/demo/upscaler`), or None when it is not there."""
    from pipeline.demo import upscaler

    try:
        model = upscaler.load_demo_upscaler()
    except Exception as error:
        raise ModelLoadError(
            f"The demo model's upscaler in {upscaler.DEMO_UPSCALER_DIR} could not be loaded: {first_line(error)}"
        ) from error
    if model is None:
        log.warning("no demo upscaler in %s: the demo model's images stay 64 px", upscaler.DEMO_UPSCALER_DIR)
        return None
    return model.to(device)


def first_line(error: BaseException) -> str:
    """The first line of an error's message: diffusers' errors run to many lines."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
