"""`kaika imagine` records its jobs in storage, owned by the local user, as the bot records its own."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from pipeline.images import read_png_metadata
from storage import LOCAL_USER_ID, Storage
from storage.records import JobKind, JobStatus
from tests.fixtures.cli import recorded


async def local_jobs_and_user(storage: Storage) -> tuple[list[Any], Any, list[bool]]:
    jobs = await storage.jobs.recent_for_user(LOCAL_USER_ID)
    files = [await storage.images.exists(image.storage_key) for job in jobs for image in job.images]
    return jobs, await storage.users.get(LOCAL_USER_ID), files


def test_imagine_records_a_done_job_with_four_images_owned_by_the_local_user(local_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["imagine", "a lighthouse at dusk --seed 7 --steps 2", "--out", str(out)]) == 0
    job_id, *printed = capsys.readouterr().out.split()
    paths = [Path(line) for line in printed]
    assert len(paths) == 5 and all(path.is_file() for path in paths)

    [job], user, files = recorded(local_data, local_jobs_and_user)
    assert job.id == job_id  # printed first, for the commands that act on a job
    assert job.kind is JobKind.IMAGINE and job.status is JobStatus.DONE
    assert job.owner_id == job.requester_id == LOCAL_USER_ID and user.display_name == getpass.getuser()
    assert job.prompt == "a lighthouse at dusk" and job.guild_id is None and job.channel_id is None
    assert [image.seed for image in job.images] == [7, 8, 9, 10] and all(files)
    for path in paths[1:]:
        assert read_png_metadata(path.read_bytes())["job_id"] == job.id  # the files name their record


def test_the_owner_option_names_the_local_user(local_data, tmp_path):
    assert (
        main(["imagine", "a cat --seed 1 --steps 1", "--out", str(tmp_path / "out"), "--owner", "ada"]) == 0
    )
    [job], user, _ = recorded(local_data, local_jobs_and_user)
    assert job.owner_id == LOCAL_USER_ID and user.display_name == "ada"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a cat --ar wide", "--ar needs W:H"),  # refused before anything is opened
        ("a cat --model nope", "nope"),  # refused once the executor names its models
    ],
)
def test_an_invalid_prompt_records_nothing_and_writes_nothing(local_data, tmp_path, capsys, prompt, message):
    out = tmp_path / "out"
    assert main(["imagine", prompt, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.splitlines()[-1]  # after any model-loading progress
    assert last.startswith("kaika imagine: ") and message in last
    assert not out.exists()
    jobs, _, _ = recorded(local_data, local_jobs_and_user)
    assert jobs == []
