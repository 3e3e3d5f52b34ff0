"""The `kaika` command: `kaika imagine`, `kaika bot`, `kaika worker`, `kaika train-demo`, `kaika eval-demo`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from service.jobs import Outcome
    from service.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaika", description="Kaika: your own Midjourney-style image bot.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_imagine_command(commands)
    _add_worker_command(commands)
    _add_bot_command(commands)
    _add_demo_commands(commands)
    return parser


def _add_imagine_command(commands: argparse._SubParsersAction) -> None:
    imagine = commands.add_parser(
        "imagine",
        help="generate four images from a prompt into a folder",
        description=(
            "Generate a 2x2 grid and its four images with MODEL, using the same prompt syntax as /imagine: "
            'kaika imagine "a lighthouse at dusk --ar 16:9 --seed 7 --no boats".'
        ),
    )
    imagine.add_argument(
        "prompt", help="the description, optionally followed by --ar, --seed, --no, --steps, …"
    )
    imagine.add_argument("--out", default="out", help="folder for the PNGs (default: ./out)")
    imagine.add_argument(
        "--owner", default="", help="the local user's name recorded with the job (default: the login name)"
    )
    imagine.set_defaults(handler=_run_imagine)


def _run_imagine(args: argparse.Namespace) -> int:
    import asyncio
    import getpass
    from pathlib import Path

    from service.errors import USER_ERRORS
    from service.settings import Settings, configure_logging

    settings = Settings()
    configure_logging("WARNING")
    owner = args.owner or getpass.getuser()
    try:
        paths = asyncio.run(imagine(settings, args.prompt, owner=owner, out_dir=Path(args.out)))
    except USER_ERRORS as error:
        print(f"kaika imagine: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kaika imagine: cancelled", file=sys.stderr)
        return 130
    for path in paths:
        print(path)
    return 0


async def imagine(settings: Settings, text: str, *, owner: str, out_dir: Path) -> list[Path]:
    """Parse `text`, record and run it as the local user (with a progress bar), write the PNGs; return their paths.

    The same job service as the bot: the job is recorded in storage (DATA_DIR / DATABASE_URL) before
    it runs and its images are stored with it, owned by LOCAL_USER_ID under the name `owner`.
    """
    import asyncio

    from pipeline.errors import JobCancelled, JobFailed
    from pipeline.images import write_result_pngs
    from pipeline.prompt import parse_prompt
    from service.jobs import Place, Requester
    from service.wiring import Services
    from storage import LOCAL_USER_ID

    # Check the flags before spending seconds loading the model; the size is settled after loading.
    seed = parse_prompt(text, native_size=512).seed
    services = await Services.open(settings)
    try:
        request = services.jobs.parse(text).replace(seed=seed)
        # Your own machine: no daily quota (as for an admin).
        local_user = Requester(LOCAL_USER_ID, owner, is_admin=True)
        pending = await services.jobs.imagine(local_user, Place(None, None), request)
        reporter = TerminalReporter()
        running = pending.start(reporter)
        assert running is not None  # the service closes only below
        try:
            await running
        except asyncio.CancelledError:
            await services.storage.jobs.cancel(pending.job.id)
            raise
        if reporter.failure is not None:
            raise JobFailed(reporter.failure)
        if reporter.outcome is None or reporter.outcome.result is None:
            raise JobCancelled("The job was cancelled.")
        result = reporter.outcome.result
        return await asyncio.to_thread(write_result_pngs, result, request, out_dir, job_id=pending.job.id)
    finally:
        await services.close()


class TerminalReporter:
    """A `service.jobs.Reporter` for the command line: a progress bar on stderr; keeps the outcome."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc="imagine", unit="step", file=sys.stderr, leave=False)
        self.outcome: Outcome | None = None
        self.failure: str | None = None

    async def waiting(self, position: int) -> None:
        self.bar.set_postfix_str(f"waiting (position {position})")

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        self.bar.set_postfix_str("")
        self.bar.total = total
        self.bar.update(step - self.bar.n)

    async def finished(self, outcome: Outcome) -> None:
        self.bar.close()
        self.outcome = outcome

    async def failed(self, message: str) -> None:
        self.bar.close()
        self.failure = message


def _add_worker_command(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker",
        help="run generation jobs for a bot with EXECUTOR=celery (one worker per GPU)",
        description=(
            "A Celery worker that loads MODEL once and runs one job at a time from its Redis queue "
            "(REDIS_URL). Start one per GPU, e.g. CUDA_VISIBLE_DEVICES=1 kaika worker."
        ),
    )
    worker.add_argument("--hostname", default="", help="Celery node name (default: kaika-<pid>@<host>)")
    worker.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    from pipeline.errors import ModelLoadError
    from pipeline.executor.celery_worker import EngineOptions, WorkerStartError, run_worker
    from service.settings import Settings, configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    engine = EngineOptions(
        source=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        loras=tuple(settings.loras),
        upscaler=settings.upscaler,
    )
    try:
        run_worker(settings.fleet_config(), engine, hostname=args.hostname, loglevel=settings.log_level)
    except (ModelLoadError, WorkerStartError) as error:
        print(f"kaika worker: {error}", file=sys.stderr)
        return 2
    return 0


def _add_bot_command(commands: argparse._SubParsersAction) -> None:
    bot = commands.add_parser(
        "bot",
        help="run the Discord bot (needs DISCORD_TOKEN)",
        description="Connect to Discord with DISCORD_TOKEN and serve /imagine and the other commands.",
    )
    bot.set_defaults(handler=_run_bot)


def _run_bot(args: argparse.Namespace) -> int:
    from bot.app import main as run_bot

    return run_bot()


def _add_demo_commands(commands: argparse._SubParsersAction) -> None:
    from pipeline.demo.options import add_eval_arguments, add_train_arguments

    train = commands.add_parser(
        "train-demo",
        help="train the built-in demo model from scratch on this machine's CPU",
        description="Train the demo model (autoencoder, then UNet and text encoder) and write its folder; "
        "resumes from the checkpoints in --work-dir.",
    )
    add_train_arguments(train)
    train.set_defaults(handler=_run_train_demo)
    evaluate = commands.add_parser(
        "eval-demo",
        help="score the demo model's prompt adherence on held-out prompts; write a contact sheet",
        description="Generate held-out prompts with several seeds, judge the images from their pixels, "
        "print the adherence figures against the targets and write a contact sheet.",
    )
    add_eval_arguments(evaluate)
    evaluate.set_defaults(handler=_run_eval_demo)


def _run_train_demo(args: argparse.Namespace) -> int:
    from pipeline.demo.options import config_from_args
    from pipeline.demo.train import train

    train(config_from_args(args))
    return 0


def _run_eval_demo(args: argparse.Namespace) -> int:
    from pipeline.demo.evaluate import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
