"""``python -m bot.local``: the model server and the terminal chat (or the bot) on one machine."""

import sys

from bot.local.run import main

sys.exit(main())
