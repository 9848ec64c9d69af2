"""Where a model is loaded from: a local directory, the hub, or the hub's local cache.

Training, evaluation and the model server call :func:`resolve_model_source`
before anything loads, so that a mistake costs seconds, not minutes:

- a name that looks like a path and does not exist fails at once ("directory
  does not exist") instead of being taken for a hub id;
- the hub is asked once, with a short timeout, whether the model is there.
  Unreachable, a cached copy is used as a local directory (transformers would
  otherwise retry for ~50 s per file before falling back to the cache); with
  no cached copy the error says so and names the setting to change;
- ``HF_HUB_OFFLINE=1`` never touches the network: the cached copy or a clear error.

Errors are :class:`ModelSourceError`, one line that names the setting
(``MODEL_NAME_OR_PATH`` for the server, ``--model_name_or_path`` for training).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# One metadata call; a hub that does not answer within this is treated as unreachable.
HUB_TIMEOUT_S = 5.0


class ModelSourceError(ValueError):
    """The model cannot be found where the setting points; the message is one line for the user."""


def looks_like_path(name: str) -> bool:
    """``./x``, ``/x``, ``~/x``, or more separators than one ``org/name`` hub id has."""
    separators = name.count("/") + (name.count(os.sep) if os.sep != "/" else 0)
    if os.altsep and os.altsep != "/":
        separators += name.count(os.altsep)
    return name.startswith((".", "/", "~")) or separators > 1


def resolve_model_source(name: str, setting: str) -> str:
    """What to pass to ``from_pretrained``: a local directory, or the hub id when the hub has it.

    ``setting`` is how the user set ``name`` (``MODEL_NAME_OR_PATH``, ``--model_name_or_path``).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelSourceError(f"{setting}={name}: not a directory (a model directory or a hub id is needed)")
    if looks_like_path(name):
        raise ModelSourceError(f"{setting}={name}: directory does not exist")
    _check_hub_id(name, setting)
    if _offline():
        return _cached_or_fail(
            name, setting, "HF_HUB_OFFLINE=1 and the model is not in the local Hugging Face cache"
        )
    return _ask_hub(name, setting)


def _ask_hub(name: str, setting: str) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        raise ModelSourceError(
            f"{setting}={name}: a gated model; accept its terms on huggingface.co and set HF_TOKEN"
        ) from None
    except RepositoryNotFoundError:
        raise ModelSourceError(
            f"{setting}={name}: no such directory here and no such model on the Hugging Face hub "
            "(a private one needs HF_TOKEN)"
        ) from None
    except OfflineModeIsEnabled:
        return _cached_or_fail(name, setting, "the hub is off (offline mode) and the model is not cached")
    except Exception as error:  # any other failure of one metadata call: no usable hub
        reason = first_line(error)
        return _cached_or_fail(
            name,
            setting,
            f"no such local directory, the Hugging Face hub cannot be reached ({reason}) "
            "and the model is not in its cache",
        )
    return name


def _check_hub_id(name: str, setting: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelSourceError(
            f"{setting}={name}: neither a local directory nor a valid hub id (org/name)"
        ) from None


def _cached_or_fail(name: str, setting: str, why: str) -> str:
    """The cached snapshot of ``name`` as a local directory, or a one-line error saying ``why``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot = snapshot_download(name, local_files_only=True)
    except LocalEntryNotFoundError:
        raise ModelSourceError(
            f"{setting}={name}: {why}; set {setting} to a local model directory, "
            "or download the model once with the hub reachable"
        ) from None
    log.warning("%s: hub not used, loading the cached copy %s", name, snapshot)
    return str(snapshot)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def model_file_text(source: str, name: str) -> str | None:
    """Text of file ``name`` of a resolved model (a local directory or a hub id); None when it has none.

    For a hub id, huggingface_hub fetches the file (or takes it from its cache
    when the hub cannot be reached or HF_HUB_OFFLINE=1).
    """
    path = Path(source).expanduser()
    if path.is_dir():
        file = path / name
        return file.read_text(encoding="utf-8") if file.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(source, name)).read_text(encoding="utf-8")
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None


def loading_error(name: str, setting: str, error: BaseException) -> ModelSourceError:
    """A one-line error for a source that resolved but does not load (not a model, broken files)."""
    return ModelSourceError(f"{setting}={name}: cannot load the model ({first_line(error)})")


def first_line(error: BaseException) -> str:
    """An error as one line for the user (libraries' messages run to several)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
