"""Derived data kept per data version (gridgeo.derived), on both stores: every item equals
the library computed afresh on the published data, a rebuild copies what did not change,
one process builds at a time, a failure is recorded, a publish during a build does not leak
in, and a publish or load that changes nothing makes no new version."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
import gridgeo.store as gstore
from gridgeo import coverage, derived, network, stats
from gridgeo.tiles import TMS, TileSet, grid_layers, road_layer

VILLAGE = "350582106201"


def _published(store, kind):
    frame = store.read(kind)
    return frame.drop(columns=[c for c in ("revision", "author") if c in frame.columns])


def test_every_item_equals_the_library_on_the_published_data(url):
    with gstore.open(url) as store:
        assert derived.latest(store) is None
        version = derived.build(store, progress=False)
        assert version == store.version and store.derived_versions() == [version]
        kept = derived.latest(store)
        grids, addresses = _published(store, "grids"), _published(store, "addresses")
        stations, events, roads = _published(store, "stations"), _published(store, "events"), _published(store, "roads")

        # figures: stats.figures with the coverage shares of coverage.per_grid
        index = gridgeo.AssignIndex(grids)
        net = network.build(roads, metric=gridgeo.crs.metric_crs(grids))
        near = coverage.nearest_station(addresses, stations, net, method="network")
        fresh = stats.figures(index, addresses=addresses, events=events, stations=stations)
        figures = kept.figures()
        assert list(figures.index) == list(fresh.index)
        for col in ("addresses", "households", "population", "events", "stations", "workers"):
            assert (figures[col].to_numpy() == fresh[col].to_numpy()).all(), col
        per_unit = coverage.per_grid(near, index, stations=stations).set_index("code")
        assert np.allclose(figures["share_15min"], per_unit.loc[figures.index, "share_15min"], equal_nan=True)

        # nearest: the same station and distance for every address; a box gives the addresses in it
        got = kept.nearest().set_index("addr_id").loc[near["addr_id"]]
        assert (got["station_id"].to_numpy() == near["station_id"].to_numpy()).all()
        assert np.allclose(got["distance_m"], near["distance_m"], equal_nan=True)
        box = (118.45, 24.78, 118.47, 24.80)
        inside = near.cx[box[0]:box[2], box[1]:box[3]]
        assert set(inside["addr_id"]) <= set(kept.nearest(bbox=box)["addr_id"])

        # uncovered areas and the ground served, against their own functions
        town = grids[grids["level"] == "town"]
        for minutes in (5, 15):
            want = coverage.uncovered_areas(near, minutes=minutes, within=town)
            areas = kept.uncovered(minutes)
            assert len(areas) == len(want) and areas["households"].sum() == want["households"].sum()
        ground = kept.served(15).geometry.iloc[0]
        assert ground.equals(coverage.served_ground(stations, net, circles=[5, 10, 15]).geometry.iloc[2])

        # tiles drawn from the kept geometry are the tiles of a tile set built afresh
        tiles = kept.tiles()
        full = fresh.join(per_unit[["share_15min"]])
        afresh = TileSet(grid_layers(grids, figures=full[[c for c in derived.TILE_FIGURES if c in full.columns]]),
                         version="x")
        centre = grids[grids["level"] == "grid2"].geometry.iloc[7].representative_point()
        for z in (11, 13, 14, 16):
            t = TMS.tile(centre.x, centre.y, z)
            for layer in ("grid2", "village"):
                drawn = tiles.tile(z, t.x, t.y, layers=layer)
                assert drawn and drawn == afresh.tile(z, t.x, t.y, layers=layer), (layer, z)
        # ... and so are the roads under them, from the store's roads
        roads_afresh = TileSet([road_layer(roads)], version="x")
        for z in (12, 14, 16):
            t = TMS.tile(centre.x, centre.y, z)
            drawn = tiles.tile(z, t.x, t.y, layers="roads")
            assert drawn and drawn == roads_afresh.tile(z, t.x, t.y), z

        # labels, the events kept for heat maps (nothing but where, what and when), the summary
        assert len(kept.labels("grid2")) == (grids["level"] == "grid2").sum()
        assert list(kept.events().columns) == ["x", "y", "category", "reported_at"] and len(kept.events()) == len(events)
        assert kept.summary["events"]["first"] == events["reported_at"].min().strftime("%Y-%m-%d")
        areas = kept.service_areas()
        assert areas["station_id"].nunique() == len(stations)
        for minutes in (5, 10, 15):  # one circle read alone is that circle's rows of the whole
            one = kept.service_areas(minutes)
            whole = areas[areas["circle"] == minutes]
            assert len(one) > 0 and one.crs == areas.crs
            assert one.reset_index(drop=True).equals(whole.reset_index(drop=True))
        assert not kept.pending()


def test_a_rebuild_copies_what_did_not_change(url):
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        before = derived.latest(store)
        plan = store.create_plan("调整", parent=VILLAGE, levels="grid2", author="张三")
        units = plan.read()
        plan.save(units.iloc[:1].assign(name="新名字"), author="张三")
        second = plan.publish(author="张三")
        assert derived.latest(store).version == first  # the last complete version is served meanwhile
        assert derived.build(store, progress=False) == second
        after = derived.latest(store)
        items = after.manifest["items"]
        # grids changed: everything that reads them is made again ...
        assert "copied_from" not in items["figures"] and "copied_from" not in items["tiles"]
        # ... but nothing in the walking coverage or the ground served reads a grid's name
        for item in ("nearest", "served", "service_areas"):
            assert items[item].get("copied_from") == first, item
        assert after.figures().loc[units["code"].iloc[0], "name"] == "新名字"
        assert before.figures().loc[units["code"].iloc[0], "name"] != "新名字"
        pd.testing.assert_frame_equal(pd.DataFrame(after.nearest().drop(columns="geometry")),
                                      pd.DataFrame(before.nearest().drop(columns="geometry")))
        # the version before the newest is kept for processes still serving it; older ones go
        third_plan = store.create_plan("再调", parent=VILLAGE, levels="grid2", author="张三")
        third_plan.save(third_plan.read().iloc[:1].assign(name="又一个"), author="张三")
        third_plan.publish(author="张三")
        derived.build(store, progress=False)
        assert store.derived_versions() == [second, store.version]


def test_one_builder_at_a_time_and_a_failure_is_recorded(url, monkeypatch):
    with gstore.open(url) as store:
        version = store.version
        assert store.claim_derived(version, "other:1")
        assert derived.build(store, progress=False) is None  # someone else builds it
        assert store.derived_state(version)["claim"]["owner"] == "other:1"
        store.claim_derived(version, "other:1")  # renewing keeps it
        monkeypatch.setattr(derived, "STALE_AFTER", 0.0)  # ... until it is not renewed in time
        monkeypatch.setattr(derived._Builder, "_uncovered", lambda self: 1 / 0)
        with pytest.raises(derived.DerivedError, match="ZeroDivisionError"):
            derived.build(store, progress=False)
        state = store.derived_state(version)
        assert not state["complete"] and state["claim"] is None and "ZeroDivisionError" in state["failed"]
        assert derived.latest(store) is None and store.derived_versions() == []
        monkeypatch.undo()
        assert derived.build(store, progress=False) == version  # a new attempt succeeds
        assert store.derived_state(version) == {"complete": True, "claim": None, "failed": None}


def test_a_publish_during_a_build_does_not_leak_into_it(url, monkeypatch):
    with gstore.open(url) as store:
        version = store.version
        original = derived._Builder._labels
        published = {}

        def publish_then_label(self):
            if not published:  # a planner publishes while the build is under way
                plan = store.create_plan("同时", parent=VILLAGE, levels="grid2", author="李四")
                plan.save(plan.read().iloc[:1].assign(name="半路"), author="李四")
                published["version"] = plan.publish(author="李四")
            return original(self)

        monkeypatch.setattr(derived._Builder, "_labels", publish_then_label)
        assert derived.build(store, progress=False) == version
        kept = derived.Derived(store, version)
        assert "半路" not in set(kept.figures()["name"])
        at_version = store.read("grids", at=version)
        assert sorted(kept.grids()["name"]) == sorted(at_version["name"])
        assert store.version == published["version"] > version
        assert derived.latest(store).version == version
        monkeypatch.undo()
        assert derived.build(store, progress=False) == published["version"]
        assert "半路" in set(derived.latest(store).figures()["name"])


def test_loads_and_publishes_that_change_nothing_make_no_version(url, sample):
    with gstore.open(url) as store:
        version, revision = store.version, store.revision
        assert store.load({"stations": sample.stations, "roads": sample.roads}, author="网格办",
                          progress=False) == version
        grid2 = sample.grids[sample.grids["level"] == "grid2"]
        assert store.load({"grids": grid2}, author="网格办", progress=False) == version
        assert (store.version, store.revision) == (version, revision)
        # one changed station: one new version, which changes the stations only
        stations = sample.stations.copy()
        stations.loc[0, "name"] = "新站名"
        new = store.load({"stations": stations, "addresses": sample.addresses}, author="网格办", progress=False)
        assert new == store.version == version + 1
        assert store.revisions().iloc[-1]["layers"] == "stations"
        # a plan saved with a unit renamed and named back publishes without a new version
        plan = store.create_plan("不变", parent=VILLAGE, levels="grid2", author="张三")
        units = plan.read().iloc[:1]
        plan.save(units.assign(name="临时"), author="张三")
        plan.save(units.assign(name=units["name"].iloc[0], revision=plan.read()["revision"].iloc[0]),
                  author="张三")
        plan.publish(author="张三")
        assert store.version == new and store.plan(plan.id).info["status"] == "published"


def test_an_older_store_gains_the_derived_table_when_opened(url):
    with gstore.open(url) as store:
        with store._db.write() as tx:  # a store of schema version 1: no derived data, no audit trail
            tx.execute("DROP TABLE gridgeo_derived")
            tx.execute("DROP TABLE gridgeo_audit")
            tx.execute("UPDATE gridgeo_meta SET value = '1' WHERE key = 'schema_version'")
    with gstore.open(url) as store:
        assert store.schema_version == gstore.SCHEMA_VERSION == 5
        assert derived.build(store, progress=False) == store.version
        assert store.audit()["action"].tolist() == ["load"]


def test_the_prepare_command(url):
    res = subprocess.run([sys.executable, "-m", "gridgeo", "prepare", "--store", url], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert "prepared" in res.stdout and "figures" in res.stderr  # the steps are said on stderr
    with gstore.open(url) as store:
        assert store.derived_versions() == [store.version]
        assert store.claim_derived(store.version + 1, "someone:9")  # a version in the making
        store.load({"stations": _published(store, "stations").iloc[1:]}, author="t", progress=False)
    res = subprocess.run([sys.executable, "-m", "gridgeo", "prepare", "--store", url], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "being prepared by someone:9" in res.stdout, res.stdout + res.stderr


def test_served_ground_holds_the_union_of_the_service_areas(sample):
    """The one-pass ground of each circle against the union of the per-station areas (GEOS)."""
    net = network.build(sample.roads)
    areas = coverage.service_areas(sample.stations, net)
    union = coverage.served_area(areas, tolerance_m=0)
    ground = coverage.served_ground(sample.stations, net, tolerance_m=0)
    metric = gridgeo.crs.metric_crs(sample.grids)
    u = union.to_crs(metric).set_index("circle").geometry
    g = ground.to_crs(metric).set_index("circle").geometry
    assert list(ground["circle"]) == [5, 10, 15] and list(ground["stations"]) == [len(sample.stations)] * 3
    for circle in (5, 10, 15):
        assert u[circle].difference(g[circle]).area < 1.0  # m²: nothing of the union is left out
        assert g[circle].difference(u[circle]).area < 1e-4 * u[circle].area  # and hardly anything added


def test_public_figures_are_kept_for_the_minimum_count_they_were_prepared_with(url):
    from gridgeo import disclosure

    with gstore.open(url) as store:
        version = derived.build(store, progress=False, min_count=12)
        kept = derived.latest(store)
        names = store.derived_names(version)
        assert "public/k12" in names and not any(n.startswith("public/k10") for n in names)
        # the reference: the minimum count applied to the figures and coverage counts as kept
        figures, per_unit = kept.figures(), kept.coverage().set_index("code")
        table = pd.DataFrame(figures[["name", "level", "parent",
                                      *[c for c in derived.PUBLIC_FIGURES if c in figures.columns]]])
        table.index.name = "code"
        table = table.join(per_unit[["households_5min", "households_10min", "households_15min", "farthest_m"]])
        for k in (12, 7):  # 12 read from the store, 7 computed
            want = disclosure.public_figures(table, k)
            got = kept.public_figures(k)
            assert int(got["suppressed"].sum()) > 0, k  # the sample has units under either k
            pd.testing.assert_frame_equal(got, want[list(got.columns)], check_freq=False)
            assert list(got.columns) == [*table.columns, "suppressed"]
            withheld = got["band"].map(lambda v: v is pd.NA)  # withheld, not a level without a band
            assert withheld.any() and (withheld == want["band"].map(lambda v: v is pd.NA)).all()
            assert got.attrs == json.loads(json.dumps(want.attrs, default=lambda v: v.item())), k
        # unchanged inputs and k: copied by the next build; another k: made again
        plan = store.create_plan("调整", parent=VILLAGE, levels="grid2", author="张三")
        plan.save(plan.read().iloc[:1].assign(name="新名字"), author="张三")
        plan.publish(author="张三")
        derived.build(store, progress=False, min_count=12)
        assert "copied_from" not in derived.latest(store).manifest["items"]["public"]  # the grids changed


def test_public_event_indicators_are_kept_for_the_count_and_period_they_were_prepared_with(url):
    """A prepared store answers the public's event questions at once: the table kept is the one
    a service would compute (gridgeo.events and gridgeo.disclosure on the published data)."""
    from gridgeo import disclosure
    from gridgeo import events as gevents

    with gstore.open(url) as store:
        version = derived.build(store, progress=False, min_count=12, heat_period="quarter")
        kept = derived.latest(store)
        names = store.derived_names(version)
        assert "public_events/k12/quarter" in names and not any(n.startswith("public_events/k10") for n in names)
        placed = gevents.place(_published(store, "events"), _published(store, "grids"))
        want = disclosure.public_indicators(gevents.indicators(placed, period="quarter"), 12)
        got = kept.public_indicators(12, "quarter")
        assert int(got["suppressed"].sum()) > 0 and got["received"].isna().any()  # some counts withheld
        pd.testing.assert_frame_equal(got, want)
        assert got.attrs == want.attrs
        # another count or period was not prepared: the caller computes it
        assert kept.public_indicators(10, "quarter") is None and kept.public_indicators(12, "month") is None
        # unchanged events, grids, count and period: copied by the next build
        store.load({"stations": _published(store, "stations").iloc[1:]}, author="t", progress=False)
        derived.build(store, progress=False, min_count=12, heat_period="quarter")
        again = derived.latest(store)
        assert again.manifest["items"]["public_events"].get("copied_from") == version
        pd.testing.assert_frame_equal(again.public_indicators(12, "quarter"), want)


def test_the_public_heat_maps_blocks_are_kept_for_the_count_and_period_they_were_prepared_with(url):
    """The public heat map never reads the 816,000 events at city scale: its blocks are kept, equal to
    gridgeo.disclosure.event_blocks of the published events in the metric CRS."""
    from gridgeo import disclosure
    from gridgeo.crs import metric_crs

    with gstore.open(url) as store:
        version = derived.build(store, progress=False, min_count=12, heat_period="quarter")
        kept = derived.latest(store)
        events = _published(store, "events")
        points = events.geometry.to_crs(metric_crs(_published(store, "grids")))
        want = disclosure.event_blocks(pd.DataFrame({"x": points.x, "y": points.y, "category": events["category"],
                                                     "reported_at": events["reported_at"]}), 12, period="quarter")
        got = kept.heat_blocks(12, "quarter")
        assert len(got) > 10 and got["events"].between(12, 23).all()
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        pd.testing.assert_frame_equal(got.attrs["withheld"], want.attrs["withheld"], check_exact=True)
        assert {k: v for k, v in got.attrs.items() if k != "withheld"} == \
            {k: v for k, v in want.attrs.items() if k != "withheld"}
        assert kept.heat_blocks(10, "quarter") is None and kept.heat_blocks(12, "month") is None
        # the grids and stations are no input: a publish of either copies them
        store.load({"stations": _published(store, "stations").iloc[1:]}, author="t", progress=False)
        derived.build(store, progress=False, min_count=12, heat_period="quarter")
        again = derived.latest(store)
        assert again.manifest["items"]["heat"].get("copied_from") == version
        pd.testing.assert_frame_equal(again.heat_blocks(12, "quarter"), want, check_exact=True)


def test_a_service_on_a_prepared_store_answers_the_public_without_placing_events(sample_store):
    """The anonymous event indicators come from the table `gridgeo prepare` kept: the service
    never places the events (what takes half a minute at city scale), and answers as if it had."""
    from fastapi.testclient import TestClient

    from api import Settings, create_app
    from gridgeo import disclosure
    from gridgeo import events as gevents

    with TestClient(create_app(Settings(store=str(sample_store))), raise_server_exceptions=False) as client:
        r = client.get("/events/indicators", params={"level": "village", "period": "month",
                                                     "from": "2025-06-01", "to": "2025-07-01"})
        assert r.status_code == 200, r.text
        heat = client.get("/events/heat", params={"from": "2025-06-01", "to": "2025-07-01"})
        assert heat.status_code == 200 and heat.json()["cells"], heat.text
        services = client.app.state.services
        assert not [key for key in services.kept_values.keys() if "events:placed" in str(key)]
        assert not [key for key in services.kept_values.keys() if key[-1] == "events"]  # the heat map's blocks kept
    sample = gridgeo.sample.load()
    every = disclosure.public_indicators(gevents.indicators(gevents.place(sample.events, sample.grids),
                                                            period="month"), 10)
    want = every[(every["level"] == "village") & (every["period"] == "2025-06")].set_index("code")
    rows = pd.DataFrame(r.json()["rows"]).set_index("code")
    assert sorted(rows.index) == sorted(want.index)
    want = want.loc[rows.index]
    for column in ("received", "closed", "backlog", "overdue"):
        assert rows[column].astype("Int64").tolist() == want[column].tolist(), column
    assert rows["suppressed"].tolist() == want["suppressed"].tolist()


def _blobs(store, version) -> dict:
    return {name: store.get_derived(version, name) for name in store.derived_names(version) if name != "manifest"}


def test_a_publish_below_the_top_level_copies_what_it_leaves_alone_and_equals_a_full_prepare(url):
    """A plot (grid3) of one village shrunk: the areas left out (cut to the towns) and the tile
    geometry of every other level are copied; every item equals a full prepare of the version."""
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        plan = store.create_plan("缩小地块", parent="350582106205", levels="grid3", author="张三")
        units = plan.read()
        plot = units.iloc[:1]
        metric = gridgeo.crs.metric_crs(plot)
        plan.save(plot.assign(geometry=plot.geometry.to_crs(metric).buffer(-5).to_crs(plot.crs)), author="张三")
        second = plan.publish(author="张三")
        assert derived.build(store, progress=False) == second
        items = derived.latest(store).manifest["items"]
        assert items["uncovered"].get("copied_from") == first
        assert "copied_from" not in items["tiles"]
        spec = {s["name"]: s for s in json.loads(store.get_derived(second, "tiles"))["layers"]}
        others = [s for name, s in spec.items() if s["zooms"] and name != "grid3"]  # other levels, events
        assert sorted(s["name"] for s in others) == ["events", "grid1", "grid2", "roads", "town", "village"]
        kept_zooms = sum(s["maxzoom"] - s["minzoom"] + 1 for s in others)
        # grid3's zooms made again, the others copied, and the layers that do not read the grids
        # (stations, roads: the sample has no boundaries) as the version before has them
        assert items["tiles"]["copied_names"] == kept_zooms + 2
        assert {"tiles/stations", "tiles/roads"} <= {n for n, held in store._db.query(
            "SELECT name, data IS NULL FROM gridgeo_derived WHERE version = ?", (second,)) if held}
        incremental = _blobs(store, second)
        changed = {n for n in incremental if n.startswith("tiles/grid3/")
                   and incremental[n] != store.get_derived(first, n)}
        assert changed  # the plot's new outline is in grid3's zooms

        # the reference: the same version prepared from nothing
        store.drop_derived(before=second + 1)
        assert derived.build(store, progress=False) == second
        full = _blobs(store, second)
        assert "copied_from" not in derived.latest(store).manifest["items"]["uncovered"]
        assert sorted(incremental) == sorted(full)
        for name in full:
            if name.endswith(".attrs") or name in ("labels", "tiles"):
                assert json.loads(incremental[name]) == json.loads(full[name]), name
            else:
                assert incremental[name] == full[name], name


def same_placement(got, want) -> None:
    """Two placements of events (gridgeo.events.Placed) hold the same arrays, level by level."""
    assert got is not None
    assert tuple(got.index.levels) == tuple(want.index.levels)
    for lv in want.index.levels:
        assert list(got.index.codes[lv]) == list(want.index.codes[lv]), lv
        assert got.unit[lv].dtype == want.unit[lv].dtype and np.array_equal(got.unit[lv], want.unit[lv]), lv
    for name in ("reported", "closed"):
        assert getattr(got, name).dtype == np.int64 and np.array_equal(getattr(got, name), getattr(want, name)), name
    for name in ("category", "status"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a.codes, b.codes), name
    assert sorted(got.steps) == sorted(want.steps)
    for name in want.steps:
        assert np.array_equal(got.steps[name], want.steps[name]), name
    assert got.attrs == want.attrs


def test_the_events_placed_in_the_grids_are_kept_as_placing_the_published_events_places_them(url):
    """`gridgeo prepare` keeps the placement a service needs (gridgeo.events.place on the published
    events and grids): read back, array for array the same; refused for an index of other grids;
    copied by a build that leaves the events and the grids alone."""
    from gridgeo import events as gevents

    with gstore.open(url) as store:
        version = derived.build(store, progress=False)
        kept = derived.latest(store)
        assert kept.has("placed")
        index = gridgeo.AssignIndex(_published(store, "grids"), scheme=store.scheme)
        want = gevents.place(_published(store, "events"), index)
        assert want.attrs["unplaced"] == 0 and (want.unit["grid3"] >= 0).any() and (want.unit["grid3"] < 0).any()
        same_placement(kept.placed(index), want)
        # the positions refer to the codes of the version's grids: an index of others gets nothing
        grids = _published(store, "grids")
        fewer = gridgeo.AssignIndex(grids[grids["code"] != grids[grids["level"] == "grid3"]["code"].iloc[0]],
                                    scheme=store.scheme)
        assert kept.placed(fewer) is None
        # unchanged events and grids: copied, and still the same placement
        store.load({"stations": _published(store, "stations").iloc[1:]}, author="t", progress=False)
        derived.build(store, progress=False)
        again = derived.latest(store)
        assert again.version > version and again.manifest["items"]["placed"].get("copied_from") == version
        same_placement(again.placed(index), want)


def _service(path, api_keys, caplog):
    """A service started on the store at ``path``: a viewer's answers to two /events/indicators
    questions, what it logged about the events' placement, and the placement its store keeps."""
    from fastapi.testclient import TestClient

    from api import Settings, create_app

    caplog.clear()
    app = create_app(Settings(store=str(path), keys_file=api_keys["file"]))
    with caplog.at_level("INFO", logger="gridgeo.api.data"), TestClient(app, raise_server_exceptions=False) as client:
        rows = []
        for params in ({"level": "grid2", "period": "month"},
                       {"level": "village", "period": "week", "from": "2025-03-01", "to": "2025-05-01"}):
            r = client.get("/events/indicators", params=params, headers={"X-API-Key": api_keys["viewer"]})
            assert r.status_code == 200, r.text
            rows.append(r.json())
        services = client.app.state.services
        placed = services.kept.placed(gridgeo.AssignIndex(services.kept.grids(), scheme=services.store.scheme))
    lines = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("events of version")]
    return rows, lines, placed


def test_a_service_reads_the_kept_placement_and_answers_as_placing_the_events_would(sample_store, api_keys,
                                                                                       tmp_path, caplog):
    """A service on a prepared store takes the events' placement from the store instead of reading
    the events layer and placing it (what takes tens of seconds per worker at city scale); on a copy
    whose placement was deleted (a store prepared before it was kept) it reads and places them, and
    a viewer's indicators are the same either way."""
    import shutil
    import sqlite3

    kept_copy, bare_copy = tmp_path / "kept.gpkg", tmp_path / "bare.gpkg"
    shutil.copy(sample_store, kept_copy)
    shutil.copy(sample_store, bare_copy)
    with sqlite3.connect(bare_copy) as db:
        assert db.execute("DELETE FROM gridgeo_derived WHERE name IN ('placed', 'placed.attrs')").rowcount == 2
    db.close()

    with_item, said, placed = _service(kept_copy, api_keys, caplog)
    assert placed is not None
    assert len(said) == 1 and said[0].endswith(f"{len(placed)} placed as prepared"), said
    without, said_bare, none = _service(bare_copy, api_keys, caplog)
    assert none is None
    assert len(said_bare) == 1 and "reading and placing them" in said_bare[0], said_bare
    assert with_item == without
    # and it is the events' truth: a covers-join of the sample's events with its level-2 grids
    sample = gridgeo.sample.load()
    grid2 = sample.grids[sample.grids["level"] == "grid2"][["code", "geometry"]]
    inside = gpd.sjoin(sample.events, grid2, predicate="within").groupby("code").size()
    table = pd.DataFrame(with_item[0]["rows"]).groupby("code")["received"].sum()
    assert table[table > 0].to_dict() == inside.to_dict()


def test_a_version_prepared_by_an_older_gridgeo_gets_the_items_it_lacks(sample_store, tmp_path):
    """A store prepared before an item was kept (here: the events' placement, written neither in
    the version nor in its manifest) lists it as pending; `gridgeo prepare` adds it to the same
    version, equal to what a fresh build keeps, and leaves the rest as it was."""
    import shutil
    import sqlite3

    from gridgeo import events as gevents

    old = tmp_path / "old.gpkg"
    shutil.copy(sample_store, old)
    with sqlite3.connect(old) as db:
        version, manifest = db.execute("SELECT version, data FROM gridgeo_derived WHERE name = 'manifest' "
                                       "ORDER BY version DESC LIMIT 1").fetchone()
        manifest = json.loads(manifest)
        del manifest["items"]["placed"]
        db.execute("UPDATE gridgeo_derived SET data = ? WHERE version = ? AND name = 'manifest'",
                   (json.dumps(manifest).encode(), version))
        assert db.execute("DELETE FROM gridgeo_derived WHERE name IN ('placed', 'placed.attrs')").rowcount == 2
        others = dict(db.execute("SELECT name, data FROM gridgeo_derived WHERE version = ? AND name != 'manifest'",
                                 (version,)).fetchall())
    db.close()
    with gstore.open(str(old)) as store:
        assert derived.latest(store).pending() == ["placed"]
        assert derived.build(store, progress=False) == version
        kept = derived.latest(store)
        assert kept.version == version and kept.pending() == [] and kept.has("placed")
        index = gridgeo.AssignIndex(_published(store, "grids"), scheme=store.scheme)
        same_placement(kept.placed(index), gevents.place(_published(store, "events"), index))
    with sqlite3.connect(old) as db:
        after = dict(db.execute("SELECT name, data FROM gridgeo_derived WHERE version = ? AND name NOT IN "
                                "('manifest', 'placed', 'placed.attrs')", (version,)).fetchall())
    db.close()
    assert after == others


WALKED = ["nearest", "served", "coverage", "uncovered", "figures", "public", "tiles", "service_areas"]


def _without_recipe(db, version, recipe):
    """Drop `recipe` (``walking``, ``audit``) from the inputs of every item of a prepared GeoPackage's
    version, as a gridgeo that knew no such recipe wrote them. Returns the manifest as it now is."""
    manifest = json.loads(db.execute("SELECT data FROM gridgeo_derived WHERE version = ? AND name = 'manifest'",
                                     (version,)).fetchone()[0])
    for entry in manifest["items"].values():
        entry["depends"].pop(recipe, None)
    db.execute("UPDATE gridgeo_derived SET data = ? WHERE version = ? AND name = 'manifest'",
               (json.dumps(manifest).encode(), version))
    return manifest


def _as_measured_in_the_metric_crs(db, version):
    """Make a prepared GeoPackage's version look prepared by a gridgeo that measured walks in the metric CRS:
    no ``walking`` in its items' inputs, and its walking distances scaled by 1.0003 (a planar metre 1.5 deg
    off the central meridian). Returns the manifest as it now is."""
    manifest = _without_recipe(db, version, "walking")
    (blob,) = db.execute("SELECT data FROM gridgeo_derived WHERE version = ? AND name = 'nearest'",
                         (version,)).fetchone()
    nearest = gpd.read_parquet(io.BytesIO(blob))
    nearest["distance_m"] *= 1.0003
    db.execute("UPDATE gridgeo_derived SET data = ? WHERE version = ? AND name = 'nearest'",
               (derived._bytes(nearest, bbox=True), version))
    return manifest


def test_a_version_whose_walks_were_measured_in_the_metric_crs_is_measured_again(sample_store, tmp_path):
    """A version prepared when walks were measured in the metric CRS (its items record no ``walking``
    measure) lists every item made from walks as pending; `gridgeo prepare` makes them again in the same
    version, the walks equal to the library's on the ellipsoid, and leaves every other item's bytes alone."""
    import shutil
    import sqlite3

    old = tmp_path / "old.gpkg"
    shutil.copy(sample_store, old)
    with sqlite3.connect(old) as db:
        (version,) = db.execute("SELECT MAX(version) FROM gridgeo_derived WHERE name = 'manifest'").fetchone()
        manifest = _as_measured_in_the_metric_crs(db, version)
        others = [name for item, entry in manifest["items"].items() if item not in WALKED for name in entry["names"]]
        before = dict(db.execute(f"SELECT name, data FROM gridgeo_derived WHERE version = ? AND name IN "
                                 f"({', '.join('?' * len(others))})", (version, *others)).fetchall())
    db.close()
    assert len(before) == len(others) > 5
    with gstore.open(str(old)) as store:
        assert derived.latest(store).pending() == WALKED
        assert derived.build(store, progress=False) == version
        kept = derived.latest(store)
        assert kept.version == version and kept.pending() == []
        assert all(kept.manifest["items"][item]["depends"]["walking"] == network.MEASURE for item in WALKED)
        fresh = coverage.nearest_station(_published(store, "addresses"), _published(store, "stations"),
                                         network.build(_published(store, "roads"),
                                                       metric=gridgeo.crs.metric_crs(_published(store, "grids"))))
        got = kept.nearest().set_index("addr_id").loc[fresh["addr_id"]]
        np.testing.assert_array_equal(got["distance_m"].to_numpy(), fresh["distance_m"].to_numpy())
    with sqlite3.connect(old) as db:
        after = dict(db.execute(f"SELECT name, data FROM gridgeo_derived WHERE version = ? AND name IN "
                                f"({', '.join('?' * len(others))})", (version, *others)).fetchall())
    db.close()
    assert after == before


def test_a_version_audited_by_an_older_rule_makes_its_public_tables_again(sample_store, tmp_path):
    """Public tables that record no audit rule (an older gridgeo's, which audited a province as one
    whole area) are pending and made again in the same version; a one-county store's come out the same
    bytes (the county is its whole area under both rules), and no other item is touched."""
    import shutil
    import sqlite3

    from gridgeo import disclosure

    old = tmp_path / "old.gpkg"
    shutil.copy(sample_store, old)
    with sqlite3.connect(old) as db:
        (version,) = db.execute("SELECT MAX(version) FROM gridgeo_derived WHERE name = 'manifest'").fetchone()
        manifest = _without_recipe(db, version, "audit")
        rows = dict(db.execute("SELECT name, data FROM gridgeo_derived WHERE version = ? AND name != 'manifest'",
                               (version,)).fetchall())
    db.close()
    audited = {name for item in ("public", "public_events") for name in manifest["items"][item]["names"]}
    assert audited and all(name in rows for name in audited)
    with gstore.open(str(old)) as store:
        assert derived.latest(store).pending() == ["public", "public_events"]
        assert derived.build(store, progress=False) == version
        kept = derived.latest(store)
        assert kept.pending() == []
        assert kept.manifest["items"]["public"]["depends"]["audit"] == disclosure.AUDIT
    with sqlite3.connect(old) as db:
        after = dict(db.execute("SELECT name, data FROM gridgeo_derived WHERE version = ? AND name != 'manifest'",
                                (version,)).fetchall())
    db.close()
    assert after == rows
