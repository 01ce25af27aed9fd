"""A two-worker Dask LocalCluster (separate processes, one thread each) for the tests of the
``client=`` paths: one per test module that asks for it, closed at the module's end (so that it
is the default client of no other module's computations)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c
