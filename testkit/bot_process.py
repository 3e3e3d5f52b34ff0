"""`kaika bot` in a process of its own against the fake Discord, as tests and benchmarks run the real thing:
started, waited for, signalled, killed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from testkit.fake_discord import FakeDiscord

REPOSITORY = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120.0


class BotProcess:
    """`kaika bot` on `data_dir` with `model_dir`, its log in `folder`/bot.log; `env` adds or overrides settings."""

    def __init__(self, fake: FakeDiscord, data_dir: Path, model_dir: Path, folder: Path, **env: str) -> None:
        self.log_path = folder / "bot.log"
        self.data_dir = data_dir
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPOSITORY),
            "DISCORD_TOKEN": "test-token",
            "DISCORD_API_BASE": fake.api_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "DATA_DIR": str(data_dir),
            "MODEL": str(model_dir),
            "DEVICE": "cpu",
            "DTYPE": "float32",
            "PREVIEW_EVERY": "0",
            "PROGRESS_EDIT_INTERVAL": "0.2",
            "LOG_LEVEL": "INFO",
            "OMP_NUM_THREADS": "1",
            **env,
        }
        environment.pop("DATABASE_URL", None)
        with self.log_path.open("ab") as log:
            # cwd outside the repository, so a developer's .env cannot change what runs.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "bot"], cwd=folder, env=environment, stdout=log, stderr=log
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_for_log(self, text: str, seconds: float = 30.0) -> None:
        async with asyncio.timeout(seconds):
            while text not in self.log():
                assert self.process.poll() is None, f"kaika bot exited:\n{self.log()[-3000:]}"
                await asyncio.sleep(0.05)

    async def exit_status(self, seconds: float) -> int:
        return await asyncio.to_thread(self.process.wait, seconds)

    def stop(self) -> None:
        """kill -9, as a crash or an out-of-memory kill ends it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def start_bot(
    fake: FakeDiscord, data_dir: Path, model_dir: Path, folder: Path, **env: str
) -> BotProcess:
    """A `BotProcess` once it has connected to the fake Discord's gateway."""
    fake.identified.clear()
    bot = BotProcess(fake, data_dir, model_dir, folder, **env)
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not fake.identified.is_set():
                assert bot.process.poll() is None, f"kaika bot exited:\n{bot.log()[-3000:]}"
                await asyncio.sleep(0.05)
    except BaseException:
        bot.stop()
        raise
    return bot
