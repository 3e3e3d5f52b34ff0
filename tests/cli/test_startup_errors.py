"""Settings that keep a command from starting: one line on stderr naming the setting, exit status 2.

DATA_DIR that cannot hold files, a DATABASE_URL that cannot be opened, a Redis that cannot be reached
(EXECUTOR=celery), a value out of range, and for the bot a token Discord refuses or a Discord that
cannot be reached. Nothing is recorded and no --out folder is made.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from testkit.fake_discord import FakeDiscord
from tests.fixtures.cli import Run, all_jobs, bot_job

pytestmark = pytest.mark.usefixtures("local_data")

JOB_COMMANDS = ["imagine", "vary", "upscale", "reroll"]


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def job_arguments(command: str, job_id: str) -> list[str]:
    if command == "imagine":
        return ["imagine", "a lighthouse --steps 1"]
    return [command, job_id, *(["1"] if command in ("vary", "upscale") else [])]


@pytest.fixture
def done(local_data: Path) -> str:
    """A finished job the press commands can name (recorded before any setting is spoiled)."""
    return bot_job(local_data).id


def refused(kaika, command: str, *args: str) -> str:
    """Run `kaika COMMAND ARGS…`; check it was refused in one line with status 2 and made no --out."""
    message = kaika(*args, "--out", "out").error_line(command)
    assert not Path("out").exists()
    return message


@pytest.mark.parametrize("command", JOB_COMMANDS)
def test_a_data_dir_that_is_a_file(kaika, local_data, done, monkeypatch, command):
    Path("taken").write_text("")
    monkeypatch.setenv("DATA_DIR", "taken/data")
    message = refused(kaika, command, *job_arguments(command, done))
    assert message == (
        f"DATA_DIR=taken/data: {Path('taken').absolute()} is a file, not a folder. "
        "Set DATA_DIR to a folder Kaika can create and write."
    )


def test_a_data_dir_that_cannot_be_written(kaika, done, monkeypatch):
    import tempfile

    writable = tempfile.TemporaryFile

    def refuse(dir, **kwargs):
        if Path(dir).name == "locked":
            raise PermissionError(13, "Permission denied")
        return writable(dir=dir, **kwargs)

    Path("locked").mkdir()
    monkeypatch.setenv("DATA_DIR", "locked/data")
    monkeypatch.setattr("service.folders.tempfile.TemporaryFile", refuse)  # as a read-only folder
    message = refused(kaika, "imagine", *job_arguments("imagine", done))
    assert message.startswith(f"DATA_DIR=locked/data: cannot write in {Path('locked').absolute()}")


@pytest.mark.parametrize("command", JOB_COMMANDS)
def test_a_database_that_cannot_be_reached(kaika, local_data, done, monkeypatch, command):
    port = closed_port()
    before = all_jobs(local_data)
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://kaika:s3cret@127.0.0.1:{port}/kaika")
    message = refused(kaika, command, *job_arguments(command, done))
    assert message.startswith(
        f"DATABASE_URL=postgresql+asyncpg://kaika:***@127.0.0.1:{port}/kaika: the database cannot be "
        f"opened ([Errno 111] Connect call failed ('127.0.0.1', {port})); check that it runs"
    )
    assert "s3cret" not in message
    monkeypatch.delenv("DATABASE_URL")
    assert all_jobs(local_data) == before


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "Could not parse SQLAlchemy URL from given URL string"),
        ("postgresql://127.0.0.1/kaika", "No module named 'psycopg'"),  # not the asyncio driver
    ],
)
def test_a_database_url_kaika_cannot_use(kaika, monkeypatch, url, reason):
    monkeypatch.setenv("DATABASE_URL", url)
    message = refused(kaika, "imagine", "imagine", "a lighthouse")
    assert message.startswith(f"DATABASE_URL={url}: the database cannot be opened ({reason}); ")
    assert message.endswith("(postgresql+asyncpg://user:password@host:5432/kaika).")


@pytest.mark.postgres
def test_a_database_user_postgresql_does_not_know(kaika, monkeypatch, postgres_server_url):
    url = make_url(postgres_server_url).set(username="nobody_kaika", password="wrong")
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    message = refused(kaika, "imagine", "imagine", "a lighthouse")
    assert message.startswith(f"DATABASE_URL={url.render_as_string(hide_password=True)}: ")
    assert '(role "nobody_kaika" does not exist)' in message and "wrong" not in message


def test_redis_that_cannot_be_reached(kaika, local_data, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("EXECUTOR", "celery")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    message = refused(kaika, "imagine", "imagine", "a lighthouse")
    assert message.startswith(f"Cannot reach Redis at 127.0.0.1:{port} (REDIS_URL): ")
    assert all_jobs(local_data) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_BATCH", "0", "MAX_BATCH='0': Input should be greater than or equal to 1 (see .env.example)."),
        ("EXECUTOR", "gpu", "EXECUTOR='gpu': Input should be 'local' or 'celery' (see .env.example)."),
        ("SHUTDOWN_GRACE", "soon", "SHUTDOWN_GRACE='soon': Input should be a valid number, unable to parse "
         "string as a number (see .env.example)."),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='LOUD': Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' "
         "(see .env.example)."),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["imagine", "worker", "bot", "reroll"])
def test_a_setting_out_of_range(kaika, done, monkeypatch, command, name, value, message):
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("DISCORD_TOKEN", "test-token")
    arguments = job_arguments(command, done) if command in JOB_COMMANDS else [command]
    assert kaika(*arguments).error_line(command) == message


def test_a_worker_whose_redis_cannot_be_reached(kaika, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    message = kaika("worker").error_line("worker")
    assert message.startswith(f"cannot reach Redis at 127.0.0.1:{port} (REDIS_URL): ")


# ---- kaika bot ------------------------------------------------------------------------------------


@pytest.fixture
def discord_in_thread() -> Iterator[FakeDiscord]:
    """A fake Discord that only takes the token "right-token", served from a thread of its own (the bot
    runs its own event loop in this thread, as `kaika bot` does)."""
    loop = asyncio.new_event_loop()
    fake = FakeDiscord(token="right-token")
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def bot_env(monkeypatch, discord_in_thread: FakeDiscord) -> FakeDiscord:
    monkeypatch.setenv("DISCORD_API_BASE", discord_in_thread.api_base)
    monkeypatch.setenv("DISCORD_GATEWAY_URL", discord_in_thread.gateway_url)
    monkeypatch.setenv("DISCORD_TOKEN", "right-token")
    return discord_in_thread


def bot_error_line(run: Run) -> str:
    """The bot's refusal after its model loaded (whose progress bars come first): the last line of
    stderr, status 2, no traceback."""
    assert (run.status, run.out) == (2, ""), run
    assert "Traceback" not in run.err
    last = run.err.splitlines()[-1]
    assert last.startswith("kaika bot: ")
    return last.removeprefix("kaika bot: ")


def test_a_token_discord_refuses(kaika, bot_env, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "stale-token")
    assert bot_error_line(kaika("bot")) == (
        "DISCORD_TOKEN was refused by Discord (401 Unauthorized); copy the bot's token again from the "
        "developer portal (Bot, Reset Token)."
    )
    assert [call.path for call in bot_env.calls] == ["/users/@me"]  # it gave up at once


def test_a_discord_that_cannot_be_reached(kaika, bot_env, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("DISCORD_API_BASE", f"http://127.0.0.1:{port}/api/v10")
    message = bot_error_line(kaika("bot"))
    assert message.startswith(
        f"DISCORD_API_BASE=http://127.0.0.1:{port}/api/v10: Discord cannot be reached ("
    )
    assert "check the network" in message


@pytest.mark.parametrize(
    ("name", "value", "setting"),
    [
        ("DATA_DIR", "taken/data", "DATA_DIR=taken/data: "),
        ("DATABASE_URL", "postgresql+asyncpg://kaika:pw@127.0.0.1:{port}/kaika", "DATABASE_URL=postgresql"),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "Cannot reach Redis at 127.0.0.1:"),
    ],
)
def test_the_bot_exits_2_when_what_it_needs_cannot_be_reached(
    kaika, bot_env, monkeypatch, name, value, setting
):
    """The bot's supervisor (Docker, systemd) restarts it; the line says what to fix meanwhile."""
    Path("taken").write_text("")
    monkeypatch.setenv("EXECUTOR", "celery")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setenv(name, value.format(port=closed_port()))
    assert kaika("bot").error_line("bot").startswith(setting)
    assert bot_env.calls == []  # nothing was asked of Discord


def test_python_dash_m_bot_prints_one_line_and_no_traceback(tmp_path):
    """The real process, as a supervisor runs it: stderr ends with the one line; no traceback."""
    port = closed_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "DISCORD_TOKEN": "test-token",
        "DATABASE_URL": f"postgresql+asyncpg://kaika:pw@127.0.0.1:{port}/kaika",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"kaika bot: DATABASE_URL=postgresql+asyncpg://kaika:***@127.0.0.1:{port}/kaika: ")
