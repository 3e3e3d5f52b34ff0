"""MP4 files of a video's frames with PyAV: H.264 in yuv420p (what Discord and browsers play inline), within a
byte limit, with the prompt, seed and model in the file's metadata; and the reverse, for tests and Extend.

Frames are PIL images; sizes are made even (yuv420p halves the colour planes) by trimming at most one
pixel row and column. When the file is over the limit it is encoded again at a bitrate that fits, then at
smaller sizes; each attempt is whole, so a file never comes out cut short.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

from PIL import Image

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
QUALITY_CRF = "20"  # x264's constant quality for the first attempt: visually clean for short clips
# The metadata key holding the whole provenance as JSON; the prompt is also the file's title.
PROVENANCE_KEY = "comment"
SMALLEST_SIDE = 16


class VideoTooLarge(ValueError):
    """The video cannot be encoded within the byte limit, even small and at a low bitrate."""


def encode_mp4(
    frames: Sequence[Image.Image],
    fps: int,
    metadata: Mapping[str, str] | None = None,
    *,
    max_bytes: int | None = None,
) -> bytes:
    """An H.264 MP4 of `frames` at `fps` frames a second, with `metadata` (prompt, seed, model, …) in the
    file; at most `max_bytes` (re-encoded at a lower bitrate, then smaller, until it fits; `VideoTooLarge`
    when nothing does)."""
    if not frames:
        raise ValueError("a video needs at least one frame")
    if fps <= 0:
        raise ValueError(f"frames per second must be positive (got {fps})")
    width, height = _even(frames[0].size)
    data = _encode(frames, fps, metadata or {}, (width, height), bitrate=None)
    if max_bytes is None or len(data) <= max_bytes:
        return data
    seconds = len(frames) / fps
    scale = 1.0
    while True:
        # 90% of the limit over the clip's length, for the container's own bytes.
        bitrate = max(16_000, int(max_bytes * 8 * 0.9 / seconds))
        size = _even((max(SMALLEST_SIDE, round(width * scale)), max(SMALLEST_SIDE, round(height * scale))))
        data = _encode(frames, fps, metadata or {}, size, bitrate=bitrate)
        if len(data) <= max_bytes:
            return data
        if min(size) <= SMALLEST_SIDE:
            raise VideoTooLarge(f"the video does not fit in {max_bytes:,} bytes")
        scale *= 0.75


def _even(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    return max(2, width - width % 2), max(2, height - height % 2)


def _encode(
    frames: Sequence[Image.Image],
    fps: int,
    metadata: Mapping[str, str],
    size: tuple[int, int],
    *,
    bitrate: int | None,
) -> bytes:
    # use_metadata_tags keeps keys of Kaika's own beside the standard ones (title, comment); faststart puts the
    # index first so a player starts before the whole file arrives, which needs a real file to rewrite.
    with tempfile.TemporaryDirectory(prefix="kaika-mp4-") as folder:
        path = Path(folder) / "video.mp4"
        _write(path, frames, fps, metadata, size, bitrate)
        return path.read_bytes()


def _write(
    path: Path,
    frames: Sequence[Image.Image],
    fps: int,
    metadata: Mapping[str, str],
    size: tuple[int, int],
    bitrate: int | None,
) -> None:
    import av

    with av.open(
        str(path), "w", format="mp4", options={"movflags": "use_metadata_tags+faststart"}
    ) as container:
        for key, value in metadata.items():
            container.metadata[key] = value
        if "prompt" in metadata:
            container.metadata["title"] = metadata["prompt"]
        container.metadata[PROVENANCE_KEY] = json.dumps(dict(metadata), ensure_ascii=False)
        stream = container.add_stream(CODEC, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = PIXEL_FORMAT
        if bitrate is None:
            stream.options = {"crf": QUALITY_CRF}
        else:
            stream.bit_rate = bitrate
            stream.options = {"maxrate": str(bitrate), "bufsize": str(bitrate)}
        for frame in frames:
            image = frame.convert("RGB")
            if image.size != size:
                image = _fit(image, size)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` at `size`: trimmed when only odd sides differ, resized when the video is made smaller."""
    width, height = size
    if image.width - width <= 1 and image.height - height <= 1:
        return image.crop((0, 0, width, height))
    return image.resize(size, Image.Resampling.LANCZOS)


def decode_mp4(data: bytes) -> list[Image.Image]:
    """The frames of an MP4, as RGB images."""
    import av

    with av.open(io.BytesIO(data)) as container:
        return [frame.to_image().convert("RGB") for frame in container.decode(video=0)]


def mp4_info(data: bytes) -> dict[str, object]:
    """What an MP4 says of itself: codec, pixel format, size, frame rate, frames, and its metadata (the
    provenance Kaika wrote, as `provenance`)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        metadata = dict(container.metadata)
        context = stream.codec_context
        try:
            provenance = json.loads(metadata.get(PROVENANCE_KEY, "{}"))
        except ValueError:
            provenance = {}
        return {
            "codec": context.name,
            "pixel_format": context.pix_fmt,
            "width": context.width,
            "height": context.height,
            "fps": float(stream.average_rate) if stream.average_rate else 0.0,
            "frames": frames,
            "metadata": metadata,
            "provenance": provenance,
        }


def fit_mp4(data: bytes, max_bytes: int) -> bytes:
    """`data` when it is at most `max_bytes`; otherwise its frames encoded again to fit, with the same frame rate
    and metadata (`VideoTooLarge` when nothing fits)."""
    if len(data) <= max_bytes:
        return data
    info = mp4_info(data)
    metadata = {str(key): str(value) for key, value in dict(info["provenance"]).items()}  # type: ignore[call-overload]
    fps = max(1, round(float(info["fps"])))  # type: ignore[arg-type]
    return encode_mp4(decode_mp4(data), fps, metadata, max_bytes=max_bytes)
