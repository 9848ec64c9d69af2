"""A PostgreSQL instance of the test's own (initdb in a temp dir, another port), to freeze and thaw."""

from __future__ import annotations

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

from tests.support.net import free_port


def _as_postgres(*command: str) -> list[str]:
    """initdb and postgres refuse to run as root; run them as the ``postgres`` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


@contextmanager
def private_postgres() -> Iterator[tuple[URL, PrivatePostgres]]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        import pytest

        pytest.skip("initdb / pg_ctl not installed")
    root = Path(tempfile.mkdtemp(prefix="pg-private-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(
        _as_postgres("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"),
        check=True,
        capture_output=True,
    )
    server = PrivatePostgres(data)
    try:
        url = URL.create("postgresql+asyncpg", "postgres", host="127.0.0.1", port=port, database="postgres")
        yield url, server
    finally:
        server.thaw()
        stop = _as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class PrivatePostgres:
    def __init__(self, data: Path) -> None:
        self.pid = int((data / "postmaster.pid").read_text().split()[0])

    def _processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(self.pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets (connections are accepted) and answers nothing."""
        for process in self._processes():
            process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for process in self._processes():
            process.send_signal(signal.SIGCONT)
