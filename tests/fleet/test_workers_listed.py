"""The fleet's workers as the admin dashboard lists them: each answering worker with the model it serves."""

from __future__ import annotations

import html

from pipeline.executor.base import ReportsWorkers
from pipeline.executor.local import LocalExecutor
from service.wiring import Services
from tests.web.helpers import ADMIN, Site


async def test_the_fleet_lists_its_answering_workers_with_their_models(worker, make_executor):
    executor = await make_executor()
    assert isinstance(executor, ReportsWorkers)
    workers = await executor.workers()
    assert workers, "the running worker did not answer"
    assert all("@" in w.name and w.models == ("tiny-sd",) for w in workers), workers
    assert [w.name for w in workers] == sorted(w.name for w in workers)


def test_the_local_executor_has_no_workers_to_list(tiny_engine):
    assert not isinstance(LocalExecutor({None: tiny_engine}), ReportsWorkers)


async def test_the_web_dashboard_lists_the_fleets_workers_and_their_model(worker, fleet_settings):
    settings = fleet_settings.model_copy(update={"admin_user_ids": [ADMIN.id]})
    services = await Services.open(settings)
    site = Site(services, settings)
    try:
        page = html.unescape(await (await site.client(ADMIN)).get_page("/admin"))
        workers = page.split('id="workers">', 1)[1].split("</table>", 1)[0]
        listed = await services.executor.workers()  # type: ignore[attr-defined]
        assert listed
        for answering in listed:
            assert f"<td>{answering.name}</td><td>tiny-sd</td>" in workers
        assert "<td>local</td>" not in workers
    finally:
        await site.close()
        await services.close()
