"""Reliability against real processes: `kaika worker` processes on the real Redis, the job service as the bot
runs it on the real PostgreSQL, default settings (CELERY_VISIBILITY_TIMEOUT 3600 s, CELERY_LEASE_SECONDS 15).

    python bench/reliability.py             # Redis redis://127.0.0.1:6379/15, PostgreSQL postgres@127.0.0.1/test
    python bench/reliability.py --runs 3

Scenarios, each run a fresh job (the tiny test model on CPU, one torch thread per worker):
1. worker killed (kill -9) mid-job, a second worker idle: recovery is from the kill to the job starting on the
   other worker;
2. worker hung (SIGSTOP) mid-job: likewise; the hung worker is then woken and must report nothing;
3. 200 /imagine from 50 members at once, MAX_QUEUE=60 and MAX_JOBS_PER_USER=2: refusals must record nothing;
4. Redis unreachable: the request is refused and recorded as nothing;
5. PostgreSQL cut mid-job for --outage seconds: recovery is from the database's return to the member being told;
6. PostgreSQL cut mid-job and the bot restarted before it returns: recovery is from the restart (the database
   back) to the member being told, by the restarted bot;
7. the real `kaika bot` process (local executor, SQLite) against the fake Discord, killed with kill -9 while
   one /imagine runs and two wait, then started again: each job must be posted exactly once;
8. generated inputs (hypothesis): --prompts texts through the parser and prompt checks, --custom-ids button
   custom_ids pressed on the real bot; an unhandled exception or an unanswered press counts as lost.

A job is completed when it is recorded done and its member was told one result; lost when it was accepted and
never completed; told twice when its member heard more than one outcome (two results, or a failure and a result),
across restarts too. One run of everything takes about five minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["OMP_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import torch  # noqa: E402
from redis.connection import parse_url  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from pipeline.errors import PipelineError  # noqa: E402
from pipeline.executor.celery_jobs import FleetConfig, JobKeys  # noqa: E402
from pipeline.request import GenerationRequest  # noqa: E402
from service.admission import Place, Requester  # noqa: E402
from service.jobs import Outcome  # noqa: E402
from service.recovery import recover_unfinished  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.wiring import Services  # noqa: E402
from storage import Storage  # noqa: E402
from storage.records import FrontEnd, JobStatus  # noqa: E402
from testkit.bot_process import start_bot  # noqa: E402
from testkit.databases import run_autocommit  # noqa: E402
from testkit.fake_discord import FakeDiscord  # noqa: E402
from testkit.fleet import WorkerProcess, delete_prefix  # noqa: E402
from testkit.outage import OutageProxy  # noqa: E402
from testkit.tiny_pipeline import save_tiny_model  # noqa: E402

# Seconds of work on a CPU, so a job is still running when its worker is lost.
LONG = GenerationRequest(prompt="a lighthouse at dusk", seed=3, width=64, height=64, steps=100, num_images=2)
QUICK = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)
PLACE = Place(guild_id=5, channel_id=6, front_end=FrontEnd.DISCORD)
JOB_BOUND = 180.0  # seconds a job may take, recovery included, before it counts as lost
BOT_JOBS = 3  # /imagine jobs in flight when the bot is killed: one running, the rest waiting


class Reporter:
    """What one job's member is told, and when."""

    def __init__(self) -> None:
        self.steps = 0
        self.results = 0
        self.failures = 0
        self.told_at: float | None = None

    async def waiting(self, position: int) -> None:
        pass

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        self.steps += 1

    async def finished(self, outcome: Outcome) -> None:
        self.results += 1
        self.told_at = time.time()

    async def failed(self, message: str) -> None:
        self.failures += 1
        self.told_at = time.time()

    @property
    def told(self) -> int:
        return self.results + self.failures


@dataclass
class Row:
    scenario: str
    runs: int = 0
    completed: int = 0
    lost: int = 0
    told_twice: int = 0
    recovery: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, done: bool, told: int) -> None:
        self.completed += done and told == 1
        self.lost += not done
        self.told_twice += told > 1

    def cells(self) -> list[str]:
        recovery = (
            f"{statistics.median(self.recovery):.1f} (max {max(self.recovery):.1f})" if self.recovery else "—"
        )
        return [
            self.scenario,
            str(self.runs),
            str(self.completed),
            str(self.lost),
            str(self.told_twice),
            recovery,
        ]


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path, model: Path, database_url: str) -> None:
        self.args = args
        self.folder = folder
        self.model = model
        self.database_url = database_url
        self.config = FleetConfig(redis_url=args.redis_url, key_prefix=f"kaika-bench-{uuid.uuid4().hex[:8]}")
        self.workers: list[WorkerProcess] = []

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "executor": "celery",
            "redis_url": self.config.redis_url,
            "celery_key_prefix": self.config.key_prefix,
            "model": str(self.model),
            "data_dir": self.folder / "data",
            "database_url": self.database_url,
            "preview_every": 0,
            **overrides,
        }
        return Settings(_env_file=None, **values)

    def ready_workers(self, count: int) -> None:
        """`count` live, responsive workers (replacing killed ones)."""
        self.workers = [w for w in self.workers if w.process.poll() is None]
        while len(self.workers) < count:
            log = self.folder / f"worker-{uuid.uuid4().hex[:6]}.log"
            self.workers.append(WorkerProcess(self.config, self.model, log))
        for worker in self.workers:
            worker.wait_ready()

    def record(self, job_id: str) -> dict[str, str]:
        client = redis.Redis.from_url(self.config.redis_url, decode_responses=True)
        try:
            return client.hgetall(JobKeys(self.config.key_prefix, job_id).job)
        finally:
            client.close()

    def started_again_at(self, job_id: str) -> float | None:
        """Unix time the job's second delivery began (from its stream entry's id)."""
        client = redis.Redis.from_url(self.config.redis_url)
        try:
            for entry_id, fields in client.xrange(JobKeys(self.config.key_prefix, job_id).events):
                if fields[b"type"] == b"started" and fields.get(b"attempt") == b"2":
                    return int(entry_id.split(b"-")[0]) / 1000
        finally:
            client.close()
        return None

    def finished_entries(self, job_id: str) -> int:
        client = redis.Redis.from_url(self.config.redis_url)
        try:
            entries = client.xrange(JobKeys(self.config.key_prefix, job_id).events)
            return sum(fields[b"type"] == b"finished" for _, fields in entries)
        finally:
            client.close()

    # --- 1 and 2: a worker lost mid-job --------------------------------------------------------------

    async def lost_worker(self, name: str, lose: Callable[[WorkerProcess], None]) -> Row:
        row = Row(name)
        services = await Services.open(self.settings())
        try:
            for run in range(self.args.runs):
                self.ready_workers(2)
                reporter = Reporter()
                pending = await services.jobs.imagine(Requester(1, "ada"), PLACE, LONG.replace(seed=run))
                task = pending.start(reporter)
                assert task is not None
                await until(lambda r=reporter: r.steps > 0, 90)
                worker_name = self.record(pending.job.id)["worker"]
                [holder] = [w for w in self.workers if w.is_named(worker_name)]
                lose(holder)
                lost_at = time.time()
                done = await finished_within(task, JOB_BOUND)
                again = self.started_again_at(pending.job.id)
                if again is not None:
                    row.recovery.append(again - lost_at)
                if holder.process.poll() is None:  # hung: wake it; it must drop its job without a word
                    holder.wake()
                    await until(lambda h=holder: "taken over by another delivery" in h.log(), 60)
                    await asyncio.sleep(1.0)
                record = await services.storage.jobs.get(pending.job.id)
                stored = done and record is not None and record.status is JobStatus.DONE
                row.runs += 1
                row.count(stored, reporter.told + max(0, self.finished_entries(pending.job.id) - 1))
        finally:
            await services.close()
        row.notes.append("recovery: seconds from losing the worker to the job starting on another")
        return row

    # --- 3: a burst over the limits ------------------------------------------------------------------

    async def burst(self) -> Row:
        row = Row("200 /imagine from 50 members at once (MAX_QUEUE=60, 2 each)")
        self.ready_workers(2)
        services = await Services.open(self.settings(max_queue=60, max_jobs_per_user=2))
        try:
            members = [Requester(100 + n, f"member{n}") for n in range(50)]
            reporters: list[tuple[str, Reporter]] = []
            refused = 0

            async def ask(member: Requester) -> None:
                nonlocal refused
                try:
                    pending = await services.jobs.imagine(member, PLACE, QUICK)
                except PipelineError:
                    refused += 1
                    return
                reporters.append((pending.job.id, reporter := Reporter()))
                pending.start(reporter)

            await asyncio.gather(*(ask(members[n % 50]) for n in range(200)))
            try:
                async with asyncio.timeout(JOB_BOUND):
                    await services.jobs.wait_idle()
            except TimeoutError:
                pass
            for job_id, reporter in reporters:
                record = await services.storage.jobs.get(job_id)
                row.count(record is not None and record.status is JobStatus.DONE, reporter.told)
            row.runs = 1
            report = await services.storage.stats.usage("24h")
            rate = "n/a" if report.failure_rate is None else f"{report.failure_rate:.0%}"
            row.notes.append(
                f"burst: {len(reporters)} accepted, {refused} refused; refusals recorded as failed "
                f"{report.failed}, /stats failure rate {rate}"
            )
        finally:
            await services.close()
        return row

    # --- 4: Redis unreachable ------------------------------------------------------------------------

    async def redis_down(self) -> Row:
        row = Row("Redis unreachable: a request")
        where = parse_url(self.config.redis_url)
        with OutageProxy(where.get("host", "127.0.0.1"), where.get("port", 6379)) as proxy:
            url = f"redis://{proxy.host}:{proxy.port}/{where.get('db', 0)}"
            services = await Services.open(self.settings(redis_url=url))
            try:
                proxy.cut()
                try:
                    await services.jobs.imagine(Requester(2, "bo"), PLACE, QUICK)
                    answer = "accepted"
                except PipelineError as error:
                    answer = f"refused ({error})"
                proxy.restore()
                recorded = len(await services.storage.jobs.recent_for_user(2))
                row.runs = 1
                row.notes.append(f"Redis down: {answer}; jobs recorded {recorded}")
            finally:
                await services.close()
        return row

    # --- 5 and 6: PostgreSQL cut mid-job -------------------------------------------------------------

    async def database_cut(self, restart: bool) -> Row:
        name = (
            "PostgreSQL cut mid-job, bot restarted"
            if restart
            else f"PostgreSQL cut mid-job ({self.args.outage:g} s)"
        )
        row = Row(name)
        target = make_url(self.database_url)
        with OutageProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            proxied = target.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
            for run in range(self.args.runs):
                self.ready_workers(2)
                services = await Services.open(self.settings(database_url=proxied))
                reporter = Reporter()
                pending = await services.jobs.imagine(Requester(3, "cy"), PLACE, LONG.replace(seed=100 + run))
                task = pending.start(reporter)
                assert task is not None and pending.handle is not None
                await until(lambda r=reporter: r.steps > 0, 90)
                proxy.cut()
                cut_at = time.time()
                await until(lambda h=pending.handle: h.done, JOB_BOUND)  # the images are made
                await asyncio.sleep(max(0.0, cut_at + self.args.outage - time.time()))
                if reporter.told:  # during the outage nothing may be told: no result is recorded yet
                    row.notes.append(f"PostgreSQL: run {run + 1} told its member during the outage")
                if restart:
                    await services.close()
                    proxy.restore()
                    back_at = time.time()
                    services = await Services.open(self.settings(database_url=proxied))
                    again = Reporter()
                    await recover_unfinished(
                        services.jobs, lambda job, r=again: r, _nothing, front_end=FrontEnd.DISCORD
                    )
                    try:
                        async with asyncio.timeout(JOB_BOUND):
                            await services.jobs.wait_idle()
                    except TimeoutError:
                        pass
                    told = reporter.told + again.told
                    told_at = again.told_at
                else:
                    proxy.restore()
                    back_at = time.time()
                    await finished_within(task, JOB_BOUND)
                    told = reporter.told
                    told_at = reporter.told_at
                record = await services.storage.jobs.get(pending.job.id)
                await services.close()
                row.runs += 1
                row.count(record is not None and record.status is JobStatus.DONE, told)
                if told_at is not None:
                    row.recovery.append(told_at - back_at)
        row.notes.append(
            "PostgreSQL: recovery is seconds from the database's return (and the restart) to the member told"
        )
        return row


async def killed_bot(args: argparse.Namespace, folder: Path, model: Path) -> Row:
    """`kaika bot` (the local executor, SQLite) killed with kill -9 while one job runs and others wait, then
    started again: every accepted job must end up posted exactly once. Recovery is from the restart to the
    last job's result."""
    row = Row("bot killed (kill -9) mid-job, restarted")
    fake = FakeDiscord()
    await fake.start()
    try:
        for run in range(args.runs):
            data = folder / f"bot-{run}"
            bot = await start_bot(fake, data / "data", model, folder)
            members = [fake.add_member(f"member{run}-{i}") for i in range(BOT_JOBS)]
            asked = [
                await fake.slash(m, "imagine", prompt=f"a long job {i} --steps 60")
                for i, m in enumerate(members)
            ]
            await until(lambda a=asked: "%" in ((fake.original(a[0]) or {}).get("content") or ""), JOB_BOUND)
            bot.stop()
            restarted = time.time()
            bot = await start_bot(fake, data / "data", model, folder)
            # An /imagine the killed bot had not yet acknowledged was never accepted (Discord tells its member
            # the interaction failed): the jobs to count are the ones recorded.
            users = {m.id for m in members}
            accepted = await bot_job_ids(data / "data", users)
            try:
                await until(lambda a=accepted, u=users: set(a) <= set(results_by_job(fake, u)), JOB_BOUND)
                row.recovery.append(time.time() - restarted)
            except TimeoutError:
                pass  # what is not posted by now counts as lost
            await asyncio.sleep(2)  # time for a second, duplicate post to show
            posted = results_by_job(fake, users)
            bot.stop()
            for job_id in accepted:
                row.runs += 1
                row.count(job_id in posted, posted.get(job_id, 0))
    finally:
        await fake.close()
    row.notes.append("bot: recovery is seconds from the restart to every waiting job posted")
    return row


def results_by_job(fake: FakeDiscord, users: set[int]) -> dict[str, int]:
    """Job id → how many result messages (with the job's buttons) the bot posted or left for `users`'s jobs."""
    counts: dict[str, int] = {}
    for message in fake.messages.values():
        if not any(f"<@{user}>" in (message.get("content") or "") for user in users):
            continue
        jobs = {cid.split(":")[2] for cid in fake.custom_ids(int(message["id"])) if cid.count(":") >= 2}
        for job_id in jobs:
            counts[job_id] = counts.get(job_id, 0) + 1
    return counts


async def bot_job_ids(data_dir: Path, users: set[int]) -> list[str]:
    settings = Settings(_env_file=None, data_dir=data_dir)
    storage = await Storage.open(settings.resolved_database_url, data_dir / "images")
    try:
        return [job.id for user in users for job in await storage.jobs.recent_for_user(user)]
    finally:
        await storage.close()


def generated_prompts(count: int) -> Row:
    """`count` hypothesis-generated /imagine texts (free text, flags with odd values, braces, weights, invisible
    characters) through the parser and the prompt checks the bot runs: any exception but the user errors they
    raise to explain a refusal is a bug (an unhandled exception: "something went wrong")."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pipeline.families import UNKNOWN_FAMILY
    from pipeline.prompt import parse_prompts
    from service.admission import check_prompt
    from service.errors import USER_ERRORS
    from storage.records import GuildSettings

    flag = st.sampled_from(
        ["--ar", "--seed", "--no", "--steps", "--s", "--c", "--q", "--repeat", "--tile", "--model"]
    )
    piece = st.one_of(
        st.text(max_size=40),
        st.builds(lambda f, v: f"{f} {v}", flag, st.text(max_size=12)),
        st.builds(lambda f, n: f"{f} {n}", flag, st.integers(-(10**12), 10**12)),
        st.sampled_from(["{a, b}", "{", "}", "\\{", "::", "cat:: dog::0.5", "::-1", "\u200b", "—ar 2:3"]),
    )
    texts = st.lists(piece, max_size=8).map(" ".join)
    guild = GuildSettings(guild_id=1, blocklist=("spider", "big cat"))
    row = Row(f"{count} generated prompts (parser and checks)")
    bugs: list[str] = []

    @settings(max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(texts)
    def parse(text: str) -> None:
        row.runs += 1
        try:
            for request in parse_prompts(text, family=UNKNOWN_FAMILY):
                check_prompt(request.prompt, request.negative_prompt, guild)
        except USER_ERRORS:
            pass
        except Exception as error:  # a bug: the bot would answer "something went wrong"
            bugs.append(f"{text!r}: {type(error).__name__}: {error}")

    parse()
    row.completed = row.runs - len(bugs)
    row.lost = len(bugs)
    row.notes.append("generated inputs: 'lost' counts unhandled exceptions (bugs); examples below, if any")
    row.notes.extend(bugs[:5])
    return row


async def generated_custom_ids(args: argparse.Namespace, folder: Path, model: Path) -> Row:
    """`args.custom_ids` hypothesis-generated button custom_ids (well-formed ones for unknown and real jobs,
    and anything else) pressed on a real message of the real `kaika bot` through the fake Discord, as a
    tampered client sends them: each must get an answer that is not "something went wrong"."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from bot.errors import GENERIC_FAILURE

    row = Row(f"{args.custom_ids} generated button custom_ids (real bot)")
    fake = FakeDiscord()
    await fake.start()
    bot = await start_bot(fake, folder / "fuzz" / "data", model, folder)
    try:
        ada = fake.add_member("ada")
        asked = await fake.slash(ada, "imagine", prompt="a red circle --steps 2")
        grid = await fake.wait_until(
            lambda: (fake.original(asked) or {}).get("components") and fake.original(asked), 120
        )
        job_id = fake.custom_ids(int(grid["id"]))[0].split(":")[2]
        ids = st.one_of(
            st.from_regex(r"kaika:[a-z]{1,8}:[A-Za-z0-9_-]{1,64}:\d{1,2}", fullmatch=True),
            st.builds(
                lambda a, i: f"kaika:{a}:{job_id}:{i}", st.text("uvrxsc", max_size=3), st.integers(-3, 120)
            ),
            st.from_regex(r"kaika:[a-z:]{0,20}", fullmatch=True),
            st.text(max_size=100),
        )
        pressed: list[str] = []

        @settings(
            max_examples=args.custom_ids,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(ids)
        def collect(custom_id: str) -> None:
            pressed.append(custom_id)

        collect()
        for custom_id in pressed:
            if not custom_id or len(custom_id) > 100:
                continue  # Discord itself refuses a custom_id that is empty or longer than 100
            row.runs += 1
            interaction = await fake.press_custom_id(ada, int(grid["id"]), custom_id, forge=True)
            try:
                answered = await fake.wait_acked(interaction, 30)
            except TimeoutError:
                answered = None
            ok = answered is not None and GENERIC_FAILURE not in fake.reply_text(answered)
            row.completed += ok
            row.lost += not ok
    finally:
        bot.stop()
        await fake.close()
    row.notes.append("custom_ids: 'lost' counts presses left unanswered or answered 'something went wrong'")
    return row


async def _nothing(job: Any) -> None:
    pass


async def until(condition: Callable[[], bool], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polled state of processes and jobs
            await asyncio.sleep(0.05)


async def finished_within(task: asyncio.Task[None], seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await task
    except TimeoutError:
        return False
    return True


def table(rows: list[Row]) -> str:
    header = ["scenario", "runs", "jobs completed", "lost", "told twice", "seconds to recovery, median (max)"]
    lines = [header, ["---"] * len(header), *(row.cells() for row in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


async def create_database(url: str) -> str:
    name = f"kaika_reliability_{uuid.uuid4().hex[:8]}"
    await run_autocommit(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=2, help="runs of each lost-worker and outage scenario")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL stays cut")
    parser.add_argument("--prompts", type=int, default=10_000, help="generated prompts to parse")
    parser.add_argument("--custom-ids", type=int, default=1_000, help="generated custom_ids to press")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.ERROR)  # the outages make every waiting job log a warning per try
    started = time.monotonic()

    database = await create_database(args.postgres_url)
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(args, Path(folder), save_tiny_model(Path(folder) / "tiny-sd"), database)
        print(
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; lease {bench.config.lease_seconds} s, "
            f"visibility timeout {bench.config.visibility_timeout} s; {args.runs} runs per scenario",
            flush=True,
        )
        try:
            rows = [
                await bench.lost_worker("worker killed (kill -9) mid-job", WorkerProcess.kill),
                await bench.lost_worker("worker hung (SIGSTOP) mid-job", WorkerProcess.hang),
                await bench.burst(),
                await bench.redis_down(),
                await bench.database_cut(restart=False),
                await bench.database_cut(restart=True),
                await killed_bot(args, Path(folder), bench.model),
                generated_prompts(args.prompts),
                await generated_custom_ids(args, Path(folder), bench.model),
            ]
        finally:
            for worker in bench.workers:
                worker.stop()
            delete_prefix(args.redis_url, bench.config.key_prefix)
            await run_autocommit(
                args.postgres_url, f'DROP DATABASE IF EXISTS "{make_url(database).database}" WITH (FORCE)'
            )
    print(table(rows))
    for note in dict.fromkeys(note for row in rows for note in row.notes):
        print(f"- {note}")
    print(f"({time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    asyncio.run(main())
