"""Helpers that benchmarks and tests share: loopback ports, a tiny GPT-2, offline speech.

They live here, not under tests/, so that a benchmark never imports the test
suite; tests import them from here too.
"""
