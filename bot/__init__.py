"""Telegram front end: ``python -m bot``; docs/architecture.md shows its layers and an update's way."""
