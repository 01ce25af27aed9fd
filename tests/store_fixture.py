"""Stores for the tests: the town sample loaded once per backend, and a fresh copy per test.

``backend`` runs a test against a GeoPackage file and a real PostGIS server;
``url`` is a store holding the whole sample at revision 1, for that test alone;
``empty_url`` a place for a new store.
"""

from __future__ import annotations

import os
import shutil

import pytest

import gridgeo.store as gstore


@pytest.fixture(scope="session")
def loaded_gpkg(tmp_path_factory, sample):
    path = tmp_path_factory.mktemp("template") / "loaded.gpkg"
    with gstore.open(path, create=True) as store:
        store.load(sample_layers(sample), author="网格办", progress=False)
    return path


@pytest.fixture(scope="session")
def loaded_postgis(postgis, sample):
    url = postgis.new_database("loaded")
    with gstore.open(url, create=True) as store:
        store.load(sample_layers(sample), author="网格办", progress=False)
    return url.rsplit("/", 1)[1]


def sample_layers(sample):
    return {"grids": sample.grids, "stations": sample.stations, "addresses": sample.addresses,
            "events": sample.events, "roads": sample.roads}


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def backend(request):
    return request.param


@pytest.fixture
def url(backend, request, tmp_path):
    """The URL of a store holding the whole town sample at revision 1, for this test alone."""
    if backend == "gpkg":
        path = tmp_path / "store.gpkg"
        shutil.copy(request.getfixturevalue("loaded_gpkg"), path)
        yield str(path)
        return
    server = request.getfixturevalue("postgis")
    template = request.getfixturevalue("loaded_postgis")
    name = f"s_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**9}"
    server.sql(f'DROP DATABASE IF EXISTS "{name}"')
    server.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield server.url(name)
    server.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(url):
    s = gstore.open(url)
    yield s
    s.close()


@pytest.fixture
def empty_url(backend, request, tmp_path):
    if backend == "gpkg":
        yield str(tmp_path / "empty.gpkg")
        return
    server = request.getfixturevalue("postgis")
    url = server.new_database("empty")
    yield url
    server.sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


