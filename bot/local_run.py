"""Old name of ``python -m bot.local``; forwards for one release."""

import sys

from bot.local.run import main

if __name__ == "__main__":
    print("bot.local_run is deprecated: use python -m bot.local (make run)", file=sys.stderr)
    sys.exit(main())
