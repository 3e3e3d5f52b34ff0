"""The Midjourney-style prompt syntax, parsed into a `GenerationRequest` by one pure function.

    a lighthouse at dusk --ar 16:9 --seed 7 --no boats, people --steps 30 --stylize 200 --chaos 40

Flags come after the description; `--no` takes the rest of the words up to the next flag, the
others take exactly one value. An em dash (what phones turn `--` into) counts as `--`.
Used by both `kaika imagine` and the bot's `/imagine`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from pipeline.errors import RequestError
from pipeline.families import ModelFamily
from pipeline.request import GenerationRequest, Limits, size_for_aspect

DEFAULT_LIMITS = Limits()
MAX_SEED = 2**32 - 1
MAX_STYLIZE = 1000
DEFAULT_STYLIZE = 100
MAX_CHAOS = 100
MAX_ASPECT_RATIO = 4.0  # wider than 4:1 (or taller than 1:4) leaves a model trained on squares

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
}
KNOWN_FLAGS = "--ar (--aspect), --seed, --no, --steps, --stylize (--s), --chaos (--c), --model"

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
) -> GenerationRequest:
    """Turn `/imagine` text into a validated txt2img request; raise `RequestError` naming the bad flag.

    `family` describes the model (or is a function of the `--model` name, None meaning the default
    model): its native size and size multiple turn --ar into a size, its defaults fill --steps and
    scale --stylize into its own guidance; `models` lists the names `--model` may take (None: any).
    Without `--seed`, the seed comes from `seed_source`.
    """
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
    steps = number("steps", 1, limits.max_steps, defaults.steps or described.default_steps)
    stylize = number("stylize", 0, MAX_STYLIZE, defaults.stylize)
    chaos = number("chaos", 0, MAX_CHAOS, defaults.chaos)
    negative = values.get("no", "")

    request = GenerationRequest(
        prompt=description,
        negative_prompt=negative,
        seed=seed,
        width=width,
        height=height,
        steps=steps,
        guidance=_guidance(stylize, described if defaults.guidance is None else defaults.guidance),
        num_images=defaults.num_images,
        chaos=chaos,
        stylize=stylize,
        model=model,
    )
    return request.validate(limits)


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
        if not value:
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
