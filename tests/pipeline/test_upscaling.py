"""GAN upscalers: ESRGAN-format files load without spandrel, and an engine whose model's images a GAN enlarges
(as the demo model's are) makes every mode at the enlarged size, with Upscale (Subtle / Creative) on top."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pipeline.demo.upscaler import CompactConfig, RRDBConfig, RRDBNet, SRVGGNetCompact
from pipeline.engine import Engine
from pipeline.errors import ModelLoadError
from pipeline.images import encode_png
from pipeline.loading import load_gan_upscaler
from pipeline.request import Mode, upscale_request, variation_request
from pipeline.upscaling import BORDER, enlarge, enlarge_all
from tests.fixtures.requests import tiny_request

CPU = torch.device("cpu")


def original_esrgan_layout(state: dict[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    """BasicSR RRDBNet keys as the original ESRGAN repository (`model.N`, `RRDB_trunk` as `sub`) wrote them."""
    names = {
        "conv_first": "model.0",
        "conv_body": f"model.1.sub.{blocks}",
        "conv_up1": "model.3",
        "conv_up2": "model.6",
        "conv_hr": "model.8",
        "conv_last": "model.10",
    }
    renamed = {}
    for key, value in state.items():
        prefix, kind = key.rsplit(".", 1)
        if prefix.startswith("body."):
            _, block, rdb, conv = prefix.split(".")
            renamed[f"model.1.sub.{block}.RDB{rdb[-1]}.{conv}.0.{kind}"] = value
        else:
            renamed[f"{names[prefix]}.{kind}"] = value
    return renamed


@pytest.mark.parametrize(
    "layout", ["basicsr.pth", "basicsr-params-ema.pth", "original.pth", "basicsr.safetensors"]
)
def test_esrgan_files_load_without_spandrel_and_upscale_as_saved(layout, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as on a machine without the [gan] extra
    torch.manual_seed(0)
    saved = RRDBNet(RRDBConfig(num_feat=8, num_block=2, num_grow_ch=4)).eval()
    state = saved.state_dict()
    path = tmp_path / f"4x-{layout}"
    if layout == "original.pth":
        torch.save(original_esrgan_layout(state, blocks=2), path)
    elif layout == "basicsr-params-ema.pth":
        torch.save({"params_ema": state}, path)
    elif layout.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    loaded = load_gan_upscaler(str(path), CPU)
    image = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert loaded(image).shape == (1, 3, 48, 40)
        torch.testing.assert_close(loaded(image), saved(image))


@pytest.mark.parametrize("scale", [2, 1])
def test_rrdbnet_files_of_other_scales_take_their_input_pixel_unshuffled(scale, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)
    saved = RRDBNet(RRDBConfig(num_feat=8, num_block=1, num_grow_ch=4, scale=scale)).eval()
    torch.save(saved.state_dict(), tmp_path / "model.pth")
    loaded = load_gan_upscaler(str(tmp_path / "model.pth"), CPU)
    assert loaded.scale == scale
    with torch.no_grad():
        assert loaded(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16 * scale, 16 * scale)


def test_real_esrgan_compact_files_load_without_spandrel(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)
    saved = SRVGGNetCompact(CompactConfig(num_feat=8, num_conv=3, upscale=4)).eval()
    torch.save({"params": saved.state_dict()}, tmp_path / "realesr-compact.pth")
    loaded = load_gan_upscaler(str(tmp_path / "realesr-compact.pth"), CPU)
    assert isinstance(loaded, SRVGGNetCompact) and loaded.config == saved.config
    image = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image), saved(image))


def test_an_upscaler_in_no_known_format_without_spandrel_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "swinir.pth")
    with pytest.raises(
        ModelLoadError,
        match=r"UPSCALER=.*swinir.pth' is not an ESRGAN or Real-ESRGAN compact file .*need the spandrel package: "
        r"pip install -e '.\[gan\]'",
    ):
        load_gan_upscaler(str(tmp_path / "swinir.pth"), CPU)


class Nearest4x(torch.nn.Module):
    """A stand-in GAN whose output is easy to predict: nearest-neighbour 4x."""

    scale = 4

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(tensor.shape))
        return torch.nn.functional.interpolate(tensor, scale_factor=4, mode="nearest")


def test_enlarge_runs_the_gan_until_the_size_is_reached_then_resizes_to_it():
    gan = Nearest4x()
    image = Image.new("RGB", (16, 12), (10, 200, 30))
    image.paste(
        (250, 250, 0), (0, 0, 5, 7)
    )  # a corner of another colour: the borders come out as they went in
    bordered = (1, 3, 12 + 2 * BORDER, 16 + 2 * BORDER)  # the edges extended, then cut off the output
    assert enlarge(gan, image, 64, 48, CPU).size == (64, 48) and gan.calls == [bordered]
    assert np.array_equal(np.asarray(enlarge(gan, image, 64, 48, CPU)), np.asarray(nearest_4x(image)))
    gan.calls.clear()
    # A 4x model for a 2x upscale: its 4x output resized down to the 2x size.
    assert enlarge(gan, image, 32, 24, CPU).size == (32, 24) and gan.calls == [bordered]
    gan.calls.clear()
    assert enlarge(gan, image, 200, 150, CPU).size == (200, 150) and len(gan.calls) == 2


def test_enlarge_all_passes_images_of_one_size_through_the_gan_in_batches_as_enlarge_does_each():
    gan = Nearest4x()
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(5)]
    enlarged = enlarge_all(gan, images, 64, 64, CPU)
    assert gan.calls == [(5, 3, 32, 32)]  # one pass for the five
    for image, batched in zip(images, enlarged, strict=True):
        assert (np.asarray(batched) == np.asarray(enlarge(gan, image, 64, 64, CPU))).all()
    with pytest.raises(ValueError, match="one size"):
        enlarge_all(gan, [images[0], images[1].resize((8, 8))], 64, 64, CPU)


def test_enlarge_all_splits_images_over_several_passes_beyond_the_pixel_budget(monkeypatch):
    import pipeline.upscaling

    monkeypatch.setattr(pipeline.upscaling, "BATCH_PIXELS", 2 * 32 * 32)
    gan = Nearest4x()
    images = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(5)]
    enlarged = enlarge_all(gan, images, 64, 64, CPU)
    assert [call[0] for call in gan.calls] == [2, 2, 1]
    assert [image.getpixel((30, 30)) for image in enlarged] == [(i * 40, 0, 0) for i in range(5)]


@pytest.fixture(scope="module")
def enlarging_engine(tiny_engine) -> Engine:
    """The tiny model with a 4x stand-in GAN enlarging everything it makes, as the demo model's GAN does."""
    return Engine(
        tiny_engine.txt2img, model_id="tiny-enlarged", device=CPU, upscaler=Nearest4x(), output_scale=4
    )


def nearest_4x(image: Image.Image) -> Image.Image:
    return image.resize((image.width * 4, image.height * 4), Image.Resampling.NEAREST)


def test_an_enlarging_engine_asks_for_and_makes_the_enlarged_size(enlarging_engine, tiny_engine):
    assert enlarging_engine.family.native_size == 4 * tiny_engine.family.native_size
    assert enlarging_engine.family.size_multiple == 4 * tiny_engine.family.size_multiple
    request = tiny_request(seed=5, num_images=2, width=256, height=256)
    (result,) = enlarging_engine.run([request])
    (native,) = tiny_engine.run([tiny_request(seed=5, num_images=2)])  # the same images at 64 px
    assert [image.size for image in result.images] == [(256, 256), (256, 256)]
    for enlarged, small in zip(result.images, native.images, strict=True):
        assert np.array_equal(np.asarray(enlarged), np.asarray(nearest_4x(small)))


def test_variations_and_inpainting_start_from_the_enlarged_image(enlarging_engine):
    (parent,) = enlarging_engine.run([tiny_request(seed=9, num_images=1, width=256, height=256)])
    source = encode_png(parent.images[0])
    (varied,) = enlarging_engine.run([variation_request(parent_request(), source, seed=4).validate()])
    assert [image.size for image in varied.images] == [(256, 256)] * 4
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (0, 0, 128, 256))  # redo the left half
    inpaint = parent_request().replace(
        mode=Mode.INPAINT, source_image=source, mask_image=encode_png(mask), strength=1.0, num_images=1
    )
    (inpainted,) = enlarging_engine.run([inpaint.validate()])
    kept = np.asarray(inpainted.images[0])[:, 128:]
    assert inpainted.images[0].size == (256, 256)
    assert np.array_equal(kept, np.asarray(parent.images[0])[:, 128:])  # exactly, at full size


def parent_request():
    return tiny_request(seed=9, num_images=1, width=256, height=256)


def test_upscale_subtle_is_the_gan_alone_and_creative_refines_it(enlarging_engine):
    picture = Image.new("RGB", (256, 256), (200, 30, 30))
    picture.paste((30, 30, 200), (64, 64, 192, 192))
    gan = enlarging_engine.upscaler
    gan.calls.clear()
    (subtle,) = enlarging_engine.run([upscale_request(parent_request(), encode_png(picture)).validate()])
    assert subtle.images[0].size == (512, 512)  # twice the image, as every family's upscale
    side = 256 + 2 * BORDER
    assert gan.calls == [(1, 3, side, side)]  # the 4x GAN's 1024 px, resized to the upscale's 512
    expected = nearest_4x(picture).resize((512, 512), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(subtle.images[0]), np.asarray(expected))
    creative_request = upscale_request(parent_request(), encode_png(picture), creative=True).validate()
    (creative,) = enlarging_engine.run([creative_request])
    assert creative.images[0].size == (512, 512)
    difference = np.abs(np.asarray(creative.images[0], dtype=int) - np.asarray(expected, dtype=int))
    assert difference.mean() > 1  # the img2img pass changed the enlargement
