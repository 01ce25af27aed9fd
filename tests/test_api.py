"""The service: health and a landing page listing what the store holds."""

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "gridgeo.gpkg"
    subprocess.run([sys.executable, "-m", "gridgeo", "load", "sample_geojson", "--store", str(path)],
                   check=True, capture_output=True)
    return path


def test_health_and_landing(store, sample):
    client = TestClient(create_app(Settings(store=str(store))))
    assert client.get("/health").json()["status"] == "ok"
    body = client.get("/").json()
    layers = {layer["name"]: layer["features"] for layer in body["layers"]}
    assert layers["grid2"] == (sample.grids["level"] == "grid2").sum()
    assert layers["addresses"] == len(sample.addresses)
    html = client.get("/", headers={"accept": "text/html"}).text
    assert "<table>" in html and "grid2" in html


def test_load_if_missing_keeps_the_store(store):
    before = store.read_bytes()
    res = subprocess.run([sys.executable, "-m", "gridgeo", "load", "sample_geojson", "--store", str(store),
                          "--if-missing"], capture_output=True, text=True, check=True)
    assert "nothing to do" in res.stdout
    assert store.read_bytes() == before


def test_library_imports_without_the_web_framework():
    code = ("import sys, gridgeo, gridgeo.schema, gridgeo.crs, gridgeo.io, gridgeo.sample, gridgeo.cli; "
            "bad = [m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
