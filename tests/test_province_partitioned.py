"""A province's inputs written partitioned once and read on the Dask workers (gridgeo.distribute.partition).

Every answer from the stored dataset is compared with the in-memory answer of the same frames, row for
row and value for value; the partition itself with an independent covers-join (the smallest code among
the top-level units covering a point). Two data sets: the province sample (two copies of the town
sample) and libpysal's Columbus tracts taken as 49 towns sharing their edges, with events on those edges.
"""

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from columbus import columbus_towns, events_at
import gridgeo
import gridgeo.sample
from gridgeo import distribute, events, stats
from gridgeo.schema import SchemaError


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


@pytest.fixture(scope="module")
def province(sample):
    p = gridgeo.sample.province(sample, 2)
    ev = p.events.copy()
    ev.loc[ev.index[-3:], "category"] = "flood"  # a category only one county has
    ev.loc[ev.index[:4], "reported_at"] = pd.NaT  # undated: counted aside
    # two events outside every town, one of them the latest report: as_of and the periods depend on it
    ev.loc[ev.index[10:12], "geometry"] = shapely.points([[130.0, 40.0], [130.1, 40.0]])
    ev.loc[ev.index[11], "reported_at"] = ev["reported_at"].max() + pd.Timedelta(days=40)
    ev.loc[ev.index[11], "category"] = "outer"  # a category only an unplaced event has
    p.events = ev
    return p


@pytest.fixture(scope="module")
def stored(province, tmp_path_factory):
    folder = tmp_path_factory.mktemp("province") / "ds"
    return distribute.partition(province.grids, {"addresses": province.addresses, "events": province.events,
                                                 "stations": province.stations}, folder)


def owner_by_covers(points, grids, top):
    """The partition rule, independently: the smallest code among the top-level units that cover each point."""
    tops = grids[grids["level"] == top][["code", "geometry"]]
    hits = gpd.sjoin(gpd.GeoDataFrame(geometry=points.geometry.to_numpy(), crs=points.crs), tops,
                     predicate="covered_by")
    return hits.groupby(level=0)["code"].min().reindex(range(len(points)))


def assert_partitioned_as_the_rule(ds, layer, frame, grids, top):
    expected = owner_by_covers(frame, grids, top)
    ids = frame.columns[0]
    for code in ds.tops:
        written = gpd.read_parquet(ds[layer].file(code))
        assert sorted(written[ids]) == sorted(frame.loc[(expected == code).to_numpy(), ids])
    aside = gpd.read_parquet(ds.folder / "unplaced" / f"{layer}.parquet")
    assert sorted(aside[ids]) == sorted(frame.loc[expected.isna().to_numpy(), ids])
    assert sum(ds[layer].unplaced.values()) == int(expected.isna().sum())


# --- writing ------------------------------------------------------------------------------------


def test_partition_writes_each_point_once_in_its_town(stored, province):
    assert stored.top == "town" and stored.tops == sorted(province.level("town")["code"])
    for layer in ("addresses", "events", "stations"):
        assert_partitioned_as_the_rule(stored, layer, getattr(province, layer), province.grids, "town")
    assert stored["events"].unplaced == {"outside": 2, "invalid": 0}
    # a hive-style dataset any parquet reader takes: the rows of every town, each once
    whole = gpd.read_parquet(stored.folder / "events")
    assert len(whole) == len(province.events) - 2


def test_a_refused_or_failed_write_leaves_no_dataset(province, tmp_path):
    target = tmp_path / "ds"
    bad = province.stations.copy()
    bad.loc[bad.index[1], "station_id"] = bad["station_id"].iloc[0]  # duplicate ids: the schema refuses
    with pytest.raises(SchemaError):
        distribute.partition(province.grids, {"events": province.events, "stations": bad}, target)
    assert os.listdir(tmp_path) == []  # neither the dataset nor the half-written scratch folder
    target.mkdir()
    (target / "mine.txt").write_bytes(b"keep")
    with pytest.raises(distribute.PartitionError, match="exists"):
        distribute.partition(province.grids, {"events": province.events}, target)
    assert os.listdir(tmp_path) == ["ds"] and os.listdir(target) == ["mine.txt"]
    assert (target / "mine.txt").read_bytes() == b"keep"


def test_other_grids_than_those_partitioned_by_are_refused(stored, province, client):
    moved = province.grids.copy()
    first = (moved["level"] == "town").to_numpy().nonzero()[0][0]
    moved.loc[moved.index[first], "geometry"] = moved.geometry.iloc[first].buffer(0.001)
    with pytest.raises(distribute.PartitionError, match="partition the layers again"):
        stats.figures(moved, events=stored["events"], client=client)
    with pytest.raises(TypeError, match="client"):
        stats.figures(province.grids, events=stored["events"])


def test_split_of_a_stored_layer_names_each_towns_file_and_reads_nothing(stored, province):
    parts, unplaced, top = distribute.split(province.grids, {"events": stored["events"]})
    assert unplaced == {"events": {"outside": 2, "invalid": 0}}
    for part in parts:
        piece = part.layers["events"]
        assert not isinstance(piece, pd.DataFrame)
        assert piece.path == str(stored.folder / "events" / f"top={part.code}" / "part.parquet")
        assert part.grids["code"].str.startswith(part.code).all()


# --- reading on the workers: the in-memory answers --------------------------------------------


def test_figures_from_the_stored_dataset_equal_in_memory(stored, province, client):
    layers = dict(addresses=province.addresses, events=province.events, stations=province.stations)
    expected = stats.figures(province.grids, **layers)
    result = stats.figures(province.grids, addresses=stored["addresses"], events=str(stored.folder / "events"),
                           stations=stored["stations"], client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert result.geometry.geom_equals_exact(expected.geometry, 0).all()
    assert result.attrs == expected.attrs and result.attrs["unplaced"]["events"]["outside"] == 2
    # the category only an unplaced event has is a column (of zeros) as in memory; flood is counted
    assert (result["events_outer"] == 0).all()
    assert int(result.loc[result["level"] == "town", "events_flood"].sum()) == 3


@pytest.mark.parametrize("options", [dict(period="month"), dict(period="quarter", by="category", level=["town", "grid2"]),
                                     dict(period=None, start="2025-03-01", end="2025-09-01", by="status",
                                          category=["safety", "dispute"], as_of="2025-10-01")])
def test_event_indicators_from_the_stored_dataset_equal_in_memory(stored, province, client, options):
    expected = events.indicators(province.events, province.grids, **options)
    result = events.indicators(stored["events"], province.grids, **options, client=client)
    pd.testing.assert_frame_equal(result, expected)
    assert result.attrs == expected.attrs
    assert result.attrs["undated"] == 4 and result.attrs["unplaced"] == 2


def test_event_indicators_periods_reach_the_latest_unplaced_event(stored, province, client):
    result = events.indicators(stored["events"], province.grids, period="month", client=client)
    latest = province.events["reported_at"].max()  # the unplaced event's
    assert result.attrs["as_of"] == latest.floor("s") + pd.Timedelta(seconds=1)
    assert result["period"].max() == f"{latest:%Y-%m}"


# --- on data nobody here made: libpysal's Columbus tracts as 49 towns -------------------------


@pytest.fixture(scope="module")
def columbus():
    tracts, grids = columbus_towns()
    placed = grids.geometry.to_numpy()
    rng = np.random.default_rng(5)
    per = rng.poisson(tracts["CRIME"].to_numpy() * 2)
    where = np.repeat(np.arange(len(tracts)), per)
    inside = shapely.get_geometry(gpd.GeoSeries(placed[where]).sample_points(1, rng=rng).to_numpy(), 0)
    # the vertices the tracts share: points on the edge of two or more towns
    # (each polygon's exterior vertices once, its closing point aside, counted across the tracts)
    vertices = pd.concat([pd.DataFrame(shapely.get_coordinates(shapely.get_exterior_ring(g))[:-1]).drop_duplicates()
                          for g in shapely.get_geometry(placed, 0)])
    shared = vertices.value_counts()
    edge = np.array([k for k, n in shared.items() if n >= 2][:40])
    outside = np.array([[117.0, 23.0], [125.0, 30.0], [118.31, 24.29]])
    points = np.concatenate([inside, shapely.points(edge), shapely.points(outside)])
    return grids, events_at(points, rng), len(edge)


def test_columbus_edge_points_go_to_exactly_one_town_and_answers_equal_in_memory(columbus, client, tmp_path):
    grids, ev, n_edge = columbus
    assert n_edge >= 20
    edge = ev.iloc[-3 - n_edge:-3]
    covering = gpd.sjoin(edge, grids[["code", "geometry"]], predicate="covered_by").groupby(level=0).size()
    assert (covering >= 2).all()  # the test means something: each lies on two towns or more
    ds = distribute.partition(grids, {"events": ev}, tmp_path / "columbus")
    assert_partitioned_as_the_rule(ds, "events", ev, grids, "town")
    assert ds["events"].unplaced["outside"] == 3
    files = [gpd.read_parquet(ds["events"].file(c))["event_id"] for c in ds.tops]
    written = pd.concat(files)
    assert written.is_unique and set(edge["event_id"]) <= set(written)
    for options in (dict(period="quarter"), dict(period="month", by="category")):
        expected = events.indicators(ev, grids, **options)
        result = events.indicators(ds["events"], grids, **options, client=client)
        pd.testing.assert_frame_equal(result, expected)
        assert result.attrs == expected.attrs
    expected = stats.figures(grids, events=ev)
    result = stats.figures(grids, events=ds["events"], client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert result.attrs == expected.attrs


def test_coverage_per_grid_from_the_stored_dataset_equals_in_memory(province, client, tmp_path):
    from gridgeo import coverage

    cov = coverage.nearest_station(province.addresses, province.stations, method="straight")
    ds = distribute.partition(province.grids, {"coverage": cov, "stations": province.stations}, tmp_path / "cov")
    assert ds["coverage"].attrs["circles"]  # the life circles travel in the files' metadata
    expected = coverage.per_grid(cov, province.grids, stations=province.stations)
    result = coverage.per_grid(ds["coverage"], province.grids, stations=ds["stations"], client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")), check_exact=True)
    assert result.geometry.geom_equals_exact(expected.geometry, 0).all()
    assert expected["farthest_m"].notna().any() and expected["has_station"].any()
    with pytest.raises(ValueError, match="assignment"):
        coverage.per_grid(ds["coverage"], province.grids, assignment=gridgeo.assign(cov, province.grids),
                          client=client)


def test_a_layer_given_as_a_file_is_read_when_its_turn_comes(province, stored, tmp_path):
    province.events.to_parquet(tmp_path / "events.parquet")
    ds = distribute.partition(province.grids, {"events": tmp_path / "events.parquet"}, tmp_path / "ds")
    for code in ds.tops:
        got = gpd.read_parquet(ds["events"].file(code))
        want = gpd.read_parquet(stored["events"].file(code))
        pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                      pd.DataFrame(want.drop(columns="geometry")))
        assert got.geometry.geom_equals_exact(want.geometry, 0).all()
    assert ds["events"].unplaced == stored["events"].unplaced
    with pytest.raises(distribute.PartitionError, match="not a dataset"):
        distribute.dataset(tmp_path)
    with pytest.raises(KeyError, match="addresses"):
        ds["addresses"]


# --- partition itself on the cluster: the same dataset as in one process ----------------------------


def assert_same_dataset(got, want):
    """The same files, manifest and frames (rows, order, labels, dtypes, attrs; geometries exactly)."""
    def listing(ds):
        return sorted(str(f.relative_to(ds.folder)) for f in ds.folder.rglob("*"))

    assert listing(got) == listing(want)
    assert got.manifest == want.manifest
    for path in want.folder.rglob("*.parquet"):
        a, b = gpd.read_parquet(got.folder / path.relative_to(want.folder)), gpd.read_parquet(path)
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                      pd.DataFrame(b.drop(columns="geometry")), check_index_type=True)
        assert a.geometry.geom_equals_exact(b.geometry, 0).all() and a.crs == b.crs and a.attrs == b.attrs


def test_partition_on_the_cluster_writes_the_dataset_one_process_writes(province, client, tmp_path):
    # the three kinds of input a worker slices: a frame (rows scattered), a GeoParquet file (whole row
    # groups, here 700 rows) and a file geopandas.read_file reads (rows=), each in slices of 1,000 rows
    province.events.to_parquet(tmp_path / "events.parquet", row_group_size=700)
    province.addresses.iloc[:2500].to_file(tmp_path / "addresses.gpkg")
    layers = {"addresses": tmp_path / "addresses.gpkg", "events": tmp_path / "events.parquet",
              "stations": province.stations}
    want = distribute.partition(province.grids, layers, tmp_path / "here")
    got = distribute.partition(province.grids, layers, tmp_path / "cluster", client=client, slice_rows=1000)
    assert sorted(os.listdir(tmp_path)) == ["addresses.gpkg", "cluster", "events.parquet", "here"]
    assert_same_dataset(got, want)
    assert got["events"].unplaced == {"outside": 2, "invalid": 0} and got["events"].rows == len(province.events)
    assert_partitioned_as_the_rule(got, "events", province.events, province.grids, "town")
    # the points of each town in the input's order; the labels those of the whole read
    for code in got.tops:
        labels = gpd.read_parquet(got["events"].file(code)).index
        assert labels.is_monotonic_increasing
    # the answers from it are the in-memory ones
    expected = events.indicators(province.events, province.grids, period="month")
    pd.testing.assert_frame_equal(events.indicators(got["events"], province.grids, period="month", client=client),
                                  expected)


def test_partition_on_the_cluster_of_columbus_equals_one_process_and_the_rule(columbus, client, tmp_path):
    grids, ev, n_edge = columbus
    rng = np.random.default_rng(11)
    ev = ev.iloc[rng.permutation(len(ev))]  # labels not in order: each town's rows keep the input's order
    want = distribute.partition(grids, {"events": ev}, tmp_path / "here")
    got = distribute.partition(grids, {"events": ev}, tmp_path / "cluster", client=client, slice_rows=37)
    assert_same_dataset(got, want)
    assert_partitioned_as_the_rule(got, "events", ev, grids, "town")
    assert got["events"].unplaced["outside"] == 3
    for code in got.tops:  # the rows of a town in the order of the input (a permutation of the labels)
        labels = gpd.read_parquet(got["events"].file(code)).index
        assert list(labels) == [x for x in ev.index if x in set(labels)]
    edge = set(ev["event_id"].iloc[-3 - n_edge:-3])
    written = pd.concat([gpd.read_parquet(got["events"].file(c))["event_id"] for c in got.tops])
    assert written.is_unique and edge <= set(written)


def test_partition_on_the_cluster_refuses_what_one_process_refuses_and_leaves_nothing(province, client, tmp_path):
    from gridgeo.schema import check

    bad = province.addresses.iloc[:5000].copy()
    bad.loc[bad.index[5], "addr_id"] = bad["addr_id"].iloc[-1]  # the same id in the first and last slices
    bad.loc[bad.index[-2], "addr_id"] = bad["addr_id"].iloc[-4]  # and twice in the last one
    bad.loc[bad.index[3000], "population"] = -2  # a negative count in a middle slice
    with pytest.raises(SchemaError) as whole:
        check(bad, "addresses", name="addresses")
    target = tmp_path / "ds"
    with pytest.raises(SchemaError) as sliced:
        distribute.partition(province.grids, {"stations": province.stations, "addresses": bad}, target,
                             client=client, slice_rows=1000)
    assert [str(p) for p in sliced.value.problems] == [str(p) for p in whole.value.problems]
    assert len(whole.value.problems) == 3 and "addresses" in str(sliced.value)
    assert os.listdir(tmp_path) == []
    # a file a worker cannot read as GeoParquet (no geometry): its error, and no dataset either
    pd.DataFrame({"x": [1, 2]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="geo metadata"):
        distribute.partition(province.grids, {"events": province.events, "other": tmp_path / "plain.parquet"},
                             target, client=client)
    assert os.listdir(tmp_path) == ["plain.parquet"]
    target.mkdir()
    with pytest.raises(distribute.PartitionError, match="exists"):
        distribute.partition(province.grids, {"events": province.events}, target, client=client)
    assert os.listdir(target) == []
    with pytest.raises(distribute.PartitionError, match="None"):
        distribute.partition(province.grids, {"events": province.events, "stations": None}, tmp_path / "x",
                             client=client)
    with pytest.raises(distribute.PartitionError, match="dict"):
        distribute.partition(province.grids, [province.events], tmp_path / "x", client=client)
    with pytest.raises(distribute.PartitionError, match="slice_rows"):
        distribute.partition(province.grids, {"events": province.events}, tmp_path / "x", client=client,
                             slice_rows=0)
    assert sorted(os.listdir(tmp_path)) == ["ds", "plain.parquet"]


# --- a PostGIS store's layers read on the workers, each task its town's rows -------------------------


@pytest.fixture(scope="module")
def in_postgis(postgis, province):
    """The province (its odd events included) in a PostGIS store: its URL, and the grids and layers as
    the store reads them whole (the in-memory reference)."""
    import gridgeo.store as gstore

    url = postgis.new_database("partitioned")
    with gstore.open(url, create=True) as store:
        store.load({"grids": province.grids, "addresses": province.addresses, "events": province.events,
                    "stations": province.stations}, author="网格办", progress=False)
        frames = {k: store.read(k) for k in ("grids", "addresses", "events", "stations")}
    return url, frames


def stored_in(url, *layers, **options):
    return {k: distribute.StoreLayer(url, k, **options) for k in layers}


@pytest.mark.postgis
def test_each_task_reads_its_towns_rows_of_a_postgis_layer_by_the_rule(in_postgis, client):
    url, frames = in_postgis
    grids, ev = frames["grids"], frames["events"]
    layer = distribute.StoreLayer(url, "events", page_rows=5000)
    parts, unplaced, top = distribute.split(grids, {"events": layer}, client=client)
    assert unplaced == {"events": {"outside": 2, "invalid": 0}}  # counted page by page: 5 pages
    expected = owner_by_covers(ev, grids, "town")
    for part in parts:
        piece = part.layers["events"]
        assert piece.bbox == tuple(grids.loc[grids["code"] == part.code].geometry.iloc[0].bounds)
        rows = piece.read()
        assert list(rows["event_id"]) == list(ev.loc[(expected == part.code).to_numpy(), "event_id"])
    with pytest.raises(TypeError, match="client"):
        distribute.split(grids, {"events": layer})
    with pytest.raises(KeyError, match="roads_x"):
        distribute.StoreLayer(url, "roads_x")


@pytest.mark.postgis
def test_figures_indicators_and_coverage_from_a_postgis_store_equal_in_memory(in_postgis, client):
    from gridgeo import coverage

    url, frames = in_postgis
    grids = frames["grids"]
    layers = stored_in(url, "addresses", "events", "stations", page_rows=7000)
    expected = stats.figures(grids, addresses=frames["addresses"], events=frames["events"],
                             stations=frames["stations"])
    result = stats.figures(grids, **layers, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert result.attrs == expected.attrs and result.attrs["unplaced"]["events"]["outside"] == 2
    assert (result["events_outer"] == 0).all()  # the category only an unplaced event has, as in memory
    with pytest.raises(TypeError, match="client"):
        stats.figures(grids, events=layers["events"])
    for options in (dict(period="month"), dict(period="quarter", by="category", level=["town", "grid2"])):
        want = events.indicators(frames["events"], grids, **options)
        got = events.indicators(layers["events"], grids, **options, client=client)
        pd.testing.assert_frame_equal(got, want)
        assert got.attrs == want.attrs and got.attrs["undated"] == 4 and got.attrs["unplaced"] == 2
    cov = coverage.nearest_station(frames["addresses"], frames["stations"], method="straight")
    want = coverage.per_grid(cov, grids, stations=frames["stations"])
    got = coverage.per_grid(cov, grids, stations=layers["stations"], client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                  pd.DataFrame(want.drop(columns="geometry")), check_exact=True)


@pytest.mark.postgis
def test_a_postgis_layer_is_read_at_one_revision_while_the_store_is_written(in_postgis, client, postgis):
    import gridgeo.store as gstore

    url, _ = in_postgis
    copy = postgis.new_database("written")
    postgis.sql(f'DROP DATABASE "{copy.rsplit("/", 1)[1]}"')
    postgis.sql(f'CREATE DATABASE "{copy.rsplit("/", 1)[1]}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
    layer = distribute.StoreLayer(copy, "events")
    with gstore.open(copy) as store:
        before = store.read("events")
        grids = store.read("grids")
        later = before.drop(columns="revision").iloc[::2].copy()
        later["category"] = "fire"  # half the events replaced, the other half retired
        store.load({"events": later}, author="网格办", progress=False)
        assert store.revision == layer.revision + 1 and len(store.read("events")) == len(later)
    want = events.indicators(before, grids, period="month")
    got = events.indicators(layer, grids, period="month", client=client)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.postgis
def test_columbus_in_postgis_edge_points_go_to_one_town_and_answers_equal_in_memory(columbus, client, postgis):
    import gridgeo.store as gstore

    grids, given, n_edge = columbus
    url = postgis.new_database("columbus")
    with gstore.open(url, create=True) as store:
        store.load({"grids": grids, "events": given}, author="网格办", progress=False)
        grids, ev = store.read("grids"), store.read("events")
    layer = distribute.StoreLayer(url, "events", page_rows=50)
    parts, unplaced, _ = distribute.split(grids, {"events": layer}, client=client)
    assert unplaced["events"] == {"outside": 3, "invalid": 0}
    # each event a town holds is read by exactly the town the rule gives it, those on shared edges too
    read = [(p.code, p.layers["events"].read()["event_id"]) for p in parts]
    owner = pd.Series([code for code, ids in read for _ in ids], index=[i for _, ids in read for i in ids])
    assert owner.index.is_unique
    expected = owner_by_covers(ev, grids, "town").set_axis(ev["event_id"]).dropna()
    pd.testing.assert_series_equal(owner.sort_index(), expected.sort_index(), check_names=False)
    assert set(given["event_id"].iloc[-3 - n_edge:-3]) <= set(owner.index)
    for options in (dict(period="quarter"), dict(period="month", by="category")):
        want = events.indicators(ev, grids, **options)
        result = events.indicators(layer, grids, **options, client=client)
        pd.testing.assert_frame_equal(result, want)
        assert result.attrs == want.attrs
    want = stats.figures(grids, events=ev)
    result = stats.figures(grids, events=layer, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(want.drop(columns="geometry")))
    assert result.attrs == want.attrs


def test_docstring_examples_of_distribute_run():
    import doctest

    result = doctest.testmod(distribute)
    assert result.failed == 0 and result.attempted >= 15


def test_a_geopackage_stores_layers_are_read_on_the_workers_too(sample, client, tmp_path):
    import gridgeo.store as gstore

    path = str(tmp_path / "town.gpkg")
    with gstore.open(path, create=True) as store:
        store.load({"grids": sample.grids, "events": sample.events, "stations": sample.stations}, author="网格办",
                   progress=False)
        grids, ev, st = store.read("grids"), store.read("events"), store.read("stations")
    layers = stored_in(path, "events", "stations", page_rows=1000)
    expected = stats.figures(grids, events=ev, stations=st)
    result = stats.figures(grids, **layers, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert result.attrs == expected.attrs


# --- a store's layer read once: counted on the workers ------------------------------------------------


def _count_reads_on(client):
    """Every Store.read on the workers, recorded as (layer, rows) until :func:`_reads_of` takes them."""
    def install():
        from gridgeo.store import _store

        if not getattr(_store.Store.read, "counting", False):
            original = _store.Store.read

            def read(self, collection, **options):
                out = original(self, collection, **options)
                _store.READS.append((collection, len(out)))
                return out

            read.counting, read.original = True, original
            _store.Store.read = read
        _store.READS = []

    client.run(install)


def _reads_of(client) -> pd.DataFrame:
    def taken():
        from gridgeo.store import _store

        out, _store.READS = list(_store.READS), []
        return out

    return pd.DataFrame([r for reads in client.run(taken).values() for r in reads], columns=["layer", "rows"],
                        dtype=object)


def _uncount_reads_on(client):
    def uninstall():
        from gridgeo.store import _store

        if getattr(_store.Store.read, "counting", False):
            _store.Store.read = _store.Store.read.original

    client.run(uninstall)


def rows_in_boxes(frame, grids, top):
    """How many rows a read of each top-level unit's box gives (its boundary included), summed, and how many
    rows are in no box (or have no geometry): the rows a layer read once takes, counted here with shapely."""
    tops = grids[grids["level"] == top]
    boxes = shapely.box(*shapely.bounds(tops.geometry.to_numpy()).T)
    hits = shapely.intersects(boxes[:, None], frame.geometry.to_numpy()[None, :])
    return int(hits.sum()), int((~hits.any(axis=0)).sum())


def assert_read_once(client, frames, layers, grids):
    """figures (addresses, events, stations) and indicators (events) from the store's layers: each layer read
    once per call, in one read per top-level unit and one of the rest when it has rows, and the answers those
    of the frames."""
    from gridgeo import coverage

    n_tops = int((grids["level"] == "town").sum())
    _count_reads_on(client)
    try:
        expected = stats.figures(grids, addresses=frames["addresses"], events=frames["events"],
                                 stations=frames["stations"])
        _reads_of(client)
        result = stats.figures(grids, **layers, client=client)
        reads = _reads_of(client)
        pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                      pd.DataFrame(expected.drop(columns="geometry")))
        assert result.attrs == expected.attrs
        for layer in ("addresses", "events", "stations"):
            boxed, rest = rows_in_boxes(frames[layer], grids, "town")
            mine = reads[reads["layer"] == layer]
            assert len(mine) == n_tops + (rest > 0), (layer, mine)
            assert mine["rows"].sum() == boxed + rest, layer  # each row once, and once more per other box
        for options in (dict(period="month"), dict(period="quarter", by="category", level=["town", "grid2"])):
            want = events.indicators(frames["events"], grids, **options)
            got = events.indicators(layers["events"], grids, **options, client=client)
            reads = _reads_of(client)
            pd.testing.assert_frame_equal(got, want)
            assert got.attrs == want.attrs
            boxed, rest = rows_in_boxes(frames["events"], grids, "town")
            assert list(reads["layer"].unique()) == ["events"] and reads["rows"].sum() == boxed + rest
        cov = coverage.nearest_station(frames["addresses"], frames["stations"], method="straight")
        want = coverage.per_grid(cov, grids, stations=frames["stations"])
        got = coverage.per_grid(cov, grids, stations=layers["stations"], client=client)
        pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                      pd.DataFrame(want.drop(columns="geometry")), check_exact=True)
        boxed, rest = rows_in_boxes(frames["stations"], grids, "town")
        assert _reads_of(client)["rows"].sum() == boxed + rest
    finally:
        _uncount_reads_on(client)


@pytest.mark.postgis
def test_a_postgis_layer_is_read_once_per_call_with_the_in_memory_answers(in_postgis, client):
    url, frames = in_postgis
    assert rows_in_boxes(frames["events"], frames["grids"], "town")[1] == 2  # the two far events: the rest read
    assert_read_once(client, frames, stored_in(url, "addresses", "events", "stations"), frames["grids"])


def test_a_geopackage_layer_is_read_once_per_call_with_the_in_memory_answers(province, client, tmp_path):
    import gridgeo.store as gstore

    path = str(tmp_path / "province.gpkg")
    with gstore.open(path, create=True) as store:
        store.load({"grids": province.grids, "addresses": province.addresses, "events": province.events,
                    "stations": province.stations}, author="网格办", progress=False)
        frames = {k: store.read(k) for k in ("grids", "addresses", "events", "stations")}
    assert_read_once(client, frames, stored_in(path, "addresses", "events", "stations"), frames["grids"])
