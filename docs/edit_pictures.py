"""Make the README's editing pictures in docs/: edit-zoom.png, edit-pan.png, edit-region.png, edit-square.png.

    python docs/edit_pictures.py

Runs the commands the README names on the demo model, in a fresh DATA_DIR, as a member would: `kaika imagine`
of the red circle (seed 3), then `kaika zoom`, `kaika pan` and `kaika region` of its image 1, and `kaika square`
of image 1 of the wide yellow star (seed 8). Each picture is the source, a gap, then the four results, side by
side at their own sizes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"
CIRCLE = "a red circle on a blue background --seed 3"
WIDE_STAR = "a yellow star on a green background --ar 3:2 --seed 8"
EDITS = {
    "edit-zoom.png": (CIRCLE, ["zoom", "--factor", "2"]),
    "edit-pan.png": (CIRCLE, ["pan", "--direction", "right"]),
    "edit-region.png": (CIRCLE, ["region", "--box", "left"]),
    "edit-square.png": (WIDE_STAR, ["square"]),
}
GAP, SOURCE_GAP, BACKGROUND = 8, 16, (32, 33, 38)


def kaika(*arguments: str) -> dict:
    """What `kaika … --json` prints, run in this process."""
    from cli.main import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([*arguments, "--json"])
    if status != 0:
        raise SystemExit(f"kaika {' '.join(arguments)} failed ({status})")
    return json.loads(printed.getvalue())


def side_by_side(source: Image.Image, results: list[Image.Image]) -> Image.Image:
    """The source, a wider gap, then the results, centred on one row."""
    pictures = [source, *results]
    height = max(picture.height for picture in pictures)
    width = sum(picture.width for picture in pictures) + GAP * (len(pictures) + 1) + SOURCE_GAP
    sheet = Image.new("RGB", (width, height + 2 * GAP), BACKGROUND)
    left = GAP
    for index, picture in enumerate(pictures):
        sheet.paste(picture.convert("RGB"), (left, GAP + (height - picture.height) // 2))
        left += picture.width + GAP + (SOURCE_GAP if index == 0 else 0)
    return sheet


def main() -> int:
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["DATA_DIR"] = data_dir
        out = Path(data_dir) / "out"
        made = {prompt: kaika("imagine", prompt, "--out", str(out)) for prompt in {CIRCLE, WIDE_STAR}}
        for name, (prompt, command) in EDITS.items():
            source = made[prompt]
            edit = kaika(command[0], source["job_id"], "1", *command[1:], "--out", str(out))
            with Image.open(source["images"][0]) as first:
                results = [Image.open(path) for path in edit["images"]]
                side_by_side(first, results).save(DOCS / name, optimize=True)
            print(f"saved {DOCS / name}: source {first.size}, results {results[0].size}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
