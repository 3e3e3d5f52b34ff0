"""--tile: seamless tiles, made by letting a UNet's and its VAE's convolutions wrap around the image's edges.

With circular padding, a convolution at the left edge sees the right edge as its neighbour (and the top
the bottom), so what the model draws continues across the borders and copies of the image tile without
a seam. The padding is set for one pipeline call and restored after it, so other jobs are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def circular_padding(models: Iterable[Any], enabled: bool = True) -> Iterator[None]:
    """Within the block, every `Conv2d` of `models` (None entries skipped) pads circularly (one without
    padding is unchanged)."""
    if not enabled:
        yield
        return
    convolutions = [
        layer
        for model in models
        if model is not None
        for layer in model.modules()
        if isinstance(layer, torch.nn.Conv2d)
    ]
    saved = [layer.padding_mode for layer in convolutions]
    try:
        for layer in convolutions:
            layer.padding_mode = "circular"
        yield
    finally:
        for layer, mode in zip(convolutions, saved, strict=True):
            layer.padding_mode = mode
