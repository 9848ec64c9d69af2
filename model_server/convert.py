"""The model in CTranslate2's format, converted once with CTranslate2's own converter and cached.

The cache lives under the Hugging Face cache directory (``$HF_HOME/ctranslate2``,
the images' ``hf_cache`` volume), one folder per model revision (hub) or
content (local directory) and compute type. A conversion is written to a
temporary folder and renamed into place, so a crash never leaves half a model.

    python -m model_server.convert                       # MODEL_NAME_OR_PATH, ENGINE_COMPUTE_TYPE, DEVICE
    python -m model_server.convert --model outputs/run --compute-type float32
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dialogue.model_source import first_line
from dialogue.service_cli import settings_error_line

log = logging.getLogger(__name__)

# Weights above this size are keyed by size and modification time rather than read whole.
_HASHED_BYTES = 64 << 20


def cache_root() -> Path:
    from huggingface_hub import constants

    # Read now, not at import: HF_HOME may be set after huggingface_hub was imported.
    return Path(os.environ.get("HF_HOME") or constants.HF_HOME).expanduser() / "ctranslate2"


def model_key(source: str) -> str:
    """The hub revision (commit) of ``source``, or a digest of a local directory's files."""
    path = Path(source).expanduser()
    if not path.is_dir():
        from huggingface_hub import hf_hub_download

        # The snapshot folder of the cached config is named after the revision's commit.
        return "rev-" + Path(hf_hub_download(source, "config.json")).parent.name[:16]
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0".encode())
        if stat.st_size <= _HASHED_BYTES:
            digest.update(file.read_bytes())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return "sha-" + digest.hexdigest()[:16]


class _PaddedVocabulary:
    """A tokenizer whose vocabulary names every row of the embedding matrix.

    CTranslate2 wants one vocabulary entry per row; GPT-2 checkpoints often have
    more rows than the tokenizer has tokens (padded for speed). The extra rows
    get unused names; the server decodes token ids with the real tokenizer.
    """

    def __init__(self, tokenizer: Any, rows: int) -> None:
        self._tokenizer = tokenizer
        self._rows = rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._tokenizer.get_vocab())
        next_id = max(vocab.values(), default=-1) + 1
        for row in range(next_id, self._rows):
            vocab[f"<unused_row_{row}>"] = row
        return vocab


def _converter(source: str) -> Any:
    """CTranslate2's converter, for checkpoints whose embedding has more rows than the tokenizer."""
    # Imported here: it takes seconds (torch, transformers), which --help should not wait for.
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        _rows = 0

        def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            self._rows = int(model.get_input_embeddings().weight.shape[0])
            return model

        def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            return _PaddedVocabulary(
                super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs), self._rows
            )

    return Converter(source)


def conversion_dir(source: str, compute_type: str, root: Path | None = None) -> Path:
    """Where the cache keeps ``source`` converted to ``compute_type``."""
    name = re.sub(
        r"[^A-Za-z0-9._-]+", "--", Path(source).expanduser().name if Path(source).is_dir() else source
    )
    return (root or cache_root()) / f"{name}--{model_key(source)}--{compute_type}"


def converted_model(source: str, compute_type: str, root: Path | None = None) -> Path:
    """The CTranslate2 folder of ``source`` at ``compute_type``, converting it on first use."""
    target = conversion_dir(source, compute_type, root)
    root = target.parent
    if (target / "model.bin").is_file():
        log.info("CTranslate2 model of %s (%s) reused from %s", source, compute_type, target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        _converter(source).convert(str(scratch), quantization=compute_type, force=True)
        try:
            os.rename(scratch, target)
        except OSError:  # another process finished the same conversion first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info(
        "converted %s to CTranslate2 %s in %.1f s: %s",
        source,
        compute_type,
        time.perf_counter() - started,
        target,
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_server.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", help="hub id or local directory (default: MODEL_NAME_OR_PATH)")
    parser.add_argument(
        "--compute-type",
        help="int8, float32, … (default: ENGINE_COMPUTE_TYPE; auto: what the server picks on --device: "
        "int8 on a CPU, bfloat16 or float16 on CUDA)",
    )
    parser.add_argument("--device", help="cpu, cuda or auto (CUDA when present); default: DEVICE")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $HF_HOME/ctranslate2")
    args = parser.parse_args(argv)
    from model_server.settings import GenerationSettings, Settings

    if args.model is None or args.compute_type is None or args.device is None:
        try:
            settings = Settings()
        except ValueError as exc:  # pydantic's ValidationError included
            print(
                settings_error_line("model_server.convert", exc, Settings, GenerationSettings),
                file=sys.stderr,
            )
            return 2
        args.model = args.model or settings.model_name_or_path
        args.compute_type = args.compute_type or settings.engine_compute_type
        args.device = args.device or settings.device
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from model_server.engines.ctranslate2 import resolve_compute_type
    from model_server.engines.transformers import pick_device

    try:
        compute_type = resolve_compute_type(args.compute_type, pick_device(args.device).type)
        path = converted_model(args.model, compute_type, args.cache_dir)
    except Exception as exc:  # the converter raises OSError, ValueError, HF errors…
        print(f"model_server.convert: cannot convert {args.model!r}: {first_line(exc)}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
