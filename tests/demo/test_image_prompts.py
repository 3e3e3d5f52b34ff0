"""Image prompts on the demo model: `kaika imagine --image` and how strongly --iw holds the results to the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.demo.checker import read
from service.jobs import IMAGE_PROMPT
from tests.fixtures.cli import job, recorded


def drawing(path: Path) -> Path:
    """A hand-drawn picture the prompt below contradicts: a yellow square on green, 200x200, as a JPEG."""
    picture = Image.new("RGB", (200, 200), (40, 160, 60))
    ImageDraw.Draw(picture).rectangle((60, 60, 140, 140), fill=(240, 220, 40))
    picture.save(path, format="JPEG", quality=95)
    return path


def distance(path: str, picture: Image.Image) -> float:
    """Mean absolute difference of each channel, 0–255, between a result and the picture at its size."""
    result = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    target = np.asarray(
        picture.resize((result.shape[1], result.shape[0]), Image.Resampling.LANCZOS), dtype=float
    )
    return float(np.abs(result - target).mean())


def test_iw_sets_how_closely_the_results_follow_the_picture(demo_data, kaika, tmp_path):
    source = drawing(tmp_path / "drawing.jpg")
    picture = Image.open(source).convert("RGB")
    prompt = "a red circle on a blue background --seed 1"
    loose = kaika("imagine", f"{prompt} --iw 0", "--image", str(source), "--json").json()
    close = kaika("imagine", f"{prompt} --iw 2", "--image", str(source), "--json").json()

    loose_distances = [distance(path, picture) for path in loose["images"]]
    close_distances = [distance(path, picture) for path in close["images"]]
    assert max(close_distances) < 25 < min(loose_distances), (close_distances, loose_distances)
    # At --iw 2 the picture's layout stays (its green ground, the object where its square is) and the prompt
    # colours the object; at --iw 0 the prompt's own scene is drawn.
    for path in close["images"]:
        reading = read(Image.open(path))
        assert reading.background == "green", path
        [drawn] = reading.regions
        assert (drawn.color, drawn.position) == ("red", "center"), path
        # The middle of the 256 px image (the demo model draws 64 px, its GAN enlarges 4x), within 4 px of 64.
        assert abs(drawn.x - 128) <= 16 and abs(drawn.y - 128) <= 16, path
    assert [read(Image.open(path)).background for path in loose["images"]] == ["blue"] * 4

    record = job(demo_data, close["job_id"])
    kept = record.params[IMAGE_PROMPT]
    assert (kept["width"], kept["height"], kept["iw"]) == (200, 200, 2)
    upload = recorded(demo_data, lambda storage: storage.uploads.get(kept["upload"]))
    assert upload is not None and upload.owner_id == record.owner_id


def test_a_picture_kaika_does_not_take_is_one_line_before_the_model_loads(demo_data, kaika, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    refused = kaika("imagine", "a red circle", "--image", str(notes))
    assert (
        refused.error_line("imagine")
        == "notes.txt is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."
    )
    missing = kaika("imagine", "a red circle", "--image", str(tmp_path / "gone.png"))
    assert missing.error_line("imagine") == f"--image {tmp_path / 'gone.png'}: No such file or directory."
    without = kaika("imagine", "a red circle --iw 2")
    assert without.error_line("imagine").startswith("--iw sets how closely the images follow an image prompt")
    assert not (demo_data / "images").exists() or not any((demo_data / "images").rglob("*.png"))
