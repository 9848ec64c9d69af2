"""One machine without Telegram: the terminal chat and the one-command local run (``python -m bot.local``)."""
