"""Data preparation speed and memory: ours against the original project's approach.

    python benchmarks/prepare_speed.py [--messages 300000] [--repeats 3] [--check]

Writes a synthetic single-chat export (prepare_synthetic.py: about 20% replies,
15% list-form text, service messages, media and forwards mixed in) to a
temporary directory, then runs, alternately and as whole processes,
``python -m finetuning.prepare_messages`` and baseline_prepare_original.py.
Each child's wall time, CPU time and peak RSS come from os.wait4, so nothing
else is counted. Medians over the repeats are compared with the targets:
at least 3x faster, peak RSS at most 0.3x the baseline's. With --check the
exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEEDUP_TARGET = 3.0
RSS_TARGET = 0.3


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def measure(command: list[str]) -> Run:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.decode()[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB


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
        subprocess.run([sys.executable, str(HERE / "prepare_synthetic.py"), str(export), str(args.messages)],
                       check=True)
        print(f"synthetic export: {args.messages} messages, {export.stat().st_size / 1e6:.0f} MB")
        commands = {
            "baseline (original approach)": [
                sys.executable, str(HERE / "baseline_prepare_original.py"), str(export), f"{tmp}/baseline.csv"
            ],
            "finetuning.prepare_messages": [
                sys.executable, "-m", "finetuning.prepare_messages", "--tg-history-path", str(export),
                "--output-path", f"{tmp}/ours.csv", "--no-progress",
            ],
        }
        runs: dict[str, list[Run]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                runs[name].append(measure(command))
        summary = json.loads((Path(tmp) / "ours.summary.json").read_text(encoding="utf-8"))

    median = {
        name: Run(*(statistics.median(getattr(r, f) for r in rs) for f in ("wall_s", "cpu_s", "peak_rss_mb")))
        for name, rs in runs.items()
    }
    base, ours = median["baseline (original approach)"], median["finetuning.prepare_messages"]
    print(f"\nmedian of {args.repeats} runs each, alternating; rows: ours {summary['rows_written']}")
    print(f"{'':30} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}")
    for name, run in median.items():
        print(f"{name:30} {run.wall_s:8.2f} {run.cpu_s:8.2f} {run.peak_rss_mb:12.0f}")
    speedup, cpu_speedup = base.wall_s / ours.wall_s, base.cpu_s / ours.cpu_s
    rss_ratio = ours.peak_rss_mb / base.peak_rss_mb
    speed_ok, rss_ok = speedup >= SPEEDUP_TARGET, rss_ratio <= RSS_TARGET
    print(f"speed-up (wall): {speedup:.2f}x  (CPU: {cpu_speedup:.2f}x)  target >= {SPEEDUP_TARGET}x  "
          f"{'met' if speed_ok else 'MISSED'}")
    print(f"peak RSS ratio:  {rss_ratio:.2f}x  target <= {RSS_TARGET}x  {'met' if rss_ok else 'MISSED'}")
    return 1 if args.check and not (speed_ok and rss_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
