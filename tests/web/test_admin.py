"""The admin dashboard: usage, the fleet and the settings, for admins only; its changes are what the bot and
the companion then enforce, made through the same service calls (one wording), with CSRF and clear refusals."""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime

import pytest
from PIL import Image

from service.administration import NOT_THIS_SERVER, OUTSIDE_SERVERS, chart_days
from service.admission import Place
from service.charts import jobs_per_day_chart
from storage import GeneratedImage
from storage.errors import QuotaExceeded
from storage.records import ButtonPolicy
from tests.web.helpers import ADMIN, OTHER, OWNER, Site, WebClient
from web.admin import UNKNOWN_BLOCKLIST_ACTION
from web.members import NOT_ADMIN, Member
from web.sessions import CSRF_REFUSAL

MANAGER = Member(4004, "Dee")  # has Manage Server in guild MANAGED only
EVE = Member(5005, "Eve")
MANAGED = 555
PROMPT = "a red circle on a blue background --seed 3"
CHANGES = [
    ("/admin/ban", {"user_id": str(OTHER.id)}),
    ("/admin/unban", {"user_id": str(OTHER.id)}),
    (f"/admin/guilds/{OUTSIDE_SERVERS}/quota", {"jobs": "0"}),
    (f"/admin/guilds/{OUTSIDE_SERVERS}/buttons", {"who": "owner"}),
    (f"/admin/guilds/{OUTSIDE_SERVERS}/blocklist", {"action": "add", "term": "spiders"}),
]


def text_of(page: str) -> str:
    """The page's text, tags dropped and entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def part(page: str, element_id: str, end: str) -> str:
    """The HTML inside the element with `element_id`, up to `end`."""
    return page.split(f'id="{element_id}">', 1)[1].split(end, 1)[0]


async def settings_now(site: Site, guild_id: int = OUTSIDE_SERVERS) -> tuple:
    settings = await site.services.storage.guilds.settings(guild_id)
    return settings.daily_quota, settings.blocklist, settings.button_policy


async def web_imagine(client: WebClient, prompt: str = PROMPT):
    return await client.post("/imagine", {"prompt": prompt}, headers={"Accept": "text/html"})


@pytest.mark.slow  # three jobs on the tiny model
async def test_an_admin_sees_usage_per_member_kind_and_model_the_queue_and_the_local_worker(
    site: Site,
) -> None:
    await site.imagine(OWNER, PROMPT)
    await site.imagine(OTHER, "a green square --seed 4")
    await site.imagine(OWNER, "a blue triangle --seed 5")
    admin = await site.client(ADMIN)
    page = await admin.get_page("/admin?window=24h")
    text = text_of(page)
    assert re.search(r"Jobs 3 Images 12 ", text), text
    assert "Failure rate 0% 0 failed, 3 done, 0 cancelled" in text
    assert "Queue depth now 0" in text
    by_member = text_of(part(page, "by-member", "</table>"))
    assert by_member.startswith(f"# Member Jobs Images Compute 1 Ada {OWNER.id} 2 8 "), by_member
    assert f"2 Bob {OTHER.id} 1 4 " in by_member
    assert "imagine 3" in text_of(part(page, "by-kind", "</table>"))
    assert text_of(part(page, "by-model", "</table>")) == "default model 3"
    workers = text_of(part(page, "workers", "</table>"))
    assert workers == f"local {', '.join(site.services.executor.model_names)}"
    assert 'src="/admin/chart.png?window=24h"' in page
    # Each window is offered; the current one is marked.
    for window in ("24h", "7d", "30d", "all"):
        assert f'href="/admin?window={window}' in page
    assert re.search(r'window=24h[^>]*\s+aria-current="page"', page)


async def test_the_chart_is_the_stats_chart_png_for_the_window(site: Site) -> None:
    await site.imagine(OWNER, PROMPT)
    admin = await site.client(ADMIN)
    response = await admin.get("/admin/chart.png?window=7d")
    assert response.status == 200 and response.content_type == "image/png"
    with Image.open(io.BytesIO(await response.read())) as chart:
        assert chart.size == (800, 320)
    refused = await admin.get("/admin/chart.png?window=1y")
    assert refused.status == 400
    assert await refused.text() == "The dashboard shows 24h, 7d, 30d or all (got '1y')."
    assert "The dashboard shows 24h, 7d, 30d or all (got &#39;1y&#39;)." in await admin.get_page(
        "/admin?window=1y", status=400
    )


@pytest.mark.parametrize("member", [OWNER, None], ids=["member", "anonymous"])
async def test_non_admins_and_anonymous_visitors_are_refused_and_change_nothing(
    site: Site, member: Member | None
) -> None:
    client = await site.client(member)
    before = await settings_now(site)
    for path in ("/admin", "/admin/chart.png"):
        response = await client.get(path, headers={"Accept": "text/html"})
        if member is None:
            assert response.status == 302 and response.headers["Location"] == f"/signin?next={path}"
        else:
            assert response.status == 403
            assert NOT_ADMIN in html.unescape(await response.text())
    for path, form in CHANGES:
        response = await client.post(path, form)
        assert response.status == (401 if member is None else 403), path
    assert await settings_now(site) == before
    assert not await site.services.storage.users.is_banned(OTHER.id)
    assert "Admin</a>" not in await client.get_page("/signin" if member is None else "/")


async def test_changes_need_the_csrf_token(site: Site) -> None:
    admin = await site.client(ADMIN)
    before = await settings_now(site)
    for path, form in CHANGES:
        response = await admin.post(path, form, csrf=False)
        assert response.status == 403 and await response.text() == CSRF_REFUSAL, path
    assert await settings_now(site) == before
    assert not await site.services.storage.users.is_banned(OTHER.id)


async def test_the_quota_set_here_is_what_imagine_enforces(site: Site) -> None:
    admin, owner = await site.client(ADMIN), await site.client(OWNER)
    response = await admin.post(f"/admin/guilds/{OUTSIDE_SERVERS}/quota", {"jobs": " 1 "})
    assert (
        response.status == 303 and response.headers["Location"] == f"/admin?guild={OUTSIDE_SERVERS}#settings"
    )
    assert "Daily quota: 1 job per member per 24 hours." in text_of(await admin.get_page("/admin"))
    assert "Daily quota: 1 job" not in text_of(await admin.get_page("/admin"))  # said once
    assert (await web_imagine(owner)).status == 303
    await site.services.jobs.wait_idle()
    refused = await web_imagine(owner)
    assert refused.status == 400
    assert "You have used your 1 job for the last 24 hours." in text_of(await refused.text())
    jobs = site.services.jobs
    with pytest.raises(QuotaExceeded):  # the bot's own call, outside any server, likewise
        await jobs.imagine(OWNER.requester, Place(None, None), await jobs.parse_for(OWNER.id, PROMPT))
    # Empty is unlimited again.
    await admin.post(f"/admin/guilds/{OUTSIDE_SERVERS}/quota", {"jobs": ""})
    assert (await settings_now(site))[0] is None
    assert (await web_imagine(owner)).status == 303
    await site.services.jobs.wait_idle()


async def test_the_blocklist_ban_and_button_policy_set_here_are_enforced(site: Site) -> None:
    admin, owner = await site.client(ADMIN), await site.client(OWNER)
    await site.imagine(OWNER, PROMPT)  # Kaika has seen Ada's name
    await admin.post(
        f"/admin/guilds/{OUTSIDE_SERVERS}/blocklist", {"action": "add", "term": "  Big  SPIDERS "}
    )
    page = text_of(await admin.get_page("/admin"))
    assert "Blocked terms: big spiders." in page
    refused = await web_imagine(owner, "two big spiders on a wall")
    assert refused.status == 400 and "big spiders" in text_of(await refused.text())
    await admin.post(
        f"/admin/guilds/{OUTSIDE_SERVERS}/blocklist", {"action": "remove", "term": "big spiders"}
    )
    assert (await settings_now(site))[1] == ()
    assert "Blocked terms: none." in text_of(await admin.get_page("/admin"))

    response = await admin.post(f"/admin/guilds/{OUTSIDE_SERVERS}/buttons", {"who": "owner"})
    assert response.status == 303
    assert (await settings_now(site))[2] is ButtonPolicy.OWNER
    assert "Job buttons may now be pressed by the job's owner (and admins) only." in text_of(
        await admin.get_page("/admin")
    )

    response = await admin.post("/admin/ban", {"user_id": str(OWNER.id)})
    assert response.status == 303 and response.headers["Location"] == "/admin#bans"
    page = await admin.get_page("/admin")
    assert f"User {OWNER.id} is banned from Kaika." in text_of(page)
    assert f"Ada {OWNER.id} unban" in text_of(part(page, "banned", "</ul>"))
    refused = await web_imagine(owner)
    assert refused.status == 400 and "You are banned from generating images here." in text_of(
        await refused.text()
    )
    await admin.post("/admin/unban", {"user_id": str(OWNER.id)})
    assert not await site.services.storage.users.is_banned(OWNER.id)
    assert "Nobody is banned." in text_of(await admin.get_page("/admin"))


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        (
            f"/admin/guilds/{OUTSIDE_SERVERS}/quota",
            {"jobs": "many"},
            "The daily quota must be a whole number of jobs, 0 or more (got 'many').",
        ),
        (
            f"/admin/guilds/{OUTSIDE_SERVERS}/quota",
            {"jobs": "-2"},
            "The daily quota must be a whole number of jobs, 0 or more (got -2).",
        ),
        (f"/admin/guilds/{OUTSIDE_SERVERS}/buttons", {"who": "nobody"}, "button policy"),
        (
            f"/admin/guilds/{OUTSIDE_SERVERS}/blocklist",
            {"action": "remove", "term": "ants"},
            "'ants' is not on the blocklist.",
        ),
        (
            f"/admin/guilds/{OUTSIDE_SERVERS}/blocklist",
            {"action": "add", "term": "  "},
            "Type a word or phrase",
        ),
        (
            f"/admin/guilds/{OUTSIDE_SERVERS}/blocklist",
            {"action": "drop", "term": "x"},
            UNKNOWN_BLOCKLIST_ACTION,
        ),
        ("/admin/ban", {"user_id": "bob"}, "a number such as 80351110224678912 (got 'bob')"),
    ],
)
async def test_bad_values_are_refused_on_the_dashboard_and_change_nothing(
    site: Site, path: str, form: dict[str, str], message: str
) -> None:
    admin = await site.client(ADMIN)
    before = await settings_now(site)
    response = await admin.post(path, form, headers={"Accept": "text/html"})
    assert response.status == 400
    page = await response.text()
    refusal = text_of(page.split('class="refusal"')[1].split("</p>")[0])
    assert message in refusal, refusal
    assert 'id="jobs-per-day"' in page  # the dashboard again, with the refusal above its forms
    assert await settings_now(site) == before
    assert await site.services.storage.users.banned() == []


async def test_a_server_manager_administers_only_their_own_server(site: Site) -> None:
    storage = site.services.storage
    await storage.signin.note_server_manager(MANAGER.id, MANAGED, True, MANAGER.name)
    await storage.guilds.update(777, daily_quota=5)  # another server Kaika knows
    manager = await site.client(MANAGER)
    page = await manager.get_page("/admin")
    assert f"/admin/guilds/{MANAGED}/quota" in page and "/admin/guilds/777/" not in page
    assert f"/admin/guilds/{OUTSIDE_SERVERS}/" not in page
    assert await manager.get_page("/admin?guild=777", status=404)
    response = await manager.post("/admin/guilds/777/quota", {"jobs": "1"})
    assert response.status == 403 and await response.text() == NOT_THIS_SERVER
    assert (await storage.guilds.settings(777)).daily_quota == 5
    assert (await manager.post(f"/admin/guilds/{MANAGED}/quota", {"jobs": "2"})).status == 303
    assert (await storage.guilds.settings(MANAGED)).daily_quota == 2

    admin = await site.client(ADMIN)  # ADMIN_USER_IDS: every server Kaika knows, and outside servers
    page = await admin.get_page("/admin?guild=777")
    for guild in (OUTSIDE_SERVERS, MANAGED, 777):
        assert f'<option value="{guild}"' in page
    assert '<option value="777" selected' in page and "/admin/guilds/777/quota" in page


async def finished_job(
    site: Site, member: Member, guild_id: int | None, *, model: str | None = None, failed: bool = False
) -> None:
    """A job of `member` recorded in `guild_id` (None: outside any server), finished with 4 images of 2 s."""
    storage = site.services.storage
    job = await storage.jobs.create(
        "imagine", member.id, prompt="p", guild_id=guild_id, model=model, requester_name=member.name
    )
    await storage.jobs.start(job.id)
    if failed:
        await storage.jobs.fail(job.id, "out of memory", compute_seconds=1)
    else:
        images = [GeneratedImage(f"{job.id}-{i}".encode(), i, 64, 64) for i in range(4)]
        await storage.jobs.finish(job.id, images, compute_seconds=2)


async def test_a_server_manager_sees_the_figures_of_their_servers_jobs_only(site: Site) -> None:
    await site.services.storage.signin.note_server_manager(MANAGER.id, MANAGED, True, MANAGER.name)
    await finished_job(site, OWNER, MANAGED)  # Ada, in the server Dee manages
    for _ in range(2):
        await finished_job(site, OTHER, 777, model="sdxl")  # Bob, in another server
    await finished_job(site, OTHER, 777, failed=True)
    await finished_job(site, EVE, None)  # Eve, on the web: outside any server

    manager = await site.client(MANAGER)
    page = await manager.get_page("/admin?window=24h")
    text = text_of(page)
    assert f"Jobs made in Server {MANAGED} only." in text
    assert re.search(r"Jobs 1 Images 4 Compute 2 s Failure rate 0% 0 failed, 1 done, 0 cancelled ", text), (
        text
    )
    assert (
        text_of(part(page, "by-member", "</table>"))
        == f"# Member Jobs Images Compute 1 Ada {OWNER.id} 1 4 2 s"
    )
    assert text_of(part(page, "by-kind", "</table>")) == "imagine 1"
    assert text_of(part(page, "by-model", "</table>")) == "default model 1"
    for theirs in ("Bob", "Eve", "sdxl"):
        assert theirs not in text, theirs
    chart = await manager.get("/admin/chart.png?window=24h")
    assert await chart.read() == await chart_of(site, "24h", guilds=[MANAGED])
    assert await chart_of(site, "24h", guilds=[MANAGED]) != await chart_of(site, "24h", guilds=None)

    admin = await site.client(ADMIN)  # ADMIN_USER_IDS: every server's jobs, and those outside any
    page = await admin.get_page("/admin?window=24h")
    text = text_of(page)
    assert "Every server's jobs, and those made outside any server." in text
    assert re.search(r"Jobs 5 Images 16 Compute 9 s Failure rate 20% 1 failed, 4 done, 0 cancelled ", text), (
        text
    )
    by_member = text_of(part(page, "by-member", "</table>"))
    assert by_member.startswith(f"# Member Jobs Images Compute 1 Bob {OTHER.id} 3 8 5 s "), by_member
    assert f"Ada {OWNER.id} 1 4 2 s" in by_member and f"Eve {EVE.id} 1 4 2 s" in by_member
    assert text_of(part(page, "by-model", "</table>")) == "default model 3 sdxl 2"
    chart = await admin.get("/admin/chart.png?window=24h")
    assert await chart.read() == await chart_of(site, "24h", guilds=None)


async def chart_of(site: Site, window: str, guilds: list[int] | None) -> bytes:
    """The jobs-per-day chart of `guilds`' jobs (None: every job), drawn as the dashboard draws it."""
    report = await site.services.storage.stats.usage(window, guilds=guilds)
    first, last = chart_days(report, datetime.now(UTC).date())
    return jobs_per_day_chart(report.jobs_per_day, first, last)


async def test_the_local_user_of_kaika_web_local_administers_every_server(local_site: Site) -> None:
    await local_site.services.storage.guilds.update(777, daily_quota=5)
    visitor = await local_site.client()
    page = await visitor.get_page("/admin")
    assert f'<option value="{OUTSIDE_SERVERS}" selected' in page and '<option value="777"' in page
    assert (await visitor.post(f"/admin/guilds/{OUTSIDE_SERVERS}/quota", {"jobs": "7"})).status == 303
    assert (await settings_now(local_site))[0] == 7
