"""Data preparation speed and memory: ours against the original project's approach.

    python -m benchmarks.prepare_speed [--messages 300000] [--repeats 3] [--check]

Writes a synthetic single-chat export (prepare_synthetic.py: about 20% replies,
15% list-form text, service messages, media and forwards mixed in) to a
temporary directory, then runs, in turn and as whole processes,
baseline_prepare_original.py and ``python -m finetuning.prepare``
(with and without --helper-process; the default picks it with 2+ CPUs). Wall
and CPU time (helper processes included) come from os.wait4; peak RSS is that
of the whole process tree, and the busiest process's CPU time tells the wall
time on a machine with a free CPU per process (see measure). Medians over the
repeats are compared with the targets: at least 3x faster, peak RSS at most
0.3x the baseline's. With --check the exit status is 1 when the shipped mode
misses one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
BASELINE = "baseline (original approach)"
OURS_HELPER = "prepare --helper-process"
OURS_SINGLE = "prepare --no-helper-process"
SPEEDUP_TARGET = 3.0
RSS_TARGET = 0.3


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    # CPU time of the process that used the most: the least wall time the
    # run could take with a free CPU for each process.
    busiest_cpu_s: float


def measure(command: list[str]) -> Run:
    """Wall and CPU time (children included), peak RSS of the whole process tree, busiest process's CPU.

    os.wait4 gives the exact peak of the largest single process and the
    exact CPU time of the tree; a poller adds up the tree's RSS (ours parses
    in a helper process) and notes each child's CPU time every 20 ms.
    Listing a process's children reads every process of the system, so the
    poller does that only every 200 ms: at every 5 ms it took a third of a
    CPU, which on 2 CPUs slowed the two-process run it measured.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_tree = 0
    child_cpu: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak_tree
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(process.pid)
            tree = {root.pid: root}
            next_listing = 0.0
            while not stop.is_set():
                if time.perf_counter() >= next_listing:
                    with contextlib.suppress(psutil.Error):
                        tree.update((p.pid, p) for p in root.children(recursive=True))
                    next_listing = time.perf_counter() + 0.2
                total = 0
                for p in list(tree.values()):
                    try:
                        total += p.memory_info().rss
                        if p.pid != root.pid:
                            times = p.cpu_times()
                            child_cpu[p.pid] = times.user + times.system
                    except psutil.Error:
                        del tree[p.pid]
                peak_tree = max(peak_tree, total)
                stop.wait(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    poller.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.decode()[-2000:]}")
    peak = max(usage.ru_maxrss * 1024, peak_tree)  # ru_maxrss is in KiB
    cpu = usage.ru_utime + usage.ru_stime
    busiest = max([cpu - sum(child_cpu.values()), *child_cpu.values()])
    return Run(wall, cpu, peak / 2**20, busiest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="prepare-speed-") as tmp:
        # Generated in its own process: children forked from a big parent
        # would start with its memory in their peak RSS.
        export = Path(tmp) / "result.json"
        subprocess.run(
            [sys.executable, "-m", "benchmarks.prepare_synthetic", str(export), str(args.messages)],
            cwd=REPO,
            check=True,
        )
        print(f"synthetic export: {args.messages} messages, {export.stat().st_size / 1e6:.0f} MB")
        load_at_start = os.getloadavg()[0]
        commands = {
            BASELINE: [
                sys.executable,
                "-m",
                "benchmarks.baseline_prepare_original",
                str(export),
                f"{tmp}/baseline.csv",
            ],
            OURS_HELPER: [
                sys.executable,
                "-m",
                "finetuning.prepare",
                "--tg-history-path",
                str(export),
                "--output-path",
                f"{tmp}/helper.csv",
                "--no-progress",
                "--helper-process",
            ],
            OURS_SINGLE: [
                sys.executable,
                "-m",
                "finetuning.prepare",
                "--tg-history-path",
                str(export),
                "--output-path",
                f"{tmp}/ours.csv",
                "--no-progress",
                "--no-helper-process",
            ],
        }
        runs: dict[str, list[Run]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                runs[name].append(measure(command))
        summary = json.loads((Path(tmp) / "ours.summary.json").read_text(encoding="utf-8"))

    median = {
        name: Run(
            *(
                statistics.median(getattr(r, f) for r in rs)
                for f in ("wall_s", "cpu_s", "peak_rss_mb", "busiest_cpu_s")
            )
        )
        for name, rs in runs.items()
    }
    base = median[BASELINE]
    print(
        f"\nmedian of {args.repeats} runs each, in turn; rows written by ours: {summary['rows_written']}; "
        f"{os.cpu_count()} CPUs, load average {load_at_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"| {'':36} | wall s | CPU s | busiest process CPU s | peak RSS MB | speed-up (wall) "
        "| speed-up (CPU) | speed-up (free CPUs) | RSS ratio |"
    )
    print(
        f"| {'-' * 36} | -----: | ----: | --------------------: | ----------: | --------------: "
        "| -------------: | -------------------: | --------: |"
    )
    for name, run in median.items():
        print(
            f"| {name:36} | {run.wall_s:6.2f} | {run.cpu_s:5.2f} | {run.busiest_cpu_s:21.2f} "
            f"| {run.peak_rss_mb:11.0f} | {base.wall_s / run.wall_s:14.2f}x "
            f"| {base.cpu_s / run.cpu_s:13.2f}x | {base.busiest_cpu_s / run.busiest_cpu_s:19.2f}x "
            f"| {run.peak_rss_mb / base.peak_rss_mb:8.2f}x |"
        )
    print(
        "speed-up (free CPUs): busiest process CPU s against the baseline's; the wall time ratio "
        "on a machine with a free CPU per process"
    )
    ask = "from finetuning.prepare.command import helper_pays_off; print(helper_pays_off())"
    helper_now = (
        subprocess.run(
            [sys.executable, "-c", ask], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        == "True"
    )
    default = OURS_HELPER if helper_now else OURS_SINGLE  # the mode the default picks here
    ours = median[default]
    speed_ok = base.wall_s / ours.wall_s >= SPEEDUP_TARGET
    rss_ok = ours.peak_rss_mb / base.peak_rss_mb <= RSS_TARGET
    print(
        f"targets for the default here ({default}): speed-up >= {SPEEDUP_TARGET}x "
        f"{'met' if speed_ok else 'MISSED'}, peak RSS <= {RSS_TARGET}x {'met' if rss_ok else 'MISSED'}"
    )
    return 1 if args.check and not (speed_ok and rss_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
