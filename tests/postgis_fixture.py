"""A real PostgreSQL + PostGIS server for the tests, started and stopped by them.

The session fixture :func:`postgis` runs ``initdb`` into a temporary
directory and ``pg_ctl start`` on a free port of 127.0.0.1, with the socket
in that directory too, so it never touches a system cluster. ``initdb`` and
``pg_ctl`` refuse to run as root: as root they run as the ``postgres`` user
(``runuser``). A machine without PostgreSQL or PostGIS fails these tests with
the command that installs them; it never skips them.

Use it through :meth:`PostGIS.new_database`, which gives every test a fresh
database with the PostGIS extension (copied from a template, so it is fast).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

_INSTALL = "apt-get install -y postgresql-15-postgis-3 (scripts/system-packages test does it)"


class PostGIS:
    """A running server: its port, and fresh databases on request."""

    def __init__(self, directory: Path, port: int, run_as: list[str], bindir: Path):
        self.directory = directory
        self.port = port
        self._run_as = run_as
        self._bindir = bindir
        self._numbers = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)

    def new_database(self, prefix: str = "t") -> str:
        """The URL of a new, empty database with PostGIS installed."""
        name = f"{prefix}_{os.getpid()}_{next(self._numbers)}"
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE gridgeo_template')
        return self.url(name)

    def _pg(self, tool: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([*self._run_as, str(self._bindir / tool), *args],
                              capture_output=True, text=True, **kwargs)


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.insert(0, found)
    if not candidates:
        pytest.fail(f"PostgreSQL is not installed (no initdb): {_INSTALL}", pytrace=False)
    return Path(candidates[0]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(bindir: Path) -> PostGIS:
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="gridgeo-pg-"))
    directory.chmod(0o755)
    data = directory / "data"
    data.mkdir()
    if run_as:
        shutil.chown(directory, "postgres")
        shutil.chown(data, "postgres")
    server = PostGIS(directory, _free_port(), run_as, bindir)
    res = server._pg("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                     "--locale=C.UTF-8")
    if res.returncode:
        pytest.fail(f"initdb failed:\n{res.stdout}\n{res.stderr}", pytrace=False)
    options = (f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
    res = server._pg("pg_ctl", "-D", str(data), "-o", options, "-l", str(directory / "server.log"),
                     "-w", "-t", "60", "start")
    if res.returncode:
        log = (directory / "server.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"pg_ctl start failed:\n{res.stdout}\n{res.stderr}\n{log}", pytrace=False)
    try:
        server.sql("CREATE DATABASE gridgeo_template")
        server.sql("CREATE EXTENSION postgis", database="gridgeo_template")
    except Exception as exc:
        _stop(server)
        pytest.fail(f"PostGIS is not available in PostgreSQL ({exc}): {_INSTALL}", pytrace=False)
    return server


def _stop(server: PostGIS) -> None:
    server._pg("pg_ctl", "-D", str(server.directory / "data"), "-m", "immediate", "-w", "stop")
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgis():
    """A PostgreSQL + PostGIS server on a free loopback port, for the session."""
    server = _start(_bindir())
    try:
        yield server
    finally:
        _stop(server)
