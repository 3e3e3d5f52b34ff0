"""Shared pieces of the pipeline tests: a device out-of-memory on demand."""

from __future__ import annotations

import pytest


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
