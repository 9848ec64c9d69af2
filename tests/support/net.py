"""Forwards to benchmarks/support/net.py until the tests outside tests/finetuning import it there."""

from benchmarks.support.net import free_port

__all__ = ["free_port"]
