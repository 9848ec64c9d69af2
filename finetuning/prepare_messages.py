"""The data preparation command: ``python -m finetuning.prepare_messages --help`` (see finetuning/prepare)."""

import sys

from finetuning.prepare.command import main

if __name__ == "__main__":
    sys.exit(main())
