"""A publish of grids inside some villages is prepared from those villages alone (gridgeo.derived's
rule of changed parents), on both stores: every item equals a full prepare of the same version,
byte for byte; a rename assigns nothing; a publish that reaches the villages themselves is
prepared in full."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import gridgeo
import gridgeo.store as gstore
from gridgeo import derived
from gridgeo import events as gevents

from test_derived import same_placement
from test_rollback import NEW_CODE, VILLAGE, X, Y, move_grid  # the publish a planner makes: one grid moved

OTHER_VILLAGE = "350582106201"


def _blobs(store, version) -> dict:
    return {name: store.get_derived(version, name) for name in store.derived_names(version) if name != "manifest"}


def _holding(store, version) -> dict:
    """Per item of ``version``, whether its row holds its bytes (False: it refers to an older version's)."""
    rows = store._db.query("SELECT name, data IS NOT NULL FROM gridgeo_derived WHERE version = ?", (version,))
    return {name: bool(held) for name, held in rows}


def _placed_as_placing_the_published_events(store, kept):
    """The placement kept equals gridgeo.events.place on the published events and grids; the index."""
    grids = store.read("grids").drop(columns=["revision"], errors="ignore")
    index = gridgeo.AssignIndex(grids, scheme=store.scheme)
    want = gevents.place(store.read("events").drop(columns=["revision"], errors="ignore"), index)
    same_placement(kept.placed(index), want)
    # as the service keeps it (ordered by category: api.derived.placed_events), every category counts alike
    served = gevents.by_category(kept.placed(index))
    counted = gevents.tally(served)  # and the counts per category it keeps (api.derived.event_tally)
    for category in [*want.category.categories, None]:
        theirs = gevents.overview(want, level=["grid2", "village"], category=category)
        for a, b in zip(gevents.overview(served, level=["grid2", "village"], category=category), theirs):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        if category is not None:
            for a, b in zip(counted.overview(served, level=["grid2", "village"], category=category), theirs):
                pd.testing.assert_frame_equal(a, b, check_exact=True)
    return index, want


def _equal_to_a_full_prepare(store, version):
    """Every item of ``version`` as built equals the same version prepared from nothing."""
    built = _blobs(store, version)
    store.drop_derived(before=version + 1)
    assert derived.build(store, progress=False) == version
    assert "incremental" not in derived.latest(store).manifest
    full = _blobs(store, version)
    assert sorted(built) == sorted(full)
    for name in full:
        if name.endswith(".attrs") or name in ("labels", "tiles"):
            assert json.loads(built[name]) == json.loads(full[name]), name
        else:
            assert built[name] == full[name], name
    return built


def test_a_redrawn_village_is_prepared_from_it_alone_and_equals_a_full_prepare(url):
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        before = derived.latest(store)
        moved, second = move_grid(store)
        assert derived.build(store, progress=False) == second
        kept = derived.latest(store)
        assert kept.manifest["incremental"] == {"from": first, "parents": [VILLAGE]}
        steps = kept.manifest["seconds"]
        assert not {"reading addresses", "reading events", "reading roads"} & set(steps)  # only the village's
        figures = kept.figures()
        assert moved not in figures.index and NEW_CODE in figures.index
        # the moved grid's households went from Y to X; the village and the town kept theirs
        old = before.figures()
        assert figures.loc[X, "households"] == old.loc[X, "households"] + old.loc[moved, "households"]
        assert figures.loc[Y, "households"] == old.loc[Y, "households"] - old.loc[moved, "households"]
        for code in (VILLAGE, "350582106"):
            assert figures.loc[code, "households"] == old.loc[code, "households"]
        # the events placed again under the redrawn village, every other renumbered among the new codes
        index, placed = _placed_as_placing_the_published_events(store, kept)
        new_unit = index.codes["grid2"].get_loc(NEW_CODE)
        assert (placed.unit["grid2"] == new_unit).any()  # the moved grid's events are in its new code
        assert "reading events" not in steps
        built = _equal_to_a_full_prepare(store, second)
        assert built["figures"] != store.get_derived(first, "figures")
        assert built["placed"] != store.get_derived(first, "placed")


def test_a_rename_assigns_nothing_and_equals_a_full_prepare(url):
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        plan = store.create_plan("改名", parent=OTHER_VILLAGE, levels="grid2", author="李四")
        unit = plan.read().iloc[[0]]
        plan.save(unit.assign(name="新名字"), author="李四")
        second = plan.publish(author="李四")
        assert derived.build(store, progress=False) == second
        kept = derived.latest(store)
        assert kept.manifest["incremental"] == {"from": first, "parents": []}
        assert not [step for step in kept.manifest["seconds"] if step.startswith(("reading addresses",
                                                                                 "reading events", "placing"))]
        code = unit["code"].iloc[0]
        assert kept.figures().loc[code, "name"] == "新名字"
        assert [row[3] for row in kept.labels("grid2") if row[2] == code] == ["新名字"]
        _placed_as_placing_the_published_events(store, kept)
        # only what changed is written: a row of the new version holds bytes exactly where they differ
        # from the version before's, every other refers to the version before's row
        holds = _holding(store, second)
        old, new = _blobs(store, first), _blobs(store, second)
        assert {name for name in new if holds[name]} == {name for name in new if new[name] != old.get(name)}
        written = {name for name in new if holds[name]}
        # what carries names: the grids, labels, figures and their tables, the renamed level's tiles
        assert {"grids", "labels", "figures", "coverage", "tiles/grid2", "tiles/events"} <= written
        # what does not: the placement (the same codes), the walking coverage, every zoom's geometry,
        # the other levels' tiles, the stations and roads
        by_reference = {"placed", "placed.attrs", "nearest", "served", "uncovered", "service_areas", "events",
                        "tiles/grid2/14", "tiles/town", "tiles/grid3", "tiles/stations", "tiles/roads"}
        assert by_reference <= set(new) - written
        assert kept.manifest["items"]["placed"].get("copied_names") == 2
        _equal_to_a_full_prepare(store, second)


def test_changed_parents_are_the_villages_above_what_changed_and_a_redrawn_village_means_in_full(sample):
    from gridgeo.derived import _Changed
    from gridgeo.schema import DEFAULT_SCHEME

    grids = sample.grids.reset_index(drop=True)
    codes = grids["code"].to_numpy(dtype=object)
    grid2 = next(i for i, c in enumerate(codes) if c.startswith(OTHER_VILLAGE) and grids["level"][i] == "grid2")
    plot = grids[grids["level"] == "grid3"].index[0]
    moved = grids.copy()
    moved.loc[grid2, "geometry"] = moved.geometry[grid2].buffer(-1e-5)
    moved.loc[plot, "name"] = "改名"  # a name alone changes no parent
    changed = _Changed.between(grids, moved, DEFAULT_SCHEME)
    assert changed.parents == [OTHER_VILLAGE] and changed.ancestors == ["350582106"]
    assert changed.old_under == changed.new_under == sorted(c for c in codes if c.startswith(OTHER_VILLAGE))
    removed = grids.drop(index=plot)
    parent = next(c for c in codes if codes[plot].startswith(c) and c != "350582106"
                  and grids.set_index("code").loc[c, "level"] == "village")
    assert _Changed.between(grids, removed, DEFAULT_SCHEME).parents == [parent]
    assert _Changed.between(grids, grids, DEFAULT_SCHEME).parents == []
    village = grids.copy()
    row = grids.index[grids["code"] == OTHER_VILLAGE][0]
    village.loc[row, "geometry"] = village.geometry[row].buffer(-1e-5)
    assert _Changed.between(grids, village, DEFAULT_SCHEME) is None  # the villages themselves: in full


def test_a_version_prepared_before_the_placement_was_kept_is_followed_by_one_that_keeps_it(url):
    """The version a publish is prepared from may keep no placement (prepared before it was kept):
    the redrawn village's version is still prepared from it alone, but its events are all placed
    (the layer read once), as a full prepare places them."""
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        with store._db.write() as tx:  # as a store prepared before the placement was kept
            tx.execute("DELETE FROM gridgeo_derived WHERE version = ? AND name IN ('placed', 'placed.attrs')",
                       (first,))
        assert derived.latest(store).placed(gridgeo.AssignIndex(derived.latest(store).grids())) is None
        _, second = move_grid(store)
        assert derived.build(store, progress=False) == second
        kept = derived.latest(store)
        assert kept.manifest["incremental"] == {"from": first, "parents": [VILLAGE]}
        assert "reading events" in kept.manifest["seconds"]  # the whole layer, once, for the placement
        _placed_as_placing_the_published_events(store, kept)
        _equal_to_a_full_prepare(store, second)


def test_an_interrupted_prepare_leaves_the_version_served_as_it_was(url, monkeypatch):
    """A prepare that fails half-way (after the items it keeps by reference are written) is recorded as
    failed; the version served reads the same bytes before, during and after, and stays so when the next
    attempt completes (processes still serving it read it until the version after)."""
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        served = _blobs(store, first)
        plan = store.create_plan("改名", parent=OTHER_VILLAGE, levels="grid2", author="李四")
        plan.save(plan.read().iloc[[0]].assign(name="新名字"), author="李四")
        second = plan.publish(author="李四")
        monkeypatch.setattr(derived._Builder, "_tiles", lambda self: 1 / 0)  # the last item of the map
        with pytest.raises(derived.DerivedError, match="ZeroDivisionError"):
            derived.build(store, progress=False)
        assert "nearest" in store.derived_names(second)  # half-way: references were written
        assert derived.latest(store).version == first and store.derived_versions() == [first]
        assert "ZeroDivisionError" in store.derived_state(second)["failed"]
        assert _blobs(store, first) == served
        monkeypatch.undo()
        assert derived.build(store, progress=False) == second
        assert store.derived_versions() == [first, second] and _blobs(store, first) == served
        _equal_to_a_full_prepare(store, second)


def test_a_publish_after_a_version_whose_walks_were_measured_otherwise_is_prepared_in_full(url):
    """The rule of changed parents takes the walks of the version before: when those were measured
    otherwise (in the metric CRS, by an older gridgeo: no ``walking`` measure recorded), the publish is
    prepared in full, every walk measured again, and equals a full prepare."""
    with gstore.open(url) as store:
        first = derived.build(store, progress=False)
        manifest = json.loads(store.get_derived(first, "manifest"))
        for entry in manifest["items"].values():
            entry["depends"].pop("walking", None)
        store.put_derived(first, {"manifest": json.dumps(manifest).encode()})
        _, second = move_grid(store)
        assert derived.build(store, progress=False) == second
        kept = derived.latest(store)
        assert "incremental" not in kept.manifest
        for item in ("nearest", "served", "coverage", "figures"):
            assert "copied_from" not in kept.manifest["items"][item], item
        _equal_to_a_full_prepare(store, second)
