"""`kaika info` (a job's parameters, as ℹ️ shows them) and `--prompt` on vary and reroll (Remix)."""

from __future__ import annotations

import json

from storage import LOCAL_USER_ID
from storage.records import JobKind
from tests.fixtures.cli import BOT_USER, all_jobs, bot_job, job


def test_info_prints_the_prompt_with_its_flags_and_each_images_seed(local_data, kaika, tiny_settings_env):
    first = kaika("imagine", "a lighthouse —ar 1:1 --seed 7 --steps 2 --no boats", "--json").json()
    run = kaika("info", first["job_id"])
    assert run.status == 0, run.err
    assert run.out.split("\n")[:4] == [
        f"Job {first['job_id']}: imagine, done",
        "Prompt: a lighthouse --ar 1:1 --seed 7 --steps 2 --no boats",
        "Negative prompt: boats",
        "Seeds: #1 7, #2 8, #3 9, #4 10",
    ]
    assert "Size: 64x64" in run.out and f"Model: {tiny_settings_env.name}\n" in run.out

    printed = json.loads(kaika("info", first["job_id"], "--json").out)
    assert printed["seeds"] == [7, 8, 9, 10] and printed["flags"] == "--ar 1:1 --seed 7 --steps 2 --no boats"
    assert (printed["width"], printed["height"], printed["steps"]) == (64, 64, 2)
    assert printed["parent_job_id"] is None and printed["owner_id"] == LOCAL_USER_ID
    assert (printed["model"], printed["made_by"]) == (None, tiny_settings_env.name)  # the default model


def test_info_names_the_parent_and_image_of_a_bot_members_variation(local_data, kaika):
    parent = bot_job(local_data)
    varied = kaika("vary", parent.id, "3", "--json").json()
    printed = json.loads(kaika("info", varied["job_id"], "--json").out)
    assert (printed["parent_job_id"], printed["parent_image_index"], printed["kind"]) == (
        parent.id,
        2,
        "variation",
    )
    assert printed["seeds"] == [varied["seed"] + i for i in range(4)] and printed["strength"] == 0.35
    assert f"From job {parent.id}, image #3" in kaika("info", varied["job_id"]).out


def test_vary_and_reroll_with_a_prompt_are_remixes_of_the_same_image(local_data, kaika):
    parent = bot_job(local_data)
    varied = kaika("vary", parent.id, "2", "--prompt", "a blue circle --steps 2", "--json").json()
    remix = job(local_data, varied["job_id"])
    assert (remix.kind, remix.prompt, remix.parent_job_id, remix.parent_image_index) == (
        JobKind.REMIX,
        "a blue circle",
        parent.id,
        1,
    )
    assert remix.params["mode"] == "img2img" and remix.owner_id == LOCAL_USER_ID != BOT_USER

    rerolled = kaika("reroll", parent.id, "--prompt", "a blue circle --ar 2:1 --steps 2", "--json").json()
    assert rerolled["kind"] == "remix" and (rerolled["width"], rerolled["height"]) == (88, 40)
    assert job(local_data, rerolled["job_id"]).parent_image_index is None


def test_a_bad_remix_prompt_or_job_is_one_line_and_records_nothing(local_data, kaika):
    parent = bot_job(local_data)
    before = all_jobs(local_data)
    empty = kaika("vary", parent.id, "1", "--prompt", "--steps 2")
    assert "The prompt is empty" in empty.error_line("vary")
    bad = kaika("reroll", parent.id, "--prompt", "a cat --ar sideways")
    assert bad.error_line("reroll").startswith("--ar needs W:H")
    assert kaika("info", "nosuchjob").error_line("info") == "This job no longer exists."
    assert all_jobs(local_data) == before
