"""Jobs: lifecycle, ownership, lineage, the crash rule, deletion, quota and restarts."""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import (
    GeneratedImage,
    IllegalTransition,
    InvalidParent,
    InvalidValue,
    JobKind,
    JobNotFound,
    JobStatus,
    NotAllowed,
    QuotaExceeded,
    Storage,
    StorageUnavailable,
    UserBanned,
    decide_owner,
)
from storage.models import Image, Job
from tests.fixtures.storage import FakeClock

ADA, BOB, CY = 101, 202, 303


def pngs(tag: str, count: int = 4) -> list[GeneratedImage]:
    return [GeneratedImage(f"{tag}-{i}".encode(), 1000 + i, 512, 512) for i in range(count)]


async def finished(storage: Storage, kind: str, requester: int, *, images: int = 4, **parent: object):
    job = await storage.jobs.create(kind, requester, prompt="a lighthouse", **parent)  # type: ignore[arg-type]
    await storage.jobs.start(job.id)
    return await storage.jobs.finish(job.id, pngs(job.id, images), compute_seconds=2.0)


async def image_rows(storage: Storage) -> int:
    async with storage.engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(Image))).scalar_one()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- lifecycle ---


async def test_a_job_goes_queued_running_done_with_its_images(storage: Storage, clock: FakeClock) -> None:
    job = await storage.jobs.create(
        "imagine",
        ADA,
        prompt="a fox",
        negative_prompt="blur",
        params={"steps": 20, "ar": "16:9"},
        seed=42,
        model="demo",
        guild_id=1,
        channel_id=2,
        requester_name="Ada",
    )
    assert (job.status, job.kind, job.requester_id, job.owner_id) == (
        JobStatus.QUEUED,
        JobKind.IMAGINE,
        ADA,
        ADA,
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", job.id)
    clock.advance(seconds=3)
    running = await storage.jobs.start(job.id)
    assert (running.status, running.queue_seconds) == (JobStatus.RUNNING, 3.0)
    clock.advance(seconds=5)
    done = await storage.jobs.finish(job.id, pngs("fox"), compute_seconds=4.5)
    assert done.status is JobStatus.DONE
    assert [(image.index, image.seed, image.width) for image in done.images] == [
        (i, 1000 + i, 512) for i in range(4)
    ]
    again = await storage.jobs.get(job.id)
    assert again is not None
    assert again.images == done.images
    assert (again.prompt, again.negative_prompt, again.params, again.seed, again.model) == (
        "a fox",
        "blur",
        {"steps": 20, "ar": "16:9"},
        42,
        "demo",
    )
    assert (again.finished_at - again.queued_at).total_seconds() == 8
    assert again.compute_seconds == 4.5
    assert await storage.images.get(again.images[2].storage_key) == b"fox-2"


async def test_failed_and_cancelled_jobs_keep_why(storage: Storage) -> None:
    failing = await storage.jobs.create("imagine", ADA, prompt="x")
    await storage.jobs.start(failing.id)
    failed = await storage.jobs.fail(failing.id, "out of memory", compute_seconds=1.5)
    assert (failed.status, failed.error, failed.compute_seconds) == (JobStatus.FAILED, "out of memory", 1.5)
    cancelled = await storage.jobs.cancel((await storage.jobs.create("imagine", ADA, prompt="y")).id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None


ALLOWED = {
    ("queued", "running"),
    ("queued", "failed"),
    ("queued", "cancelled"),
    ("running", "done"),
    ("running", "failed"),
    ("running", "cancelled"),
}
ILLEGAL = [pair for pair in itertools.product([s.value for s in JobStatus], repeat=2) if pair not in ALLOWED]


async def _job_in(storage: Storage, status: str) -> str:
    job = await storage.jobs.create("imagine", ADA, prompt="p")
    if status == "queued":
        return job.id
    if status == "cancelled":
        await storage.jobs.cancel(job.id)
        return job.id
    await storage.jobs.start(job.id)
    if status == "done":
        await storage.jobs.finish(job.id, pngs(job.id, 1), 1.0)
    elif status == "failed":
        await storage.jobs.fail(job.id, "boom")
    return job.id


async def _move(storage: Storage, job_id: str, target: str) -> None:
    if target == "queued":
        raise AssertionError("no method moves a job back to queued")
    moves = {
        "running": lambda: storage.jobs.start(job_id),
        "done": lambda: storage.jobs.finish(job_id, pngs("late", 1), 1.0),
        "failed": lambda: storage.jobs.fail(job_id, "late"),
        "cancelled": lambda: storage.jobs.cancel(job_id),
    }
    await moves[target]()


@pytest.mark.parametrize(("current", "target"), [pair for pair in ILLEGAL if pair[1] != "queued"])
async def test_every_illegal_transition_raises_and_changes_nothing(
    storage: Storage, current: str, target: str
) -> None:
    job_id = await _job_in(storage, current)
    before = await storage.jobs.get(job_id)
    files_before = files_under(Path(storage.images.root))  # type: ignore[attr-defined]
    with pytest.raises(IllegalTransition) as raised:
        await _move(storage, job_id, target)
    assert (raised.value.current, raised.value.target) == (current, target)
    assert str(raised.value) == f"Job {job_id} is {current}; it cannot become {target}."
    assert await storage.jobs.get(job_id) == before
    assert files_under(Path(storage.images.root)) == files_before  # type: ignore[attr-defined]


async def test_transitions_of_an_unknown_job_raise_job_not_found(storage: Storage) -> None:
    for move in (storage.jobs.start, storage.jobs.cancel):
        with pytest.raises(JobNotFound):
            await move("nope")
    with pytest.raises(JobNotFound):
        await storage.jobs.finish("nope", pngs("x", 1), 1.0)
    with pytest.raises(JobNotFound):
        await storage.jobs.set_message("nope", 5)


async def test_bad_values_are_refused(storage: Storage) -> None:
    with pytest.raises(InvalidValue, match="Unknown job kind 'inpaint'"):
        await storage.jobs.create("inpaint", ADA, prompt="x")
    job = await storage.jobs.create("imagine", ADA, prompt="x")
    await storage.jobs.start(job.id)
    with pytest.raises(InvalidValue, match="compute seconds"):
        await storage.jobs.finish(job.id, pngs("x", 1), -1.0)
    assert (await storage.jobs.get(job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]


async def test_job_ids_come_from_the_injected_factory(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    ids = iter(["job-a", "job-b"])
    async with await Storage.open(database_url, tmp_path, clock=clock, new_id=lambda: next(ids)) as storage:
        assert (await storage.jobs.create("imagine", ADA, prompt="x")).id == "job-a"
        assert (await storage.jobs.create("imagine", ADA, prompt="y")).id == "job-b"


# --- ownership and lineage ---


def test_the_ownership_rule() -> None:
    assert decide_owner(JobKind.IMAGINE, BOB, None) == BOB
    assert decide_owner(JobKind.REROLL, BOB, ADA) == BOB
    assert decide_owner(JobKind.VARIATION, BOB, ADA) == BOB
    assert decide_owner(JobKind.UPSCALE, BOB, ADA) == ADA
    assert decide_owner(JobKind.UPSCALE, ADA, ADA) == ADA


async def test_upscale_of_someone_elses_image_stays_theirs_everything_else_is_the_pressers(
    storage: Storage,
) -> None:
    imagine = await finished(storage, "imagine", ADA)
    upscale = await storage.jobs.create("upscale", BOB, parent_job_id=imagine.id, parent_image_index=2)
    variation = await finished(storage, "variation", BOB, parent_job_id=imagine.id, parent_image_index=0)
    reroll = await storage.jobs.create("reroll", CY, parent_job_id=imagine.id)
    upscale_of_variation = await storage.jobs.create(
        "upscale", CY, parent_job_id=variation.id, parent_image_index=3
    )

    assert (upscale.owner_id, upscale.requester_id, upscale.parent_image_index) == (ADA, BOB, 2)
    assert (variation.owner_id, variation.requester_id) == (BOB, BOB)
    assert (reroll.owner_id, reroll.requester_id, reroll.parent_image_index) == (CY, CY, None)
    assert (upscale_of_variation.owner_id, upscale_of_variation.requester_id) == (BOB, CY)


async def test_lineage_walks_any_image_back_to_its_imagine(storage: Storage) -> None:
    imagine = await finished(storage, "imagine", ADA)
    reroll = await finished(storage, "reroll", BOB, parent_job_id=imagine.id)
    variation = await finished(storage, "variation", CY, parent_job_id=reroll.id, parent_image_index=1)
    upscale = await finished(
        storage, "upscale", ADA, images=1, parent_job_id=variation.id, parent_image_index=3
    )

    chain = await storage.jobs.lineage(upscale.id)
    assert [(job.id, job.kind) for job in chain] == [
        (imagine.id, JobKind.IMAGINE),
        (reroll.id, JobKind.REROLL),
        (variation.id, JobKind.VARIATION),
        (upscale.id, JobKind.UPSCALE),
    ]
    assert [job.parent_image_index for job in chain] == [None, None, 1, 3]
    assert [job.id for job in await storage.jobs.lineage(imagine.id)] == [imagine.id]
    with pytest.raises(JobNotFound):
        await storage.jobs.lineage("nope")


async def test_edits_of_an_image_are_the_pressers_and_walk_back_through_their_images(
    storage: Storage,
) -> None:
    """Vary (Region), Zoom Out, Pan and Make Square follow the variation's rule: whoever presses owns it."""
    imagine = await finished(storage, "imagine", ADA)
    upscale = await finished(
        storage, "upscale", ADA, images=1, parent_job_id=imagine.id, parent_image_index=1
    )
    zoom = await finished(storage, "zoom", BOB, parent_job_id=upscale.id, parent_image_index=0)
    pan = await finished(storage, "pan", CY, parent_job_id=zoom.id, parent_image_index=3)
    square = await finished(storage, "square", ADA, parent_job_id=pan.id, parent_image_index=2)
    region = await storage.jobs.create("region", BOB, parent_job_id=square.id, parent_image_index=0)

    assert [(job.owner_id, job.requester_id) for job in (zoom, pan, square, region)] == [
        (BOB, BOB),
        (CY, CY),
        (ADA, ADA),
        (BOB, BOB),
    ]
    chain = await storage.jobs.lineage(region.id)
    assert [(job.kind, job.parent_image_index) for job in chain] == [
        (JobKind.IMAGINE, None),
        (JobKind.UPSCALE, 1),
        (JobKind.ZOOM, 0),
        (JobKind.PAN, 3),
        (JobKind.SQUARE, 2),
        (JobKind.REGION, 0),
    ]
    for kind in ("region", "zoom", "pan", "square"):
        with pytest.raises(InvalidParent, match="job needs the index of the image it starts from"):
            await storage.jobs.create(kind, ADA, parent_job_id=imagine.id)
        with pytest.raises(InvalidParent, match="has no image number 5"):
            await storage.jobs.create(kind, ADA, parent_job_id=imagine.id, parent_image_index=4)


@pytest.mark.parametrize(
    ("kind", "parent", "index", "message"),
    [
        ("imagine", "done", None, "An imagine job has no parent."),
        ("upscale", None, None, "An upscale job needs the job it comes from."),
        ("reroll", None, None, "A reroll job needs the job it comes from."),
        ("upscale", "done", None, "needs the index of the image"),
        ("variation", "done", None, "needs the index of the image"),
        ("reroll", "done", 1, "does not take an image index"),
        ("upscale", "done", 4, "has no image number 5"),
        ("variation", "done", -1, "has no image number 0"),
        ("upscale", "queued", 0, "is queued; it has no images yet"),
        ("upscale", "missing", 0, "no longer exists"),
        ("reroll", "deleted", None, "no longer exists"),
    ],
)
async def test_bad_parents_are_refused_and_record_nothing(
    storage: Storage, kind: str, parent: str | None, index: int | None, message: str
) -> None:
    parent_id = None
    if parent == "done":
        parent_id = (await finished(storage, "imagine", ADA)).id
    elif parent == "queued":
        parent_id = (await storage.jobs.create("imagine", ADA, prompt="p")).id
    elif parent == "missing":
        parent_id = "gone"
    elif parent == "deleted":
        parent_id = (await finished(storage, "imagine", ADA)).id
        await storage.jobs.delete(parent_id, ADA)
    jobs_before = (await storage.stats.usage("all")).jobs
    with pytest.raises(InvalidParent, match=re.escape(message)):
        await storage.jobs.create(kind, BOB, parent_job_id=parent_id, parent_image_index=index)
    assert (await storage.stats.usage("all")).jobs == jobs_before
    assert await storage.jobs.recent_for_user(BOB) == []


# --- the crash rule: no row without its file ---


async def test_a_failure_after_the_files_and_before_the_rows_leaves_only_orphan_files(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job = await storage.jobs.create("imagine", ADA, prompt="p")
    await storage.jobs.start(job.id)

    async def crash(repository, session, rows) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("power cut")

    monkeypatch.setattr(type(storage.jobs), "_insert_images", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        await storage.jobs.finish(job.id, pngs("orphan"), 3.0)
    monkeypatch.undo()

    assert await image_rows(storage) == 0
    assert (await storage.jobs.get(job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]
    orphans = files_under(tmp_path / "images")
    assert len(orphans) == 4
    # Too young to sweep (its row might still be coming), then swept once old.
    assert await storage.sweep_orphans() == []
    for path in orphans:
        os.utime(path, (0, 0))
    swept = await storage.sweep_orphans()
    assert len(swept) == 4
    assert files_under(tmp_path / "images") == []
    # The job can still finish properly afterwards.
    done = await storage.jobs.finish(job.id, pngs("retry"), 3.0)
    assert all([await storage.images.exists(image.storage_key) for image in done.images])


async def test_a_failed_file_write_records_nothing(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    job = await storage.jobs.create("imagine", ADA, prompt="p")
    await storage.jobs.start(job.id)
    real_put = storage.images.put
    calls = 0

    async def put_fails_on_the_third(data: bytes, suffix: str = ".png"):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        return await real_put(data, suffix)

    monkeypatch.setattr(storage.images, "put", put_fails_on_the_third)
    with pytest.raises(StorageUnavailable, match="unavailable right now") as refused:
        await storage.jobs.finish(job.id, pngs("p"), 3.0)
    assert isinstance(refused.value.__cause__, OSError) and "disk full" in str(refused.value.__cause__)
    assert await image_rows(storage) == 0
    assert (await storage.jobs.get(job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]


async def test_every_image_row_points_at_a_file_and_the_sweep_spares_them(storage: Storage) -> None:
    await finished(storage, "imagine", ADA)
    await finished(storage, "imagine", BOB)
    root = Path(storage.images.root)  # type: ignore[attr-defined]
    for path in files_under(root):
        os.utime(path, (0, 0))
    assert await storage.sweep_orphans() == []
    async with storage.engine.connect() as connection:
        keys = (await connection.execute(select(Image.storage_key))).scalars().all()
    assert len(keys) == 8
    assert all((root / key).is_file() for key in keys)


# --- reading ---


async def test_a_job_keeps_the_message_that_shows_it(storage: Storage) -> None:
    job = await finished(storage, "imagine", ADA)
    await storage.jobs.set_message(job.id, 9_000_000_000_000_000_001, channel_id=77)
    found = await storage.jobs.get(job.id)
    assert found is not None
    assert (found.message_id, found.channel_id, len(found.images)) == (9_000_000_000_000_000_001, 77, 4)
    assert await storage.jobs.get("nope") is None


async def test_recent_jobs_are_the_users_own_newest_first(storage: Storage, clock: FakeClock) -> None:
    mine = []
    for n in range(5):
        clock.advance(minutes=1)
        mine.append((await storage.jobs.create("imagine", ADA, prompt=f"mine {n}")).id)
        await storage.jobs.create("imagine", BOB, prompt=f"theirs {n}")
    recent = await storage.jobs.recent_for_user(ADA, limit=3)
    assert [job.id for job in recent] == mine[::-1][:3]
    assert await storage.jobs.recent_for_user(CY) == []


async def test_unfinished_jobs_survive_a_restart(database_url: str, tmp_path: Path, clock: FakeClock) -> None:
    async with await Storage.open(database_url, tmp_path / "images", clock=clock) as before:
        queued = await before.jobs.create("imagine", ADA, prompt="waiting")
        clock.advance(seconds=1)
        running = await before.jobs.create("imagine", BOB, prompt="working")
        await before.jobs.start(running.id)
        await finished(before, "imagine", CY)
        await before.jobs.fail((await before.jobs.create("imagine", CY, prompt="f")).id, "x")
        await before.jobs.cancel((await before.jobs.create("imagine", CY, prompt="c")).id)
    async with await Storage.open(database_url, tmp_path / "images", clock=clock) as after:
        left = await after.jobs.unfinished()
        assert [(job.id, job.status) for job in left] == [
            (queued.id, JobStatus.QUEUED),
            (running.id, JobStatus.RUNNING),
        ]
        for job in left:
            await after.jobs.fail(job.id, "interrupted by a restart")
        assert await after.jobs.unfinished() == []


# --- deletion ---


async def test_only_the_owner_or_an_admin_may_delete(storage: Storage) -> None:
    job = await finished(storage, "imagine", ADA)
    with pytest.raises(NotAllowed, match="Only the owner"):
        await storage.jobs.delete(job.id, BOB)
    assert await storage.jobs.get(job.id) == job
    assert all([await storage.images.exists(image.storage_key) for image in job.images])

    upscale = await finished(storage, "upscale", BOB, images=1, parent_job_id=job.id, parent_image_index=0)
    with pytest.raises(NotAllowed):
        await storage.jobs.delete(upscale.id, BOB)  # pressed it, but it is Ada's
    await storage.jobs.delete(upscale.id, ADA)
    await storage.jobs.delete(job.id, CY, is_admin=True)
    assert await storage.jobs.get(job.id) is None
    with pytest.raises(JobNotFound):
        await storage.jobs.delete(job.id, ADA)


async def test_deleting_removes_images_but_keeps_lineage_quota_and_usage(
    storage: Storage, tmp_path: Path
) -> None:
    parent = await finished(storage, "imagine", ADA)
    child = await finished(storage, "variation", BOB, parent_job_id=parent.id, parent_image_index=1)
    await storage.jobs.set_message(parent.id, 555)
    for path in files_under(tmp_path / "images"):
        os.utime(path, (time.time() - 7200,) * 2)  # written two hours ago
    deleted = await storage.jobs.delete(parent.id, ADA)

    assert deleted.deleted and deleted.images == ()
    assert await storage.jobs.get(parent.id) is None
    assert await storage.jobs.recent_for_user(ADA) == []
    assert not any([await storage.images.exists(image.storage_key) for image in parent.images])
    assert all([await storage.images.exists(image.storage_key) for image in child.images])
    chain = await storage.jobs.lineage(child.id)
    assert [(job.id, job.deleted) for job in chain] == [(parent.id, True), (child.id, False)]
    assert await storage.jobs.jobs_last_24h(ADA) == 1
    assert (await storage.stats.usage("all")).jobs == 2


async def test_deleting_a_running_job_cancels_it(storage: Storage) -> None:
    job = await storage.jobs.create("imagine", ADA, prompt="p")
    await storage.jobs.start(job.id)
    await storage.jobs.delete(job.id, ADA)
    assert await storage.jobs.unfinished() == []
    with pytest.raises(JobNotFound):
        await storage.jobs.finish(job.id, pngs("late"), 1.0)
    assert (await storage.stats.usage("all")).cancelled == 1


# --- quota and bans ---


async def test_quota_counts_the_last_24_hours(storage: Storage, clock: FakeClock) -> None:
    first = await storage.jobs.create("imagine", ADA, prompt="1", daily_quota=3)
    clock.advance(hours=1)
    await storage.jobs.create("imagine", ADA, prompt="2", daily_quota=3)
    failed = await storage.jobs.create("imagine", ADA, prompt="3", daily_quota=3)
    await storage.jobs.fail(failed.id, "our fault, not counted")
    await storage.jobs.create("imagine", ADA, prompt="4", daily_quota=3)
    assert await storage.jobs.jobs_last_24h(ADA) == 3

    with pytest.raises(QuotaExceeded) as raised:
        await storage.jobs.create("imagine", ADA, prompt="5", daily_quota=3)
    assert (raised.value.used, raised.value.limit) == (3, 3)
    assert raised.value.resets_at == first.queued_at.replace(day=2)
    assert "13:00" not in str(raised.value) and "12:00 UTC" in str(raised.value)
    assert await storage.jobs.jobs_last_24h(ADA) == 3
    await storage.jobs.create("imagine", BOB, prompt="others are unaffected", daily_quota=3)

    clock.advance(hours=23, seconds=1)  # the first job is now over 24 h old
    await storage.jobs.create("imagine", ADA, prompt="5", daily_quota=3)
    with pytest.raises(QuotaExceeded):
        await storage.jobs.create("imagine", ADA, prompt="6", daily_quota=3)


async def test_banned_users_cannot_create_jobs(storage: Storage) -> None:
    await storage.users.ban(BOB)
    assert await storage.users.is_banned(BOB)
    with pytest.raises(UserBanned, match="banned"):
        await storage.jobs.create("imagine", BOB, prompt="p")
    assert await storage.jobs.recent_for_user(BOB) == []
    await storage.users.unban(BOB)
    assert not await storage.users.is_banned(BOB)
    assert (await storage.jobs.create("imagine", BOB, prompt="p")).owner_id == BOB


async def test_jobs_table_has_one_row_per_created_job(storage: Storage) -> None:
    await finished(storage, "imagine", ADA)
    async with storage.engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(Job))).scalar_one() == 1


async def test_files_shared_with_another_job_or_just_written_outlive_a_delete(
    storage: Storage, tmp_path: Path
) -> None:
    first, second = [await storage.jobs.create("imagine", user, prompt="same seed") for user in (ADA, BOB)]
    for job in (first, second):
        await storage.jobs.start(job.id)
    first = await storage.jobs.finish(first.id, pngs("same", 2), 1.0)
    await storage.jobs.finish(second.id, pngs("same", 2), 1.0)
    fresh = await finished(storage, "imagine", ADA)
    for image in first.images:
        os.utime(tmp_path / "images" / image.storage_key, (time.time() - 7200,) * 2)

    await storage.jobs.delete(first.id, ADA)  # Bob's job has the same bytes
    await storage.jobs.delete(fresh.id, ADA)  # written moments ago: left to the sweep

    assert all([await storage.images.exists(image.storage_key) for image in first.images])
    assert all([await storage.images.exists(image.storage_key) for image in fresh.images])
    for image in fresh.images:
        os.utime(tmp_path / "images" / image.storage_key, (time.time() - 7200,) * 2)
    assert sorted(await storage.sweep_orphans()) == sorted(image.storage_key for image in fresh.images)
    assert all([await storage.images.exists(image.storage_key) for image in first.images])
