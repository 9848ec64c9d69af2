"""A PostgreSQL instance of the test's own (initdb in a temp dir, another port), to freeze and thaw."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from sqlalchemy.engine import URL

from benchmarks.support.net import free_port


def _server_bin() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres(*command: str) -> list[str]:
    """initdb and postgres refuse to run as root; run them as the ``postgres`` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


@contextmanager
def private_postgres() -> Iterator[tuple[URL, PrivatePostgres]]:
    server_bin = _server_bin()
    if server_bin is None:
        import pytest

        pytest.skip("initdb / pg_ctl not installed")
    initdb, pg_ctl = str(server_bin / "initdb"), str(server_bin / "pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="pg-private-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(
        _as_postgres(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"),
        check=True,
        capture_output=True,
    )
    server = PrivatePostgres(data)
    try:
        url = URL.create("postgresql+asyncpg", "postgres", host="127.0.0.1", port=port, database="postgres")
        yield url, server
    finally:
        server.thaw()
        stop = _as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class PrivatePostgres:
    def __init__(self, data: Path) -> None:
        self.pid = int((data / "postmaster.pid").read_text().split()[0])

    def _processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(self.pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def _signal(self, sig: signal.Signals) -> None:
        for process in self._processes():
            # A backend may end between the listing and its signal (a closed connection's).
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(sig)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets (connections are accepted) and answers nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)
