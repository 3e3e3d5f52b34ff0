"""🔬 Process: one image's forward and reverse diffusion as one sheet, through the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from PIL import Image

from pipeline.process import (
    FRAMES,
    LABEL_HEIGHT,
    TITLE_HEIGHT,
    forward_noised,
    frame_box,
    frame_size,
    noise_level,
)
from pipeline.request import GenerationRequest, Mode, can_share_call

PROCESS = GenerationRequest(
    prompt="a red circle", seed=4, width=64, height=64, steps=10, num_images=1, mode=Mode.PROCESS
)


def frames(sheet: Image.Image, strip: int, count: int) -> list[np.ndarray]:
    size = frame_size((64, 64))
    return [np.asarray(sheet.crop(frame_box(strip, column, size)), dtype=float) for column in range(count)]


@pytest.mark.parametrize("scheduler", [DDIMScheduler(), FlowMatchEulerDiscreteScheduler()])
def test_the_forward_process_adds_more_noise_at_later_timesteps(scheduler):
    x0, noise = torch.ones(1, 4, 8, 8), torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    timesteps = [0, 100, 400, 700, 999]
    levels = [noise_level(scheduler, t) for t in timesteps]
    assert levels == sorted(levels) and levels[0] < 0.05 and levels[-1] > 0.99
    # x_t mixes the image and the noise in those shares: its distance from x_0 grows with t.
    distances = [float((forward_noised(scheduler, x0, noise, t) - x0).abs().mean()) for t in timesteps]
    assert distances == sorted(distances)


def test_the_process_sheet_shows_the_result_then_both_strips(tiny_engine):
    [result] = tiny_engine.run([PROCESS])
    [sheet] = result.images
    width, height = frame_size((64, 64))
    assert sheet.size == ((FRAMES + 1) * width, 2 * (TITLE_HEIGHT + height + LABEL_HEIGHT))
    forward, reverse = frames(sheet, 0, FRAMES + 1), frames(sheet, 1, FRAMES)
    # The reverse strip ends at the image the forward strip starts from: the job's own result.
    assert np.abs(reverse[-1] - forward[0]).mean() < 1.0
    # The image made again is the one its seed makes as a plain job.
    [plain] = tiny_engine.run([PROCESS.replace(mode=Mode.TXT2IMG)])
    shown = Image.fromarray(forward[0].astype("uint8")).resize((64, 64), Image.Resampling.NEAREST)
    assert np.abs(np.asarray(shown, dtype=float) - np.asarray(plain.images[0], dtype=float)).mean() < 1.0


def test_a_process_runs_alone():
    assert not can_share_call(PROCESS, PROCESS.replace(seed=5))
