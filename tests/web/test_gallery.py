"""The gallery and a job's page, as the owner, as another member (never sees or changes the owner's jobs),
as an admin and anonymously."""

from __future__ import annotations

import html

from pipeline.images import read_png_metadata
from service.jobs import ButtonAction
from tests.web.helpers import ADMIN, OTHER, OWNER, Site

GONE = "This job no longer exists."


async def test_the_gallery_shows_the_members_own_jobs_newest_first(site: Site) -> None:
    first = await site.imagine(OWNER, "a red circle on a blue background --seed 3")
    second = await site.imagine(OWNER, "a yellow star --ar 3:2 --seed 8")
    theirs = await site.imagine(OTHER, "a green square --seed 5")
    page = html.unescape(await (await site.client(OWNER)).get_page("/"))
    assert page.index(second.id) < page.index(first.id)
    assert "a yellow star --ar 3:2 --seed 8" in page and "seed 8" in page and "default model" in page
    assert f"/jobs/{first.id}/images/4.png" in page and "imagine" in page
    assert theirs.id not in page and "a green square" not in page
    other_page = await (await site.client(OTHER)).get_page("/")
    assert theirs.id in other_page and first.id not in other_page and "a red circle" not in other_page


async def test_the_gallery_filters_by_kind_model_and_prompt_text(site: Site, monkeypatch) -> None:
    circle = await site.imagine(OWNER, "a red circle --seed 3")
    star = await site.imagine(OWNER, "a yellow star --seed 8")
    variation = await site.press(OWNER, ButtonAction.VARY, circle, 0)
    owner = await site.client(OWNER)

    async def shown(query: str) -> set[str]:
        page = await owner.get_page("/?" + query)
        return {job.id for job in (circle, star, variation) if f'data-job-id="{job.id}"' in page}

    assert await shown("kind=variation") == {variation.id}
    assert await shown("text=YELLOW") == {star.id}
    assert await shown("model=default&text=circle") == {circle.id, variation.id}
    assert await shown("model=sdxl") == set()
    refused = await owner.get("/?kind=painting")
    assert refused.status == 400 and "no kind of job called 'painting'" in await refused.text()

    monkeypatch.setattr("service.gallery.PAGE_SIZE", 2)
    first_page = await owner.get_page("/?text=a")
    assert 'rel="next"' in first_page and 'rel="prev"' not in first_page
    assert await shown("page=1") == {variation.id, star.id}
    last_page = await owner.get_page("/?text=a&page=2")
    assert 'href="/?text=a&amp;page=1"' in last_page and 'rel="next"' not in last_page
    assert await shown("page=2") == {circle.id}


async def test_a_jobs_page_and_its_stored_pngs_are_its_owners(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle on a blue background --seed 3")
    owner, other, admin = await site.client(OWNER), await site.client(OTHER), await site.client(ADMIN)
    page = html.unescape(await owner.get_page(f"/jobs/{job.id}"))
    assert "a red circle on a blue background --seed 3" in page and "Delete job" in page
    assert all(f"seed {image.seed}" in page for image in job.images)
    assert f"/jobs/{job.id}/images/2.png?download=1" in page

    download = await owner.get(f"/jobs/{job.id}/images/2.png?download=1")
    stored = await site.services.storage.images.get(job.images[1].storage_key)
    assert download.status == 200 and await download.read() == stored  # the stored bytes, metadata and all
    assert download.headers["Content-Disposition"] == f'attachment; filename="kaika-{job.id}-2.png"'
    assert "a red circle" in str(read_png_metadata(stored))
    assert (await owner.get(f"/jobs/{job.id}/images/5.png")).status == 404

    for path in (
        f"/jobs/{job.id}",
        f"/jobs/{job.id}/images/1.png",
        f"/jobs/{job.id}/images/1.png?download=1",
    ):
        refused = await other.get(path)
        assert refused.status == 404 and await refused.text() == GONE, path  # as if it did not exist
    assert "a red circle" not in await other.get_page(f"/jobs/{job.id}", status=404)
    assert (await other.get("/jobs/no-such-job")).status == 404
    assert (await admin.get(f"/jobs/{job.id}")).status == 200  # admins may look, as /delete lets them act


async def test_anonymous_visitors_see_no_job(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle --seed 3")
    anonymous = await site.client()
    for path in ("/", f"/jobs/{job.id}", f"/jobs/{job.id}/images/1.png"):
        response = await anonymous.get(path)
        assert response.status == 302 and response.headers["Location"].startswith("/signin?next="), path
    refused = await anonymous.post(f"/jobs/{job.id}/delete")
    assert refused.status == 401
    assert await site.services.storage.jobs.get(job.id) is not None


async def test_the_lineage_shows_parent_and_children_by_image_the_member_may_see(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle --seed 3")
    upscale = await site.press(OWNER, ButtonAction.UPSCALE, job, 0)
    variation = await site.press(OWNER, ButtonAction.VARY, job, 1)
    reroll = await site.press(OWNER, ButtonAction.REROLL, job, 0)
    others = await site.press(OTHER, ButtonAction.VARY, job, 3)  # Bob's variation of Ada's image: Bob's
    owner, other = await site.client(OWNER), await site.client(OTHER)

    page = await owner.get_page(f"/jobs/{job.id}")
    children = page[page.index("Made from it") :]
    assert children.index("the whole job") < children.index(reroll.id)
    assert children.index("image #1") < children.index(upscale.id) < children.index("image #2")
    assert children.index("image #2") < children.index(variation.id)
    assert others.id not in page and "image #4" not in children

    child_page = await owner.get_page(f"/jobs/{variation.id}")
    lineage = child_page[child_page.index("Lineage") :]
    assert f'href="/jobs/{job.id}"' in lineage and "→ image #2" in lineage

    theirs = await other.get_page(f"/jobs/{others.id}")
    lineage = theirs[theirs.index("Lineage") :]
    assert "a job of another member" in lineage and job.id not in lineage and "→ image #4" in lineage


async def test_delete_follows_the_delete_rule_and_needs_the_csrf_token(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle --seed 3")
    upscale = await site.press(OTHER, ButtonAction.UPSCALE, job, 0)  # the image owner's, pressed by Bob
    owner, other = await site.client(OWNER), await site.client(OTHER)
    storage = site.services.storage

    assert (await owner.post(f"/jobs/{job.id}/delete", csrf=False)).status == 403
    refused = await other.post(f"/jobs/{job.id}/delete")
    assert refused.status == 404 and await refused.text() == GONE  # Bob may not even see it
    assert "Delete job" not in await other.get_page(f"/jobs/{upscale.id}")  # he may see his press…
    refused = await other.post(f"/jobs/{upscale.id}/delete")  # …but it is Ada's image
    assert refused.status == 403 and "Only the owner" in await refused.text()
    assert await storage.jobs.get(job.id) is not None and await storage.jobs.get(upscale.id) is not None

    deleted = await owner.post(f"/jobs/{job.id}/delete")
    assert deleted.status == 302 and deleted.headers["Location"] == f"/?deleted={job.id}"
    assert await storage.jobs.get(job.id) is None
    assert f"Deleted job {job.id}" in await owner.get_page(deleted.headers["Location"])
    assert (await owner.get(f"/jobs/{job.id}")).status == 404
    assert (await owner.get(f"/jobs/{job.id}/images/1.png")).status == 404


async def test_a_page_number_out_of_range_is_the_first_page(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle --seed 3")
    owner = await site.client(OWNER)
    for page in ("0", "-1", "abc", "99999999999"):
        assert job.id in await owner.get_page(f"/?page={page}"), page


async def test_an_image_whose_file_is_gone_is_not_found_with_a_reason(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle --seed 3")
    owner = await site.client(OWNER)
    path = site.services.storage.images.path(job.images[0].storage_key)  # the local image store's file
    path.unlink()
    response = await owner.get(f"/jobs/{job.id}/images/1.png")
    assert response.status == 404 and "is missing from Kaika's image store" in await response.text()
    assert (await owner.get(f"/jobs/{job.id}")).status == 200  # the page still shows what it can
