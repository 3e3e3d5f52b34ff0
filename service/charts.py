"""The jobs-per-day bar chart of /stats and the web dashboard, drawn with matplotlib (Agg, no display; call it in a
worker thread)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# 800x320 pixels: Discord shows an embed's image about 400 wide, so twice that stays sharp.
SIZE_INCHES, DPI = (8.0, 3.2), 100
BAR_COLOUR = "#5865f2"  # Discord's blurple
# Each bar's count is written above it while there are this few days; more would crowd them.
LABELLED_DAYS_AT_MOST = 16
GAPS_UP_TO_DAYS = 62
# A short window's few bars are drawn as narrow as a week's, not stretched across the chart.
MIN_SPAN_DAYS = 7


def daily_counts(days: Iterable[tuple[date, int]], first: date, last: date) -> list[tuple[date, int]]:
    """Jobs on every day from `first` to `last`, days without jobs as 0 (days outside are left out)."""
    counts = dict(days)
    span = (last - first).days + 1
    return [(day, counts.get(day, 0)) for day in (first + timedelta(days=i) for i in range(max(span, 0)))]


def jobs_per_day_chart(days: Iterable[tuple[date, int]], first: date, last: date) -> bytes:
    """A PNG bar chart of the jobs on each day from `first` to `last` (UTC days), zeros included."""
    counts = daily_counts(days, first, max(first, last))
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = [date2num(day) for day, _ in counts]
    # Many days: bars side by side, since gaps a pixel or two wide only make a moiré.
    width = 0.7 if len(counts) <= GAPS_UP_TO_DAYS else 1.0
    bars = axes.bar(x, [jobs for _, jobs in counts], width=width, color=BAR_COLOUR, linewidth=0)
    middle, span = (x[0] + x[-1]) / 2, max(len(counts), MIN_SPAN_DAYS)
    axes.set_xlim(middle - span / 2, middle + span / 2)
    if len(counts) <= LABELLED_DAYS_AT_MOST:
        # Few days: each is named under its bar and its count written above it.
        axes.set_xticks(x, labels=[f"{day:%b} {day.day}" for day, _ in counts])
        axes.bar_label(bars, labels=[str(jobs) for _, jobs in counts], padding=2)
    else:
        locator = AutoDateLocator(maxticks=10)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    peak = max(jobs for _, jobs in counts)
    axes.set_ylim(0, max(peak * 1.15, 1))
    axes.set_ylabel("jobs")
    axes.set_xlabel("day (UTC)")
    span_text = f"{first:%d %b %Y}" if first >= last else f"{first:%d %b %Y} to {last:%d %b %Y}"
    axes.set_title(f"Jobs per day, {span_text}", loc="left", fontsize="medium")
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    if not peak:
        axes.text(0.5, 0.5, "no jobs in this period", transform=axes.transAxes, ha="center", va="center")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
