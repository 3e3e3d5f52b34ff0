"""What a user can get wrong in the job commands: one line on stderr, exit status 2, nothing changed.

Nothing changed means no job recorded or altered and no --out folder made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import LOCAL_USER_ID
from storage.records import JobStatus
from tests.fixtures.cli import all_jobs, bot_job, recorded

pytestmark = pytest.mark.usefixtures("local_data")


@pytest.fixture
def done(local_data):
    """A finished 4-image job the bot recorded."""
    return bot_job(local_data)


def refused(kaika, local_data, command: str, *args: str, out: Path | None = None) -> str:
    """Run a command that must be refused; check it changed nothing; return its message."""
    out = out or Path("out")
    before = all_jobs(local_data)
    message = kaika(command, *args, "--out", str(out)).error_line(command)
    assert all_jobs(local_data) == before
    assert not Path("out").exists()
    return message


@pytest.mark.parametrize("command", ["vary", "upscale", "reroll"])
def test_an_unknown_job_id(kaika, local_data, command):
    index = [] if command == "reroll" else ["1"]
    assert refused(kaika, local_data, command, "no-such-job", *index) == "This job no longer exists."


@pytest.mark.parametrize("command", ["vary", "upscale", "reroll"])
def test_a_deleted_job(kaika, local_data, done, command):
    recorded(local_data, lambda storage: storage.jobs.delete(done.id, LOCAL_USER_ID, is_admin=True))
    index = [] if command == "reroll" else ["1"]
    assert refused(kaika, local_data, command, done.id, *index) == "This job no longer exists."


@pytest.mark.parametrize("command", ["vary", "upscale"])
def test_an_index_past_the_jobs_images(kaika, local_data, done, command):
    message = refused(kaika, local_data, command, done.id, "5", "--json")
    assert message == f"Job `{done.id}` has 4 images: INDEX is 1 to 4, not 5."


def test_an_index_past_an_upscales_one_image(kaika, local_data, done):
    upscaled = kaika("upscale", done.id, "1", "--json", "--out", "elsewhere").json()
    message = refused(kaika, local_data, "vary", upscaled["job_id"], "2")
    assert message == f"Job `{upscaled['job_id']}` has 1 image: INDEX is 1, not 2."


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["vary", "JOB", "0"], "argument INDEX: images count from 1, as U1–U4 do, not 0"),
        (["upscale", "JOB", "two"], "argument INDEX: a whole number from 1 is needed, not 'two'"),
        (["vary", "JOB"], "the following arguments are required: INDEX"),
        (["upscale", "JOB", "1", "--strong"], "unrecognized arguments: --strong"),
        (["vary", "JOB", "1", "--creative"], "unrecognized arguments: --creative"),
        (["reroll", "JOB", "1"], "unrecognized arguments: 1"),
        (["reroll"], "the following arguments are required: JOB"),
    ],
)
def test_bad_arguments(kaika, local_data, done, arguments, message):
    command, *rest = (done.id if argument == "JOB" else argument for argument in arguments)
    line = refused(kaika, local_data, command, *rest)
    assert line == f"{message} (see kaika {command} --help)"


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
@pytest.mark.parametrize("command", ["vary", "upscale", "reroll"])
def test_a_job_not_finished(kaika, local_data, command, status):
    unfinished = bot_job(local_data, status)
    index = [] if command == "reroll" else ["1"]
    message = refused(kaika, local_data, command, unfinished.id, *index)
    assert message == f"Job `{unfinished.id}` is {status}; only a finished job's images can be shown or used."


@pytest.mark.parametrize("command", ["vary", "upscale"])
def test_a_failed_job_has_no_image_to_use(kaika, local_data, command):
    failed = bot_job(local_data, JobStatus.FAILED)
    message = refused(kaika, local_data, command, failed.id, "1")
    assert message.startswith(f"Job `{failed.id}` is failed;")


@pytest.mark.parametrize("command", ["imagine", "vary", "upscale", "reroll"])
def test_an_out_that_is_a_file(kaika, local_data, done, command):
    Path("taken").write_text("")
    first = ["a cat --steps 1"] if command == "imagine" else [done.id]
    index = ["1"] if command in ("vary", "upscale") else []
    for out in ("taken", "taken/inside"):
        message = refused(kaika, local_data, command, *first, *index, out=Path(out))
        assert message == f"--out {out}: {Path('taken').absolute()} is a file, not a folder."


def test_an_out_that_cannot_be_written(kaika, local_data, done, monkeypatch):
    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")

    Path("locked").mkdir()
    # As a folder without write permission.
    monkeypatch.setattr("service.folders.tempfile.TemporaryFile", refuse)
    message = refused(kaika, local_data, "vary", done.id, "1", out=Path("locked/out"))
    assert message == f"--out locked/out: cannot write in {Path('locked').absolute()} (Permission denied)."
