"""The models one process serves: MODEL and the MODELS entries, loaded when first needed, least recently
used unloaded when the next one would not fit in the memory budget (MODEL_MEMORY_GB).

MODEL is loaded at start, so a broken setting stops the bot at once. A MODELS entry is described from its
configuration files (`describe_without_weights`: sizes, modes and defaults are known before any job) and
loaded by the first job that picks it; an entry only loading can describe (a single file) is loaded at
start, and unloaded again if the budget needs its room. Loading and unloading happen on the executor's
worker thread, between pipeline calls; the event loop only reads names and families.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import RequestError
from pipeline.families import ModelFamily

if TYPE_CHECKING:
    from pipeline.engine import Engine

log = logging.getLogger(__name__)

# Without MODEL_MEMORY_GB, models may use this share of the device's memory (the rest is for activations).
AUTO_BUDGET_SHARE = 0.8
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")

LoadEngine = Callable[[str | None, str], "Engine"]  # (name, source) → a loaded engine


@dataclass
class _Model:
    name: str | None  # None: the default model (MODEL)
    source: str | None  # None: handed over loaded, so it cannot be loaded again
    family: ModelFamily
    model_id: str
    device: str
    engine: Engine | None = None
    size: int = 0  # bytes its weights take once loaded (an estimate from its files before that)
    used_at: float = 0.0


class ModelPool:
    """Names → models, each loaded or not; see the module docstring."""

    def __init__(self, models: list[_Model], load: LoadEngine | None, budget: int | None) -> None:
        if not models or models[0].name is not None:
            raise ValueError("the first model is the default one, named None")
        self._models = {model.name: model for model in models}
        self._load = load
        self.budget = budget  # bytes; None: no limit
        self._lock = threading.Lock()  # guards loading and unloading; families and names never change

    @classmethod
    def of_engines(cls, engines: Mapping[str | None, Engine]) -> ModelPool:
        """A pool of engines loaded already, kept loaded (what tests and benchmarks hand an executor)."""
        if None not in engines:
            raise ValueError("engines needs a default engine under the key None")
        models = [
            _Model(
                name, None, engine.family, engine.model_id, str(engine.device), engine, engine_bytes(engine)
            )
            for name, engine in sorted(engines.items(), key=lambda item: item[0] is not None)
        ]
        return cls(models, None, None)

    @classmethod
    def open(cls, sources: Mapping[str | None, str], load: LoadEngine, *, budget: int | None) -> ModelPool:
        """Load the default model (key None) and describe the others; blocking, so run it off the event loop."""
        from pipeline.loading import describe_without_weights, model_id_of

        default = load(None, sources[None])
        models = [_Model(None, sources[None], default.family, default.model_id, str(default.device), default)]
        models[0].size = engine_bytes(default)
        models[0].used_at = time.monotonic()
        for name, source in sources.items():
            if name is None:
                continue
            family = describe_without_weights(source)
            if family is None:
                engine = load(name, source)
                model = _Model(name, source, engine.family, engine.model_id, str(engine.device), engine)
                model.size, model.used_at = engine_bytes(engine), time.monotonic()
            else:
                model = _Model(
                    name, source, family, model_id_of(source), str(default.device), size=files_bytes(source)
                )
            models.append(model)
        pool = cls(models, load, budget)
        with pool._lock:
            pool._make_room(for_model=None, needed=0)
        return pool

    # ------------------------------------------------------------------ what the event loop asks

    @property
    def names(self) -> list[str]:
        """Names `--model` accepts: each extra model's name, and the default model's id."""
        return sorted({name for name in self._models if name is not None} | {self._models[None].model_id})

    def key(self, model: str | None) -> str | None:
        """The pool's key for `--model` value `model` (None or the default's id: the default model)."""
        if model is None or model == self._models[None].model_id:
            return None
        if model not in self._models:
            raise RequestError(f"--model '{model}' is not available; choose one of: {', '.join(self.names)}.")
        return model

    def family(self, model: str | None) -> ModelFamily:
        return self._models[self.key(model)].family

    def model_id(self, model: str | None) -> str:
        return self._models[self.key(model)].model_id

    def devices(self) -> dict[str, list[str | None]]:
        """Device name → the keys of the models that run there."""
        by_device: dict[str, list[str | None]] = {}
        for model in self._models.values():
            by_device.setdefault(model.device, []).append(model.name)
        return by_device

    def loaded(self) -> list[str | None]:
        """Keys of the models in memory now, least recently used first."""
        with self._lock:
            in_memory = [model for model in self._models.values() if model.engine is not None]
        return [model.name for model in sorted(in_memory, key=lambda model: model.used_at)]

    # ------------------------------------------------------------------ what the worker thread asks

    def engine(self, key: str | None) -> Engine:
        """The loaded engine of model `key`, loading it first (and unloading others to make room) if needed.

        Raises `ModelLoadError` when it cannot be loaded; the models already loaded stay usable.
        """
        with self._lock:
            model = self._models[key]
            if model.engine is None:
                if self._load is None or model.source is None:
                    raise RuntimeError(f"model {key!r} was unloaded and has no source to load it again")
                self._make_room(for_model=key, needed=model.size)
                started = time.perf_counter()
                model.engine = self._load(key, model.source)
                model.size = engine_bytes(model.engine)
                log.info(
                    "Loaded %s on first use in %.1f s (%.1f GB)",
                    model.model_id,
                    time.perf_counter() - started,
                    model.size / 1e9,
                )
                self._make_room(for_model=key, needed=0)  # its real size may be larger than its files
            model.used_at = time.monotonic()
            return model.engine

    def _make_room(self, *, for_model: str | None, needed: int) -> None:
        """Unload least recently used models (never `for_model`) until the loaded ones and `needed` fit."""
        if self.budget is None:
            return
        from pipeline.loading import release_memory

        others = sorted(
            (m for m in self._models.values() if m.engine is not None and m.name != for_model and m.source),
            key=lambda model: model.used_at,
        )
        loaded = sum(model.size for model in self._models.values() if model.engine is not None)
        for model in others:
            if loaded + needed <= self.budget:
                break
            log.info("Unloading %s (least recently used) to stay within MODEL_MEMORY_GB", model.model_id)
            device = model.engine.device
            model.engine = None
            loaded -= model.size
            release_memory(device)


def engine_bytes(engine: Engine) -> int:
    """The bytes an engine's weights take: every torch module of its pipeline, and its upscaler."""
    import torch

    modules = [c for c in engine.txt2img.components.values() if isinstance(c, torch.nn.Module)]
    if isinstance(engine.upscaler, torch.nn.Module):
        modules.append(engine.upscaler)
    return sum(
        tensor.numel() * tensor.element_size()
        for module in modules
        for tensor in (*module.parameters(), *module.buffers())
    )


def files_bytes(source: str) -> int:
    """The size of a local model's weight files: an estimate of its memory before it is first loaded."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0  # a hub id: measured when loaded
    return sum(file.stat().st_size for file in path.rglob("*") if file.suffix in WEIGHT_SUFFIXES)


def memory_budget(gigabytes: float, device: str) -> int | None:
    """MODEL_MEMORY_GB in bytes; 0 means a share of the device's memory (of RAM for CPU and MPS)."""
    if gigabytes > 0:
        return int(gigabytes * 1e9)
    import torch

    from pipeline.loading import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        total = torch.cuda.get_device_properties(resolved).total_memory
    else:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # not a POSIX system: no limit
            return None
    return int(total * AUTO_BUDGET_SHARE)
