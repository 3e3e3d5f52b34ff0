"""--draft and Enhance on the demo model, on the command line: a draft draws what the prompt asks, and
`kaika enhance` gives the image that prompt and seed make at full quality."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.demo.checker import read
from storage.records import JobKind
from tests.fixtures.cli import all_jobs, job

PROMPT = "a yellow star on a black background"


def test_a_draft_draws_the_prompt_and_enhance_gives_that_seed_at_full_quality(demo_data, kaika):
    draft = kaika("imagine", f"{PROMPT} --seed 2 --draft", "--json").json()
    assert job(demo_data, draft["job_id"]).params["steps"] == 10
    for path in draft["images"]:
        reading = read(Image.open(path))
        assert reading.background == "black", path
        assert [(r.color, r.shape) for r in reading.regions] == [("yellow", "star")], path

    enhanced = kaika("enhance", draft["job_id"], "3", "--json").json()
    record = job(demo_data, enhanced["job_id"])
    assert (record.kind, record.parent_job_id, record.parent_image_index) == (
        JobKind.ENHANCE,
        draft["job_id"],
        2,
    )
    assert (enhanced["seed"], len(enhanced["images"])) == (4, 1)
    assert record.params["steps"] == 25 and record.params["draft"] is False

    # The same pixels as image 1 of the prompt at full quality with seed 4 (up to the CPU's batch rounding).
    full = kaika("imagine", f"{PROMPT} --seed 4", "--json").json()
    ours = np.asarray(Image.open(enhanced["images"][0]), dtype=np.int16)
    theirs = np.asarray(Image.open(full["images"][0]), dtype=np.int16)
    assert np.abs(ours - theirs).max() <= 1
    drafted = np.asarray(Image.open(draft["images"][2]), dtype=np.int16)
    assert np.abs(ours - drafted).max() > 1  # not the draft's image again


def test_enhance_of_a_full_quality_job_says_why_and_records_nothing(demo_data, kaika):
    plain = kaika("imagine", f"{PROMPT} --seed 2 --steps 2", "--json").json()
    before = all_jobs(demo_data)
    refused = kaika("enhance", plain["job_id"], "1")
    assert refused.status == 2
    assert refused.err.strip() == (
        "kaika enhance: Enhance makes an image of a --draft grid again at full quality; "
        "this job is not a --draft grid."
    )
    assert all_jobs(demo_data) == before


def test_the_demo_model_drafts_with_its_own_sampler_and_the_guidance_cut_off():
    from pipeline.engine import Engine

    # Its DDIM schedule is rescaled to zero terminal SNR: DPM-Solver++ drew its shapes worse in 10 steps.
    family = Engine.load("", device="cpu", dtype="float32").family
    assert (family.draft_scheduler, family.draft_guidance_share, family.draft_steps) == (None, 0.5, 10)
