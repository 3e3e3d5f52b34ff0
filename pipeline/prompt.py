"""The Midjourney-style prompt syntax, parsed into a `GenerationRequest` by one pure function.

    a lighthouse at dusk --ar 16:9 --seed 7 --no boats, people --steps 30 --stylize 200 --chaos 40

Flags come after the description; `--no` takes the rest of the words up to the next flag, `--tile`,
`--draft`, `--fast` and `--relax` take no value, the others take exactly one value. An em dash (what phones
turn `--` into) counts as `--`.
`parse_prompts` also makes several jobs of one prompt: `--repeat N`, and permutations
(`a {red, blue} bird` is one job per option; a backslash before a brace or comma keeps it as text).
A description may weigh its parts as Midjourney's multi-prompts do (`cat:: dog::0.5`; `prompt_parts`).
Used by both `kaika imagine` and the bot's `/imagine`.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pipeline.errors import RequestError
from pipeline.families import ModelFamily
from pipeline.request import MAX_IMAGE_WEIGHT, GenerationRequest, Limits, Mode, size_for_aspect

DEFAULT_LIMITS = Limits()
MAX_SEED = 2**32 - 1
MAX_STYLIZE = 1000
DEFAULT_STYLIZE = 100
MAX_CHAOS = 100
MAX_ASPECT_RATIO = 4.0  # wider than 4:1 (or taller than 1:4) leaves a model trained on squares
# --q (--quality) values, as Midjourney offers them: the share of the steps to run.
QUALITIES = (0.25, 0.5, 1.0, 2.0)
# How many jobs one prompt may start (--repeat x permutations) when the caller sets no other cap.
DEFAULT_MAX_JOBS = 4

# Each flag's canonical name, and the aliases users type.
FLAG_ALIASES: dict[str, str] = {
    "ar": "ar",
    "aspect": "ar",
    "seed": "seed",
    "no": "no",
    "steps": "steps",
    "stylize": "stylize",
    "s": "stylize",
    "chaos": "chaos",
    "c": "chaos",
    "model": "model",
    "q": "quality",
    "quality": "quality",
    "repeat": "repeat",
    "r": "repeat",
    "tile": "tile",
    "draft": "draft",
    "fast": "fast",
    "relax": "relax",
    "iw": "iw",
    "video": "video",
}
# Flags that take no value: giving one is their presence.
SWITCHES = frozenset({"tile", "draft", "fast", "relax", "video"})
KNOWN_FLAGS = (
    "--ar (--aspect), --seed, --no, --steps, --stylize (--s), --chaos (--c), --q (--quality), "
    "--repeat (--r), --tile, --draft, --fast, --relax, --iw, --video, --model"
)

_FLAG = re.compile(r"(?:^|\s)(?:--|—(?=\w))([^\s]*)")


class SeedSource(Protocol):
    def randrange(self, stop: int, /) -> int: ...


@dataclass(frozen=True)
class PromptDefaults:
    """Values used when the prompt does not say otherwise; None: the model family's own."""

    steps: int | None = None
    guidance: float | None = None  # at --stylize 100 (MODEL_GUIDANCE)
    stylize: int = 100
    chaos: int = 0
    num_images: int = 4


def stylize_to_guidance(stylize: int) -> float:
    """Classifier-free guidance for a --stylize value: 1.5 + 6 * cbrt(stylize / 100).

    Monotone increasing; 0 → 1.5 (barely guided), 100 (the default) → 7.5 (Stable Diffusion's
    usual scale), 250 → 9.64, 1000 → 14.43. The cube root keeps the top of the range below the
    scales where images burn out.
    """
    return round(1.5 + 6.0 * (stylize / 100) ** (1 / 3), 2)


def _guidance(stylize: int, family: ModelFamily | float) -> float:
    """--stylize as the model's guidance: its default at --stylize 100 (the usual 7.5 for SD 1.x), scaled
    as `stylize_to_guidance` scales 7.5; 0 stays 0 for models distilled to run without guidance."""
    default = family if isinstance(family, float | int) else family.default_guidance
    return round(default * stylize_to_guidance(stylize) / stylize_to_guidance(DEFAULT_STYLIZE), 2)


def parse_prompt(
    text: str,
    *,
    family: ModelFamily | Callable[[str | None], ModelFamily],
    defaults: PromptDefaults = PromptDefaults(),
    limits: Limits = DEFAULT_LIMITS,
    seed_source: SeedSource = random,  # type: ignore[assignment]
    models: Collection[str] | None = None,
    max_jobs: int = DEFAULT_MAX_JOBS,
) -> GenerationRequest:
    """Turn `/imagine` text into a validated txt2img request; raise `RequestError` naming the bad flag.

    `family` describes the model (or is a function of the `--model` name, None meaning the default
    model): its native size and size multiple turn --ar into a size, its defaults fill --steps and
    scale --stylize into its own guidance; `models` lists the names `--model` may take (None: any).
    Without `--seed`, the seed comes from `seed_source`. `--repeat` is checked but makes one request here;
    `parse_prompts` makes every job of a prompt.
    """
    return _parse_one(text, family, defaults, limits, seed_source, models, max_jobs).request


@dataclass(frozen=True)
class _Parsed:
    request: GenerationRequest
    repeat: int
    seed_given: bool


def parse_prompts(
    text: str,
    *,
    family: ModelFamily | Callable[[str | None], ModelFamily],
    defaults: PromptDefaults = PromptDefaults(),
    limits: Limits = DEFAULT_LIMITS,
    seed_source: SeedSource = random,  # type: ignore[assignment]
    models: Collection[str] | None = None,
    max_jobs: int = DEFAULT_MAX_JOBS,
) -> list[GenerationRequest]:
    """Every job `text` asks for: one per permutation (`a {red, blue} bird`), each `--repeat N` times.

    Raises `RequestError` when the prompt would make more than `max_jobs` jobs, before parsing any.
    Repeats of a prompt with `--seed` continue its seeds (the second job starts where the first one's
    images end), so each grid is new and all of them can be made again; without `--seed` each job draws
    its own.
    """
    texts = expand_permutations(text, max_jobs)
    parsed = [_parse_one(one, family, defaults, limits, seed_source, models, max_jobs) for one in texts]
    total = sum(one.repeat for one in parsed)
    if total > max_jobs:
        made = f"{len(texts)} permutations x --repeat" if len(texts) > 1 else "--repeat"
        raise RequestError(
            f"This prompt makes {total} jobs ({made}); one prompt may make at most {max_jobs}."
        )
    requests = []
    for one in parsed:
        request = one.request
        for copy in range(one.repeat):
            if copy:
                seed = (
                    (request.seed + copy * request.num_images) % (MAX_SEED + 1)
                    if one.seed_given
                    else seed_source.randrange(MAX_SEED + 1)
                )
                requests.append(request.replace(seed=seed))
            else:
                requests.append(request)
    return requests


def _parse_one(
    text: str,
    family: ModelFamily | Callable[[str | None], ModelFamily],
    defaults: PromptDefaults,
    limits: Limits,
    seed_source: SeedSource,
    models: Collection[str] | None,
    max_jobs: int,
) -> _Parsed:
    description, flags = _split_flags(text)
    values: dict[str, str] = {}
    typed_names: dict[str, str] = {}  # error messages use the name the user typed (--s, --stylize)
    for typed, canonical, value in flags:
        if canonical in values:
            raise RequestError(f"--{typed} is given twice; give it once.")
        values[canonical], typed_names[canonical] = value, typed

    def number(canonical: str, low: int, high: int, default: int) -> int:
        if canonical not in values:
            return default
        return _parse_int(typed_names[canonical], values[canonical], low, high)

    model = values.get("model")
    if model is not None:
        _require_single_word(typed_names["model"], model)
        if models is not None and model not in models:
            available = ", ".join(sorted(models)) or "none besides the default"
            raise RequestError(f"--model '{model}' is not available; choose one of: {available}.")
    described = family(model) if callable(family) else family
    side = described.native_size

    width, height = side, side
    if "ar" in values:
        aspect = _parse_aspect(typed_names["ar"], values["ar"])
        width, height = size_for_aspect(*aspect, side, described.size_multiple)

    seed = number("seed", 0, MAX_SEED, -1)
    if seed < 0:
        seed = seed_source.randrange(MAX_SEED + 1)
    draft = "draft" in values
    video = "video" in values
    if video and Mode.ANIMATE not in described.modes:
        raise RequestError(
            f"--video needs a video model beside this model ({described.name}); the server sets VIDEO_MODEL."
        )
    if "fast" in values and "relax" in values:
        raise RequestError("--fast and --relax ask for opposite queues; give one of them.")
    speed = "fast" if "fast" in values else "relax" if "relax" in values else ""
    default_steps = described.draft_steps if draft else defaults.steps or described.default_steps
    steps = number("steps", 1, limits.max_steps, default_steps)
    quality = 1.0
    if "quality" in values:
        quality = _parse_quality(typed_names["quality"], values["quality"])
        steps = max(1, round(steps * quality))
        if steps > limits.max_steps:
            raise RequestError(
                f"--{typed_names['quality']} {values['quality']} makes {steps} steps; the limit is "
                f"{limits.max_steps}. Ask for fewer --steps or a lower --{typed_names['quality']}."
            )
    stylize = number("stylize", 0, MAX_STYLIZE, defaults.stylize)
    chaos = number("chaos", 0, MAX_CHAOS, defaults.chaos)
    repeat = number("repeat", 1, max_jobs, 1)
    image_weight = _parse_image_weight(typed_names["iw"], values["iw"]) if "iw" in values else None
    negative = values.get("no", "")
    prompt_parts(description)  # a malformed multi-prompt is refused here, before anything is recorded

    request = GenerationRequest(
        prompt=description,
        negative_prompt=negative,
        seed=seed,
        width=width,
        height=height,
        steps=steps,
        guidance=_guidance(stylize, described if defaults.guidance is None else defaults.guidance),
        num_images=1 if video else defaults.num_images,  # --video animates one image
        chaos=chaos,
        stylize=stylize,
        model=model,
        flags=_flags_text(flags),
        tile="tile" in values,
        draft=draft,
        video=video,
        speed=speed,
        quality=quality,
        image_weight=image_weight,
    )
    return _Parsed(request.validate(limits), repeat, seed_given="seed" in values)


class TypedFlag(NamedTuple):
    """A flag as the member typed it (`typed` is `s` for `--s`) and the name it stands for."""

    typed: str
    canonical: str
    value: str

    def __str__(self) -> str:
        return f"--{self.typed} {self.value}".rstrip()


def split_prompt(text: str) -> tuple[str, list[TypedFlag]]:
    """The description and the flags of `text`, each as typed (an em dash reads `--`); raises `RequestError`
    for an unknown flag or one without its value, as `parse_prompt` does."""
    description, flags = _split_flags(text)
    return description, [TypedFlag(*flag) for flag in flags]


def _flags_text(flags: list[tuple[str, str, str]]) -> str:
    return " ".join(str(TypedFlag(*flag)) for flag in flags)


def _split_flags(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The description before the first flag, and (typed name, canonical name, value) per flag."""
    matches = list(_FLAG.finditer(text))
    description = (text[: matches[0].start()] if matches else text).strip()
    flags = []
    for index, match in enumerate(matches):
        typed = match.group(1)
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = " ".join(text[match.end() : end].split())
        canonical = FLAG_ALIASES.get(typed.lower())
        if canonical is None:
            shown = f"--{typed}" if typed else "'--' without a name"
            raise RequestError(f"Unknown flag {shown}; known flags: {KNOWN_FLAGS}.")
        if canonical in SWITCHES:
            if value:
                raise RequestError(
                    f"--{typed} takes no value (got '{value}'); put the description before the flags."
                )
        elif not value:
            raise RequestError(f"--{typed} needs a value, such as {_EXAMPLES[canonical]}.")
        flags.append((typed, canonical, value))
    return description, flags


_EXAMPLES = {
    "ar": "--ar 16:9",
    "seed": "--seed 7",
    "no": "--no cars",
    "steps": "--steps 30",
    "stylize": f"--stylize 200 (0 to {MAX_STYLIZE})",
    "chaos": f"--chaos 40 (0 to {MAX_CHAOS})",
    "model": "--model name",
    "quality": "--q .5 (one of .25, .5, 1, 2)",
    "repeat": "--repeat 3",
    "iw": f"--iw 1.5 (0 to {MAX_IMAGE_WEIGHT:g})",
}


def _require_single_word(flag: str, value: str) -> None:
    if " " in value:
        raise RequestError(f"--{flag} takes one value (got '{value}'); put the description before the flags.")


def _parse_int(flag: str, value: str, low: int, high: int) -> int:
    _require_single_word(flag, value)
    try:
        number = int(value)
    except ValueError:
        raise RequestError(f"--{flag} needs a whole number from {low} to {high} (got '{value}').") from None
    if not low <= number <= high:
        raise RequestError(f"--{flag} must be between {low} and {high} (got {number}).")
    return number


def _parse_aspect(flag: str, value: str) -> tuple[int, int]:
    _require_single_word(flag, value)
    match = re.fullmatch(r"(\d{1,4}):(\d{1,4})", value)
    if match is None:
        raise RequestError(f"--{flag} needs W:H such as 16:9 (got '{value}').")
    aspect_w, aspect_h = int(match.group(1)), int(match.group(2))
    if aspect_w == 0 or aspect_h == 0:
        raise RequestError(f"--{flag} needs two positive whole numbers such as 16:9 (got '{value}').")
    if max(aspect_w / aspect_h, aspect_h / aspect_w) > MAX_ASPECT_RATIO:
        raise RequestError(f"--{flag} must be between 1:4 and 4:1 (got '{value}').")
    return aspect_w, aspect_h


def _parse_quality(flag: str, value: str) -> float:
    _require_single_word(flag, value)
    try:
        quality = float(value)
    except ValueError:
        quality = math.nan
    if quality not in QUALITIES:
        raise RequestError(f"--{flag} takes .25, .5, 1 or 2 (got '{value}').")
    return quality


def _parse_image_weight(flag: str, value: str) -> float:
    _require_single_word(flag, value)
    try:
        weight = float(value)
    except ValueError:
        weight = math.nan
    if not 0 <= weight <= MAX_IMAGE_WEIGHT:  # NaN fails too
        raise RequestError(f"--{flag} needs a number from 0 to {MAX_IMAGE_WEIGHT:g} (got '{value}').")
    return weight


# ---------------------------------------------------------------------------------------------- permutations

_ESCAPABLE = "{},"


def expand_permutations(text: str, max_jobs: int = DEFAULT_MAX_JOBS) -> list[str]:
    """`text` once per combination of its `{a, b}` options, in order: `a {red, blue} bird` → `a red bird`,
    `a blue bird`. Braces may nest and several multiply; `\\{`, `\\}` and `\\,` stand for themselves.

    Raises `RequestError` for an unmatched brace, or when there would be more than `max_jobs` texts
    (counted before any is made, so `{a,b}` ten times over costs nothing).
    """
    if not any(c in text for c in "{}\\"):
        return [text]
    sequence, end = _parse_sequence(text, 0, depth=0)
    if end < len(text):  # only an unmatched } stops the outermost sequence early
        raise RequestError("A } in the prompt has no matching {; write \\} for the brace itself.")
    count = _count(sequence)
    if count > max_jobs:
        raise RequestError(
            f"The {{…}} options in this prompt make {count:,} combinations; one prompt may make at most "
            f"{max_jobs} jobs."
        )
    # An empty option ("a {, big} cat") leaves two spaces where it was.
    return [re.sub(r" {2,}", " ", expanded).strip() for expanded in _expand(sequence)]


# A sequence is text and choices in order; a choice is a list of sequences, one per option.
_Sequence = list["str | list[_Sequence]"]


def _parse_sequence(text: str, position: int, depth: int) -> tuple[_Sequence, int]:
    items: _Sequence = []
    literal: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text) and text[position + 1] in _ESCAPABLE:
            literal.append(text[position + 1])
            position += 2
            continue
        if char == "}" or (char == "," and depth > 0):
            break
        if char == "{":
            items.append("".join(literal))
            literal = []
            choice, position = _parse_choice(text, position + 1, depth + 1)
            items.append(choice)
            continue
        literal.append(char)
        position += 1
    items.append("".join(literal))
    return items, position


def _parse_choice(text: str, position: int, depth: int) -> tuple[list[_Sequence], int]:
    options = []
    while True:
        option, position = _parse_sequence(text, position, depth)
        options.append(option)
        if position >= len(text):
            raise RequestError("A { in the prompt has no matching }; write \\{ for the brace itself.")
        if text[position] == "}":
            return options, position + 1
        position += 1  # the comma between two options


def _count(sequence: _Sequence) -> int:
    return math.prod(sum(_count(option) for option in item) for item in sequence if isinstance(item, list))


def _expand(sequence: _Sequence) -> list[str]:
    alternatives = [
        [item] if isinstance(item, str) else [text.strip() for option in item for text in _expand(option)]
        for item in sequence
    ]
    return ["".join(parts) for parts in itertools.product(*alternatives)]


# -------------------------------------------------------------------------------------------- multi-prompts

_PART_END = re.compile(r"::(-?(?:\d+(?:\.\d*)?|\.\d+))?")


@dataclass(frozen=True)
class PromptPart:
    """One part of a multi-prompt and its weight; a negative weight is something to keep out of the image."""

    text: str
    weight: float


def prompt_parts(description: str) -> list[PromptPart]:
    """The parts of a Midjourney multi-prompt: `cat:: dog::0.5` → cat (1), dog (0.5).

    `::` ends a part; a number right after it is that part's weight (1 without one). A description without
    `::` is one part of weight 1. Raises `RequestError` for an empty part or weights that add up to 0 or less
    (Midjourney's rule: the image needs something to draw).
    """
    if "::" not in description:
        return [PromptPart(description.strip(), 1.0)]
    parts = []
    start = 0
    for match in _PART_END.finditer(description):
        text = description[start : match.start()].strip()
        if not text:
            raise RequestError(f"A part of the multi-prompt before '{match.group(0)}' is empty.")
        parts.append(PromptPart(text, float(match.group(1)) if match.group(1) else 1.0))
        start = match.end()
    rest = description[start:].strip()
    if rest:
        parts.append(PromptPart(rest, 1.0))
    total = sum(part.weight for part in parts)
    if total <= 0:
        raise RequestError(
            f"The weights of a multi-prompt must add up to more than 0 (got {total:g}); "
            "give the parts to draw positive weights."
        )
    return parts


def is_weighted(parts: list[PromptPart]) -> bool:
    """Whether `parts` is more than a plain prompt (several parts, or a weight other than 1)."""
    return len(parts) > 1 or parts[0].weight != 1
