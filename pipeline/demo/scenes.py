"""The demo model's world: coloured shapes on a plain background, drawn and captioned from a seed.

Nothing is read from disk: a scene is a few numbers, `render` draws it, `caption` describes it in one of
many phrasings with synonyms. Some colour/shape/background combinations never appear in training
(`is_held_out`) so evaluation can ask for prompts the model has not seen.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "green": (30, 165, 60),
    "blue": (35, 70, 225),
    "yellow": (245, 215, 40),
    "purple": (135, 45, 175),
    "orange": (250, 135, 20),
    "white": (245, 245, 240),
    "black": (20, 20, 25),
}
COLORS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle", "star", "ring")
POSITIONS = ("left", "right", "top", "bottom", "center")
PAIRS = (("left", "right"), ("top", "bottom"))

# Where an object named with a position word sits (x, y) in a 64x64 image, before a little jitter.
ANCHORS: dict[str, tuple[float, float]] = {
    "left": (18, 32),
    "right": (46, 32),
    "top": (32, 18),
    "bottom": (32, 46),
    "center": (32, 32),
}
RADIUS = {"small": (8.0, 10.0), "medium": (11.0, 14.0), "large": (16.0, 19.0), "pair": (8.0, 11.0)}

COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "emerald", "lime"),
    "blue": ("blue", "navy", "azure"),
    "yellow": ("yellow", "golden"),
    "purple": ("purple", "violet"),
    "orange": ("orange",),
    "white": ("white",),
    "black": ("black",),
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
    "ring": ("ring", "donut", "hoop"),
}
SIZE_WORDS = {"small": ("small", "tiny", "little"), "large": ("large", "big", "huge")}
POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "on the left side", "left"),
    "right": ("on the right", "at the right", "on the right side", "right"),
    "top": ("at the top", "on top", "at the top side", "top"),
    "bottom": ("at the bottom", "on the bottom", "at the bottom side", "bottom"),
    "center": ("in the center", "in the middle", "at the center", "centered"),
}
BACKGROUND_WORDS = ("background", "backdrop")

SINGLE_TEMPLATES = (
    "a {size}{color} {shape}{pos} on a {bg} background",
    "{size}{color} {shape}{pos}, {bg} {backdrop}",
    "a {bg} {backdrop} with a {size}{color} {shape}{pos}",
    "a {size}{color} {shape}{pos} against a {bg} {backdrop}",
    "{bg} {backdrop}, {size}{color} {shape}{pos}",
    "a picture of a {size}{color} {shape}{pos} on {bg}",
    "{size}{color} {shape}{pos} on a {bg} {backdrop}",
)
PAIR_TEMPLATES = (
    "a {c1} {s1} {p1} and a {c2} {s2} {p2} on a {bg} background",
    "{c1} {s1} {p1}, {c2} {s2} {p2}, {bg} {backdrop}",
    "a {bg} {backdrop} with a {c1} {s1} {p1} and a {c2} {s2} {p2}",
    "a {c1} {s1} {p1} and a {c2} {s2} {p2} against a {bg} {backdrop}",
    "{bg} {backdrop}, a {c1} {s1} {p1} and a {c2} {s2} {p2}",
)


@dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    x: float
    y: float
    radius: float
    position: str | None = None  # the position word the caption may use
    size: str | None = None  # "small" / "large" when the caption may say so
    angle: float = 0.0  # clockwise turn in radians about (x, y): a spinning shape's frames


@dataclass(frozen=True)
class Scene:
    background: str
    shapes: tuple[Shape, ...] = field(default_factory=tuple)

    @property
    def is_pair(self) -> bool:
        return len(self.shapes) == 2


def is_held_out(scene: Scene) -> bool:
    """Combinations kept out of training, for evaluation on unseen prompts."""
    bg = COLORS.index(scene.background)
    if scene.is_pair:
        first, second = (COLORS.index(shape.color) for shape in scene.shapes)
        low, high = sorted((first, second))
        return (low + 3 * high + 5 * bg) % 8 == 0
    only = scene.shapes[0]
    return (COLORS.index(only.color) + 2 * SHAPES.index(only.kind) + 3 * bg) % 8 == 0


def _jitter(rng: random.Random, amount: float) -> float:
    return rng.uniform(-amount, amount)


def random_single(rng: random.Random) -> Scene:
    background = rng.choice(COLORS)
    color = rng.choice([c for c in COLORS if c != background])
    kind = rng.choice(SHAPES)
    size = rng.choice(("small", "large", None, None))
    position = rng.choice((*POSITIONS, None))
    radius = rng.uniform(*RADIUS[size or "medium"])
    if position is None:
        x, y = rng.choice(list(ANCHORS.values()))
    else:
        x, y = ANCHORS[position]
    shape = Shape(kind, color, x + _jitter(rng, 3), y + _jitter(rng, 3), radius, position, size)
    return Scene(background, (shape,))


def random_pair(rng: random.Random) -> Scene:
    background = rng.choice(COLORS)
    first, second = rng.sample([c for c in COLORS if c != background], 2)
    places = rng.choice(PAIRS)
    shapes = tuple(
        Shape(
            rng.choice(SHAPES),
            color,
            ANCHORS[place][0] - (2 if place == "left" else -2 if place == "right" else 0) + _jitter(rng, 2),
            ANCHORS[place][1] - (2 if place == "top" else -2 if place == "bottom" else 0) + _jitter(rng, 2),
            rng.uniform(*RADIUS["pair"]),
            place,
        )
        for color, place in zip((first, second), places, strict=True)
    )
    return Scene(background, shapes)


def random_scene(rng: random.Random, pair_fraction: float = 0.35, held_out: bool = False) -> Scene:
    """A training scene (never a held-out combination), or with `held_out` only held-out ones."""
    while True:
        scene = random_pair(rng) if rng.random() < pair_fraction else random_single(rng)
        if is_held_out(scene) == held_out:
            return scene


def shape_polygon(
    kind: str, x: float, y: float, radius: float, angle: float = 0.0
) -> list[tuple[float, float]] | None:
    """Vertices of the straight-edged shapes, their bounding box centred on (x, y), turned clockwise by
    `angle` radians about (x, y); None for round ones."""
    if kind == "square":
        half = radius * 0.85
        points = [(-half, -half), (half, -half), (half, half), (-half, half)]
    elif kind == "triangle":
        outer = radius * 1.2
        angles = [-90, 30, 150]
        points = [(math.cos(math.radians(a)) * outer, math.sin(math.radians(a)) * outer) for a in angles]
    elif kind == "star":
        outer, inner = radius * 1.2, radius * 1.2 * 0.45
        points = [
            (
                math.cos(math.radians(-90 + 36 * i)) * (outer if i % 2 == 0 else inner),
                math.sin(math.radians(-90 + 36 * i)) * (outer if i % 2 == 0 else inner),
            )
            for i in range(10)
        ]
    else:
        return None
    top = min(py for _, py in points)
    bottom = max(py for _, py in points)
    shift = -(top + bottom) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    # y points down, so this turn is clockwise on screen.
    return [(x + px * cos - (py + shift) * sin, y + px * sin + (py + shift) * cos) for px, py in points]


def draw_shape(
    draw: ImageDraw.ImageDraw,
    kind: str,
    x: float,
    y: float,
    radius: float,
    fill,
    hole_fill,
    angle: float = 0.0,
) -> None:
    polygon = shape_polygon(kind, x, y, radius, angle)
    if polygon is not None:
        draw.polygon(polygon, fill=fill)
        return
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    if kind == "ring":
        inner = radius * 0.55
        draw.ellipse((x - inner, y - inner, x + inner, y + inner), fill=hole_fill)


_SUPERSAMPLE = 4


def render(scene: Scene, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw at 4x and downsample, so edges are anti-aliased the same way every time."""
    scale = _SUPERSAMPLE * size / IMAGE_SIZE
    big = Image.new("RGB", (size * _SUPERSAMPLE,) * 2, PALETTE[scene.background])
    draw = ImageDraw.Draw(big)
    for shape in scene.shapes:
        draw_shape(
            draw,
            shape.kind,
            shape.x * scale,
            shape.y * scale,
            shape.radius * scale,
            PALETTE[shape.color],
            PALETTE[scene.background],
            shape.angle,
        )
    return big.resize((size, size), Image.Resampling.BOX)


def render_array(scenes: list[Scene]) -> np.ndarray:
    """Scenes as a float32 batch in [-1, 1], channels first, as the autoencoder takes them."""
    pixels = np.stack([np.asarray(render(scene), dtype=np.float32) for scene in scenes])
    return (pixels / 127.5 - 1.0).transpose(0, 3, 1, 2)


def caption(scene: Scene, rng: random.Random, synonym_rate: float = 0.35) -> str:
    """One of many ways to say what the scene shows."""

    def word(options: tuple[str, ...]) -> str:
        return options[0] if len(options) == 1 or rng.random() >= synonym_rate else rng.choice(options[1:])

    backdrop = rng.choice(BACKGROUND_WORDS)
    if scene.is_pair:
        first, second = scene.shapes
        if rng.random() < 0.5:
            first, second = second, first
        return rng.choice(PAIR_TEMPLATES).format(
            c1=word(COLOR_WORDS[first.color]),
            s1=word(SHAPE_WORDS[first.kind]),
            p1=rng.choice(POSITION_PHRASES[first.position]),
            c2=word(COLOR_WORDS[second.color]),
            s2=word(SHAPE_WORDS[second.kind]),
            p2=rng.choice(POSITION_PHRASES[second.position]),
            bg=word(COLOR_WORDS[scene.background]),
            backdrop=backdrop,
        )
    (shape,) = scene.shapes
    return rng.choice(SINGLE_TEMPLATES).format(
        size=word(SIZE_WORDS[shape.size]) + " " if shape.size else "",
        color=word(COLOR_WORDS[shape.color]),
        shape=word(SHAPE_WORDS[shape.kind]),
        pos=" " + rng.choice(POSITION_PHRASES[shape.position]) if shape.position else "",
        bg=word(COLOR_WORDS[scene.background]),
        backdrop=backdrop,
    )


def vocabulary() -> list[str]:
    """Every word a caption can contain, in a fixed order."""
    texts = [*SINGLE_TEMPLATES, *PAIR_TEMPLATES, *BACKGROUND_WORDS]
    for table in (COLOR_WORDS, SHAPE_WORDS, SIZE_WORDS, POSITION_PHRASES):
        for options in table.values():
            texts.extend(options)
    words: list[str] = []
    for text in texts:
        for token in text.replace(",", " , ").split():
            if not token.startswith("{") and token not in words:
                words.append(token)
    return words
