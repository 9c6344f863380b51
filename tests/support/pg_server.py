"""A throwaway PostgreSQL server for tests, from Debian's binaries (``apt-get install postgresql``).

The server lives in a temporary directory, listens on 127.0.0.1 on a free port (its Unix socket in the
same directory), trusts local connections, runs without fsync (test data only) and is stopped and
deleted by :meth:`PostgresServer.stop`, which is also registered with :mod:`atexit` in case the test
session dies first. ``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the
``postgres`` user through ``runuser`` and the directory is chowned to it.

Used by the ``postgres_url`` fixture of ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "create_database", "find_pg_bin"]


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` with initdb and pg_ctl, else the one on PATH."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin")
             if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    if found:
        return max(found, key=_version_key)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).resolve().parent / "initdb").exists():
        return Path(pg_ctl).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory (see the module docstring).

    Args:
        bin_dir: directory of ``initdb``/``pg_ctl`` (default: :func:`find_pg_bin`).
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_pg_bin()
        if found is None:
            raise FileNotFoundError(
                "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/pg_ctl); install "
                "them with: apt-get install postgresql (make install does it when run as root)."
            )
        self.bin_dir = found
        self.root: Path | None = None
        self.port = 0
        self._as_postgres = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.root)

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}")

    def start(self) -> PostgresServer:
        """initdb, then ``pg_ctl start`` on a free port; retries once if the port was taken."""
        self.root = Path(tempfile.mkdtemp(prefix="optiroute-pg-"))
        atexit.register(self.stop)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._check(self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                              "-E", "UTF8", "--no-sync"), "initdb")
        for attempt in range(2):
            self.port = _free_port()
            opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=300"
            proc = self._run("pg_ctl", "-D", str(self.data_dir), "-o", opts, "-l",
                             str(self.root / "server.log"), "-w", "-t", "60", "start")
            if proc.returncode == 0:
                return self
            if attempt:
                self._check(proc, "pg_ctl start")
        return self

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server (user postgres, trust auth)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` and delete the directory (safe to call twice)."""
        root, self.root = self.root, None
        if root is None:
            return
        self.root = root
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            self.root = None
            shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``; returns its SQLAlchemy URL."""
    import psycopg

    base = server_url.replace("postgresql+psycopg://", "postgresql://")
    head, _, _ = base.rpartition("/")
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"{head}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return f"postgresql+psycopg://{head.split('://', 1)[1]}/{name}"
