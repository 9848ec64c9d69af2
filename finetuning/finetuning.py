"""The old name of ``python -m finetuning.train``, kept for one release: jobs that call it still run."""

import sys

from finetuning.train import command_line, main

__all__ = ["main"]

if __name__ == "__main__":
    print(
        "finetuning.finetuning is deprecated and goes in the next release: use python -m finetuning.train",
        file=sys.stderr,
    )
    sys.exit(command_line())
