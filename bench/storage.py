"""Admin usage queries and "my recent jobs" on a big history, on SQLite and PostgreSQL.

Fills a fresh database with `--jobs` jobs (a year of history by default) and their images for
`--users` users, members of `--guilds` servers, then times each query through the `Storage` API and prints
p50 / p95 per backend, and how long one server's report (what its admin sees) takes against everyone's.

    python bench/storage.py                      # 1,000,000 jobs, 10,000 users, both backends
    python bench/storage.py --jobs 20000 --runs 20   # a quick look

PostgreSQL gets a database of its own on the server named by --postgres-url (dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Storage, new_job_id, sqlite_url
from storage.models import Image, Job, User
from testkit.databases import run_autocommit

KINDS = ["imagine"] * 55 + ["upscale"] * 25 + ["variation"] * 12 + ["reroll"] * 8
STATUSES = ["done"] * 94 + ["failed"] * 4 + ["cancelled"] * 2
CHUNK = 50_000
TARGET_MS = 50.0
SHORT = {"sqlite": "sqlite", "postgresql": "pg"}


def generate(jobs: int, users: int, days: int, now: datetime, guilds: int = 10, seed: int = 1):  # type: ignore[no-untyped-def]
    """Yield (user rows, job rows, image rows) chunks, jobs in queue-time order; user n asks in server
    1 + n % `guilds`, so the heavy users are spread over the servers."""
    rnd = random.Random(seed)
    user_rows = [
        {
            "id": 10**17 + n,
            "display_name": f"user{n}",
            "first_seen": now - timedelta(days=days + 1),
            "banned": False,
            "defaults": {},
            "jobs_total": 0,
            "images_total": 0,
            "compute_seconds_total": 0.0,
        }
        for n in range(users)
    ]
    yield user_rows, [], []
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()
    offsets = sorted(rnd.random() * span for _ in range(jobs))
    imagines: list[tuple[str, int, int]] = []  # (job id, owner, image count) of finished imagines
    job_rows: list[dict] = []
    image_rows: list[dict] = []
    for offset in offsets:
        queued = start + timedelta(seconds=offset)
        requester = 10**17 + int(users * rnd.random() ** 2)  # a few heavy users, a long tail
        kind = rnd.choice(KINDS) if imagines else "imagine"
        status = rnd.choice(STATUSES)
        parent, index, owner = None, None, requester
        if kind != "imagine":
            parent, parent_owner, _ = imagines[-1 - int(rnd.random() ** 3 * min(len(imagines), 5000))]
            if kind in ("upscale", "variation"):
                index = rnd.randrange(4)
            if kind == "upscale":
                owner = parent_owner
        wait = rnd.expovariate(1 / 4)
        compute = rnd.uniform(2, 12)
        images = (1 if kind == "upscale" else 4) if status == "done" else 0
        job_id = new_job_id()
        job_rows.append(
            {
                "id": job_id,
                "kind": kind,
                "status": status,
                "prompt": "a lighthouse at dusk, volumetric light",
                "negative_prompt": "",
                "params": {"steps": 25, "ar": "1:1"},
                "seed": rnd.randrange(2**32),
                "model": "demo",
                "requester_id": requester,
                "owner_id": owner,
                "parent_job_id": parent,
                "parent_image_index": index,
                "guild_id": 1 + (requester - 10**17) % guilds,
                "channel_id": 2,
                "front_end": "discord",
                "message_id": rnd.getrandbits(62),
                "queued_at": queued,
                "started_at": None if status == "cancelled" else queued + timedelta(seconds=wait),
                "finished_at": queued + timedelta(seconds=wait + compute),
                "queue_seconds": None if status == "cancelled" else wait,
                "compute_seconds": None if status == "cancelled" else compute,
                "image_count": images,
                "error": "out of memory" if status == "failed" else None,
                "deleted_at": None,
            }
        )
        for i in range(images):
            digest = f"{rnd.getrandbits(256):064x}"
            image_rows.append(
                {
                    "job_id": job_id,
                    "index": i,
                    "seed": i,
                    "width": 1024,
                    "height": 1024,
                    "storage_key": f"{digest[:2]}/{digest}.png",
                    "sha256": digest,
                    "byte_size": 1_400_000,
                }
            )
        if kind == "imagine" and status == "done":
            imagines.append((job_id, owner, images))
        if len(job_rows) >= CHUNK:
            yield [], job_rows, image_rows
            job_rows, image_rows = [], []
    yield [], job_rows, image_rows


async def fill(storage: Storage, args: argparse.Namespace, now: datetime) -> float:
    """Bulk-load the history (Core executemany on SQLite, COPY on PostgreSQL); returns seconds taken."""
    began = time.perf_counter()
    postgres = storage.engine.dialect.name == "postgresql"
    async with storage.engine.begin() as connection:
        if not postgres:
            # A big page cache for the load (this connection only): random ids touch every index page.
            await connection.exec_driver_sql("PRAGMA cache_size=-524288")
        for users, jobs, images in generate(args.jobs, args.users, args.days, now, args.guilds):
            for table, rows in ((User, users), (Job, jobs), (Image, images)):
                if not rows:
                    continue
                if postgres:
                    await copy_rows(connection, table.__table__, rows)
                else:
                    await connection.execute(insert(table), rows)
    await storage.stats.rebuild_totals()
    # Planner statistics (and, on PostgreSQL, the visibility map index-only scans need), as a
    # long-running database would have them.
    async with storage.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))
    return time.perf_counter() - began


async def copy_rows(connection, table, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    raw = (await connection.get_raw_connection()).driver_connection
    columns = [column.name for column in table.columns]

    def plain(value):  # type: ignore[no-untyped-def]
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(value, dict):
            return json.dumps(value)
        return value

    records = [tuple(plain(row[name]) for name in columns) for row in rows]
    await raw.copy_records_to_table(table.name, records=records, columns=columns)


async def time_queries(
    storage: Storage, args: argparse.Namespace
) -> dict[str, tuple[float, list[float], list[float]]]:
    """Per query, in ms: the first call (cold caches), then `args.runs` calls after a warm-up, as wall
    time and as this process's CPU time. SQLite runs inside the process, so its CPU time is what
    the call would take on an idle machine; on a shared one, wall time also holds the waits for a core.
    """
    rnd = random.Random(7)
    heavy = [10**17 + n for n in range(10)]
    anyone = [10**17 + rnd.randrange(args.users) for _ in range(args.runs + 2)]
    queries: dict[str, Callable[[int], Awaitable[object]]] = {
        f"usage {window}": (lambda w: lambda _: storage.stats.usage(w))(window)
        for window in ("24h", "7d", "30d", "all")
    }
    for window in ("24h", "7d", "30d", "all"):
        queries[f"usage {window}, 1 server"] = (lambda w: lambda _: storage.stats.usage(w, guilds=[1]))(
            window
        )
    queries["recent jobs (heavy user)"] = lambda n: storage.jobs.recent_for_user(
        heavy[n % len(heavy)], limit=10
    )
    queries["recent jobs (any user)"] = lambda n: storage.jobs.recent_for_user(anyone[n], limit=10)
    queries["quota: jobs in 24 h"] = lambda n: storage.jobs.jobs_last_24h(heavy[n % len(heavy)])
    timings: dict[str, tuple[float, list[float], list[float]]] = {}
    for name, query in queries.items():
        began = time.perf_counter()
        await query(0)
        first = (time.perf_counter() - began) * 1000
        await query(1)  # warm the caches, as a running bot has them
        samples, cpu = [], []
        for n in range(args.runs):
            began, began_cpu = time.perf_counter(), time.process_time()
            await query(n)
            samples.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        timings[name] = (first, samples, cpu)
    return timings


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


async def bench_backend(
    name: str, url: str, args: argparse.Namespace, images_dir: Path
) -> tuple[float, dict]:
    now = datetime.now(UTC)
    storage = await Storage.open(url, images_dir)
    try:
        print(f"[{name}] filling {args.jobs:,} jobs for {args.users:,} users ...", flush=True)
        seconds = await fill(storage, args, now)
        report = await storage.stats.usage("all")
        print(
            f"[{name}] filled in {seconds:.0f} s: {report.jobs:,} jobs, {report.images:,} images", flush=True
        )
        return seconds, await time_queries(storage, args)
    finally:
        await storage.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365, help="history length the jobs are spread over")
    parser.add_argument("--guilds", type=int, default=10, help="servers the users ask in")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    results: dict[str, tuple[float, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="kaika-bench-") as folder:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results["sqlite"] = await bench_backend(
                    "sqlite", sqlite_url(Path(folder)), args, Path(folder) / "images"
                )
            elif backend == "postgresql":
                name = f"kaika_bench_{random.getrandbits(32):08x}"
                await run_autocommit(args.postgres_url, f'CREATE DATABASE "{name}"')
                try:
                    url = make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
                    results["postgresql"] = await bench_backend(
                        "postgresql", url, args, Path(folder) / "images"
                    )
                finally:
                    await run_autocommit(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                parser.error(f"unknown backend {backend!r}")

    backends = list(results)
    print(
        f"\n{args.jobs:,} jobs over {args.days} days, {args.users:,} users; ms: the first call (cold caches),"
        f" then p50 / p95 of {args.runs} runs"
    )
    header = (
        f"{'query':<26}"
        + "".join(
            f"{short + ' first':>14}{short + ' p50':>14}{short + ' p95':>14}"
            for short in map(SHORT.get, backends)
        )
        + (f"{'sqlite cpu p95':>16}" if "sqlite" in results else "")
        + f"{'target p95':>12}"
    )
    print(header)
    print("-" * len(header))
    names = list(next(iter(results.values()))[1])
    for query in names:
        cells = ""
        for backend in backends:
            first, samples, _ = results[backend][1][query]
            cells += f"{first:>14.1f}{statistics.median(samples):>14.1f}{p95(samples):>14.1f}"
        verdict = ""
        if "sqlite" in results:
            cells += f"{p95(results['sqlite'][1][query][2]):>16.1f}"
            verdict = "ok" if p95(results["sqlite"][1][query][1]) <= TARGET_MS else "OVER (wall)"
        print(f"{query:<26}{cells}{TARGET_MS:>10.0f} {verdict}")
    for window in ("24h", "7d", "30d", "all"):
        ratios = (
            statistics.median(results[b][1][f"usage {window}, 1 server"][1])
            / statistics.median(results[b][1][f"usage {window}"][1])
            for b in backends
        )
        print(
            f"one server's report / everyone's, {window}, p50: "
            + ", ".join(f"{b} {ratio:.2f}x" for b, ratio in zip(backends, ratios, strict=True))
        )
    print("fill seconds: " + ", ".join(f"{b} {results[b][0]:.0f}" for b in backends))
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{load:.1f}" for load in os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())
