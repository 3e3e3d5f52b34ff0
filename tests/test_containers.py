"""The container set-up as Docker would read it (Docker itself is not needed): compose.yaml's two
profiles, health checks and secrets, the Dockerfile's health check and data volume, .dockerignore."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
BOT_HEALTHCHECK = ["CMD", "kaika", "healthcheck"]
WORKER_HEALTHCHECK = ["CMD", "kaika", "healthcheck", "--worker"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def services_of(compose: dict[str, Any], profile: str) -> set[str]:
    return {name for name, service in compose["services"].items() if profile in service.get("profiles", [])}


def interpolated(value: str, **variables: str) -> str:
    """`value` as compose writes it, with ${NAME:?message} replaced by `variables`."""
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda match: variables[match[1]], value)


def test_every_service_belongs_to_a_profile_single_or_fleet(compose):
    assert services_of(compose, "single") == {"postgres", "bot-gpu", "web-gpu"}
    assert services_of(compose, "fleet") == {"postgres", "redis", "bot", "worker-gpu0", "worker-gpu1", "web"}
    assert all(service.get("profiles") for service in compose["services"].values())


def test_the_single_profile_runs_the_model_in_the_bot_on_one_gpu(compose):
    bot = compose["services"]["bot-gpu"]
    assert bot["command"] == ["kaika", "bot"] and bot["environment"]["EXECUTOR"] == "local"
    [device] = bot["deploy"]["resources"]["reservations"]["devices"]
    assert device["device_ids"] == ["0"] and device["capabilities"] == ["gpu"]
    assert "kaika-data:/data" in bot["volumes"]


@pytest.mark.parametrize("name", ["bot", "bot-gpu"])
def test_a_stopped_bot_has_time_to_finish_running_jobs_and_close(compose, name):
    # SHUTDOWN_GRACE (8 s) is within Docker's default 10 s; the rest of the stop takes about a second.
    assert compose["services"][name]["stop_grace_period"] == "15s"
    assert Settings(_env_file=None).shutdown_grace == 8


def test_the_fleet_profile_sends_jobs_to_one_worker_per_gpu(compose):
    services = compose["services"]
    assert services["bot"]["environment"]["EXECUTOR"] == "celery"
    for gpu in ("0", "1"):
        worker = services[f"worker-gpu{gpu}"]
        assert worker["command"] == ["kaika", "worker"]
        assert worker["environment"]["REDIS_URL"] == services["bot"]["environment"]["REDIS_URL"]
        assert worker["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [gpu]
        assert worker["stop_grace_period"] == "10m"  # SIGTERM lets the running job finish


@pytest.mark.parametrize(("name", "executor"), [("web", "celery"), ("web-gpu", "local")])
def test_the_web_companion_runs_beside_the_bot_on_its_data_and_loopback(
    compose, monkeypatch, tmp_path, name, executor
):
    monkeypatch.chdir(tmp_path)  # no .env
    web, bot = compose["services"][name], compose["services"]["bot" if executor == "celery" else "bot-gpu"]
    assert web["command"] == ["kaika", "web", "--host", "0.0.0.0", "--port", "8080"]
    assert web["ports"] == ["127.0.0.1:8080:8080"] and "kaika-data:/data" in web["volumes"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    for key, value in web["environment"].items():
        monkeypatch.setenv(key, interpolated(str(value), POSTGRES_PASSWORD="pw"))
    settings = load_settings()
    assert settings.executor == executor == bot["environment"]["EXECUTOR"]
    assert settings.database_url == "postgresql+asyncpg://kaika:pw@postgres:5432/kaika"
    if executor == "celery":
        assert settings.redis_url == bot["environment"]["REDIS_URL"]


def test_every_service_has_a_health_check_and_kaikas_use_kaika_healthcheck(compose):
    services = compose["services"]
    assert all("healthcheck" in service for service in services.values())
    assert services["bot"]["healthcheck"]["test"] == BOT_HEALTHCHECK
    assert services["bot-gpu"]["healthcheck"]["test"] == BOT_HEALTHCHECK
    assert services["worker-gpu0"]["healthcheck"]["test"] == WORKER_HEALTHCHECK
    assert services["worker-gpu1"]["healthcheck"]["test"] == WORKER_HEALTHCHECK


def test_the_bots_and_workers_serve_metrics_on_the_compose_network_and_loopback(
    compose, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # no .env
    services = compose["services"]
    published = {name: services[name]["ports"] for name in ("bot", "bot-gpu", "worker-gpu0", "worker-gpu1")}
    assert published == {
        "bot": ["127.0.0.1:9100:9100"],
        "bot-gpu": ["127.0.0.1:9100:9100"],
        "worker-gpu0": ["127.0.0.1:9101:9101"],
        "worker-gpu1": ["127.0.0.1:9102:9101"],
    }
    for name in published:
        for key, value in services[name]["environment"].items():
            monkeypatch.setenv(key, interpolated(str(value), POSTGRES_PASSWORD="pw"))
        settings = load_settings()
        assert (settings.metrics_host, settings.metrics_port, settings.worker_metrics_port) == (
            "0.0.0.0",
            9100,
            9101,
        )


def test_no_password_is_written_in_compose_yaml(compose):
    text = (ROOT / "compose.yaml").read_text()
    required = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == required
    for name in ("bot", "bot-gpu", "worker-gpu0"):
        url = compose["services"][name]["environment"]["DATABASE_URL"]
        assert url == f"postgresql+asyncpg://kaika:{required}@postgres:5432/kaika"
    # No user:password@ in a URL other than the one read from .env, and no other PASSWORD value.
    passwords = re.findall(r"://[^/\s:@]+:([^@\n]+)@", text)
    assert passwords and set(passwords) == {required}
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            assert "PASSWORD" not in key or value == required, (key, value)


def test_the_settings_compose_gives_the_bots_are_valid(compose, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("bot", "bot-gpu", "worker-gpu0"):
        environment = compose["services"][name]["environment"]
        for key, value in environment.items():
            monkeypatch.setenv(key, interpolated(str(value), POSTGRES_PASSWORD="pw"))
        settings = load_settings()
        assert settings.database_url == "postgresql+asyncpg://kaika:pw@postgres:5432/kaika"


def test_the_image_checks_the_bots_health_and_keeps_data_in_its_volume():
    dockerfile = (ROOT / "Dockerfile").read_text()
    [healthcheck] = re.findall(r"^HEALTHCHECK .*$", dockerfile, flags=re.MULTILINE)
    assert healthcheck.endswith('CMD ["kaika", "healthcheck"]')
    assert re.search(r"^\s+KAIKA_DATA_DIR=/data$", dockerfile, flags=re.MULTILINE)
    assert 'VOLUME ["/data"' in dockerfile
    assert not re.search(r"(?<!KAIKA_)DATA_DIR=", dockerfile)


def test_an_env_file_data_dir_cannot_move_a_containers_data(monkeypatch, tmp_path):
    """`docker run --env-file .env` with .env.example's DATA_DIR=./data: the image's KAIKA_DATA_DIR wins."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", "./data")
    assert Settings().data_dir == Path("data")  # outside a container, DATA_DIR is the setting
    monkeypatch.setenv("KAIKA_DATA_DIR", "/data")  # what the image sets
    assert Settings().data_dir == Path("/data")
    (tmp_path / ".env").write_text("DATA_DIR=./data\n")
    monkeypatch.delenv("DATA_DIR")
    assert Settings().data_dir == Path("/data")


def test_the_image_copies_every_package_and_the_build_context_leaves_the_rest_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    pyproject = (ROOT / "pyproject.toml").read_text()
    [packages] = re.findall(r"^include = \[(.*)\]$", pyproject, flags=re.MULTILINE)
    assert copied == {name.strip(' "*') for name in packages.split(",")}
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "data", "out", "__pycache__", ".pytest_cache", "tests"} <= ignored
