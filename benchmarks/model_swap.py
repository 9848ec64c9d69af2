"""A hot swap under load: the real server re-pointed to a second model while requests keep coming.

    python -m benchmarks.model_swap              # ruDialoGPT-medium's shape, CTranslate2 int8
    python -m benchmarks.model_swap --small      # a 2-layer model: checks the script in a minute

Two random-weight models of ruDialoGPT-medium's shape (``server_throughput``'s
builder, different seeds) sit beside a ``current`` symlink. ``python -m
model_server`` serves ``current`` (CTranslate2, the default on a CPU) and
watches it every second. While ``--clients`` clients send requests back to
back over loopback, ``current`` is re-pointed atomically to the second model;
the server converts it, loads it beside the first, warms it up and swaps.

Printed: the swap time (re-point to a new ``model_revision`` in /health, the
conversion included), the server's peak RSS during the swap over its RSS with
one model loaded (the kernel's high-water mark, reset just before the
re-point), and requests sent / failed from re-point to swap.

Targets on a CPU: swap within 180 s, peak <= 2.2x, no failed request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.server_processes import ModelServer
from benchmarks.server_throughput import QUERIES, build_model


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def _reset_peak(pid: int) -> None:
    """Start the process's VmHWM afresh (Linux: ``5`` to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _point(link: Path, target: Path) -> None:
    staged = link.with_name(".current.new")
    staged.unlink(missing_ok=True)
    staged.symlink_to(target)
    os.replace(staged, link)


async def _swap_under_load(server: ModelServer, current: Path, new: Path, args: argparse.Namespace) -> dict:
    sent: list[tuple[float, int]] = []  # (time sent, status); 0: no response
    stop = asyncio.Event()

    async def client(http: httpx.AsyncClient, index: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = (
                    await http.post("/answer", json={"query": QUERIES[index % len(QUERIES)]})
                ).status_code
            except httpx.HTTPError:
                status = 0
            sent.append((started, status))
            index += args.clients

    async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
        before = (await http.get("/health")).json()["model_revision"]
        tasks = [asyncio.create_task(client(http, i)) for i in range(args.clients)]
        await asyncio.sleep(2)  # the stream is steady before the re-point
        _reset_peak(server.pid)
        repointed = time.monotonic()
        _point(current, new)
        while (await http.get("/health")).json()["model_revision"] == before:
            if time.monotonic() - repointed > args.max_s:
                break
            await asyncio.sleep(0.2)
        swapped = time.monotonic()
        peak = _status_mib(server.pid, "VmHWM")
        await asyncio.sleep(2)  # requests that straddled the swap finish
        stop.set()
        await asyncio.gather(*tasks)
    during = [status for started, status in sent if repointed <= started <= swapped]
    return {
        "swap_s": swapped - repointed, "peak_mib": peak, "sent": len(during),
        "failed": sum(status != 200 for status in during),
        "failed_all": sum(status != 200 for _, status in sent), "all": len(sent),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="a 2-layer model, to check the script")
    parser.add_argument("--clients", type=int, default=2, help="clients sending back to back")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--max-s", type=float, default=600, help="give up on the swap after this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="model-swap-") as tmp:
        root = Path(tmp)
        os.environ["HF_HOME"] = str(root / "hf")  # conversions start cold, as for a new model
        started = time.perf_counter()
        build_model(root / "a", args.small, seed=0)
        build_model(root / "b", args.small, seed=1)
        print(f"built two models in {time.perf_counter() - started:.0f} s")
        current = root / "current"
        _point(current, root / "a")
        env = {"MODEL_WATCH_S": "1", "GEN_MAX_NEW_TOKENS": "20"}
        server = ModelServer(current, "ctranslate2", args.compute_type, env, batch=16)
        try:
            httpx.post(f"{server.url}/answer", json={"query": QUERIES[0]}, timeout=300)
            one_model = _status_mib(server.pid, "VmRSS")
            result = asyncio.run(_swap_under_load(server, current, root / "b", args))
            after = _status_mib(server.pid, "VmRSS")
        finally:
            server.stop()
    shape = "2 layers x 128" if args.small else "ruDialoGPT-medium (24 layers x 1024)"
    print(f"model: {shape}, CTranslate2 {args.compute_type}, {args.clients} clients, {os.cpu_count()} CPUs")
    print(f"swap time (re-point to new model_revision): {result['swap_s']:.1f} s")
    print(
        f"RSS: one model {one_model:.0f} MiB, peak during swap {result['peak_mib']:.0f} MiB "
        f"({result['peak_mib'] / one_model:.2f}x), after swap {after:.0f} MiB"
    )
    print(f"requests during the swap: {result['sent']} sent, {result['failed']} failed")
    print(f"requests in the whole run: {result['all']} sent, {result['failed_all']} failed")


if __name__ == "__main__":
    main()
