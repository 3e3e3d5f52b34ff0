"""The `kaika` command: the job commands (`imagine`, `vary`, `upscale`, `reroll`, in `cli.jobs`), `kaika info`, and
`kaika bot`, `kaika web`, `kaika worker`, `kaika healthcheck`, `kaika train-demo`, `kaika eval-demo`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from cli.info import add_info_command
from cli.jobs import add_job_commands

if TYPE_CHECKING:
    from pipeline.executor.celery_worker import WorkerRuntime
    from service.settings import Settings

# A job id is 12 URL-safe characters (`storage.new_job_id`), so one in 64 starts with a dash.
DASHED_JOB_ID = re.compile(r"-[A-Za-z0-9_-]{11}")


class Parser(argparse.ArgumentParser):
    """argparse with a wrong argument reported as one line (`kaika vary: …`) and exit status 2, and job
    ids that start with a dash taken as arguments (`kaika vary -x4Gq2_rT9aB 2`) rather than options."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def _parse_optional(self, arg_string: str) -> Any:
        # argparse's one place that decides "option or argument?" (since Python 2.7); None: an argument.
        if DASHED_JOB_ID.fullmatch(arg_string) and not any(
            option.startswith(arg_string) for option in self._option_string_actions
        ):
            return None
        return super()._parse_optional(arg_string)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="kaika", description="Kaika: your own Midjourney-style image bot.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_job_commands(commands)
    add_info_command(commands)
    _add_worker_command(commands)
    _add_bot_command(commands)
    _add_web_command(commands)
    _add_healthcheck_command(commands)
    _add_demo_commands(commands)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)  # so a wrong option is reported by its command
    return parser


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
    from service.errors import SettingError
    from service.health import track_worker_status
    from service.settings import configure_logging, load_settings

    try:
        settings = load_settings()
    except SettingError as error:
        print(f"kaika worker: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    engine = EngineOptions(
        source=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        loras=tuple(settings.loras),
        upscaler=settings.upscaler,
        config=settings.single_file_config,
        video=settings.video_model,
    )
    track_worker_status(settings.celery_key_prefix)  # for `kaika healthcheck --worker`
    try:
        run_worker(
            settings.fleet_config(),
            engine,
            hostname=args.hostname,
            loglevel=settings.log_level,
            serve=_worker_operations(settings) if settings.worker_metrics_port else None,
        )
    except (ModelLoadError, WorkerStartError, SettingError) as error:
        print(f"kaika worker: {error}", file=sys.stderr)
        return 2
    return 0


def _worker_operations(settings: Settings) -> Callable[[WorkerRuntime], Callable[[], None]]:
    """What serves a worker's /metrics, /healthz and /readyz on WORKER_METRICS_PORT (see `run_worker`)."""
    from service.health import Readiness
    from service.operations import OperationsServer

    def serve(runtime: WorkerRuntime) -> Callable[[], None]:
        server = OperationsServer(
            settings.metrics_host,
            settings.worker_metrics_port,
            runtime.metrics.registry,
            lambda: Readiness(runtime.health()),
            setting="WORKER_METRICS_PORT",
        )
        return server.close

    return serve


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


def _add_web_command(commands: argparse._SubParsersAction) -> None:
    web = commands.add_parser(
        "web",
        help="run the web companion: gallery, imagine, region editor and admin pages in a browser",
        description=(
            "Serve Kaika's web companion over the same database and models as the bot. Members sign in with "
            "the link the bot's /web command sends, or with Discord (DISCORD_CLIENT_ID and "
            "DISCORD_CLIENT_SECRET); WEB_BASE_URL is the address they open. --local signs every visitor in "
            "as the command line's local user, for trying Kaika in a browser with no Discord at all; it "
            "listens on a loopback address only."
        ),
    )
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    web.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    web.add_argument(
        "--local",
        action="store_true",
        help="sign every visitor in as the local user (as kaika imagine); loopback addresses only",
    )
    web.add_argument(
        "--owner", default="", help="with --local, the local user's name (default: the login name)"
    )
    web.set_defaults(handler=_run_web)


def _run_web(args: argparse.Namespace) -> int:
    import asyncio
    import getpass

    from service.errors import USER_ERRORS
    from service.settings import configure_logging, load_settings
    from storage import LOCAL_USER_ID
    from web.members import Member
    from web.server import check_local_host, serve

    # The command line's local user: your own machine, so an admin with no daily quota (as in cli.jobs).
    local = Member(LOCAL_USER_ID, args.owner or getpass.getuser(), is_admin=True) if args.local else None
    try:
        if local is not None:
            check_local_host(args.host)  # before anything is opened
        settings = load_settings()
        configure_logging(settings.log_level)
        asyncio.run(serve(settings, args.host, args.port, local))
    except USER_ERRORS as error:
        print(f"kaika web: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _add_healthcheck_command(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "healthcheck",
        help="exit 0 when the bot (or with --worker, the worker) running here is healthy",
        description=(
            "For Docker's HEALTHCHECK. The bot is healthy while it is connected to Discord (it touches "
            "DATA_DIR/heartbeat every few seconds); a worker when it answers a Celery ping through "
            "REDIS_URL, or is busy with a job younger than CELERY_VISIBILITY_TIMEOUT. Exit status 0 when "
            "healthy, otherwise 1 and one line on stderr saying why (Docker reserves status 2)."
        ),
    )
    check.add_argument(
        "--worker", action="store_true", help="check the `kaika worker` processes running here"
    )
    check.set_defaults(handler=_run_healthcheck)


def _run_healthcheck(args: argparse.Namespace) -> int:
    from service.errors import SettingError
    from service.health import bot_problem, worker_problem
    from service.settings import load_settings

    try:
        settings = load_settings()
    except SettingError as error:
        problem: str | None = str(error)
    else:
        problem = worker_problem(settings.fleet_config()) if args.worker else bot_problem(settings.data_dir)
    if problem is None:
        return 0
    print(f"kaika healthcheck: {problem}", file=sys.stderr)
    return 1


def _add_demo_commands(commands: argparse._SubParsersAction) -> None:
    from pipeline.demo.options import add_eval_arguments, add_train_arguments

    train = commands.add_parser(
        "train-demo",
        help="train the built-in demo model from scratch on this machine's CPU",
        description="Train the demo model (autoencoder, then UNet and text encoder) and write its folder, "
        "or with --upscaler its 4x GAN upscaler; resumes from the checkpoints in --work-dir.",
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
    from pipeline.demo.train import run

    return run(args)


def _run_eval_demo(args: argparse.Namespace) -> int:
    from pipeline.demo.evaluate import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
