"""`kaika healthcheck` for a bot: healthy while its heartbeat in DATA_DIR is fresh; otherwise status 1 and
one line saying why (Docker reads 0 as healthy, 1 as unhealthy, and reserves 2). A running bot writing
its heartbeat is in tests/bot/test_shutdown.py."""

from __future__ import annotations

import os
import time

from service.health import HEARTBEAT_STALE, heartbeat_path


def test_a_fresh_heartbeat_is_healthy(kaika, local_data):
    local_data.mkdir()
    heartbeat_path(local_data).touch()
    run = kaika("healthcheck")
    assert (run.status, run.out, run.err) == (0, "", "")


def test_no_heartbeat_means_no_bot(kaika, local_data):
    run = kaika("healthcheck")
    assert (run.status, run.out) == (1, "")
    assert (
        run.err
        == f"kaika healthcheck: no bot is running on DATA_DIR={local_data} (no {local_data}/heartbeat).\n"
    )


def test_a_stale_heartbeat_means_a_stuck_bot(kaika, local_data):
    local_data.mkdir()
    path = heartbeat_path(local_data)
    path.touch()
    then = time.time() - HEARTBEAT_STALE - 15
    os.utime(path, (then, then))
    run = kaika("healthcheck")
    assert (run.status, run.out) == (1, "")
    assert run.err.startswith(f"kaika healthcheck: the bot on DATA_DIR={local_data} last reported 4")
    assert run.err.endswith("s ago (more than 30 s): it is stuck or not connected to Discord.\n")


def test_an_invalid_setting_is_unhealthy_and_named(kaika, local_data, monkeypatch):
    monkeypatch.setenv("MAX_QUEUE", "none")
    run = kaika("healthcheck")
    assert (run.status, run.out) == (1, "")
    assert run.err.startswith("kaika healthcheck: MAX_QUEUE='none': Input should be a valid integer")
