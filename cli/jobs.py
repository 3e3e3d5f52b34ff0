"""The job commands: `kaika imagine`, and `kaika vary`, `upscale`, `enhance`, `reroll`, `region`, `zoom`,
`pan` and `square`, the result's buttons.

Each turns its arguments into calls of the job service the bot uses (`service.jobs.JobService`), as the
local user (`storage.LOCAL_USER_ID`, named after the login or `--owner`; an admin, so no daily quota), and
the outcome into PNG files (`cli.files`) and a printout. A press acts on any job recorded in DATA_DIR /
DATABASE_URL, by the bot or by this command, and is recorded as a press of that button would be.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pipeline.editing import Edit
    from pipeline.request import GenerationRequest
    from pipeline.uploads import CleanUpload
    from service.jobs import ButtonAction, Outcome, PendingJob, Place, Requester
    from service.settings import Settings
    from service.wiring import Services
    from storage.records import JobRecord

    # What a command runs: (settings, owner's name) → the finished job's outcome and the request it ran.
    Finished = tuple[Outcome, GenerationRequest]
    # What a command runs: (settings, owner's name) → the finished job's outcome and the request it ran, or
    # for a prompt of several jobs (--repeat, {a, b} permutations) each one's, or the error that ended it.
    Job = Callable[[Settings, str], Awaitable[Finished | list[Finished | Exception]]]

PRINTED = (
    "Prints the job id, then the path of each PNG written, a line each: the 2x2 grid first (when the job "
    "made several images), then the images as <stem>-1.png, <stem>-2.png, … With --json, prints one JSON "
    "object instead, with the keys job_id, kind, seed, width, height, model, images (the paths) and grid "
    "(a path or null). Progress goes to stderr; an error is one line on stderr with exit status 2."
)
SEVERAL = (
    "A prompt that makes several jobs (--repeat N, {a, b} permutations) prints each job's lines in turn; with "
    "--json, one JSON object a line, a job each. Should some of its jobs fail, the others are still written "
    "and printed, each failure is a line on stderr, and the exit status is 2."
)


def add_job_commands(commands: argparse._SubParsersAction) -> None:
    imagine = commands.add_parser(
        "imagine",
        help="generate four images from a prompt into a folder",
        description=(
            "Generate a 2x2 grid and its four images with MODEL, using the same prompt syntax as /imagine: "
            'kaika imagine "a lighthouse at dusk --ar 16:9 --seed 7 --no boats". ' + PRINTED + " " + SEVERAL
        ),
    )
    imagine.add_argument(
        "prompt", help="the description, optionally followed by --ar, --seed, --no, --steps, --iw, …"
    )
    imagine.add_argument(
        "--image",
        metavar="PATH",
        help="an image prompt: the images start from this picture (PNG, JPEG, WebP or GIF), as closely as "
        "the prompt's --iw (0–2, default 1) asks; kept with the job as the local user's upload",
    )
    _add_common_arguments(imagine)
    imagine.set_defaults(handler=_run_imagine)

    vary = _add_press_command(
        commands,
        "vary",
        help="four variations of one image of a job (the Vary buttons)",
        description="Four new images close to image INDEX of job JOB, as Vary (Subtle) does; "
        "--strong as Vary (Strong) (V1–V4 on a grid).",
    )
    vary.add_argument("--strong", action="store_true", help="vary more, as Vary (Strong)")
    _add_prompt_argument(vary)
    upscale = _add_press_command(
        commands,
        "upscale",
        help="one image of a job at twice its size (the Upscale buttons)",
        description="Image INDEX of job JOB at twice its width and height, refined as Upscale (Subtle) "
        "does; --creative as Upscale (Creative). The job belongs to the image's owner.",
    )
    upscale.add_argument("--creative", action="store_true", help="refine more freely, as Upscale (Creative)")
    _add_press_command(
        commands,
        "enhance",
        help="one image of a --draft job made again at full quality (the Enhance buttons)",
        description="Image INDEX of job JOB, a --draft grid, made again with its seed and the job's prompt "
        "and flags at full quality: the model's steps, solver and guidance instead of the draft's.",
    )
    _add_press_command(
        commands,
        "explain",
        help="how one image was drawn: its diffusion process, forward and reverse (the 🔬 Process button)",
        description="Image INDEX of job JOB made again from its seed, as one picture of two strips: the image "
        "with noise added at rising timesteps of its noise schedule (the forward process), and the job's own "
        "steps from noise to the image (the reverse process). For images drawn from a prompt alone.",
    )
    reroll = _add_press_command(
        commands,
        "reroll",
        help="the prompt of a job again with a new seed (the 🔄 button)",
        description="Four new images from the prompt and settings of job JOB, with a new seed, as 🔄 does.",
        with_index=False,
    )
    _add_prompt_argument(reroll)
    region = _add_press_command(
        commands,
        "region",
        help="one part of an image of a job made again (Vary (Region))",
        description="Four images of image INDEX of job JOB with the part in --box generated again and the "
        "rest kept as it is, as Vary (Region) does.",
    )
    region.add_argument(
        "--box",
        required=True,
        type=_edit_argument("region"),
        metavar="X,Y,W,H",
        help="the part to vary, in percent of the width and height (25,25,50,50), or a preset: "
        "left, right, top, bottom, centre",
    )
    zoom = _add_press_command(
        commands,
        "zoom",
        help="an image of a job zoomed out: a new border around it (Zoom Out)",
        description="Four images of image INDEX of job JOB shrunk into the centre of a canvas of the same "
        "size, the border around it generated, as Zoom Out 2x, 1.5x and Custom Zoom do.",
    )
    zoom.add_argument(
        "--factor",
        default="2",
        type=_edit_argument("zoom"),
        help="how far to zoom out, from 1 to 2 (default: 2); 1 with a new --ar in --prompt changes only the shape",
    )
    pan = _add_press_command(
        commands,
        "pan",
        help="an image of a job extended on one side (the ⬅️ ➡️ ⬆️ ⬇️ buttons)",
        description="Four images of image INDEX of job JOB extended by half on one side, the new strip "
        "generated to match, as the pan buttons do.",
    )
    pan.add_argument(
        "--direction",
        required=True,
        type=_edit_argument("pan"),
        metavar="{left,right,up,down}",
        help="the side to extend",
    )
    square = _add_press_command(
        commands,
        "square",
        help="a wide or tall image of a job made square (Make Square)",
        description="Four square images of image INDEX of job JOB: the image in the middle, the rest "
        "generated, as Make Square does.",
    )
    for edit in (region, zoom, pan, square):
        _add_prompt_argument(edit, "Remix: this prompt and flags for what is generated, instead of the job's")
    animate = _add_press_command(
        commands,
        "animate",
        help="a short video of one image of a job (the 🎞 Animate buttons)",
        description="An MP4 of image INDEX of job JOB set in motion by VIDEO_MODEL (empty: the demo motion "
        "model), with its first frame as a PNG thumbnail, as 🎞 Animate (Low motion / High motion) does.",
    )
    animate.add_argument(
        "--motion", choices=("low", "high"), default="low", help="how much moves (default: low)"
    )
    _add_prompt_argument(
        animate, "Remix: this prompt and flags for the video (say how it moves), instead of the job's"
    )
    extend = _add_press_command(
        commands,
        "extend",
        help="a video job made a few seconds longer (the Extend button)",
        description="The video of job JOB (an animate or extend job) with new frames from its last frame, at "
        "the motion it was made with, as Extend does.",
        with_index=False,
    )
    _add_prompt_argument(extend, "Remix: this prompt and flags for the new frames, instead of the job's")

    describe = commands.add_parser(
        "describe",
        help="four prompts for a picture (as /describe)",
        description="Four prompts that could have made the picture at PATH (PNG, JPEG, WebP or GIF), read by "
        "DESCRIBER (empty: the demo model's scene checker). Prints them on stdout, one a line; with --json, one "
        "JSON object with the keys job_id and prompts. Recorded as a describe job of the local user, as the "
        "bot records /describe; an error is one line on stderr with exit status 2.",
    )
    describe.add_argument("image", metavar="PATH", help="the picture to describe")
    describe.add_argument("--json", action="store_true", help="print one JSON object: job_id and prompts")
    describe.add_argument(
        "--owner", default="", help="the local user's name recorded with the job (default: the login name)"
    )
    describe.set_defaults(handler=_run_describe)

    blend = commands.add_parser(
        "blend",
        help="four images mixing 2–5 pictures (as /blend)",
        description="Four images mixing the pictures at the PATHs (2 to 5; PNG, JPEG, WebP or GIF), each "
        "cropped to the job's size, averaged and drawn again by MODEL; --prompt adds words and flags (--ar, "
        "--seed, …). The pictures are kept as the local user's uploads. " + PRINTED,
    )
    blend.add_argument("images", metavar="PATH", nargs="+", help="the pictures to mix (2 to 5)")
    blend.add_argument("--prompt", default="", metavar="TEXT", help="words and flags to steer the mix")
    _add_common_arguments(blend)
    blend.set_defaults(handler=_run_blend)


def _add_press_command(
    commands: argparse._SubParsersAction, name: str, *, help: str, description: str, with_index: bool = True
) -> argparse.ArgumentParser:
    command = commands.add_parser(
        name,
        help=help,
        description=f"{description} JOB is a job id that kaika imagine (or any of these commands) "
        f"printed, or one from the bot's /history. {PRINTED}",
    )
    command.add_argument("job", metavar="JOB", help="the id of a finished job")
    if with_index:
        command.add_argument(
            "index", metavar="INDEX", type=_image_number, help="which image, from 1 (as U1–U4 and V1–V4)"
        )
    _add_common_arguments(command)
    command.set_defaults(handler=_run_press)
    return command


def _add_common_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--out", default="out", metavar="DIR", help="folder for the PNGs (and MP4s) (default: ./out)"
    )
    command.add_argument(
        "--json", action="store_true", help="print one JSON object describing the job and its files"
    )
    command.add_argument(
        "--owner", default="", help="the local user's name recorded with the job (default: the login name)"
    )


def _edit_argument(kind: str) -> Callable[[str], Edit]:
    """An argparse type turning --box, --factor or --direction into its edit; a bad value is the
    usual one-line error, before anything loads."""
    from pipeline import editing
    from pipeline.errors import RequestError

    def parse(text: str) -> Edit:
        try:
            return {"zoom": editing.zoom, "region": editing.region, "pan": editing.pan}[kind](text)
        except RequestError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _add_prompt_argument(
    command: argparse.ArgumentParser,
    help: str = "Remix: this prompt and flags instead of the job's (see kaika info JOB); recorded as a remix",
) -> None:
    command.add_argument("--prompt", metavar="TEXT", help=help)


def _image_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number from 1 is needed, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"images count from 1, as U1–U4 do, not {number}")
    return number


@dataclass(frozen=True)
class Press:
    """A button press asked for on the command line: `number` counts the job's images from 1."""

    action: ButtonAction
    job_id: str
    number: int
    edit: Edit | None = None  # what Vary (Region) and Custom Zoom ask for
    prompt: str | None = None  # Remix: the edited prompt and flags


def _press_of(args: argparse.Namespace) -> Press:
    from service.jobs import ButtonAction

    if args.command == "vary":
        action = ButtonAction.VARY_STRONG if args.strong else ButtonAction.VARY_SUBTLE
    elif args.command == "upscale":
        action = ButtonAction.UPSCALE_CREATIVE if args.creative else ButtonAction.UPSCALE_SUBTLE
    elif args.command == "reroll":
        action = ButtonAction.REROLL
    elif args.command == "enhance":
        action = ButtonAction.ENHANCE
    elif args.command == "explain":
        action = ButtonAction.PROCESS
    elif args.command == "animate":
        action = ButtonAction.ANIMATE_HIGH if args.motion == "high" else ButtonAction.ANIMATE_LOW
    elif args.command == "extend":
        action = ButtonAction.EXTEND
    else:
        from pipeline import editing
        from service.jobs import PRESET_EDITS

        given = {"region": "box", "zoom": "factor", "pan": "direction"}.get(args.command)
        edit = editing.square() if given is None else getattr(args, given)
        # The button that makes this edit, else the one that asks for it (Vary Region, Custom Zoom).
        presets = [button for button, preset in PRESET_EDITS.items() if preset == edit]
        if presets:
            return Press(presets[0], args.job.strip(), args.index, prompt=args.prompt)
        asking = ButtonAction.VARY_REGION if args.command == "region" else ButtonAction.ZOOM_CUSTOM
        return Press(asking, args.job.strip(), args.index, edit, prompt=args.prompt)
    return Press(action, args.job.strip(), getattr(args, "index", 1), prompt=getattr(args, "prompt", None))


def _run_imagine(args: argparse.Namespace) -> int:
    return _run(
        args, lambda settings, owner: imagine(settings, args.prompt, owner=owner, image_path=args.image)
    )


def _run_press(args: argparse.Namespace) -> int:
    asked = _press_of(args)
    return _run(args, lambda settings, owner: press(settings, asked, owner=owner, label=args.command))


def _run(args: argparse.Namespace, job: Job) -> int:
    """Check --out, run `job(settings, owner)` to its outcome, write the files and print them."""
    import asyncio
    import getpass
    from pathlib import Path

    from cli.files import check_out_folder, write_outcome
    from service.errors import USER_ERRORS
    from service.settings import configure_logging, load_settings

    name = f"kaika {args.command}"
    configure_logging("WARNING")
    owner = args.owner or getpass.getuser()
    out_dir = Path(args.out)
    try:
        settings = load_settings()
        check_out_folder(out_dir)  # before anything is recorded or run
        finished = asyncio.run(job(settings, owner))
    except USER_ERRORS as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: cancelled", file=sys.stderr)
        return 130
    results = finished if isinstance(finished, list) else [finished]
    status = 0
    for number, result in enumerate(results, start=1):
        of_several = f"job {number} of {len(results)}: " if len(results) > 1 else ""
        if isinstance(result, Exception):
            print(f"{name}: {of_several}{result}", file=sys.stderr)
            status = max(status, 2)
            continue
        outcome, request = result
        try:
            written = write_outcome(outcome, request, out_dir)
        except OSError as error:
            print(
                f"{name}: {of_several}job {outcome.job.id} is done, but writing its PNGs failed: {error}",
                file=sys.stderr,
            )
            status = max(status, 1)
            continue
        print(written.as_json() if args.json else written.as_lines(), flush=True)
    return status


async def imagine(
    settings: Settings, text: str, *, owner: str, image_path: str | None = None
) -> Finished | list[Finished | Exception]:
    """Parse `text`, record and run it as the local user (with a progress bar); return its outcome and request
    — for a prompt of several jobs (--repeat, {a, b} permutations), each job's, or the user's error that
    ended it (the others still finish). With `image_path`, the jobs start from that picture (an image prompt).

    The same job service as the bot: the jobs are recorded in storage (DATA_DIR / DATABASE_URL) before
    they run and their images are stored with them, owned by LOCAL_USER_ID under the name `owner`.
    """
    import asyncio

    from pipeline.errors import RequestError
    from pipeline.families import UNKNOWN_FAMILY
    from pipeline.prompt import parse_prompts
    from service.errors import USER_ERRORS
    from service.jobs import IW_NEEDS_IMAGE
    from service.wiring import Services

    # Check the flags and the picture before spending seconds loading the model; the size is settled after.
    checked = parse_prompts(text, family=UNKNOWN_FAMILY, max_jobs=settings.max_jobs_per_prompt)
    if image_path is None and any(request.image_weight is not None for request in checked):
        raise RequestError(IW_NEEDS_IMAGE)
    image = None if image_path is None else await _read_image(settings, image_path)
    services = await Services.open(settings)
    try:
        requests = [
            request.replace(seed=first.seed)
            for request, first in zip(services.jobs.parse_all(text), checked, strict=True)
        ]
        pending = await services.jobs.imagine_all(_local_user(owner), _command_line(), requests, image=image)
        if len(pending) == 1:
            return await _follow(services, pending[0], "imagine"), pending[0].request
        labels = [f"imagine {number}/{len(pending)}" for number in range(1, len(pending) + 1)]
        outcomes = await asyncio.gather(
            *(_follow(services, job, label) for job, label in zip(pending, labels, strict=True)),
            return_exceptions=True,
        )
        results: list[Finished | Exception] = []
        for job, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, USER_ERRORS):
                results.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append((outcome, job.request))
        return results
    finally:
        await services.close()


async def _read_image(settings: Settings, path_text: str) -> CleanUpload:
    """The picture at `path_text`, checked as an upload to the bot is (size, pixels, format), or `UploadRefused`."""
    import asyncio
    from pathlib import Path

    from pipeline.uploads import UploadRefused, check_declared_size, clean_upload

    path = Path(path_text)
    max_bytes = round(settings.max_upload_mb * 1024 * 1024)
    try:
        check_declared_size((await asyncio.to_thread(path.stat)).st_size, name=path.name, max_bytes=max_bytes)
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        raise UploadRefused(f"--image {path_text}: {error.strerror or error}.") from None
    return await asyncio.to_thread(
        clean_upload, data, name=path.name, max_bytes=max_bytes, max_pixels=settings.max_upload_pixels
    )


def _command_line() -> Place:
    """Where the command line's jobs are asked: no server, no channel; its jobs are its own after a restart."""
    from service.jobs import Place
    from storage.records import FrontEnd

    return Place(None, None, FrontEnd.COMMAND_LINE)


async def press(
    settings: Settings, press: Press, *, owner: str, label: str = "press"
) -> tuple[Outcome, GenerationRequest]:
    """Press `press.action` on image `press.number` of a recorded job as the local user; run the new job.

    Recorded as the bot records a press (parent, image index, owner by the usual rule). A job that does
    not exist, is not finished or lacks that image is refused before anything is recorded.
    """
    from service.wiring import Services

    parent = await _check_press(settings, press)  # before the model loads: a mistake costs no wait
    services = await Services.open(settings)
    try:
        pending = await services.jobs.press(
            _local_user(owner),
            _command_line(),
            press.action,
            parent.id,
            press.number - 1,
            edit=press.edit,
            prompt=press.prompt,
        )
        return await _follow(services, pending, label), pending.request
    finally:
        await services.close()


async def _check_press(settings: Settings, press: Press) -> JobRecord:
    """The recorded job `press` acts on, or the user's error: no such job, not finished, no such image, a
    Remix prompt with a bad flag."""
    from cli.errors import NoSuchImage
    from pipeline.editing import check_edit, reshapes
    from pipeline.families import UNKNOWN_FAMILY
    from pipeline.prompt import parse_prompt
    from service.jobs import ButtonAction, edit_of, pressable
    from service.wiring import open_storage

    if press.prompt is not None:
        parse_prompt(press.prompt, family=UNKNOWN_FAMILY)  # the flags; the size is settled after loading
    storage = await open_storage(settings)
    try:
        parent = await pressable(storage, press.job_id, press.action)
    finally:
        await storage.close()
    if press.action is not ButtonAction.REROLL and not 1 <= press.number <= len(parent.images):
        raise NoSuchImage(parent, press.number)
    edit = edit_of(press.action, press.edit)
    if edit is not None:
        image = parent.images[press.number - 1]
        check_edit(
            edit, image.width, image.height, reshaped=press.prompt is not None and reshapes(press.prompt)
        )
    return parent


def _run_blend(args: argparse.Namespace) -> int:
    return _run(args, lambda settings, owner: blend(settings, args.images, prompt=args.prompt, owner=owner))


async def blend(settings: Settings, paths: list[str], *, prompt: str, owner: str) -> Finished:
    """Mix the pictures at `paths` as /blend does, recorded and run as the local user; its outcome and request."""
    from pipeline.families import UNKNOWN_FAMILY
    from pipeline.prompt import parse_prompt
    from service.jobs import check_blend
    from service.wiring import Services

    # The count, the flags and the pictures are checked before the model loads.
    check_blend(len(paths), prompt)
    parse_prompt(f"blend {prompt}", family=UNKNOWN_FAMILY)
    images = [await _read_image(settings, path) for path in paths]
    services = await Services.open(settings)
    try:
        pending = await services.jobs.blend(_local_user(owner), _command_line(), images, prompt)
        return await _follow(services, pending, "blend"), pending.request
    finally:
        await services.close()


def _run_describe(args: argparse.Namespace) -> int:
    import asyncio
    import getpass
    import json

    from service.errors import USER_ERRORS
    from service.settings import configure_logging, load_settings

    configure_logging("WARNING")
    try:
        settings = load_settings()
        job = asyncio.run(describe(settings, args.image, owner=args.owner or getpass.getuser()))
    except USER_ERRORS as error:
        print(f"kaika describe: {error}", file=sys.stderr)
        return 2
    prompts = job.params["prompts"]
    print(json.dumps({"job_id": job.id, "prompts": prompts}) if args.json else "\n".join(prompts), flush=True)
    return 0


async def describe(settings: Settings, path: str, *, owner: str) -> JobRecord:
    """Four prompts for the picture at `path`, recorded as the local user's describe job (no image model
    is loaded)."""
    from service.describing import DescribeService
    from service.wiring import open_storage

    image = await _read_image(settings, path)
    storage = await open_storage(settings)
    try:
        return await DescribeService(storage, settings.describer).describe(
            _local_user(owner), _command_line(), image
        )
    finally:
        await storage.close()


def _local_user(owner: str) -> Requester:
    from service.jobs import Requester
    from storage import LOCAL_USER_ID

    # Your own machine: no daily quota (as for an admin).
    return Requester(LOCAL_USER_ID, owner, is_admin=True)


async def _follow(services: Services, pending: PendingJob, label: str) -> Outcome:
    """Follow a recorded job to its end with a progress bar; its outcome, or the job's error."""
    import asyncio

    from pipeline.errors import JobCancelled, JobFailed

    for note in pending.notes:
        print(f"kaika {label}: note: {note}", file=sys.stderr)
    reporter = TerminalReporter(label)
    running = pending.start(reporter)
    assert running is not None  # the service closes only after this
    try:
        await running
    except asyncio.CancelledError:
        await services.storage.jobs.cancel(pending.job.id)
        raise
    if reporter.failure is not None:
        raise JobFailed(reporter.failure)
    if reporter.outcome is None:
        raise JobCancelled("The job was cancelled.")
    return reporter.outcome


class TerminalReporter:
    """A `service.jobs.Reporter` for the command line: a progress bar on stderr; keeps the outcome."""

    def __init__(self, label: str = "imagine") -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc=label, unit="step", file=sys.stderr, leave=False)
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
