"""A throwaway PostgreSQL cluster for the fault tests, which stop and start their database on purpose.

Why it exists: stopping the machine's shared PostgreSQL took every other suite (and every other
engineer's) down with it, and a test that failed between stop and start left it down. This cluster
lives in a temporary directory on a free port; the fixture starts it and always stops and removes it.
initdb refuses to run as root, so as root the cluster is made and run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayPostgres:
    """One PostgreSQL cluster of its own (trust auth on 127.0.0.1), started and stopped on demand."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="skyfleet-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, timeout=timeout, capture_output=True)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w",
                  "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True, timeout=10).returncode == 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):  # CI has PostgreSQL: the fault tests must run there, not vanish
            pytest.fail("no PostgreSQL server binaries (initdb) on this machine")
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    cluster = ThrowawayPostgres(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.remove()
        except (subprocess.SubprocessError, OSError):
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def pg_url(throwaway_pg: ThrowawayPostgres) -> Iterator[str]:
    """A fresh database on the throwaway cluster (overrides the shared server's ``pg_url``)."""
    import psycopg

    if not throwaway_pg.running():  # a test stopped it and failed before starting it again
        throwaway_pg.start()
    name = f"skyfleet_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(throwaway_pg.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:{throwaway_pg.port}/{name}"
    if throwaway_pg.running():
        with psycopg.connect(throwaway_pg.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
