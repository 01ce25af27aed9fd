"""Shared fixtures, and the rule that CI never passes by skipping.

With ``GRIDGEO_REQUIRE_ALL=1`` (set by ``.ci/run``) every skipped test is
reported as a failure: a missing PostgreSQL, Chromium or GDAL must break
the build, not hide behind a skip.
"""

import os

import pytest

import gridgeo.sample

pytest_plugins = ["postgis_fixture", "store_fixture", "api_fixture", "browser_fixture", "dask_fixture"]

REQUIRE_ALL = os.environ.get("GRIDGEO_REQUIRE_ALL", "") not in ("", "0", "false", "no")

# Services under test prepare a new data version in the request that needs it, so a test that
# publishes reads the new figures next; tests/test_startup.py runs the default (background) way.
os.environ.setdefault("GRIDGEO_PREPARE", "inline")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but GRIDGEO_REQUIRE_ALL=1 forbids skips: {reason}"


@pytest.fixture(scope="session")
def sample():
    """The committed town sample (sample_geojson/), loaded once."""
    return gridgeo.sample.load()


@pytest.fixture(scope="session")
def grids(sample):
    return sample.grids


@pytest.fixture
def grids_copy(sample):
    """A copy of the sample's grids that a test may change."""
    return sample.grids.copy()
