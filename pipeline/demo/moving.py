"""The demo world in motion: one shape moving, falling, bouncing, growing or spinning, as frames with a caption.

A motion is a similarity transform of the first frame about the shape's centre at each moment τ in [0, 1]
of the clip (a shift, a scale and a clockwise turn), scaled by the motion amount (0..1, Kaika's "low"
≈ 0.3 and "high" ≈ 0.8). `render_frames` draws every frame from the scene's own geometry, so a frame is
exactly the moved shape, never a resampled picture. Some colour/shape/background/motion combinations
never appear in training (`is_held_out_motion`) so evaluation asks for clips the motion model has not seen.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace

from PIL import Image

from pipeline.demo.scenes import (
    ANCHORS,
    BACKGROUND_WORDS,
    COLOR_WORDS,
    COLORS,
    IMAGE_SIZE,
    POSITION_PHRASES,
    RADIUS,
    SHAPE_WORDS,
    SHAPES,
    Scene,
    Shape,
    caption,
    random_single,
    render,
)

# Distances in pixels of the 64-pixel frame, for a motion amount of 1 over the whole clip.
TRAVEL = 40.0  # moving left/right/up/down, and the height a falling shape drops
BOUNCE = 28.0  # height of each of the two bounces
GROWTH = 1.0  # growing ends (1 + GROWTH * amount) times as big; shrinking as much smaller
TURN = math.pi  # spinning turns half a turn (clockwise)

MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("moving left", "sliding left", "going left", "drifting left", "rolling left"),
    "right": ("moving right", "sliding right", "going right", "drifting right", "rolling right"),
    "up": ("moving up", "rising", "floating up", "going up", "drifting up"),
    "down": ("moving down", "sinking", "going down", "drifting down"),
    "falling": ("falling", "dropping", "falling down"),
    "bouncing": ("bouncing", "hopping", "bouncing up and down"),
    "growing": ("growing", "getting bigger", "expanding"),
    "shrinking": ("shrinking", "getting smaller"),
    "spinning": ("spinning", "rotating", "turning", "spinning around"),
}
MOTIONS = tuple(MOTION_WORDS)
# What a prompt that names no motion gets.
DEFAULT_MOTION = "bouncing"
# Motions along one axis, judged by where the shape's centre goes: (axis, sign) with y pointing down.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (0, -1),
    "right": (0, 1),
    "up": (1, -1),
    "down": (1, 1),
    "falling": (1, 1),
}
# Where a shape starts so that the motion keeps it in the frame (the place a text-to-video first frame asks for).
START_PLACES: dict[str, str] = {
    "left": "right",
    "right": "left",
    "up": "bottom",
    "down": "top",
    "falling": "top",
    "bouncing": "bottom",
    "growing": "center",
    "shrinking": "center",
    "spinning": "center",
}

MOVING_TEMPLATES = (
    "a {color} {shape} {motion} on a {bg} background",
    "a {color} {shape} {motion}, {bg} {backdrop}",
    "a {bg} {backdrop} with a {color} {shape} {motion}",
    "{color} {shape} {motion} against a {bg} {backdrop}",
    "a {color} {shape} {motion}",
    "a {size}{color} {shape}{pos} {motion} on a {bg} background",
)


@dataclass(frozen=True)
class Move:
    """Where the shape is at one moment, relative to the first frame: shift (pixels of 64), scale, turn."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    angle: float = 0.0  # clockwise, radians


@dataclass(frozen=True)
class MovingScene:
    scene: Scene  # the first frame; one shape
    motion: str
    amount: float = 0.5

    @property
    def shape(self) -> Shape:
        return self.scene.shapes[0]


def move_at(motion: str, amount: float, moment: float) -> Move:
    """The transform of the first frame at `moment` (0: first frame, 1: last) of a clip of `motion`."""
    if motion in DIRECTIONS:
        axis, sign = DIRECTIONS[motion]
        distance = sign * TRAVEL * amount * (moment**2 if motion == "falling" else moment)
        return Move(dx=distance, dy=0.0) if axis == 0 else Move(dx=0.0, dy=distance)
    if motion == "bouncing":
        within = (2 * moment) % 1.0  # two hops; each a parabola from the ground up and back
        return Move(dy=-BOUNCE * amount * 4 * within * (1 - within))
    if motion == "growing":
        return Move(scale=(1 + GROWTH * amount) ** moment)
    if motion == "shrinking":
        return Move(scale=(1 + GROWTH * amount) ** -moment)
    if motion == "spinning":
        return Move(angle=TURN * amount * moment)
    raise ValueError(f"unknown motion {motion!r}")


def moments(frames: int) -> list[float]:
    return [index / max(frames - 1, 1) for index in range(frames)]


def frame_scene(moving: MovingScene, moment: float) -> Scene:
    move = move_at(moving.motion, moving.amount, moment)
    shape = moving.shape
    moved = replace(
        shape,
        x=shape.x + move.dx,
        y=shape.y + move.dy,
        radius=shape.radius * move.scale,
        angle=shape.angle + move.angle,
    )
    return Scene(moving.scene.background, (moved,))


def render_frames(moving: MovingScene, frames: int = 8, size: int = IMAGE_SIZE) -> list[Image.Image]:
    return [render(frame_scene(moving, moment), size) for moment in moments(frames)]


def is_held_out_motion(moving: MovingScene) -> bool:
    """Colour/shape/background/motion combinations kept out of training, for evaluation on unseen clips."""
    shape = moving.shape
    return (
        COLORS.index(shape.color)
        + 2 * SHAPES.index(shape.kind)
        + 3 * COLORS.index(moving.scene.background)
        + 5 * MOTIONS.index(moving.motion)
    ) % 8 == 0


def random_start(rng: random.Random) -> Scene:
    """A first frame of a training clip: a single-shape scene, half the time placed anywhere in the frame so
    the model learns to find the shape rather than the five anchors."""
    scene = random_single(rng)
    if rng.random() < 0.5:
        shape = scene.shapes[0]
        scene = Scene(
            scene.background, (replace(shape, x=rng.uniform(12, 52), y=rng.uniform(12, 52), position=None),)
        )
    return scene


def training_clip(rng: random.Random, scene: Scene) -> MovingScene:
    """A clip from `scene` with a motion that is not held out for it, and an amount between 0.1 and 1."""
    motions = [m for m in MOTIONS if not is_held_out_motion(MovingScene(scene, m))]
    return MovingScene(scene, rng.choice(motions), rng.uniform(0.1, 1.0))


def random_moving(rng: random.Random, held_out: bool = False) -> MovingScene:
    """A training clip, or with `held_out` a held-out one."""
    while True:
        moving = MovingScene(random_start(rng), rng.choice(MOTIONS), rng.uniform(0.1, 1.0))
        if is_held_out_motion(moving) == held_out:
            return moving


def evaluation_moving(rng: random.Random, motion: str, amount: float = 0.5) -> MovingScene:
    """A held-out clip of `motion` that stays in the frame: the shape starts at the motion's start place,
    at a size the motion keeps whole (spinning: a shape whose turn shows, not a circle or ring)."""
    place = START_PLACES[motion]
    x, y = ANCHORS[place]
    kinds = ("square", "triangle", "star") if motion == "spinning" else SHAPES
    size = {"growing": "small", "shrinking": "large"}.get(motion)
    while True:
        background = rng.choice(COLORS)
        color = rng.choice([c for c in COLORS if c != background])
        shape = Shape(
            rng.choice(kinds),
            color,
            x + rng.uniform(-2, 2),
            y + rng.uniform(-2, 2),
            rng.uniform(*RADIUS[size or "medium"]),
            place,
            size,
        )
        moving = MovingScene(Scene(background, (shape,)), motion, amount)
        if is_held_out_motion(moving):
            return moving


def moving_caption(
    moving: MovingScene, rng: random.Random, synonym_rate: float = 0.35, alone_rate: float = 0.12
) -> str:
    """One of many ways to ask for the clip; `alone_rate` of the time only the motion (a remix prompt such as
    "moving left"), and for the default motion sometimes a plain scene caption that names no motion."""

    def word(options: tuple[str, ...]) -> str:
        return options[0] if len(options) == 1 or rng.random() >= synonym_rate else rng.choice(options[1:])

    motion = word(MOTION_WORDS[moving.motion])
    if moving.motion == DEFAULT_MOTION and alone_rate and rng.random() < 0.3:
        return caption(moving.scene, rng, synonym_rate)
    if rng.random() < alone_rate:
        return motion
    shape = moving.shape
    template = rng.choice(MOVING_TEMPLATES)
    return template.format(
        size=word(("small", "tiny", "little") if shape.size == "small" else ("large", "big", "huge")) + " "
        if shape.size
        else "",
        color=word(COLOR_WORDS[shape.color]),
        shape=word(SHAPE_WORDS[shape.kind]),
        pos=" " + rng.choice(POSITION_PHRASES[shape.position]) if shape.position else "",
        motion=motion,
        bg=word(COLOR_WORDS[moving.scene.background]),
        backdrop=rng.choice(BACKGROUND_WORDS),
    )


_MOTION_PATTERN = re.compile(
    r"\s*\b("
    + "|".join(
        re.escape(phrase) for phrase in sorted({p for ps in MOTION_WORDS.values() for p in ps}, key=len)[::-1]
    )
    + r")\b",
    re.IGNORECASE,
)


_SIZE_PATTERN = re.compile(r"\b(small|tiny|little|large|big|huge)\b", re.IGNORECASE)
_COLOR_PATTERN = re.compile(
    r"\b(" + "|".join(word for words in COLOR_WORDS.values() for word in words) + r")\b", re.IGNORECASE
)


def motion_named(prompt: str) -> str | None:
    """The motion a prompt's words name (its first motion phrase), or None."""
    found = _MOTION_PATTERN.search(prompt)
    if found is None:
        return None
    phrase = found.group(1).lower()
    return next(motion for motion, phrases in MOTION_WORDS.items() if phrase in phrases)


def first_frame_prompt(prompt: str) -> str:
    """The still picture to draw before animating a text-to-video prompt: the prompt without its motion words,
    and, when it names no place, with the place the motion starts from ("a red circle moving right on a blue
    background" → "a red circle on the left on a blue background"), so the shape has room to move."""
    motion = motion_named(prompt)
    if motion is None:
        return prompt
    names_a_place = any(
        phrase in prompt.lower() for phrases in POSITION_PHRASES.values() for phrase in phrases[:3]
    )
    place = "" if names_a_place else " " + POSITION_PHRASES[START_PLACES[motion]][0]
    still = _MOTION_PATTERN.sub(place, prompt, count=1)
    if motion == "growing" and not _SIZE_PATTERN.search(still):
        # A shape that grows starts small, so that it still fits the frame once grown.
        still = _COLOR_PATTERN.sub(lambda found: "small " + found.group(0), still, count=1)
    return re.sub(r"\s+,", ",", re.sub(r"\s{2,}", " ", still)).strip(" ,") or prompt
