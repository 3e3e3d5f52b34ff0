"""`kaika animate`, `kaika extend` and `kaika imagine "… --video"`: MP4s in --out, their jobs recorded."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from pipeline.video_files import decode_mp4, mp4_info


def test_animate_then_extend_write_mp4s_and_thumbnails(local_data, kaika, tiny_video_settings_env):
    out = Path("out").absolute()
    image = kaika("imagine", "a red circle --seed 3 --steps 2 --ar 1:1", "--json", "--out", str(out)).json()

    animated = kaika("animate", image["job_id"], "2", "--motion", "high", "--json", "--out", str(out)).json()

    assert animated["kind"] == "animate" and animated["grid"] is None
    video = Path(animated["video"])
    assert video.parent == out and video.name.endswith(f"{animated['job_id']}.mp4")
    info = mp4_info(video.read_bytes())
    assert (info["codec"], info["frames"]) == ("h264", 4)
    assert info["provenance"]["job_id"] == animated["job_id"]
    (thumbnail,) = map(Path, animated["images"])
    assert thumbnail.name.endswith("-thumbnail.png")
    assert Image.open(thumbnail).size == (animated["width"], animated["height"])

    shown = kaika("info", animated["job_id"], "--json")
    assert shown.status == 0, shown.err
    info = json.loads(shown.out)
    # Read from its thumbnail: the seed once (not once more for its MP4), and the model that made it.
    assert (info["seeds"], info["made_by"]) == ([animated["seed"]], animated["model"])

    extended = kaika("extend", animated["job_id"], "--out", str(out))  # the plain printout
    assert extended.status == 0, extended.err
    job_id, mp4, thumbnail_path = extended.out.split("\n")[:-1]
    assert mp4.endswith(f"{job_id}.mp4") and thumbnail_path.endswith(f"{job_id}-thumbnail.png")
    assert len(decode_mp4(Path(mp4).read_bytes())) == 7  # 4 frames, then 3 more from the last one


def test_imagine_with_video_writes_the_video_of_its_image(local_data, kaika, tiny_video_settings_env):
    made = kaika("imagine", "a red circle --video --steps 2 --seed 5", "--json", "--out", "out").json()
    assert made["kind"] == "animate" and made["seed"] == 5
    assert len(decode_mp4(Path(made["video"]).read_bytes())) == 4


def test_animate_without_a_video_model_says_which_setting(local_data, kaika, tiny_settings_env):
    image = kaika("imagine", "a red circle --seed 3 --steps 2", "--json", "--out", "out").json()
    refused = kaika("animate", image["job_id"], "1", "--out", "out")
    assert refused.status == 2 and "VIDEO_MODEL" in refused.err
    refused = kaika("imagine", "a red circle --video --steps 2", "--out", "out")
    assert refused.status == 2 and "--video needs a video model" in refused.err
