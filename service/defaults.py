"""A user's saved defaults (/settings): flags applied to their prompts when the prompt leaves them out, a
suffix added to every prompt (Midjourney's /prefer suffix), whether Remix is on, and the mode (draft)."""

from __future__ import annotations

from pipeline.prompt import split_prompt

# Flags a saved default may supply when the prompt does not give them (NEGATIVE: the negative prompt).
NEGATIVE = "no"
DEFAULT_FLAGS = ("ar", "stylize", "chaos", "steps", "model", NEGATIVE)
# Saved besides the flags: text added to every prompt, and Remix (buttons open the prompt to edit first).
SUFFIX = "suffix"
REMIX = "remix"
# The mode every prompt runs in: "draft" adds --draft to each (the family's fastest settings); "standard"
# (nothing saved) leaves prompts as they are.
MODE = "mode"
MODES = ("standard", "draft")
SAVED_KEYS = (*DEFAULT_FLAGS, SUFFIX, REMIX, MODE)


def with_defaults(prompt: str, model: str | None, defaults: dict[str, object]) -> str:
    """The prompt with `--model model`, the user's suffix and their saved defaults for flags it lacks.

    The suffix's words follow the prompt's description and its flags count where the prompt gives none of
    its own, as do the saved flags after them. Raises the prompt parser's RequestError for an unknown flag.
    """
    description, flags = split_prompt(prompt)
    given = {flag.canonical for flag in flags}
    words = [description]
    shown = [str(flag) for flag in flags]
    suffix = defaults.get(SUFFIX)
    if isinstance(suffix, str) and suffix:
        suffix_words, suffix_flags = split_prompt(suffix)
        words.append(suffix_words)
        for flag in suffix_flags:
            if flag.canonical not in given:
                shown.append(str(flag))
                given.add(flag.canonical)
    if model:
        shown.append(f"--model {model}")  # given twice if the prompt has --model too: the parser says so
        given.add("model")
    for flag in DEFAULT_FLAGS:
        value = defaults.get(flag)
        if value is not None and flag not in given:
            shown.append(f"--{flag} {value}")
    if draft_mode(defaults) and "draft" not in given:
        shown.append("--draft")
    return " ".join(part for part in (*words, *shown) if part)


def remix_on(defaults: dict[str, object]) -> bool:
    return bool(defaults.get(REMIX))


def draft_mode(defaults: dict[str, object]) -> bool:
    return defaults.get(MODE) == "draft"


def format_defaults(defaults: dict[str, object]) -> str:
    """The saved flags and Remix as /settings and /info show them; the negative prompt and the suffix are the
    member's own words, which a front end shows apart (escaped)."""
    flags = " ".join(
        f"--{k} {v}" for k, v in sorted(defaults.items()) if k in DEFAULT_FLAGS and k != NEGATIVE
    )
    shown = [flags] if flags else []
    if remix_on(defaults):
        shown.append("Remix on")
    if draft_mode(defaults):
        shown.append("draft mode")
    return "; ".join(shown) or "none"
