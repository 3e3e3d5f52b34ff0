"""The engine on the tiny model: every mode, batching, determinism, previews, out-of-memory and load errors."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline import loading
from pipeline.engine import Engine
from pipeline.errors import JobCancelled, JobFailed, ModelLoadError
from pipeline.images import encode_png
from pipeline.loading import parse_lora
from pipeline.request import Mode, upscale_request, variation_request
from pipeline.upscaling import BORDER
from service.settings import Settings
from tests.fixtures.requests import tiny_request


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def digest(images) -> list[str]:
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in images]


def test_model_setting_loads_the_tiny_model(tiny_settings_env):
    settings = Settings(_env_file=None)
    engine = Engine.load(settings.model, device=settings.device, dtype=settings.dtype)
    assert engine.model_id == tiny_settings_env.name
    assert engine.family.native_size == 64
    assert engine.device == torch.device("cpu")
    (result,) = engine.run([tiny_request(seed=3, num_images=4)])
    assert len(result.images) == 4 and result.images[0].size == (64, 64)
    assert result.seeds == [3, 4, 5, 6]
    assert result.model_id == engine.model_id
    assert result.metadata["prompt"] == "a red circle"
    # Different seeds give different images.
    assert len(set(digest(result.images))) == 4


def test_derived_pipelines_share_the_weights(tiny_engine):
    assert tiny_engine.img2img.unet is tiny_engine.txt2img.unet
    assert tiny_engine.inpaint.vae is tiny_engine.txt2img.vae
    assert tiny_engine.inpaint.text_encoder is tiny_engine.txt2img.text_encoder


def assert_same_pixels_up_to_kernel_rounding(batched, alone):
    """Equal noise and conditioning per image; CPU kernels for batch 1-2 round differently from larger
    batches (≈1e-6), which can flip a rare pixel by one level but never more."""
    for together, single in zip(batched, alone, strict=True):
        difference = np.abs(pixels(together) - pixels(single))
        assert difference.max() <= 1
        assert (difference == 0).mean() > 0.99


def test_batched_requests_give_the_same_pixels_as_each_alone(tiny_engine):
    a = tiny_request("a red circle", seed=1, num_images=2)
    b = tiny_request("a blue square", negative_prompt="green", seed=50, num_images=1, chaos=60)
    c = tiny_request("a tree", seed=9, num_images=1)
    assert tiny_engine.compatible(a, b) and tiny_engine.compatible(a, c)
    batched = tiny_engine.run([a, b, c])
    for request, together in zip([a, b, c], batched, strict=True):
        (alone,) = tiny_engine.run([request])
        assert_same_pixels_up_to_kernel_rounding(together.images, alone.images)
        assert together.seeds == alone.seeds


def test_max_batch_splits_calls_without_changing_pixels(tiny_engine, monkeypatch):
    request = tiny_request(seed=21, num_images=3)
    (whole,) = tiny_engine.run([request])
    original = Engine._call
    sizes = []

    def recording(self, requests, slots, *args):
        sizes.append(len(slots))
        return original(self, requests, slots, *args)

    monkeypatch.setattr(Engine, "_call", recording)
    (split,) = tiny_engine.run([request], max_batch=2)
    assert sizes == [2, 1]
    assert split.seeds == whole.seeds
    assert_same_pixels_up_to_kernel_rounding(split.images, whole.images)


def test_incompatible_requests_are_refused(tiny_engine):
    a = tiny_request(steps=4)
    for other in (
        tiny_request(steps=5),
        tiny_request(width=72),
        tiny_request(guidance=3.0),
        tiny_request(model="x"),
    ):
        assert not tiny_engine.compatible(a, other)
    with pytest.raises(ValueError, match="compatible"):
        tiny_engine.run([a, tiny_request(steps=5)])


def test_chaos_changes_images_deterministically(tiny_engine):
    calm = tiny_engine.run([tiny_request(seed=4)])[0]
    wild = tiny_engine.run([tiny_request(seed=4, chaos=100)])[0]
    again = tiny_engine.run([tiny_request(seed=4, chaos=100)])[0]
    assert digest(wild.images) == digest(again.images)
    assert all(a != b for a, b in zip(digest(calm.images), digest(wild.images), strict=True))


def test_variation_uses_the_source_image_and_a_new_seed(tiny_engine):
    (parent,) = tiny_engine.run([tiny_request(seed=5)])
    sources = [encode_png(image) for image in parent.images[:2]]
    subtle = variation_request(tiny_request(seed=5), sources[0], seed=77)
    assert (subtle.mode, subtle.strength, subtle.seed) == (Mode.IMG2IMG, 0.35, 77)
    assert variation_request(tiny_request(), sources[0], seed=1, strong=True).strength == 0.75
    totals = []
    (from_first,) = tiny_engine.run(
        [subtle.replace(steps=10)], on_step=lambda step, total, _: totals.append(total)
    )
    (from_second,) = tiny_engine.run([subtle.replace(steps=10, source_image=sources[1])])
    assert totals[-1] == 3  # img2img runs strength x steps
    assert len(from_first.images) == 4 and from_first.images[0].size == (64, 64)
    assert digest(from_first.images) != digest(from_second.images)


def test_upscale_doubles_the_size(tiny_engine):
    (parent,) = tiny_engine.run([tiny_request(seed=6, width=72, height=56)])
    upscale = upscale_request(
        tiny_request(seed=6, width=72, height=56), encode_png(parent.images[1]), creative=True
    )
    assert (upscale.mode, upscale.width, upscale.height, upscale.num_images, upscale.strength) == (
        Mode.UPSCALE,
        144,
        112,
        1,
        0.5,
    )
    (result,) = tiny_engine.run([upscale.validate()])
    assert len(result.images) == 1 and result.images[0].size == (144, 112)
    subtle = upscale_request(tiny_request(seed=6, width=72, height=56, steps=2), encode_png(parent.images[1]))
    assert subtle.strength == 0.25
    (few_steps,) = tiny_engine.run([subtle.validate()])  # 2 steps x 0.25 still runs one step
    assert few_steps.images[0].size == (144, 112)


def test_inpaint_changes_only_what_the_mask_allows(tiny_engine):
    (parent,) = tiny_engine.run([tiny_request(seed=8, num_images=1)])
    source = encode_png(parent.images[0])
    keep_all = encode_png(Image.new("L", (64, 64), 0))
    redo_all = encode_png(Image.new("L", (64, 64), 255))

    def inpaint(prompt, mask):
        request = tiny_request(
            prompt,
            seed=8,
            mode=Mode.INPAINT,
            source_image=source,
            mask_image=mask,
            strength=1.0,
            num_images=1,
        )
        return digest(tiny_engine.run([request])[0].images)

    # With nothing masked the prompt cannot change a pixel; with everything masked it does.
    assert inpaint("a cat", keep_all) == inpaint("a dog", keep_all)
    assert inpaint("a cat", redo_all) != inpaint("a dog", redo_all)


def test_on_step_reports_every_step_with_previews_every_k(tiny_engine):
    calls = []
    a, b = tiny_request(seed=1, steps=6, num_images=4), tiny_request(seed=30, steps=6, num_images=1)
    tiny_engine.run(
        [a, b], on_step=lambda step, total, previews: calls.append((step, total, previews)), preview_every=2
    )
    assert [(step, total) for step, total, _ in calls] == [(i, 6) for i in range(1, 7)]
    with_previews = [step for step, _, previews in calls if previews[0] is not None]
    assert with_previews == [2, 4]  # none at the last step: the real images follow
    grid_a, single_b = (Image.open(io.BytesIO(png)) for png in calls[1][2])
    assert grid_a.size == (16, 16)  # 2x2 latents of 8x8
    assert single_b.size == (8, 8)
    assert all(previews == [None, None] for step, _, previews in calls if step not in (2, 4))


def test_should_stop_cancels_between_steps(tiny_engine):
    seen = []
    with pytest.raises(JobCancelled):
        tiny_engine.run(
            [tiny_request(steps=10)],
            on_step=lambda step, total, _: seen.append(step),
            should_stop=lambda: len(seen) >= 3,
        )
    assert seen == [1, 2, 3]


def test_out_of_memory_splits_the_batch_and_keeps_pixels(tiny_engine, monkeypatch):
    requests = [tiny_request(seed=1), tiny_request("b", seed=9)]
    expected = [tiny_engine.run([r])[0].images for r in requests]
    original = Engine._call
    sizes = []

    def one_image_fits(self, requests, slots, *args):
        sizes.append(len(slots))
        if len(slots) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(self, requests, slots, *args)

    monkeypatch.setattr(Engine, "_call", one_image_fits)
    results = tiny_engine.run(requests)
    assert sizes == [4, 2, 1, 1, 2, 1, 1]
    for result, images in zip(results, expected, strict=True):
        assert_same_pixels_up_to_kernel_rounding(result.images, images)


def test_out_of_memory_for_one_image_fails_only_that_job(tiny_engine, huge_prompt_runs_out_of_memory):
    small, huge = tiny_engine.run_outcomes(
        [tiny_request(seed=2, num_images=2), tiny_request("huge", num_images=2)]
    )
    assert len(small.images) == 2
    assert isinstance(huge, JobFailed)
    assert "ran out of memory for one 64x64 image" in str(huge)
    with pytest.raises(JobFailed, match="out of memory"):
        tiny_engine.run([tiny_request("huge")])


DETERMINISM_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(1)
from pipeline.engine import Engine
from tests.fixtures.requests import tiny_request
engine = Engine.load(sys.argv[1], device="cpu", dtype="float32")
(result,) = engine.run([tiny_request("a lighthouse", seed=11, chaos=20)])
print(" ".join(hashlib.sha256(image.tobytes()).hexdigest() for image in result.images))
"""


@pytest.mark.slow  # a fresh interpreter loads torch and the model: about 9 s on a 2-core CPU
def test_same_request_gives_identical_images_in_another_process(tiny_engine, tiny_model_dir):
    (result,) = tiny_engine.run([tiny_request("a lighthouse", seed=11, chaos=20)])
    root = Path(__file__).resolve().parents[2]
    output = subprocess.run(
        [sys.executable, "-c", DETERMINISM_SCRIPT, str(tiny_model_dir)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert output.stdout.split() == digest(result.images)


# ---------------------------------------------------------------- loading errors


def test_missing_model_path_names_model(tmp_path):
    with pytest.raises(ModelLoadError, match=r"MODEL='.*nowhere' does not exist"):
        Engine.load(str(tmp_path / "nowhere"), device="cpu")
    with pytest.raises(ModelLoadError, match=r"MODEL='missing.safetensors' does not exist"):
        Engine.load("missing.safetensors", device="cpu")


def test_folder_without_model_index_names_model(tmp_path):
    with pytest.raises(ModelLoadError, match=r"MODEL=.* is a folder without model_index.json"):
        Engine.load(str(tmp_path), device="cpu")


def test_broken_diffusers_folder_names_model(tmp_path):
    (tmp_path / "model_index.json").write_text(
        '{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}'
    )
    with pytest.raises(ModelLoadError, match=r"MODEL=.* could not be loaded"):
        Engine.load(str(tmp_path), device="cpu")


def test_uncached_hub_id_offline_names_model():
    with pytest.raises(ModelLoadError, match="MODEL='kaika-tests/not-a-real-model' could not be loaded"):
        Engine.load("kaika-tests/not-a-real-model", device="cpu")


def test_single_file_checkpoint_needs_its_config_from_the_hub_offline(tmp_path):
    from safetensors.torch import save_file

    checkpoint = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}, str(checkpoint))
    with pytest.raises(
        ModelLoadError,
        match=r"MODEL=.*model.safetensors' could not be loaded as a single-file checkpoint.*offline",
    ):
        Engine.load(str(checkpoint), device="cpu")
    text_file = tmp_path / "model.txt"
    text_file.write_text("x")
    with pytest.raises(ModelLoadError, match=r"is a file but not a .safetensors or .ckpt"):
        Engine.load(str(text_file), device="cpu")


def test_empty_model_without_the_demo_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "DEMO_MODEL_DIR", tmp_path / "model")
    with pytest.raises(ModelLoadError, match=r"MODEL is empty.*demo model.*not built.*set MODEL"):
        Engine.load("", device="cpu")


def test_bad_device_and_dtype_name_their_setting(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="DEVICE='toaster'"):
        Engine.load(str(tiny_model_dir), device="toaster")
    with pytest.raises(ModelLoadError, match="DTYPE='float8'"):
        Engine.load(str(tiny_model_dir), device="cpu", dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="DEVICE='cuda' but this machine has no usable CUDA GPU"):
            Engine.load(str(tiny_model_dir), device="cuda")


def test_lora_errors_name_loras(tiny_model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match=r"LORAS entry '.*missing.safetensors:0.5'.*does not exist"):
        Engine.load(str(tiny_model_dir), device="cpu", loras=[f"{tmp_path}/missing.safetensors:0.5"])
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match=r"LORAS entry .*broken.safetensors' could not be loaded"):
        Engine.load(str(tiny_model_dir), device="cpu", loras=[str(broken)])


def test_loras_change_images_by_their_weight(tiny_model_dir, tiny_lora_file, tiny_engine):
    request = tiny_request(num_images=1)
    (plain,) = tiny_engine.run([request])
    styled = Engine.load(str(tiny_model_dir), device="cpu", dtype="float32", loras=[f"{tiny_lora_file}:0.8"])
    muted = Engine.load(str(tiny_model_dir), device="cpu", dtype="float32", loras=[f"{tiny_lora_file}:0"])
    assert digest(styled.run([request])[0].images) != digest(plain.images)
    assert digest(muted.run([request])[0].images) == digest(plain.images)
    assert styled.img2img.unet is styled.txt2img.unet  # derived pipelines carry the LoRA too


def test_lora_entries_parse_weights():
    assert parse_lora("styles/ink.safetensors:0.6") == ("styles/ink.safetensors", 0.6)
    assert parse_lora("styles/ink.safetensors") == ("styles/ink.safetensors", 1.0)
    assert parse_lora(r"C:\loras\ink.safetensors") == (r"C:\loras\ink.safetensors", 1.0)


def test_gan_upscaler_errors_name_upscaler(tiny_model_dir, tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match=r"UPSCALER=.*does not exist"):
        Engine.load(str(tiny_model_dir), device="cpu", upscaler=str(tmp_path / "none.pth"))
    weights = tmp_path / "4x-esrgan.pth"
    weights.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as on a machine without the [gan] extra
    with pytest.raises(
        ModelLoadError,
        match=r"UPSCALER=.*is not an ESRGAN or Real-ESRGAN compact file .*need the spandrel package: "
        r"pip install -e '.\[gan\]'",
    ):
        Engine.load(str(tiny_model_dir), device="cpu", upscaler=str(weights))


def test_gan_upscaler_replaces_img2img_for_upscales(tiny_engine, monkeypatch):
    calls = []

    def nearest_2x(tensor):
        calls.append(tuple(tensor.shape))
        return torch.nn.functional.interpolate(tensor, scale_factor=4, mode="nearest")

    monkeypatch.setattr(tiny_engine, "upscaler", nearest_2x)
    source = Image.new("RGB", (64, 64), (200, 30, 30))
    request = upscale_request(tiny_request(seed=3), encode_png(source)).validate()
    (result,) = tiny_engine.run([request])
    # One GAN pass over the source, its edges extended by BORDER (cut off again after the pass).
    assert calls == [(1, 3, 64 + 2 * BORDER, 64 + 2 * BORDER)]
    assert result.images[0].size == (128, 128)
    assert result.images[0].getpixel((10, 10)) == (200, 30, 30)


def test_a_model_too_big_for_the_device_names_model(tiny_model_dir, monkeypatch):
    from diffusers import DiffusionPipeline

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(DiffusionPipeline, "to", out_of_memory)
    with pytest.raises(
        ModelLoadError, match=r"MODEL='.*tiny-sd' does not fit in the memory of cpu; try DTYPE=float16"
    ):
        Engine.load(str(tiny_model_dir), device="cpu")


def test_loading_a_model_writes_no_progress_bars_or_library_notices(tiny_model_dir, capfd):
    Engine.load(str(tiny_model_dir), device="cpu", dtype="float32")
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""  # no "Loading pipeline components…" bars, no advice
