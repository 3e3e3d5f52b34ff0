"""`kaika bot` and `python -m bot` start the bot, and say what is missing when they cannot."""

from __future__ import annotations

import subprocess
import sys

from cli.main import main


def test_kaika_bot_without_a_token_says_what_to_set(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["bot"]) == 2
    assert "DISCORD_TOKEN is not set" in capsys.readouterr().err


def test_python_dash_m_bot_runs_the_same_command(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": "", "HF_HUB_OFFLINE": "1"}
    import os

    env["PYTHONPATH"] = os.getcwd()
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "DISCORD_TOKEN is not set" in result.stderr
