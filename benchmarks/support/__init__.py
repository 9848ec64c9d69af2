"""Helpers that benchmarks and tests share: loopback ports, a tiny GPT-2, offline speech, a fake
Bot API, bot and stub-model-server processes, throwaway PostgreSQL databases.

They live here, not under tests/, so that a benchmark never imports the test
suite; tests import them from here too.
"""
