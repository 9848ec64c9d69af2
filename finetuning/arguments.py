"""Flags of training and evaluation: argument dataclasses, the config file, one-line errors.

Training reads ``finetuning/config.yaml`` (or ``--config``) as defaults and
the command line on top. Flags are never abbreviated (``--learning_rat`` is
an error, not ``--learning_rate``), and every mistake in them is one line on
stderr, not a usage page or a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from dialogue.format import CONTEXT_SIZE
from finetuning.training_csv import csv_header

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
TRAIN_PROG = "python -m finetuning.train"
QUICK_TRY_SUFFIX = "-try"


@dataclass
class DataFiles:
    """Where the prepared CSVs are: the same flags for training and evaluation."""

    data_dir: str | None = field(
        default=None,
        metadata={
            "help": f"Directory of prepared CSVs ({','.join(csv_header(CONTEXT_SIZE))}); all are used."
        },
    )
    data_file: list[str] | None = field(
        default=None, metadata={"help": "Prepared CSV file(s) instead of --data_dir."}
    )
    dataset_cache_dir: str | None = field(
        default=None, metadata={"help": "Where datasets caches the parsed CSVs (default: HF_DATASETS_CACHE)."}
    )


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="tinkoff-ai/ruDialoGPT-medium",
        # The one place of the base model: config.yaml leaves it out.
        metadata={"help": "Base model: a hub id or a local directory (./dir, /dir)."},
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "'auto': bf16 on GPUs that support it, else fp16 on GPUs, fp32 on CPU; "
            "'no': always fp32. An explicit --bf16 / --fp16 wins.",
            "choices": ["auto", "no"],
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a model already in --output_dir (its checkpoints are deleted)."},
    )


@dataclass
class DataArguments(DataFiles):
    context_size: int = field(
        default=CONTEXT_SIZE,
        metadata={"help": "Context messages before the response; written to dialogue.json for serving."},
    )
    max_length: int = field(
        default=512,
        metadata={
            "help": "Max tokens per sample (at most the model's positions); longer samples lose their "
            "oldest context messages first."
        },
    )
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of the rows held out for validation (seeded split)."}
    )
    train_on_context: bool = field(
        default=False,
        metadata={"help": "Put the loss on the whole text, not only on the responses."},
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenisation."}
    )


ARGUMENT_CLASSES: tuple[type, ...] = (ModelArguments, DataArguments)


def one_line_parser(classes: Sequence[type], prog: str) -> Any:
    """An ``HfArgumentParser`` that never abbreviates flags and reports a mistake in one line."""
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        def error(self, message: str) -> typing.NoReturn:
            raise SystemExit(message)

    return Parser(typing.cast(Any, list(classes)), prog=prog, allow_abbrev=False)


def parse_into(parser: Any, argv: Sequence[str]) -> tuple[Any, ...]:
    """The dataclasses of ``parser``; unknown flags and invalid combinations are one-line exits."""
    try:
        *parsed, unknown = parser.parse_args_into_dataclasses(args=list(argv), return_remaining_strings=True)
    except ValueError as error:  # TrainingArguments' own checks of combinations
        raise SystemExit(" ".join(str(error).split())) from None
    flags = [a for a in unknown if a.startswith("-")]
    if flags:
        raise SystemExit(f"unknown flag {flags[0]} (flags are never abbreviated; see --help for all of them)")
    if unknown:
        raise SystemExit(f"unexpected argument {unknown[0]!r} (values follow their --flag)")
    return tuple(parsed)


def load_config(path: str | Path) -> dict[str, Any]:
    """The config file as a flat dict; JSON, or YAML by extension."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = (yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)) or {}
    except OSError as error:
        raise SystemExit(f"{path}: cannot read the config ({error.strerror or error})") from None
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        kind = "YAML" if path.suffix in (".yaml", ".yml") else "JSON"
        raise SystemExit(f"{path}: not valid {kind}: {' '.join(str(error).split())}") from None
    if not isinstance(values, dict):
        raise SystemExit(f"{path}: the config must be a mapping of flag names to values")
    # Keys starting with "_" are comments (JSON has no other kind).
    return {k: v for k, v in values.items() if not k.startswith("_")}


def _has_type(value: Any, annotation: Any) -> bool:
    """Whether a config value has the type a dataclass field declares (ints pass as floats).

    Strict, so "5e-5" is no float and "yes" no bool, and validated as JSON,
    which is what a config file holds: an enum field takes its values' strings
    and a tuple field a list.
    """
    try:
        _adapter(annotation).validate_json(json.dumps(value), strict=True)
    except (TypeError, ValueError):  # not JSON at all (a YAML date), or not of the type
        return False
    return True


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))


def check_config_types(
    config: dict[str, Any], classes: Sequence[type], source: str | Path = "config"
) -> None:
    """Refuse unknown keys and values of the wrong type (a tuple or a string where a number belongs).

    The original project's config silently had tuples for numbers; here such a
    file stops the run before anything is loaded.
    """
    hints = {name: tp for cls in classes for name, tp in typing.get_type_hints(cls).items()}
    fields = {f.name for cls in classes for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise SystemExit(f"{source}: unknown keys {unknown}")
    wrong = [
        f"{key}={value!r} (expected {hints[key]})"
        for key, value in config.items()
        if not _has_type(value, hints[key])
    ]
    if wrong:
        raise SystemExit(f"{source}: wrong value types: {'; '.join(wrong)}")


def flags_given(argv: Sequence[str]) -> set[str]:
    """The flags on the command line as field names (``--use-cpu`` and ``--use_cpu`` alike)."""
    return {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}


def quick_try_output_dir(argv: Sequence[str], config: dict[str, Any]) -> dict[str, str]:
    """``<output_dir>-try`` for a full run's config cut short by ``--max_steps``, without an ``--output_dir``.

    So the README's quick try and the full run after it write to two
    directories: otherwise the full run is refused, the quick model being where
    it goes, and --overwrite_output_dir would be the wrong advice for a try.
    A config that sets max_steps itself describes a short run: its output_dir stays.
    """
    flags = flags_given(argv)
    cut_short = "max_steps" in flags and "max_steps" not in config
    if not cut_short or "output_dir" in flags or not config.get("output_dir"):
        return {}
    return {"output_dir": str(config["output_dir"]).rstrip("/") + QUICK_TRY_SUFFIX}


def auto_precision(argv: Sequence[str], config: dict[str, Any]) -> dict[str, bool]:
    """bf16 where the GPU has it, fp16 on older GPUs; nothing on CPU or when chosen explicitly."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--precision", default=config.get("precision", "auto"))
    # An explicit choice always wins.
    flags = flags_given(argv)
    explicit = bool({"bf16", "fp16"} & (flags | set(config))) or "use_cpu" in flags or config.get("use_cpu")
    if explicit or pre.parse_known_args(argv)[0].precision != "auto":
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


def parse_args(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, Any]:
    """Config file values as defaults, then command-line flags on top."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help-all" in argv:
        argv = ["--help"]  # the full parser's own help, TrainingArguments' flags included
    else:
        from finetuning.command_help import TRAIN_EPILOG, answer_help

        summary = "Fine-tune ruDialoGPT on the prepared CSVs."
        answer_help(argv, ARGUMENT_CLASSES, TRAIN_PROG, summary, TRAIN_EPILOG)
    from transformers import TrainingArguments

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=str(DEFAULT_CONFIG))
    config_path = pre.parse_known_args(argv)[0].config
    config = load_config(config_path)

    classes = (*ARGUMENT_CLASSES, TrainingArguments)
    check_config_types(config, classes, config_path)
    if config.get("hub_token"):
        raise SystemExit(f"{config_path}: never put the hub token in a config; set HF_TOKEN")

    parser = one_line_parser(classes, prog=TRAIN_PROG)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="JSON or YAML file of default flags.")
    parser.set_defaults(**{**config, **auto_precision(argv, config), **quick_try_output_dir(argv, config)})
    model_args, data_args, training_args, _ = parse_into(parser, argv)
    if training_args.hub_token:
        raise SystemExit("--hub_token would end up in shell history and logs; set HF_TOKEN instead")
    if not training_args.output_dir:
        raise SystemExit("--output_dir is required")
    if training_args.push_to_hub:
        from huggingface_hub import get_token

        # Fail now, not after hours of training: pushing needs a token (HF_TOKEN or `hf auth login`).
        if get_token() is None:
            raise SystemExit("--push_to_hub needs a Hugging Face token: set HF_TOKEN")
    return model_args, data_args, training_args


def run_command(name: str, main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None) -> int:
    """Run a command's ``main``: a user's mistake (a path, the data, a flag) is one line, not a traceback."""
    import sys

    from dialogue.model_facts import DialogueFactsError
    from dialogue.model_source import ModelSourceError
    from finetuning.data import DataError

    try:
        main(argv)
    except (ModelSourceError, DataError, DialogueFactsError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except SystemExit as stop:  # the argument checks' one-line refusals; --help exits 0
        if isinstance(stop.code, str):
            print(f"{name}: {stop.code}", file=sys.stderr)
            return 2
        raise
    return 0
