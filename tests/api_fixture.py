"""The service on the sample: a GeoPackage store, API keys, an in-process client
and a real uvicorn on 127.0.0.1 for independent clients (GDAL, a browser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

import gridgeo.derived
import gridgeo.sample
import gridgeo.store

RATE_SETTINGS = ("GRIDGEO_RATE_ASSIGN", "GRIDGEO_RATE_AREAS", "GRIDGEO_RATE_ITEMS", "GRIDGEO_RATE_PRINT",
                 "GRIDGEO_RATE_BUSY")
"""The rate limits (api.limits). The suite asks for /assign, /coverage/areas and wide
items pages many times from one address, so its services run without them (here, in
the environment, for the in-process apps and the servers it starts alike);
tests/test_limits.py turns them on, at their defaults too."""
for _name in RATE_SETTINGS:
    os.environ[_name] = "0"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory, sample) -> Path:
    """A GeoPackage store holding the sample (tests must not change it)."""
    path = tmp_path_factory.mktemp("api-store") / "gridgeo.gpkg"
    with gridgeo.store.open(path, create=True) as store:
        store.load({"grids": sample.grids, "stations": sample.stations, "addresses": sample.addresses,
                    "events": sample.events, "roads": sample.roads, "boundaries": sample.boundaries(),
                    "roster": sample.roster()},
                   author="tests", progress=False,
                   region=("350582", "晋江市"))  # as `gridgeo load sample_geojson` records the sample's county
        gridgeo.derived.build(store, progress=False)  # as `gridgeo prepare` does: services answer at once
    return path


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory) -> dict:
    """A keys file with one key per role: {'file': path, 'viewer': key, ...}."""
    from api.keys import KeyStore

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys = KeyStore(path)
    out = {"file": str(path)}
    for name, role in (("领导", "viewer"), ("网格办张三", "planner"), ("管理员", "admin")):
        out[role] = keys.add(name, role)
    return out


@pytest.fixture(scope="session")
def api_settings(sample_store, api_keys):
    from api import Settings

    return Settings(store=str(sample_store), keys_file=api_keys["file"])


@pytest.fixture(scope="session")
def client(api_settings):
    from fastapi.testclient import TestClient

    from api import create_app

    with TestClient(create_app(api_settings), raise_server_exceptions=False) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``gridgeo serve`` in a child process on a free loopback port."""

    def __init__(self, store: str, env: dict | None = None, warm: tuple[str, ...] = ("/stats/grid2",)):
        """``env``: variables to set, or to unset with None."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # answers kept across restarts (api.boot) go to a folder of this server's own unless the test says
        self.answers = None if "GRIDGEO_ANSWER_CACHE" in (env or {}) else tempfile.mkdtemp(prefix="gridgeo-answers-")
        env = {"GRIDGEO_ANSWER_CACHE": self.answers, **(env or {})}
        environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        # the log goes to a file: a pipe nobody reads would fill up and stall the server
        self.log = tempfile.NamedTemporaryFile("w+", prefix="gridgeo-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridgeo", "serve", "--store", store, "--port", str(self.port)],
            env=environ, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gridgeo serve exited: {self.output()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=1)
                if health.status_code == 200 and health.json()["status"] != "starting":
                    break  # the app is built (api.boot answers "starting" until then)
                time.sleep(0.05)
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("gridgeo serve did not answer /health within 60 s")
        for path in warm:  # build the derived data before clients with short timeouts arrive
            httpx.get(self.url + path, timeout=300)

    def output(self) -> str:
        return Path(self.log.name).read_text("utf-8", errors="replace")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self.output()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        if self.answers is not None:
            shutil.rmtree(self.answers, ignore_errors=True)
        return out


@pytest.fixture(scope="session")
def server(sample_store, api_keys):
    s = Server(str(sample_store), env={"GRIDGEO_KEYS_FILE": api_keys["file"]})
    yield s
    s.stop()
