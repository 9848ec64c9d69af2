"""The old name of ``python -m finetuning.prepare``, kept for one release: scripts that call it still run."""

import sys

from finetuning.prepare.command import main

__all__ = ["main"]

if __name__ == "__main__":
    print(
        "finetuning.prepare_messages is deprecated and goes in the next release: "
        "use python -m finetuning.prepare",
        file=sys.stderr,
    )
    sys.exit(main())
