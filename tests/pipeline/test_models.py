"""Several models on one machine: MODELS load on first use and the least recently used one is unloaded when
the next would pass MODEL_MEMORY_GB — through the local executor, as the bot runs them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from pipeline.engine import Engine
from pipeline.executor.base import Failed, Finished
from pipeline.executor.local import LocalExecutor
from pipeline.loading import describe_without_weights
from pipeline.models import engine_bytes
from testkit.families import save_tiny_family
from tests.fixtures.requests import tiny_request

TIMEOUT = 120


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {name: save_tiny_family(name, root / name) for name in ("flux", "pixart")}


@pytest.fixture(scope="module")
def sizes(tiny_model_dir: Path, family_folders: dict[str, Path]) -> dict[str, int]:
    """Each model's bytes once loaded, measured on its own."""
    folders = {"default": tiny_model_dir, **family_folders}
    return {
        name: engine_bytes(Engine.load(str(folder), device="cpu", dtype="float32"))
        for name, folder in folders.items()
    }


async def run_on(executor: LocalExecutor, model: str | None, **options):
    request = tiny_request("a red circle", seed=3, num_images=1, steps=2, model=model, **options)
    handle = await executor.submit(request, owner="ada")
    async with asyncio.timeout(TIMEOUT):
        return [event async for event in handle.events()][-1]


async def open_executor(tiny_model_dir, family_folders, memory_gb: float) -> LocalExecutor:
    models = {None: str(tiny_model_dir), **{name: str(folder) for name, folder in family_folders.items()}}
    executor = await LocalExecutor.load(
        models, device="cpu", dtype="float32", memory_gb=memory_gb, preview_every=0
    )
    await executor.start()
    return executor


def test_a_model_is_described_from_its_configuration_as_it_is_once_loaded(family_folders):
    for folder in family_folders.values():
        assert describe_without_weights(str(folder)) == Engine.load(str(folder), device="cpu").family
    assert describe_without_weights(str(family_folders["flux"] / "model_index.json")) is None  # not a folder


async def test_models_load_on_first_use_and_the_least_recently_used_makes_room(
    tiny_model_dir, family_folders, sizes
):
    # Room for the default model and one other, not for all three.
    budget = sizes["default"] + max(sizes["flux"], sizes["pixart"]) + min(sizes["flux"], sizes["pixart"]) // 2
    executor = await open_executor(tiny_model_dir, family_folders, budget / 1e9)
    try:
        pool = executor._models
        assert pool.loaded() == [None]  # only MODEL is loaded at start …
        assert executor.family("flux").name == "flux"  # … yet every model's sizes and modes are known
        assert executor.family("pixart").native_size == pool.family("pixart").native_size
        assert sorted(executor.model_names) == sorted(["flux", "pixart", tiny_model_dir.name])

        assert isinstance(await run_on(executor, "flux"), Finished)
        assert pool.loaded() == [None, "flux"]
        assert isinstance(await run_on(executor, None), Finished)  # the default is now the most recent
        assert isinstance(await run_on(executor, "pixart", width=32, height=32), Finished)
        assert pool.loaded() == [None, "pixart"]  # flux, least recently used, made room
        assert isinstance(await run_on(executor, "flux"), Finished)  # and loads again when asked for
        assert pool.loaded() == ["pixart", "flux"]
    finally:
        await executor.close()


async def test_without_a_budget_problem_every_model_stays_loaded(tiny_model_dir, family_folders):
    executor = await open_executor(tiny_model_dir, family_folders, 100.0)
    try:
        for model in ("flux", "pixart", None):
            assert isinstance(await run_on(executor, model, width=32, height=32), Finished)
        assert sorted(executor._models.loaded(), key=str) == sorted([None, "flux", "pixart"], key=str)
    finally:
        await executor.close()


async def test_a_model_that_fails_to_load_on_first_use_fails_its_job_in_one_line_and_the_rest_serve(
    tiny_model_dir, family_folders, tmp_path
):
    broken = Path(shutil.copytree(family_folders["pixart"], tmp_path / "broken"))
    for weights in (broken / "transformer").glob("*.safetensors"):  # its configs describe it; it cannot load
        weights.unlink()
    executor = await open_executor(tiny_model_dir, {"broken": broken}, 100.0)
    try:
        failed = await run_on(executor, "broken", width=32, height=32)
        assert isinstance(failed, Failed)
        assert "MODEL='" in failed.message and "could not be loaded" in failed.message
        assert "\n" not in failed.message
        assert isinstance(await run_on(executor, None), Finished)
    finally:
        await executor.close()
