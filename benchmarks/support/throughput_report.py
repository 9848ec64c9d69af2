"""The tables ``benchmarks.server_throughput`` prints, and the labels of its servers."""

from __future__ import annotations

import argparse
import statistics

from benchmarks.support.poisson_load import p95

BASELINE = " (baseline)"


def print_tables(mode: str, times: dict, rss: dict[str, float], args: argparse.Namespace) -> dict[str, float]:
    n, base = args.clients, next(iter(times))
    one = {k: 1 / statistics.median(v["server1"]) for k, v in times.items()}
    many = {k: n / statistics.median(v["server_n"]) for k, v in times.items()}
    bare = {k: n / statistics.median(v["bare_n"]) for k, v in times.items()}
    print(
        f"\n{mode}: requests/s, medians of {args.rounds} interleaved rounds "
        f"({args.repeat} single requests each), {args.new_tokens} new tokens"
    )
    print(f"{'server':<34} {'1 client':>9} {f'{n} clients':>11} {f'bare {n}':>8} {'srv/bare':>9} "
          f"{'x1 vs base':>10} {f'x{n} vs base':>11} {'peak RSS':>10} {'RSS x':>6}")  # fmt: skip
    for k in times:
        print(
            f"{k:<34} {one[k]:>9.3f} {many[k]:>11.3f} {bare[k]:>8.3f} {many[k] / bare[k]:>9.2f} "
            f"{one[k] / one[base]:>10.2f} {many[k] / many[base]:>11.2f} "
            f"{rss[k]:>7.0f} MiB {rss[k] / rss[base]:>6.2f}"
        )
    print(f"target: server({n}) >= 0.9x bare batched({n})")
    return many


def print_against_baseline(mode: str, many: dict[str, float], args: argparse.Namespace) -> None:
    print(f"\n{mode}: {args.clients}-client requests/s, this tree against {args.baseline_tree}")
    print(f"{'engine':<26} {'baseline':>9} {'this tree':>10} {'new/old':>8}")
    for label in many:
        if label != engine_label(label) or baseline_label(label) not in many:
            continue
        old, new = many[baseline_label(label)], many[label]
        print(f"{label:<26} {old:>9.3f} {new:>10.3f} {new / old:>8.2f}")
    print("target: this tree >= 0.9x baseline")


def print_poisson(
    waits: dict[str, list[float]], capacity: dict[str, float], args: argparse.Namespace
) -> None:
    print(f"\nPoisson arrivals at 70% of each server's {args.clients}-client capacity, "
          f"{args.poisson_requests} requests, greedy, over /answer")  # fmt: skip
    for k, w in waits.items():
        print(f"{k:<34} {0.7 * capacity[k]:>6.3f} req/s  p50 {statistics.median(w):6.2f} s  "
              f"p95 {p95(w):6.2f} s")  # fmt: skip


BASELINE = " (baseline)"


def baseline_label(label: str) -> str:
    return label + BASELINE


def engine_label(label: str) -> str:
    """The engine a server label names, without the baseline's mark."""
    return label.removesuffix(BASELINE)
