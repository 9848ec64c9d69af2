"""Hot swap: which model a setting names now, and the watch that swaps a new one in.

A local ``MODEL_NAME_OR_PATH`` (typically ``MODELS_DIR/current``, a symlink that
``finetuning.retrain`` re-points atomically) is pinned to its target when a
model loads, so the files cannot change under a loaded model's name. Its
revision is the CTranslate2 cache's digest of the directory (file names and
sizes; contents of files up to 64 MiB, modification times of larger ones): the
same files are the same model, wherever the link points. A hub model's
revision is its snapshot's commit.

Every ``MODEL_WATCH_S`` the watch compares the setting's revision with the one
serving; a new one is loaded beside it (``ModelService.reload``). A revision
that failed once is not tried again until its files change.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from model_server.convert import model_key
from model_server.engines.base import Engine
from model_server.loading import ModelLoadError, ctranslate2_compute_type, load_engine
from model_server.settings import Settings

if TYPE_CHECKING:
    from model_server.service import ModelService

log = logging.getLogger(__name__)
_COMMIT = re.compile(r"[0-9a-f]{40}")


def pinned_source(name: str) -> str:
    """A local directory's real path (a symlink's target now), or the hub id as it is."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def model_revision(source: str) -> str:
    """The digest of a local model directory, or the commit of a hub model's cached snapshot."""
    path = Path(source).expanduser()
    if path.is_dir():
        if path.parent.name == "snapshots" and _COMMIT.fullmatch(path.name):
            return path.name
        return model_key(str(path)).removeprefix("sha-")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source, "config.json")
    return Path(cached).parent.name if isinstance(cached, str) else "unknown"


def current_revision(name: str) -> str | None:
    """What a local setting points at now; None for a hub id (only loading it asks the hub)."""
    source = pinned_source(name)
    return model_revision(source) if Path(source).is_dir() else None


def load_pinned(settings: Settings, *, convert_apart: bool = False) -> tuple[Engine, str]:
    """The engine of the model the settings name now, and its revision (in a thread: it takes minutes).

    ``convert_apart``: a CTranslate2 conversion runs in a child process. It holds the
    whole model in float32 (1.4 GiB for ruDialoGPT-medium), which in the serving
    process came on top of the model serving and was not all given back after.
    """
    source = pinned_source(settings.model_name_or_path)
    # A local directory's digest is taken first: files changing during the load make a new revision.
    before = current_revision(source)
    pinned = settings.model_copy(update={"model_name_or_path": source})
    compute_type = ctranslate2_compute_type(pinned) if convert_apart else None
    if compute_type is not None:
        _convert_in_child(source, compute_type)
    engine = load_engine(pinned)
    return engine, before if before is not None else model_revision(source)


def _convert_in_child(source: str, compute_type: str) -> None:
    """Fill the conversion cache from ``python -m model_server.convert``; ModelLoadError with its reason."""
    command = [
        sys.executable,
        "-m",
        "model_server.convert",
        "--model",
        source,
        "--compute-type",
        compute_type,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise ModelLoadError(lines[-1].removeprefix("model_server.convert: "))


def watched(settings: Settings) -> bool:
    return settings.model_watch_s > 0 and Path(settings.model_name_or_path).expanduser().is_dir()


async def watch(service: ModelService) -> None:
    """Swap in each new model that appears at the setting's path, until cancelled."""
    name = service.settings.model_name_or_path
    while True:
        await asyncio.sleep(service.settings.model_watch_s)
        try:
            revision = await asyncio.to_thread(current_revision, name)
        except OSError as exc:  # a directory being replaced, a link pointing nowhere for a moment
            log.warning("cannot read %s: %s", name, exc)
            continue
        served = service.served
        if served is None or revision in (served.revision, service.refused_revision):
            continue
        log.info("new model at %s (revision %s): loading it beside the one serving", name, revision)
        try:
            await service.reload()
        except Exception:  # refused (logged by reload): the old model keeps serving
            continue
