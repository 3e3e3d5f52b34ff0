"""Pictures members hand in (an image prompt, /describe): checked before they are decoded, then re-encoded clean.

A decompression bomb is a small file that claims a huge picture (a 20000x20000 PNG of one colour is a few
kilobytes and 1.2 GB once decoded), so the byte size is capped before anything is read and the pixel count
is read from the header, which PIL parses without touching the pixel data, before any pixel is decoded.
What is accepted is PNG, JPEG, WebP or GIF (its first frame), turned upright by its EXIF orientation and
re-encoded as a PNG that keeps nothing of the file but its pixels (no EXIF, no GPS position, no comments).
Pure PIL; run `clean_upload` off the event loop.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import RequestError
from pipeline.images import encode_png

# The formats an upload may be in, as PIL names them, and as a member reads them.
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}
ACCEPTED_TEXT = "PNG, JPEG, WebP or GIF"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 4096 * 4096


class UploadRefused(RequestError):
    """An uploaded file Kaika will not decode; the message says why, in one line."""


@dataclass(frozen=True)
class CleanUpload:
    """An accepted upload: its pixels as a metadata-free RGB PNG, and what the file was."""

    png: bytes
    width: int
    height: int
    source_format: str  # PNG, JPEG, WebP or GIF

    def image(self) -> Image.Image:
        with Image.open(io.BytesIO(self.png)) as image:
            return image.convert("RGB")


def check_declared_size(
    byte_size: int, *, name: str = "The file", max_bytes: int = DEFAULT_MAX_BYTES
) -> None:
    """Refuse an upload by the size its sender declares, before downloading it."""
    if byte_size > max_bytes:
        raise UploadRefused(
            f"{name} is {_megabytes(byte_size)}; images up to {_megabytes(max_bytes)} are taken."
        )


def clean_upload(
    data: bytes,
    *,
    name: str = "The file",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CleanUpload:
    """`data` checked and re-encoded (see the module), or `UploadRefused` saying why; `name` starts the
    message ("cat.heic is not an image Kaika takes …")."""
    check_declared_size(len(data), name=name, max_bytes=max_bytes)
    if not data:
        raise UploadRefused(f"{name} is empty; attach a {ACCEPTED_TEXT} image.")
    with warnings.catch_warnings():
        # PIL warns (and past twice its own limit refuses) on huge headers; the pixel check below decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        except Image.DecompressionBombError:
            raise UploadRefused(
                f"{name} claims more pixels than Kaika decodes (at most {max_pixels:,}); send a smaller image."
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise UploadRefused(
                f"{name} is not an image Kaika takes; send a {ACCEPTED_TEXT} image."
            ) from None
    with image:
        width, height = image.size  # from the header: no pixel is decoded yet
        if width * height > max_pixels:
            raise UploadRefused(
                f"{name} is {width}x{height} ({width * height:,} pixels); images up to {max_pixels:,} "
                "pixels are taken."
            )
        if width < 1 or height < 1:
            raise UploadRefused(f"{name} has no pixels; send a {ACCEPTED_TEXT} image.")
        source_format = ACCEPTED_FORMATS[str(image.format)]
        try:
            image.seek(0)  # a GIF's (or animated WebP's) first frame
            upright = ImageOps.exif_transpose(image)
            rgb = _flatten(upright)
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise UploadRefused(f"{name} is damaged and cannot be read ({error}).") from None
    return CleanUpload(encode_png(rgb), rgb.width, rgb.height, source_format)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels, a transparent part shown on white (as a chat client shows it)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


# Where Discord serves attachments: the only hosts an image link in a prompt may name.
DISCORD_MEDIA_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
_LEADING_URL = re.compile(r"\s*(https?://\S+)")


def leading_links(text: str) -> tuple[list[str], str]:
    """The links a prompt starts with (Midjourney's image prompts: `https://… a red fox --iw 2`), and the rest."""
    links = []
    while match := _LEADING_URL.match(text):
        links.append(match.group(1))
        text = text[match.end() :]
    return links, text.strip()


def check_link(link: str, hosts: frozenset[str] = DISCORD_MEDIA_HOSTS) -> None:
    """Refuse an image link that is not a Discord attachment (Kaika fetches nothing else for a member)."""
    host = urlsplit(link).hostname or ""
    if host not in hosts:
        raise UploadRefused(
            f"Image links must be Discord attachments ({', '.join(sorted(DISCORD_MEDIA_HOSTS))}); "
            "attach the picture instead."
        )


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` cropped around its centre to the ratio of `width`:`height`, then resized to that size."""
    return ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)


def _megabytes(byte_size: int) -> str:
    return f"{byte_size / 1024 / 1024:.1f} MB"
