"""`kaika info JOB`: a recorded job's parameters, as the ℹ️ button shows them (`service.readback`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.readback import JobParameters
    from service.settings import Settings


def add_info_command(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser(
        "info",
        help="the parameters of a recorded job: prompt and flags, each image's seed, model, size, parent",
        description=(
            "Print what made job JOB (from kaika imagine, a press command or the bot's /history): its prompt "
            "and flags as typed, negative prompt, each image's seed, model, steps, guidance, size and the job "
            "and image it comes from, a line each. With --json, one JSON object with the keys job_id, kind, "
            "status, prompt, flags, negative_prompt, model (as asked; null: the default model), made_by (the "
            "model its images name), seeds, width, height, "
            "steps, guidance, stylize, chaos, strength, parent_job_id, parent_image_index (from 0), owner_id "
            "and requester_id. Reads storage only: no model loads."
        ),
    )
    info.add_argument("job", metavar="JOB", help="the id of a recorded job")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from service.errors import USER_ERRORS
    from service.readback import describe_parameters
    from service.settings import configure_logging, load_settings

    configure_logging("WARNING")
    try:
        parameters = asyncio.run(_recorded_parameters(load_settings(), args.job.strip()))
    except USER_ERRORS as error:
        print(f"kaika info: {error}", file=sys.stderr)
        return 2
    print(json.dumps(parameters.as_dict()) if args.json else "\n".join(describe_parameters(parameters)))
    return 0


async def _recorded_parameters(settings: Settings, job_id: str) -> JobParameters:
    from service.errors import JobGone
    from service.readback import parameters_for
    from service.wiring import open_storage

    storage = await open_storage(settings)
    try:
        job = await storage.jobs.get(job_id)
        if job is None:
            raise JobGone()
        return await parameters_for(storage, job)
    finally:
        await storage.close()
