"""Reads a demo-style image from its pixels alone: background colour, objects, their colour, shape and place.

Colours are the nearest palette colour; objects are the connected regions that differ from the
background; a shape is the outline template (drawn with the scenes' own geometry) that best overlaps
the region once stretched to its bounding box; a place is the nearest position anchor.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from pipeline.demo.scenes import ANCHORS, COLORS, PALETTE, SHAPES, Scene, draw_shape

_PALETTE = np.array([PALETTE[name] for name in COLORS], dtype=np.float32)
# Half the distance between the two closest palette colours: further than this from the background is "object".
_OBJECT_DISTANCE = 55.0
_MIN_AREA = 8
# The largest drawn shape spans 46 of 64 pixels; a shape must overlap its best template this much.
_MAX_EXTENT = 0.75
_MIN_OVERLAP = 0.6


@dataclass(frozen=True)
class Region:
    color: str
    shape: str
    position: str
    area: int
    x: float
    y: float


@dataclass(frozen=True)
class Reading:
    background: str
    regions: tuple[Region, ...]  # largest first


@dataclass(frozen=True)
class Verdict:
    background: bool
    color: bool | None = None  # single-object scenes
    shape: bool | None = None
    position: bool | None = None  # only when the prompt named a position
    both_colors: bool | None = None  # two-object scenes: each named colour in its named place


def _labels(pixels: np.ndarray) -> np.ndarray:
    distances = ((pixels[:, :, None, :] - _PALETTE[None, None]) ** 2).sum(-1)
    return distances.argmin(-1)


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected regions of `mask` as boolean masks, largest first."""
    seen = np.zeros_like(mask, dtype=bool)
    height, width = mask.shape
    regions = []
    for start_y, start_x in zip(*np.nonzero(mask), strict=True):
        if seen[start_y, start_x]:
            continue
        stack, members = [(start_y, start_x)], []
        seen[start_y, start_x] = True
        while stack:
            y, x = stack.pop()
            members.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        region = np.zeros_like(mask, dtype=bool)
        ys, xs = zip(*members, strict=True)
        region[list(ys), list(xs)] = True
        regions.append(region)
    return sorted(regions, key=lambda r: -int(r.sum()))


# A turned shape looks the same again after this many degrees (round ones at any turn).
_SYMMETRY = {"square": 90, "triangle": 120, "star": 72}
_TURN_STEP = 6


@cache
def _template(kind: str, degrees: int = 0) -> Image.Image:
    canvas = Image.new("L", (300, 300), 0)
    draw_shape(ImageDraw.Draw(canvas), kind, 150, 150, 100, 255, 0, math.radians(degrees))
    return canvas.crop(canvas.getbbox())


def _templates(turned: bool) -> list[tuple[str, int]]:
    if not turned:
        return [(kind, 0) for kind in SHAPES]
    return [(kind, degrees) for kind in SHAPES for degrees in range(0, _SYMMETRY.get(kind, 1), _TURN_STEP)]


def classify_shape(region: np.ndarray, turned: bool = False) -> str:
    """The best-fitting shape kind, or "unclear" for a blob too big or too unlike any shape to name.
    `turned`: the shape may be turned by any angle (a spinning shape's frames), not only upright."""
    ys, xs = np.nonzero(region)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if max(bottom - top, right - left) > _MAX_EXTENT * region.shape[0]:
        return "unclear"
    crop = region[top:bottom, left:right]
    best, best_iou = SHAPES[0], -1.0
    for kind, degrees in _templates(turned):
        template = (
            np.asarray(
                _template(kind, degrees).resize((right - left, bottom - top), Image.Resampling.BILINEAR)
            )
            >= 128
        )
        iou = (template & crop).sum() / max((template | crop).sum(), 1)
        if iou > best_iou:
            best, best_iou = kind, iou
    return best if best_iou >= _MIN_OVERLAP else "unclear"


def _nearest_anchor(x: float, y: float, size: int) -> str:
    scale = size / 64
    return min(
        ANCHORS, key=lambda name: (ANCHORS[name][0] * scale - x) ** 2 + (ANCHORS[name][1] * scale - y) ** 2
    )


def _border_label(labels: np.ndarray) -> int:
    border = np.concatenate(
        [labels[:2].ravel(), labels[-2:].ravel(), labels[:, :2].ravel(), labels[:, -2:].ravel()]
    )
    return Counter(border.tolist()).most_common(1)[0][0]


def _away_from(pixels: np.ndarray, background: int) -> np.ndarray:
    return np.sqrt(((pixels - _PALETTE[background]) ** 2).sum(-1)) > _OBJECT_DISTANCE


def object_mask(image: Image.Image) -> np.ndarray:
    """The pixels that are not the background (the palette colour most of the border shows)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return _away_from(pixels, _border_label(_labels(pixels)))


def read(image: Image.Image, within: np.ndarray | None = None, turned: bool = False) -> Reading:
    """What the image shows; `within` limits the objects to a boolean area of the image; `turned` names
    shapes that may be turned by any angle."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    labels = _labels(pixels)
    background = _border_label(labels)
    mask = _away_from(pixels, background)
    if within is not None:
        mask &= within
    regions = []
    # Specks below the smallest area of a 64x64 drawing's object, scaled to this image's size, are noise.
    min_area = _MIN_AREA * max(1.0, pixels.shape[0] * pixels.shape[1] / (64 * 64))
    for region in _components(mask):
        area = int(region.sum())
        if area < min_area:
            break
        # The colour of the region's inside: its edge pixels blend into the background.
        inner = region.copy()
        inner[1:-1, 1:-1] &= region[:-2, 1:-1] & region[2:, 1:-1] & region[1:-1, :-2] & region[1:-1, 2:]
        core = labels[inner] if inner.sum() >= 4 else labels[region]
        color = COLORS[Counter(core.tolist()).most_common(1)[0][0]]
        ys, xs = np.nonzero(region)
        # The middle of the bounding box, which is where scenes place a shape (a triangle's mass sits lower).
        x, y = float(xs.min() + xs.max() + 1) / 2, float(ys.min() + ys.max() + 1) / 2
        regions.append(
            Region(color, classify_shape(region, turned), _nearest_anchor(x, y, pixels.shape[1]), area, x, y)
        )
    return Reading(COLORS[background], tuple(regions))


def judge(scene: Scene, image: Image.Image) -> Verdict:
    """Does `image` show what a prompt made from `scene` asked for?"""
    whole = read(image)
    background_ok = whole.background == scene.background
    if scene.is_pair:
        height, width = image.size[1], image.size[0]
        ys, xs = np.mgrid[0:height, 0:width]
        halves = {
            "left": xs < width / 2,
            "right": xs >= width / 2,
            "top": ys < height / 2,
            "bottom": ys >= height / 2,
        }
        both = True
        for shape in scene.shapes:
            found = read(image, halves[shape.position]).regions
            both &= bool(found) and found[0].color == shape.color
        return Verdict(background=background_ok, both_colors=both)
    (wanted,) = scene.shapes
    if not whole.regions:
        return Verdict(
            background=background_ok, color=False, shape=False, position=False if wanted.position else None
        )
    found = whole.regions[0]
    return Verdict(
        background=background_ok,
        color=found.color == wanted.color,
        shape=found.shape == wanted.kind,
        position=(found.position == wanted.position) if wanted.position else None,
    )
