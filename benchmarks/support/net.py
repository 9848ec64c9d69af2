"""Loopback helpers for tests and benchmarks that start servers: the product's own."""

from bot.local.net import free_port

__all__ = ["free_port"]
