"""Uploads are checked before they are decoded and re-encoded clean (`pipeline.uploads`)."""

from __future__ import annotations

import io
import time
import tracemalloc

import pytest
from PIL import Image

from pipeline.uploads import UploadRefused, check_declared_size, clean_upload, fit_image
from testkit.pictures import png_bomb


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_a_png_bomb_is_refused_in_one_line_without_decoding_it() -> None:
    bomb = png_bomb()
    assert len(bomb) < 200_000
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(UploadRefused) as refused:
        clean_upload(bomb, name="bomb.png")
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("bomb.png ")
    assert "pixels" in message
    assert seconds < 2
    assert peak < 20 * 1024 * 1024  # the decoded picture would be 1.2 GB


def test_a_picture_just_over_the_pixel_limit_is_refused_by_its_header() -> None:
    data = encoded(Image.new("RGB", (101, 100)), "PNG")
    with pytest.raises(
        UploadRefused, match=r"^big.png is 101x100 \(10,100 pixels\); images up to 10,000 pixels"
    ):
        clean_upload(data, name="big.png", max_pixels=10_000)
    assert clean_upload(encoded(Image.new("RGB", (100, 100)), "PNG"), max_pixels=10_000).width == 100


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4 not a picture at all",
        b"hello, world\n" * 100,
        encoded(Image.new("RGB", (8, 8)), "BMP"),
        encoded(Image.new("RGB", (8, 8)), "TIFF"),
    ],
    ids=["pdf", "text", "bmp", "tiff"],
)
def test_anything_but_png_jpeg_webp_and_gif_is_refused_in_one_line(data: bytes) -> None:
    with pytest.raises(UploadRefused) as refused:
        clean_upload(data, name="notes.txt")
    assert str(refused.value) == "notes.txt is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."


def test_an_empty_or_truncated_file_is_refused() -> None:
    with pytest.raises(UploadRefused, match="is empty"):
        clean_upload(b"")
    whole = encoded(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG")
    with pytest.raises(UploadRefused, match=r"damaged|not an image"):
        clean_upload(whole[: len(whole) // 2])


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(UploadRefused, match=r"^huge.png is 11.0 MB; images up to 10.0 MB are taken\.$"):
        check_declared_size(11 * 1024 * 1024, name="huge.png")
    with pytest.raises(UploadRefused, match=r"images up to 0\.0 MB"):
        clean_upload(encoded(Image.new("RGB", (8, 8)), "PNG"), max_bytes=10)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_each_accepted_format_comes_back_as_a_plain_png_of_its_pixels(fmt: str) -> None:
    picture = Image.new("RGB", (48, 32), (200, 30, 40))
    clean = clean_upload(encoded(picture, fmt))
    assert (clean.width, clean.height) == (48, 32)
    assert clean.source_format == {"WEBP": "WebP"}.get(fmt, fmt)
    back = Image.open(io.BytesIO(clean.png))
    assert back.format == "PNG" and back.mode == "RGB"
    red, green, blue = back.getpixel((24, 16))
    assert abs(red - 200) < 12 and green < 50 and blue < 60


def test_exif_is_stripped_and_its_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: shown turned 90° clockwise
    exif[0x010F] = "Camera maker"
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # a GPS latitude
    photo = encoded(Image.new("RGB", (40, 30), (10, 200, 10)), "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(photo)).getexif()
    clean = clean_upload(photo)
    back = Image.open(io.BytesIO(clean.png))
    assert (clean.width, clean.height) == (30, 40)  # upright
    assert not back.getexif()
    assert not back.info and not getattr(back, "text", {})
    assert b"Camera maker" not in clean.png


def test_only_the_first_frame_of_an_animated_gif_is_kept() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    clean = clean_upload(data)
    assert clean.image().getpixel((8, 8)) == (255, 0, 0)


def test_transparency_is_shown_on_white() -> None:
    clean = clean_upload(encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG"))
    assert clean.image().getpixel((4, 4)) == (255, 255, 255)


def test_fit_image_crops_to_the_ratio_around_the_centre() -> None:
    wide = Image.new("RGB", (200, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (50, 0, 150, 100))  # a red middle, blue sides
    fitted = fit_image(wide, 64, 64)
    assert fitted.size == (64, 64)
    assert fitted.getpixel((2, 32))[0] > 200  # the blue sides were cropped away


def test_leading_links_are_the_image_prompt_and_only_discord_is_fetched() -> None:
    from pipeline.uploads import check_link, leading_links

    assert leading_links("https://cdn.discordapp.com/a/1/x.png  a red fox --iw 2") == (
        ["https://cdn.discordapp.com/a/1/x.png"],
        "a red fox --iw 2",
    )
    assert leading_links("a fox at https://cdn.discordapp.com/x.png") == (
        [],
        "a fox at https://cdn.discordapp.com/x.png",
    )
    check_link("https://media.discordapp.net/attachments/1/2/x.webp")
    for link in (
        "http://169.254.169.254/latest",
        "https://cdn.discordapp.com.evil.example/x.png",
        "file:///etc",
    ):
        with pytest.raises(UploadRefused, match=r"^Image links must be Discord attachments"):
            check_link(link)
