"""The /stats chart: every day of the window on a time axis, zero days included, bars to scale."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pytest
from PIL import Image

from service.charts import daily_counts, jobs_per_day_chart

LAST = date(2026, 3, 31)
BLURPLE = np.array([0x58, 0x65, 0xF2])


def bars(png: bytes) -> list[tuple[float, int]]:
    """Each bar of a chart: the x of its centre and its height, in pixels."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    bar = (np.abs(pixels - BLURPLE).sum(axis=2) < 30).any(axis=0)  # columns holding bar pixels
    heights = (np.abs(pixels - BLURPLE).sum(axis=2) < 30).sum(axis=0)
    found, start = [], None
    for x, inside in enumerate([*bar, False]):
        if inside and start is None:
            start = x
        elif not inside and start is not None:
            found.append(((start + x - 1) / 2, int(heights[start:x].max())))
            start = None
    return found


def test_days_without_jobs_are_counted_as_zero():
    week = daily_counts([(LAST - timedelta(days=7), 1), (LAST, 5)], LAST - timedelta(days=7), LAST)
    assert [jobs for _, jobs in week] == [1, 0, 0, 0, 0, 0, 0, 5]
    assert week[0][0] == LAST - timedelta(days=7) and week[-1][0] == LAST
    assert daily_counts([(LAST - timedelta(days=9), 4)], LAST - timedelta(days=1), LAST) == [
        (LAST - timedelta(days=1), 0),
        (LAST, 0),
    ]


def test_bars_stand_at_their_days_on_a_time_axis_at_heights_to_scale():
    first = LAST - timedelta(days=7)
    png = jobs_per_day_chart([(first, 1), (LAST - timedelta(days=4), 2), (LAST, 5)], first, LAST)
    assert Image.open(io.BytesIO(png)).size == (800, 320)
    (x1, h1), (x2, h2), (x3, h3) = bars(png)  # zero days draw no bar
    assert abs((x2 - x1) / 3 - (x3 - x2) / 4) < 2  # 3 days apart, then 4: the gap is on the axis
    assert abs(h2 / h1 - 2) < 0.1 and abs(h3 / h1 - 5) < 0.2


def test_a_month_with_a_gap_in_the_middle_keeps_the_gap():
    first = LAST - timedelta(days=29)
    days = [(first + timedelta(days=i), 3) for i in range(30) if not 10 <= i < 20]
    found = bars(jobs_per_day_chart(days, first, LAST))
    assert len(found) == 20
    steps = np.diff([x for x, _ in found])
    one_day = np.median(steps)
    assert abs(steps[9] - 11 * one_day) < 3  # the 10 empty days between day 9 and day 20


@pytest.mark.parametrize("first", [LAST - timedelta(days=1), LAST])  # /stats 24h spans two dates
def test_a_one_day_window_is_not_one_full_width_bar(first):
    png = jobs_per_day_chart([(LAST, 3)], first, LAST)
    [(_, height)] = bars(png)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    width = (np.abs(pixels - BLURPLE).sum(axis=2) < 30).any(axis=0).sum()
    assert 0 < width < 800 / 7 and height > 100


def test_an_empty_window_is_drawn_with_a_note():
    png = jobs_per_day_chart([], LAST - timedelta(days=6), LAST)
    assert bars(png) == [] and Image.open(io.BytesIO(png)).size == (800, 320)
