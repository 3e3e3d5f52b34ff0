"""The job commands as a user runs them: real storage in a temporary DATA_DIR, the tiny model on CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli.main import main
from tests.cli.helpers import Run


@pytest.fixture
def local_data(tiny_settings_env, tmp_path, monkeypatch) -> Path:
    """DATA_DIR in a fresh folder (SQLite) and the tiny model; the working folder is `tmp_path`."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read; the default --out is tmp_path/out
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


@pytest.fixture
def kaika(capsys) -> Callable[..., Run]:
    """Run `kaika ARGS…` in this process; a wrong argument's SystemExit becomes its exit status."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        try:
            status = main(list(args))
        except SystemExit as stopped:
            status = stopped.code if isinstance(stopped.code, int) else 1
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run
