"""Ways to spend less compute per image, each on its own and composable, applied by the engine to --draft jobs.

- a few-step solver (`scheduler`): DPM-Solver++ reaches with 10 steps what DDIM needs 25 for; the step
  count itself comes with the request (`ModelFamily.draft_steps` when the prompt gives no --steps);
- a guidance cut-off (`guidance_share`): classifier-free guidance runs the denoiser twice a step, on the
  prompt and on the negative prompt; once the layout is settled (the first half of the steps) the
  unconditional half is dropped, as diffusers documents for dynamic CFG with `callback_on_step_end`.

What each one saves, and what it costs the demo model's prompt adherence, is measured by bench/speed.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.families import GUIDED_TENSORS, ModelFamily

# What a step callback returns: the tensors the pipeline should use from the next step on.
StepTensors = Callable[[Any, int, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class SpeedUps:
    """Which speed-ups a pipeline call uses; the defaults use none (the model as it comes)."""

    scheduler: str | None = None  # a diffusers scheduler class, built from the model's own scheduler config
    guidance_share: float | None = None  # classifier-free guidance for this share of the steps only

    @classmethod
    def draft(cls, family: ModelFamily) -> SpeedUps:
        """The speed-ups --draft uses on a model of `family`."""
        return cls(scheduler=family.draft_scheduler, guidance_share=family.draft_guidance_share)


class Schedulers:
    """Schedulers built once per class from a model's own scheduler config (its prediction type, noise
    schedule and timestep spacing carry over), swapped into a pipeline for one call."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._built: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._built:
            import diffusers

            self._built[name] = getattr(diffusers, name).from_config(self._config)
        return self._built[name]

    @contextmanager
    def used_by(self, pipe: Any, name: str | None) -> Iterator[None]:
        """`pipe` samples with scheduler `name` inside the block (its own one with None)."""
        if name is None:
            yield
            return
        original = pipe.scheduler
        pipe.scheduler = self.get(name)
        try:
            yield
        finally:
            pipe.scheduler = original


def guidance_cutoff(family_name: str, share: float | None) -> tuple[tuple[str, ...], StepTensors | None]:
    """The tensors a step callback must be given, and the callback that stops classifier-free guidance after
    `share` of the steps (None where there is nothing to cut: no share, or a family whose guided tensors
    Kaika does not know)."""
    tensors = GUIDED_TENSORS.get(family_name, ())
    if share is None or not tensors:
        return (), None

    def cut(pipe: Any, step_index: int, given: dict[str, Any]) -> dict[str, Any]:
        last_guided = max(1, math.ceil(pipe.num_timesteps * share)) - 1
        if step_index != last_guided or not pipe.do_classifier_free_guidance:
            return {}
        pipe._guidance_scale = 1.0  # the pipeline reads this each step: from now on one pass, no mixing
        # The unconditional batch is the first half of each guided tensor; the prompt's is the second.
        return {name: given[name].chunk(2)[1] for name in tensors}

    return tensors, cut
