"""The data preparation command: ``python -m finetuning.prepare --help`` (command.py)."""

import sys

from finetuning.prepare.command import main

if __name__ == "__main__":
    sys.exit(main())
