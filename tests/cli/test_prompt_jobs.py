"""`kaika imagine` with a prompt of several jobs (--repeat, {a, b} permutations) and the flags they record."""

from __future__ import annotations

import json

from cli.main import main
from pipeline.images import read_png_metadata
from service.jobs import request_of
from tests.fixtures.cli import JSON_KEYS, Run, all_jobs, job


def run(capsys, *arguments: str) -> Run:
    status = main(list(arguments))
    captured = capsys.readouterr()
    return Run(status, captured.out, captured.err)


def test_permutations_write_and_print_each_job(local_data, capsys):
    out = local_data.parent / "out"
    done = run(capsys, "imagine", "a {red, blue} circle --seed 4 --steps 2", "--out", str(out))
    assert done.status == 0, done.err
    lines = done.out.split()
    assert len(lines) == 12  # each job: its id, then its grid and four images
    (red_id, *red_paths), (blue_id, *blue_paths) = lines[:6], lines[6:]
    assert [p.split("/")[-1] for p in red_paths] == [
        f"a-red-circle-4-{red_id}-{suffix}.png" for suffix in ("grid", 1, 2, 3, 4)
    ]
    assert [p.split("/")[-1] for p in blue_paths] == [
        f"a-blue-circle-4-{blue_id}-{suffix}.png" for suffix in ("grid", 1, 2, 3, 4)
    ]
    assert read_png_metadata((out / blue_paths[1].split("/")[-1]).read_bytes())["prompt"] == "a blue circle"
    assert (job(local_data, red_id).prompt, job(local_data, blue_id).prompt) == (
        "a red circle",
        "a blue circle",
    )


def test_repeat_with_json_prints_one_object_a_line(local_data, capsys):
    done = run(capsys, "imagine", "a cat --seed 9 --steps 2 --repeat 3", "--json")
    assert done.status == 0, done.err
    lines = done.out.splitlines()
    printed = [json.loads(line) for line in lines]
    assert len(printed) == 3 and all(set(one) == JSON_KEYS for one in printed)
    assert [one["seed"] for one in printed] == [9, 13, 17]
    assert len({one["job_id"] for one in printed}) == 3
    assert sorted(job_id for job_id, _ in all_jobs(local_data)) == sorted(one["job_id"] for one in printed)


def test_one_job_still_prints_exactly_one_json_object(local_data, capsys):
    printed = run(capsys, "imagine", "a cat --seed 9 --steps 2", "--json").json()
    assert printed["seed"] == 9


def test_the_new_flags_are_recorded_with_the_job_and_read_back(local_data, capsys):
    printed = run(capsys, "imagine", "a floor --tile --q .5 --steps 4 --seed 2", "--json").json()
    request = request_of(job(local_data, printed["job_id"]))
    assert (request.tile, request.quality, request.steps) == (True, 0.5, 2)
    plain = request_of(
        job(local_data, run(capsys, "imagine", "a floor --steps 2", "--json").json()["job_id"])
    )
    assert (plain.tile, plain.quality) == (False, 1.0)


def test_too_many_jobs_is_one_line_and_nothing_is_recorded(local_data, capsys, monkeypatch):
    monkeypatch.setenv("MAX_JOBS_PER_PROMPT", "2")
    refused = run(capsys, "imagine", "a {red, blue, green} cat", "--out", str(local_data.parent / "out"))
    assert refused.error_line("imagine") == (
        "The {…} options in this prompt make 3 combinations; one prompt may make at most 2 jobs."
    )
    assert (
        run(capsys, "imagine", "a cat --repeat 3").error_line("imagine")
        == "--repeat must be between 1 and 2 (got 3)."
    )
    assert not (local_data.parent / "out").exists()
    assert all_jobs(local_data) == []


def test_a_failed_job_of_several_is_a_line_on_stderr_and_the_others_are_written(
    local_data, capsys, monkeypatch
):
    import torch

    from pipeline.engine import Engine

    original = Engine._call

    def huge_never_fits(self, requests, slots, *args):
        if any(requests[slot.request_index].prompt == "huge" for slot in slots):
            raise torch.OutOfMemoryError("out of memory (simulated)")
        return original(self, requests, slots, *args)

    monkeypatch.setattr(Engine, "_call", huge_never_fits)
    done = run(capsys, "imagine", "{huge, small} --steps 2 --seed 1", "--json")
    assert done.status == 2, done
    [printed] = [json.loads(line) for line in done.out.splitlines()]
    assert job(local_data, printed["job_id"]).prompt == "small"
    # (stderr also carries the progress bars)
    assert (
        "kaika imagine: job 1 of 2: The job failed: The cpu device ran out of memory for one 64x64 image"
        in done.err
    )
