"""Shared pieces of the pipeline tests: a request factory and a device out-of-memory on demand."""

from __future__ import annotations

import pytest

from pipeline.request import GenerationRequest


def tiny_request(prompt: str = "a red circle", **changes: object) -> GenerationRequest:
    """A small, fast request for the tiny model: two 64x64 images, 4 steps."""
    base = GenerationRequest(prompt=prompt, seed=1, width=64, height=64, steps=4, guidance=7.5, num_images=2)
    return base.replace(**changes).validate()


@pytest.fixture
def huge_prompt_runs_out_of_memory(monkeypatch):
    """Make every pipeline call that includes a request with the prompt "huge" raise a device OOM."""
    import torch

    from pipeline.engine import Engine

    original = Engine._call

    def huge_never_fits(self, requests, slots, *args):
        if any(requests[slot.request_index].prompt == "huge" for slot in slots):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(self, requests, slots, *args)

    monkeypatch.setattr(Engine, "_call", huge_never_fits)
