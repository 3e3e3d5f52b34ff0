"""The jobs-per-day bar chart of /stats, drawn with Pillow."""

from __future__ import annotations

import io
from datetime import date

from PIL import Image, ImageDraw

WIDTH, HEIGHT, MARGIN = 600, 240, 30


def jobs_per_day_chart(days: list[tuple[date, int]]) -> bytes:
    """A PNG bar chart, one bar per day (oldest left), labelled with the first and last dates."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.line((MARGIN, HEIGHT - MARGIN, WIDTH - 10, HEIGHT - MARGIN), fill="black")
    draw.line((MARGIN, 10, MARGIN, HEIGHT - MARGIN), fill="black")
    if days:
        peak = max(count for _, count in days) or 1
        slot = (WIDTH - MARGIN - 10) / len(days)
        for i, (_, count) in enumerate(days):
            top = HEIGHT - MARGIN - (HEIGHT - MARGIN - 20) * count / peak
            left = MARGIN + i * slot + slot * 0.15
            draw.rectangle((left, top, left + slot * 0.7, HEIGHT - MARGIN - 1), fill=(88, 101, 242))
        draw.text((MARGIN + 2, 2), f"jobs per day (max {peak})", fill="black")
        draw.text((MARGIN, HEIGHT - MARGIN + 5), days[0][0].isoformat(), fill="black")
        draw.text((WIDTH - 80, HEIGHT - MARGIN + 5), days[-1][0].isoformat(), fill="black")
    else:
        draw.text((MARGIN + 10, HEIGHT // 2), "no jobs in this period", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
