"""Canvas and mask geometry of the editing flows: Vary (Region), Zoom Out, Pan and Make Square.

Each flow is inpainting on a prepared canvas: `edit_request` places the source image on a canvas of the
new size (the empty part filled by stretching the image's edges, a neutral start for the model) and
draws a mask of what to generate (white) and what to keep (black), with a feathered band on the kept side
of the border. The engine inpaints and then pastes the kept pixels back through that mask
(`paste_back`), so everything beyond the feather is the source's own pixels.

Sizes follow the model family: the canvas stays within its pixel budget (native side squared) and its
sides are multiples of its size multiple, as `size_for_aspect` makes them for --ar.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from pipeline.errors import RequestError
from pipeline.images import decode_image, encode_png
from pipeline.prompt import split_prompt
from pipeline.request import GenerationRequest, Mode, size_for_aspect

# The feathered band is this share of the canvas's shorter side (at least 2 pixels): well under the
# 10% of the side a member may see blended.
FEATHER_SHARE = 0.05
ZOOM_RANGE = (1.0, 2.0)  # a custom zoom's factor, from the first to the second
PAN_SHARE = 0.5  # a pan adds this share of the side it extends


class Direction(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"


# Vary (Region) presets, as (x, y, w, h) in percent of the image's width and height.
REGION_PRESETS = {
    "left": (0, 0, 50, 100),
    "right": (50, 0, 50, 100),
    "top": (0, 0, 100, 50),
    "bottom": (0, 50, 100, 50),
    "centre": (25, 25, 50, 50),
    "center": (25, 25, 50, 50),
}
REGION_HELP = "left, right, top, bottom, centre, or x,y,w,h in percent of the image such as 25,25,50,50"


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True)
class Edit:
    """What an editing job does to its source image; kept in the job's params to rebuild it later."""

    kind: str  # "region", "zoom", "pan" or "square"
    box: tuple[float, float, float, float] | None = None  # region: x, y, w, h in percent
    factor: float | None = None  # zoom
    direction: Direction | None = None  # pan
    canvas: tuple[int, int] | None = None  # zoom to a new shape (--ar with Remix); None: the image's shape
    # region: the key its front end keeps a member's drawn mask under (see `drawn_region`); None: `box`
    drawn: str | None = None

    def params(self) -> dict[str, Any]:
        values: dict[str, Any] = {"edit": self.kind}
        if self.box is not None:
            values["box"] = list(self.box)
        if self.factor is not None:
            values["factor"] = self.factor
        if self.direction is not None:
            values["direction"] = str(self.direction)
        if self.canvas is not None:
            values["canvas"] = list(self.canvas)
        if self.drawn is not None:
            values["drawn"] = self.drawn
        return values

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Edit | None:
        if "edit" not in params:
            return None
        box, direction, canvas = params.get("box"), params.get("direction"), params.get("canvas")
        return cls(
            kind=params["edit"],
            box=None if box is None else tuple(box),  # type: ignore[arg-type]
            factor=params.get("factor"),
            direction=None if direction is None else Direction(direction),
            canvas=None if canvas is None else tuple(canvas),  # type: ignore[arg-type]
            drawn=params.get("drawn"),
        )


def region(text: str) -> Edit:
    """A Vary (Region) edit from a preset name or `x,y,w,h` in percent; RequestError naming what is wrong."""
    cleaned = text.strip().lower().removesuffix(" half").strip()
    if cleaned in REGION_PRESETS:
        return Edit("region", box=tuple(float(v) for v in REGION_PRESETS[cleaned]))  # type: ignore[arg-type]
    parts = [part.strip().removesuffix("%") for part in cleaned.split(",")]
    try:
        x, y, w, h = (float(part) for part in parts)
    except ValueError:
        raise RequestError(
            f"The region {text.strip()!r} is not one Kaika knows; give {REGION_HELP}."
        ) from None
    if not all(np.isfinite((x, y, w, h))) or min(x, y) < 0 or w <= 0 or h <= 0:
        raise RequestError(
            f"The region {x:g},{y:g},{w:g},{h:g} needs x and y from 0 and a width and height above 0 (percent)."
        )
    if x + w > 100 or y + h > 100:
        raise RequestError(
            f"The region {x:g},{y:g},{w:g},{h:g} goes past the image: x + w and y + h must be at most 100 (percent)."
        )
    return Edit("region", box=(x, y, w, h))


def drawn_region(key: str) -> Edit:
    """A Vary (Region) edit of the part a member painted (the region editor): `key` names where the
    front end keeps the mask `check_drawn_mask` accepted, so the edit can be made again (recovery, 🔄)."""
    return Edit("region", drawn=key)


# A drawn mask's pixel is part of the region from this lightness (0-255) on.
DRAWN_THRESHOLD = 128
MAX_DRAWN_PIXELS = 4096 * 4096
EMPTY_DRAWN_MASK = "Nothing is painted: paint or outline the part of the image to vary, then send it again."


def check_drawn_mask(data: bytes) -> tuple[bytes, int, int]:
    """A member's drawn mask (a picture: light or opaque pixels are the region to vary, dark or transparent
    ones are kept) as a black and white PNG and its size; RequestError for what is not a picture or has
    nothing painted. Decodes and encodes: call it off the event loop."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.width * picture.height > MAX_DRAWN_PIXELS:
                raise RequestError(
                    f"The mask is {picture.width}x{picture.height}; draw it at the image's size "
                    "(up to 4096x4096)."
                )
            picture.load()
            if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
                painted = picture.convert("RGBA").getchannel("A")
            else:
                painted = picture.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError):
        raise RequestError("The mask is not a picture Kaika can read; draw the region again.") from None
    selected = np.asarray(painted) >= DRAWN_THRESHOLD
    if not selected.any():
        raise RequestError(EMPTY_DRAWN_MASK)
    binary = Image.fromarray(selected.astype(np.uint8) * 255, "L")
    return encode_png(binary), binary.width, binary.height


def drawn_mask(drawn_png: bytes, width: int, height: int) -> Image.Image:
    """The mask ("L") of a drawn region over a `width` x `height` image, as `mask` makes a box's: 255 on
    the painted pixels (the drawing stretched to the image), a ramp over `feather_width` pixels around
    them, 0 beyond. RequestError when nothing of it is left at the image's size."""
    with Image.open(io.BytesIO(drawn_png)) as picture:
        drawn = picture.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    selected = np.asarray(drawn) >= DRAWN_THRESHOLD
    if not selected.any():
        raise RequestError(EMPTY_DRAWN_MASK)
    feather = feather_width(width, height)
    alpha = selected.astype(np.float64)
    grown = Image.fromarray(selected.astype(np.uint8) * 255, "L")
    for step in range(1, feather + 1):  # each ring one pixel further out (8-neighbourhood) fades more
        grown = grown.filter(ImageFilter.MaxFilter(3))
        ring = (np.asarray(grown) > 0) & (alpha == 0)
        alpha[ring] = 1 - step / (feather + 1)
    return Image.fromarray(np.round(alpha * 255).astype(np.uint8), "L")


def zoom(factor: float | str, canvas: tuple[int, int] | None = None) -> Edit:
    """A Zoom Out edit by `factor` (a number, or as typed: "1.5"), onto a `canvas` of a new shape or one of
    the image's. A factor of 1 changes something only with a new shape (see `check_edit`)."""
    if isinstance(factor, str):
        try:
            factor = float(factor.strip().removesuffix("x"))
        except ValueError:
            raise RequestError(f"The zoom factor is a number such as 1.5, not {factor.strip()!r}.") from None
    low, high = ZOOM_RANGE
    if not low <= factor <= high:
        raise RequestError(f"The zoom factor must be from {low:g} to {high:g} (got {factor:g}).")
    return Edit("zoom", factor=float(factor), canvas=canvas)


def reshapes(prompt: str) -> bool:
    """Whether a Remix prompt gives --ar, so that a zoom takes that shape."""
    return any(flag.canonical == "ar" for flag in split_prompt(prompt)[1])


def pan(direction: str) -> Edit:
    try:
        return Edit("pan", direction=Direction(direction.strip().lower()))
    except ValueError:
        names = ", ".join(d.value for d in Direction)
        raise RequestError(f"A pan goes {names}; not {direction!r}.") from None


def square() -> Edit:
    return Edit("square")


# ---- geometry --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where things go on the new canvas: the (resized) source at `source`; `region` is what to generate
    when it is a rectangle inside the source (Vary Region), None when it is everything around `source`."""

    width: int
    height: int
    source: Box
    region: Box | None = None


def fits(width: int, height: int, native: int, multiple: int) -> bool:
    """Whether a canvas of this size needs no shrinking: within the pixel budget, sides on the multiple."""
    return width * height <= native * native and not width % multiple and not height % multiple


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, -(-round(value) // multiple) * multiple)


def _canvas(width: int, height: int, native: int, multiple: int) -> tuple[int, int]:
    """`width` x `height` as it is, or the closest size of that shape the family makes within its budget."""
    if fits(width, height, native, multiple):
        return width, height
    return size_for_aspect(width, height, native, multiple)


def _fitted(width: int, height: int, inside: tuple[int, int]) -> tuple[int, int]:
    """width x height scaled (down or up) to fit `inside`, keeping the shape."""
    scale = min(inside[0] / width, inside[1] / height)
    return min(inside[0], max(1, round(width * scale))), min(inside[1], max(1, round(height * scale)))


ZOOM_OF_ONE = (
    "A zoom factor of 1 leaves the image as it is: zoom out more, or give the prompt a new --ar (with Remix)."
)


def check_edit(edit: Edit, width: int, height: int, *, reshaped: bool = False) -> None:
    """RequestError for an edit that would change nothing of a `width` x `height` image: Make Square of
    a square one, a zoom by 1 that keeps the shape (`reshaped`: a new --ar is coming). Needs no model, so
    a front end can answer at once."""
    if edit.kind == "square" and width == height:
        raise RequestError("This image is square already; Make Square is for wide or tall images.")
    if edit.kind == "zoom" and edit.factor == ZOOM_RANGE[0] and edit.canvas is None and not reshaped:
        raise RequestError(ZOOM_OF_ONE)


def layout(edit: Edit, width: int, height: int, native: int, multiple: int) -> Layout:
    """Where the `width` x `height` source goes and what is generated, for a family of `native` side and
    size `multiple`. RequestError for an edit that would change nothing (Make Square on a square image)."""
    if edit.kind == "region":
        assert edit.box is not None
        x, y, w, h = edit.box
        left, top = round(width * x / 100), round(height * y / 100)
        right, bottom = round(width * (x + w) / 100), round(height * (y + h) / 100)
        if right <= left or bottom <= top:
            raise RequestError(f"The region {x:g},{y:g},{w:g},{h:g} is under one pixel of this image.")
        whole = Box(0, 0, width, height)
        return Layout(width, height, whole, Box(left, top, right - left, bottom - top))
    if edit.kind == "zoom":
        assert edit.factor is not None
        canvas = edit.canvas or _canvas(width, height, native, multiple)
        inner = _fitted(width, height, (round(canvas[0] / edit.factor), round(canvas[1] / edit.factor)))
        if inner == canvas:
            raise RequestError(ZOOM_OF_ONE)
        return _centred(canvas, inner)
    if edit.kind == "square":
        check_edit(edit, width, height)
        side = max(width, height)
        canvas = (
            (side, side) if fits(side, side, native, multiple) else size_for_aspect(1, 1, native, multiple)
        )
        return _centred(canvas, _fitted(width, height, canvas))
    if edit.kind == "pan":
        assert edit.direction is not None
        sideways = edit.direction in (Direction.LEFT, Direction.RIGHT)
        wanted = (
            (_round_up(width * (1 + PAN_SHARE), multiple), height)
            if sideways
            else (width, _round_up(height * (1 + PAN_SHARE), multiple))
        )
        canvas = _canvas(*wanted, native, multiple)
        inner = _fitted(width, height, canvas)
        left = canvas[0] - inner[0] if edit.direction is Direction.LEFT else 0
        top = canvas[1] - inner[1] if edit.direction is Direction.UP else 0
        if not sideways:
            left = (canvas[0] - inner[0]) // 2
        else:
            top = (canvas[1] - inner[1]) // 2
        return Layout(*canvas, Box(left, top, *inner))
    raise ValueError(f"unknown edit {edit.kind!r}")


def _centred(canvas: tuple[int, int], inner: tuple[int, int]) -> Layout:
    left, top = (canvas[0] - inner[0]) // 2, (canvas[1] - inner[1]) // 2
    return Layout(*canvas, Box(left, top, *inner))


def feather_width(width: int, height: int) -> int:
    return max(2, round(min(width, height) * FEATHER_SHARE))


def mask(plan: Layout) -> Image.Image:
    """The mask of `plan` ("L"): 255 where the model generates, 0 where the source's pixels stay, and a
    ramp over `feather_width` pixels on the kept side of the border, where the two are blended."""
    feather = feather_width(plan.width, plan.height)
    ys, xs = np.mgrid[0 : plan.height, 0 : plan.width]
    if plan.region is not None:  # a rectangle to generate: distance from it, outwards
        box = plan.region
        dx = np.maximum(np.maximum(box.left - xs, xs - (box.right - 1)), 0)
        dy = np.maximum(np.maximum(box.top - ys, ys - (box.bottom - 1)), 0)
        distance = np.hypot(dx, dy)
    else:  # everything around the source: distance into the source from each edge that borders new pixels
        box = plan.source
        inside = (xs >= box.left) & (xs < box.right) & (ys >= box.top) & (ys < box.bottom)
        depths = [
            depth + 1
            for depth, borders in (
                (xs - box.left, box.left > 0),
                (box.right - 1 - xs, box.right < plan.width),
                (ys - box.top, box.top > 0),
                (box.bottom - 1 - ys, box.bottom < plan.height),
            )
            if borders
        ]
        nearest = np.minimum.reduce(depths) if depths else np.full(xs.shape, np.inf)
        distance = np.where(inside, nearest, 0)
    alpha = np.clip(1 - distance / (feather + 1), 0, 1)
    return Image.fromarray(np.round(alpha * 255).astype(np.uint8), "L")


def canvas_image(source: Image.Image, plan: Layout) -> Image.Image:
    """The source resized into `plan.source`, its edge pixels stretched over the rest of the canvas."""
    box = plan.source
    inner = source.convert("RGB")
    if inner.size != (box.width, box.height):
        inner = inner.resize((box.width, box.height), Image.Resampling.LANCZOS)
    padding = (
        (box.top, plan.height - box.bottom),
        (box.left, plan.width - box.right),
        (0, 0),
    )
    return Image.fromarray(np.pad(np.asarray(inner), padding, mode="edge"), "RGB")


def paste_back(generated: Image.Image, source: Image.Image, mask_image: Image.Image) -> Image.Image:
    """`generated` where the mask is white, `source` where it is black, blended in between: the kept
    pixels come out exactly as they went in."""
    return Image.composite(generated.convert("RGB"), source.convert("RGB"), mask_image.convert("L"))


def edit_request(
    parent: GenerationRequest,
    image_png: bytes,
    edit: Edit,
    *,
    seed: int,
    native: int,
    multiple: int,
    drawn_png: bytes | None = None,
) -> GenerationRequest:
    """Four inpainted images of `edit` on `image_png` (one of `parent`'s images): the canvas and mask
    as the request's source and mask images, at the canvas's size. A drawn region (`edit.drawn`) takes
    its mask from `drawn_png`. Decodes and encodes PNGs: call it off the event loop."""
    source = decode_image(image_png)
    if edit.drawn is not None:
        if drawn_png is None:
            raise ValueError("a drawn region needs its mask")
        plan = Layout(source.width, source.height, Box(0, 0, source.width, source.height))
        mask_image = drawn_mask(drawn_png, source.width, source.height)
    else:
        plan = layout(edit, source.width, source.height, native, multiple)
        mask_image = mask(plan)
    return parent.replace(
        mode=Mode.INPAINT,
        source_image=encode_png(canvas_image(source, plan)),
        mask_image=encode_png(mask_image),
        width=plan.width,
        height=plan.height,
        seed=seed,
        strength=1.0,
        num_images=4,
    )
