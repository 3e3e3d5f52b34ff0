"""Session-wide test set-up: no network, shared options, shared fixtures from tests/fixtures/."""

import os

# Set before diffusers / transformers / huggingface_hub are imported anywhere: tests never download.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import pytest

# The shared helpers' asserts explain themselves as a test's own do.
pytest.register_assert_rewrite("tests.fixtures")

# Fixtures every folder may use; their helpers (imported by tests) live beside them in tests/fixtures/,
# the doubles and builders the benchmarks share in testkit/.
pytest_plugins = [
    "tests.fixtures.tiny_pipeline",
    "tests.fixtures.fake_discord",
    "tests.fixtures.storage",
    "tests.fixtures.families",
    "tests.fixtures.cli",
    "tests.fixtures.services",
    "tests.fixtures.video",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kaika")
    group.addoption(
        "--postgres-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL the storage suite also runs against",
    )
    group.addoption(
        "--redis-url", default="redis://127.0.0.1:6379/15", help="Redis for the worker-fleet tests"
    )
    group.addoption(
        "--require-services",
        action="store_true",
        help="fail, instead of skipping, tests whose PostgreSQL or Redis is unreachable (CI sets this)",
    )
