"""🔬 Process on the demo model through the command line: `kaika explain` shows noise rising in the forward
strip and falling in the reverse strip, measured on the sheet's frames."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.process import FRAMES, frame_box, frame_size
from storage.records import JobKind
from tests.fixtures.cli import job


def frame_distances(sheet: Image.Image, strip: int, count: int, size: tuple[int, int]) -> list[float]:
    """Each frame's mean distance (grey levels) from the result, the forward strip's first frame."""
    frame = frame_size(size)
    crops = [np.asarray(sheet.crop(frame_box(s, c, frame)), dtype=float) for s, c in ((0, 0),)]
    result = crops[0]
    return [
        float(np.abs(np.asarray(sheet.crop(frame_box(strip, column, frame)), dtype=float) - result).mean())
        for column in range(count)
    ]


def test_explain_shows_the_forward_process_noising_and_the_reverse_process_denoising(demo_data, kaika):
    first = kaika("imagine", "a red circle on a blue background --seed 3 --steps 20", "--json").json()
    explained = kaika("explain", first["job_id"], "1", "--json").json()
    record = job(demo_data, explained["job_id"])
    assert record.kind is JobKind.PROCESS and record.parent_job_id == first["job_id"]
    assert record.parent_image_index == 0
    [path] = explained["images"]
    sheet = Image.open(path).convert("RGB")
    # The process is shown at the size the model draws (64 px), before its GAN enlarges the images 4x.
    size = (first["width"] // 4, first["height"] // 4)
    forward = frame_distances(sheet, 0, FRAMES + 1, size)
    reverse = frame_distances(sheet, 1, FRAMES, size)
    # Forward: each later timestep carries more noise, up to nearly none of the image left.
    assert forward[0] == 0 and forward == sorted(forward) and forward[-1] > 40
    # Reverse: from nearly pure noise, every chosen step is closer to the result, ending on it.
    assert reverse == sorted(reverse, reverse=True) and reverse[0] > 40 and reverse[-1] < 1


def test_explain_refuses_an_image_not_drawn_from_its_prompt_alone(demo_data, kaika):
    first = kaika("imagine", "a red circle on a blue background --seed 3 --steps 4", "--json").json()
    varied = kaika("vary", first["job_id"], "1", "--json").json()
    refused = kaika("explain", varied["job_id"], "1")
    assert "🔬 Process shows images drawn from a prompt alone" in refused.error_line("explain")
