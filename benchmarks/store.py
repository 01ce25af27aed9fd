"""Stores: load the city's 800,000 addresses, and read one village's grids back.

For each backend, gridgeo's store is measured against the usual way of doing
the same with the well-kept tools, in the same run on the same frame:

- GeoPackage: ``pyogrio.write_dataframe`` (GDAL, one transaction, R-tree) to
  load; ``pyogrio.read_dataframe(where="code LIKE ...")`` to read;
- PostGIS: ``GeoDataFrame.to_postgis`` (SQLAlchemy + GeoAlchemy2, GiST
  index) to load; ``geopandas.read_postgis`` with the same ``LIKE`` to read.

The store's load also keeps what the peers do not: revision and author per
row, a unique key index, history and a transaction spanning layers.

Run ``python benchmarks/store.py`` (``--repeat N``). PostGIS comes from
``GRIDGEO_BENCH_POSTGRES`` (a URL of a database the benchmark may fill), or a
throwaway server started like the tests start theirs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import geopandas as gpd
import pyogrio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import city_sample, median_time, report  # noqa: E402

import gridgeo.store as gstore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per load figure (reads run 10x this)")
    args = parser.parse_args()

    city = city_sample()
    addresses, grids = city.addresses, city.grids
    village = grids.loc[grids["level"] == "grid2", "code"].str[:12].value_counts().index[0]
    expected = int(grids["code"].str.startswith(village).sum())
    print(f"{len(addresses):,} addresses; village {village} holds {expected} units of {len(grids):,} grids")
    folder = Path(tempfile.mkdtemp(prefix="gridgeo-bench-store-"))
    server = None
    try:
        rows = _geopackage(folder, addresses, grids, village, expected, args.repeat)
        server, base = _postgres()
        rows += _postgis(base, addresses, grids, village, expected, args.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if server is not None:
            import postgis_fixture

            postgis_fixture._stop(server)
    report("stores: 800,000 addresses in, one village's grids out (median seconds)", rows)


def _geopackage(folder, addresses, grids, village, expected, repeat):
    counter = iter(range(10**6))

    def ours():
        with gstore.open(folder / f"ours{next(counter)}.gpkg", create=True) as store:
            store.load({"addresses": addresses}, author="bench", progress=False)

    def peer():
        pyogrio.write_dataframe(addresses, folder / f"peer{next(counter)}.gpkg", layer="addresses",
                                driver="GPKG")

    load_ours, _ = median_time(ours, repeat=repeat, warmup=0)
    load_peer, _ = median_time(peer, repeat=repeat, warmup=0)

    path = folder / "grids.gpkg"
    with gstore.open(path, create=True) as store:
        store.load({"grids": grids}, author="bench", progress=False)
        read_ours, got = median_time(lambda: store.read("grids", within=village), repeat=10 * repeat)
    assert len(got) == expected, (len(got), expected)
    pyogrio.write_dataframe(grids, folder / "grids-peer.gpkg", layer="grids", driver="GPKG")
    read_peer, got = median_time(lambda: pyogrio.read_dataframe(
        folder / "grids-peer.gpkg", layer="grids", where=f"code LIKE '{village}%'"), repeat=10 * repeat)
    assert len(got) == expected
    return [
        ("GeoPackage load: gridgeo store", f"{load_ours:.2f} s"),
        ("GeoPackage load: pyogrio.write_dataframe", f"{load_peer:.2f} s"),
        ("GeoPackage load: ratio (peer / gridgeo)", f"{load_peer / load_ours:.2f}x"),
        ("GeoPackage village read: gridgeo store", f"{read_ours * 1000:.1f} ms"),
        ("GeoPackage village read: pyogrio.read_dataframe", f"{read_peer * 1000:.1f} ms"),
        ("GeoPackage village read: ratio (peer / gridgeo)", f"{read_peer / read_ours:.2f}x"),
    ]


def _postgis(base, addresses, grids, village, expected, repeat):
    import psycopg
    import sqlalchemy

    counter = iter(range(10**6))
    admin = base.rsplit("/", 1)[0] + "/postgres"

    def fresh():
        name = f"bench_store_{os.getpid()}_{next(counter)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = base.rsplit("/", 1)[0] + "/" + name
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return url

    def drop(url):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    used = []

    def ours():
        url = fresh()
        used.append(url)
        with gstore.open(url, create=True) as store:
            store.load({"addresses": addresses}, author="bench", progress=False)

    def peer():
        url = fresh()
        used.append(url)
        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        addresses.to_postgis("addresses", engine, index=False)
        engine.dispose()

    try:
        load_ours, _ = median_time(ours, repeat=repeat, warmup=0)
        load_peer, _ = median_time(peer, repeat=repeat, warmup=0)
        url = fresh()
        used.append(url)
        with gstore.open(url, create=True) as store:
            store.load({"grids": grids}, author="bench", progress=False)
            read_ours, got = median_time(lambda: store.read("grids", within=village), repeat=10 * repeat)
        assert len(got) == expected
        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        grids.to_postgis("grids_peer", engine, index=False)
        sql = sqlalchemy.text(f"SELECT * FROM grids_peer WHERE code LIKE '{village}%'")
        read_peer, got = median_time(lambda: gpd.read_postgis(sql, engine, geom_col="geometry"),
                                     repeat=10 * repeat)
        engine.dispose()
        assert len(got) == expected
    finally:
        for url in used:
            drop(url)
    return [
        ("PostGIS load: gridgeo store (COPY)", f"{load_ours:.2f} s"),
        ("PostGIS load: GeoDataFrame.to_postgis", f"{load_peer:.2f} s"),
        ("PostGIS load: ratio (peer / gridgeo)", f"{load_peer / load_ours:.2f}x"),
        ("PostGIS village read: gridgeo store", f"{read_ours * 1000:.1f} ms"),
        ("PostGIS village read: geopandas.read_postgis", f"{read_peer * 1000:.1f} ms"),
        ("PostGIS village read: ratio (peer / gridgeo)", f"{read_peer / read_ours:.2f}x"),
    ]


def _postgres():
    """(server we started or None, URL of a database on it)."""
    url = os.environ.get("GRIDGEO_BENCH_POSTGRES")
    if url:
        return None, url
    import postgis_fixture

    server = postgis_fixture._start(postgis_fixture._bindir())
    return server, server.url("postgres")


if __name__ == "__main__":
    main()
