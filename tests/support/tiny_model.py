"""Forwards to benchmarks/support/tiny_model.py until the tests outside tests/finetuning import it there."""

from benchmarks.support.tiny_model import build_tiny_model, build_tokenizer

__all__ = ["build_tiny_model", "build_tokenizer"]
