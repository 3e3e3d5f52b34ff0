"""The job commands as a user runs them: real storage in a temporary DATA_DIR, the tiny model on CPU."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cli.main import main
from tests.fixtures.cli import Run


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
