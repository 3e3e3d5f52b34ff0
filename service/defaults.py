"""A user's saved defaults (/settings): flags applied to their prompts when the prompt leaves them out."""

from __future__ import annotations

# Flags a saved default may supply when the prompt does not give them.
DEFAULT_FLAGS = ("ar", "stylize", "chaos", "steps", "model")
# Short forms a prompt may use for a flag, which count as giving it.
_ALIASES = {"stylize": "s", "chaos": "c"}


def with_defaults(prompt: str, model: str | None, defaults: dict[str, object]) -> str:
    """The prompt with `--model` from the option and the user's saved defaults for flags it lacks."""
    text = prompt
    lowered = f" {prompt.lower()} "
    if model:
        text += f" --model {model}"
    for flag in DEFAULT_FLAGS:
        value = defaults.get(flag)
        if value is None or f" --{flag}" in lowered or (flag == "model" and model):
            continue
        alias = _ALIASES.get(flag)
        if alias and f" --{alias} " in lowered:
            continue
        text += f" --{flag} {value}"
    return text


def format_defaults(defaults: dict[str, object]) -> str:
    shown = [f"--{k} {v}" for k, v in sorted(defaults.items()) if k in DEFAULT_FLAGS]
    return " ".join(shown) if shown else "none"
