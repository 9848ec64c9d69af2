"""``--help`` of the training and evaluation commands, without importing transformers.

Their flags are argument dataclasses parsed by transformers' ``HfArgumentParser``,
whose import alone takes a second or more (torch's, for ``TrainingArguments``,
several): --help lists the same dataclasses with plain argparse instead.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

TRAIN_EPILOG = """\
Also --config FILE (JSON or YAML of default flags; default finetuning/config.yaml) and every
flag of transformers' TrainingArguments: --output_dir, --max_steps, --num_train_epochs,
--learning_rate, --per_device_train_batch_size, --resume_from_checkpoint, --push_to_hub, ...
--help-all lists them all (it imports transformers and torch: a few seconds).
A run with --max_steps and no --output_dir writes to the config's output_dir + "-try"
(outputs/rudialogpt-medium-chat-try; unless the config sets max_steps itself), so that
the full run after it is not refused."""
HELP_FLAGS = ("-h", "--help")


def answer_help(
    argv: Sequence[str], classes: Sequence[type], prog: str, description: str, epilog: str = ""
) -> None:
    """With ``-h`` / ``--help`` in ``argv``: print the flags of ``classes`` and exit 0, else return."""
    if not set(HELP_FLAGS) & set(argv):
        return
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for cls in classes:
        group = parser.add_argument_group(cls.__name__)
        for item in dataclasses.fields(cls):
            group.add_argument(f"--{item.name}", metavar=item.name.upper(), help=_flag_help(item))
    parser.print_help()
    raise SystemExit(0)


def _flag_help(item: dataclasses.Field[Any]) -> str:
    if item.default is not dataclasses.MISSING:
        default = f"default: {item.default}"
    elif item.default_factory is not dataclasses.MISSING:
        default = f"default: {item.default_factory()}"
    else:
        default = "required"
    choices = f"; one of {', '.join(item.metadata['choices'])}" if "choices" in item.metadata else ""
    return f"{item.metadata.get('help', '')} ({default}{choices})".replace("%", "%%").lstrip()
