"""Fixtures of the demo-model tests: the command line on the packaged demo model."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def demo_data(tmp_path, monkeypatch) -> Path:
    """DATA_DIR in a fresh folder and the packaged demo model (an empty MODEL) on the CPU."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MODEL", "")
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.setenv("DTYPE", "float32")
    return tmp_path / "data"
