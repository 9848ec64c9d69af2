"""The conversation without Telegram: one exchange, commands, reply chains, model client, speech."""
