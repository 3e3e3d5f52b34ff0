"""The bot's METRICS_PORT: /metrics with the job counters moving after /imagine and U1, /healthz, /readyz."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.app import KaikaBot
from bot.lifecycle import log_in
from service.errors import SettingError
from tests.fixtures.discord_helpers import answer, grid_of
from tests.fixtures.metrics import free_port, get, label_sets, samples, value


async def test_the_bots_metrics_port_counts_its_jobs_and_acknowledgements(start_kaika):
    port = free_port()
    kaika = await start_kaika(metrics_port=port)
    base = f"http://127.0.0.1:{port}"
    status, content_type, body = await asyncio.to_thread(get, f"{base}/metrics")
    assert (status, content_type.split(";")[0]) == (200, "text/plain")
    before = samples(body)
    done = {"status": "done", "kind": "imagine", "model": "default"}
    assert value(before, "kaika_jobs_total", **done) == 0  # listed before the first job
    assert label_sets(before, "kaika_acknowledgement_seconds_count") == {frozenset()}
    assert await asyncio.to_thread(get, f"{base}/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
    await asyncio.wait_for(kaika.bot.wait_until_ready(), 30)  # Discord's READY, and the guilds after it
    status, _, body = await asyncio.to_thread(get, f"{base}/readyz")
    assert (status, body) == (200, "ready\ndiscord: ok\ndatabase: ok\nexecutor: ok\n")

    ada = kaika.fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    await kaika.finished(await kaika.fake.press(ada, grid_id, "U1"))
    refused = await kaika.imagine(ada, "a red circle --steps 999")  # answered with its error at once
    assert "--steps" in await answer(kaika.fake, refused)

    async def scraped() -> dict:
        return samples((await asyncio.to_thread(get, f"{base}/metrics"))[2])

    # The bot counts an acknowledgement once Discord's answer to it is back, just after the fake saw it.
    async with asyncio.timeout(10):
        while value(after := await scraped(), "kaika_acknowledgement_seconds_count") < 3:  # noqa: ASYNC110 - a scrape
            await asyncio.sleep(0.05)
    assert value(after, "kaika_jobs_total", **done) == 1
    assert value(after, "kaika_jobs_total", status="queued", kind="imagine", model="default") == 1
    assert value(after, "kaika_jobs_total", status="done", kind="upscale", model="default") == 1
    assert value(after, "kaika_job_duration_seconds_count", kind="imagine", model="default") == 1
    assert value(after, "kaika_queue_depth") == 0
    # /imagine, U1 and the refusal were each acknowledged, well within Discord's 3 seconds.
    assert value(after, "kaika_acknowledgement_seconds_count") == 3
    assert 0 <= value(after, "kaika_acknowledgement_seconds_sum") < 9
    assert value(after, "kaika_acknowledgement_seconds_bucket", le="3.0") == 3

    await kaika.close()
    with pytest.raises(OSError):  # the port closed with the bot (connection refused)
        await asyncio.to_thread(get, f"{base}/metrics", 2)


async def test_readyz_names_discord_while_the_bot_is_not_connected(start_kaika):
    kaika = await start_kaika()
    offline = KaikaBot(kaika.settings, kaika.services)  # made, never connected
    ready = await offline.readiness()
    assert (ready.status, ready.text()) == (
        503,
        "not ready: discord\ndiscord: not connected to Discord.\ndatabase: ok\nexecutor: ok\n",
    )


async def test_no_metrics_port_by_default(start_kaika):
    kaika = await start_kaika()
    assert kaika.bot.operations is None


async def test_a_metrics_port_in_use_stops_the_bot_at_start_naming_the_setting(start_kaika):
    kaika = await start_kaika()  # for its services
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = KaikaBot(kaika.settings.model_copy(update={"metrics_port": port}), kaika.services)
        with pytest.raises(SettingError) as refused:
            async with bot:
                await log_in(bot, bot.settings)
    assert str(refused.value) == (
        f"METRICS_PORT={port}: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "choose a free port (one per process on a machine), or 0 for none."
    )
