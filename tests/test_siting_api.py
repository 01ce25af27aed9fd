"""/siting/propose and /siting/evaluate: the library's answer over HTTP, and that answer
checked again against walking distances from networkx and an exact covers-join."""

import networkx as nx
import numpy as np
import pytest
import shapely

from gridgeo import network as gn
from gridgeo import siting as gs
from test_assignment import covers_join
from test_network import reference_graph, roads_reaching

VILLAGE = "350582106216"  # 苏垵村, in the corner of 内坑镇 the library tests use
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def net(sample):
    return gn.build(sample.roads)


@pytest.fixture(scope="module")
def planner(api_keys):
    return {"X-API-Key": api_keys["planner"]}


@pytest.fixture(scope="module")
def proposed(client, planner):
    r = client.post("/siting/propose", json={"unit": VILLAGE, "k": 2, "minutes": 7.5}, headers=planner)
    assert r.status_code == 200, r.text
    return r.json()


def village_addresses(sample):
    codes = covers_join(sample.addresses, sample.grids)
    return sample.addresses[(codes["village"] == VILLAGE).to_numpy()]


def walked(sample, addresses, sites):
    """Walking metres of every address to its nearest station, before and with `sites` (networkx)."""
    roads = roads_reaching(sample.roads, sample.stations)
    graph, keys = reference_graph(roads, gn.build(sample.roads).crs, {"a": addresses, "s": sample.stations,
                                                                      "n": sites})
    before = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]), weight="length")
    after = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]) | set(keys["n"]), weight="length")
    return (np.array([before.get(k, np.inf) for k in keys["a"]]),
            np.array([after.get(k, np.inf) for k in keys["a"]]))


def expected_units(sample, addresses, before, after, radius):
    codes = covers_join(addresses, sample.grids)["grid2"].to_numpy(dtype=object)
    hh = addresses["households"].to_numpy(dtype=float)
    grid2 = sample.grids[(sample.grids["level"] == "grid2") & (sample.grids["parent"].str[:12] == VILLAGE)]
    out = {}
    for code, name in zip(grid2["code"], grid2["name"]):
        mine = codes == code
        out[code] = {"name": name, "households": hh[mine].sum(), "addresses": int(mine.sum()),
                     "households_before": hh[mine & (before <= radius)].sum(),
                     "households_after": hh[mine & (after <= radius)].sum()}
    return out


def sites_frame(answer):
    import geopandas as gpd

    return gpd.GeoDataFrame.from_features(answer["sites"]["features"], crs=4326).to_crs(4490)


def check_against_networkx(sample, answer):
    addresses = village_addresses(sample)
    sites = sites_frame(answer)
    # the sites stand on the roads that reach a station (so networkx walks them as gridgeo does)
    _, gap = shapely.STRtree(roads_reaching(sample.roads, sample.stations).geometry.array).query_nearest(
        sites.geometry.array, return_distance=True)
    assert len(sites) == 0 or gap.max() < 1e-6  # degrees: about 0.1 m
    before, after = walked(sample, addresses, sites)
    radius = answer["radius_m"]
    expected = expected_units(sample, addresses, before, after, radius)
    got = {u["code"]: u for u in answer["units"]}
    assert sorted(got) == sorted(expected) and len(got) > 0
    for code, want in expected.items():
        u = got[code]
        assert u["name"] == want["name"] and u["addresses"] == want["addresses"]
        assert u["households"] == want["households"]
        assert u["households_before"] == want["households_before"], code
        assert u["households_after"] == want["households_after"], code
        assert u["households_gained"] == want["households_after"] - want["households_before"]
    hh = addresses["households"].to_numpy(dtype=float)
    totals = answer["totals"]
    assert totals["households"] == hh.sum() and totals["addresses"] == len(addresses)
    assert totals["households_before"] == hh[before <= radius].sum()
    assert totals["households_after"] == hh[after <= radius].sum()
    return before, after


def test_proposed_sites_are_the_librarys_and_networkx_agrees(client, sample, net, proposed):
    assert proposed["method"] == "maximal" and proposed["radius_m"] == 500.0 and proposed["level"] == "grid2"
    assert proposed["feasible"] and proposed["optimal"]
    # the library, called directly on the same ground, proposes the same sites with the same figures
    where = gs.scope(sample.addresses, sample.grids, unit=VILLAGE)
    direct = gs.maximal_coverage(where.addresses, sample.stations, net, k=2, radius_m=500,
                                 candidates=gs.candidate_sites(net, within=where.area), units=where.units,
                                 assignment=where.assignment)
    props = [f["properties"] for f in proposed["sites"]["features"]]
    assert [p["site_id"] for p in props] == direct.sites["site_id"].tolist()
    assert [p["households_new"] for p in props] == direct.sites["households_new"].tolist()
    assert [u["households_gained"] for u in proposed["units"]] == direct.per_unit["households_gained"].tolist()
    assert proposed["totals"]["households_gained"] == direct.totals["households_gained"] > 0
    # and independently: walking distances from networkx, units from an exact covers-join
    check_against_networkx(sample, proposed)
    # lon/lat for the page, in the village's corner of the town
    lon, lat = np.array([f["geometry"]["coordinates"] for f in proposed["sites"]["features"]]).T
    assert ((118.4 < lon) & (lon < 118.5) & (24.7 < lat) & (lat < 24.9)).all()


def test_a_moved_site_is_evaluated_as_networkx_walks_it(client, sample, planner, proposed):
    coords = [f["geometry"]["coordinates"] for f in proposed["sites"]["features"]]
    ids = [f["properties"]["site_id"] for f in proposed["sites"]["features"]]
    same = client.post("/siting/evaluate", json={"unit": VILLAGE, "minutes": 7.5, "sites": coords, "ids": ids},
                       headers=planner).json()
    assert same["units"] == proposed["units"] and same["totals"] == proposed["totals"]
    # move the first site to a junction 300-600 m away, on the roads that reach a station
    junctions = gs.candidate_sites(gn.build(sample.roads), within=shapely.box(118.40, 24.75, 118.50, 24.85))
    metric = junctions.to_crs(3857)
    here = shapely.Point(coords[0])
    dist = metric.distance(gpd_point(here).to_crs(3857).iloc[0]).to_numpy()
    to = junctions.geometry.iloc[int(np.flatnonzero((dist > 300) & (dist < 600))[0])]
    moved = [[to.x, to.y], coords[1]]
    r = client.post("/siting/evaluate", json={"unit": VILLAGE, "minutes": 7.5, "sites": moved, "ids": ids},
                    headers=planner)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["method"] == "evaluate" and [f["properties"]["site_id"] for f in answer["sites"]["features"]] == ids
    check_against_networkx(sample, answer)
    assert answer["totals"] != proposed["totals"]
    assert answer["totals"]["households_after"] <= proposed["totals"]["households_after"]  # the optimum was optimal


def gpd_point(point):
    import geopandas as gpd

    return gpd.GeoSeries([point], crs=4490)


def test_cover_every_household_of_a_grid(client, sample, planner):
    grid2 = sample.grids[(sample.grids["level"] == "grid2") & (sample.grids["parent"].str[:12] == VILLAGE)]
    r = client.post("/siting/propose", json={"unit": grid2["code"].iloc[0], "method": "cover", "radius_m": 400,
                                             "level": "grid2"}, headers=planner)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["method"] == "cover" and len(answer["units"]) == 1
    totals = answer["totals"]
    if answer["feasible"]:
        assert totals["households_after"] == totals["households"]
    else:
        assert "beyond" in answer["message"] or "no candidate" in answer["message"]


def test_a_box_scope(client, planner, sample):
    box = [118.425, 24.795, 118.447, 24.812]
    r = client.post("/siting/propose", json={"bbox": box, "k": 1, "radius_m": 500, "level": "village"},
                    headers=planner)
    assert r.status_code == 200, r.text
    answer = r.json()
    inside = sample.addresses[sample.addresses.covered_by(shapely.box(*box))]
    assert answer["totals"]["addresses"] == len(inside)
    assert answer["totals"]["households"] == inside["households"].sum()
    assert {u["code"] for u in answer["units"]} >= set(covers_join(inside, sample.grids)["village"].dropna())


def test_only_planners_may_site(client, api_keys):
    body = {"unit": VILLAGE, "k": 1}
    assert client.post("/siting/propose", json=body).status_code == 401
    r = client.post("/siting/propose", json=body, headers={"X-API-Key": api_keys["viewer"]})
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = client.post("/siting/evaluate", json={**body, "sites": []}, headers={"X-API-Key": api_keys["viewer"]})
    assert r.status_code == 403


def test_a_scoped_planner_sites_only_in_their_units(client, api_keys):
    from api.keys import KeyStore

    key = KeyStore(api_keys["file"]).add("内坑苏垵规划", "planner", scopes=[VILLAGE])
    other = "350582106001"
    r = client.post("/siting/propose", json={"unit": other, "k": 1}, headers={"X-API-Key": key})
    assert r.status_code == 403 and other in r.json()["detail"]
    r = client.post("/siting/propose", json={"bbox": [118.42, 24.79, 118.45, 24.81], "k": 1},
                    headers={"X-API-Key": key})
    assert r.status_code == 403 and "by unit" in r.json()["detail"]
    r = client.post("/siting/evaluate", json={"unit": VILLAGE, "sites": []}, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["totals"]["households_gained"] == 0


@pytest.mark.parametrize("path, body, status, words", [
    ("/siting/propose", {"unit": "999999999", "k": 1}, 404, "no unit has the code"),
    ("/siting/propose", {"k": 1}, 422, "one of them"),
    ("/siting/propose", {"unit": VILLAGE, "bbox": [118.42, 24.79, 118.45, 24.81]}, 422, "one of them"),
    ("/siting/propose", {"unit": VILLAGE, "minutes": 10, "radius_m": 500}, 422, "not both"),
    ("/siting/propose", {"bbox": [118.0, 24.5, 118.9, 24.9]}, 422, "at most 0.25"),
    ("/siting/propose", {"bbox": [118.45, 24.81, 118.42, 24.79]}, 422, "west < east"),
    ("/siting/propose", {"unit": VILLAGE, "level": "grid9"}, 422, "no level 'grid9'"),
    ("/siting/propose", {"unit": VILLAGE + "01", "level": "village"}, 422, "one below it"),
    ("/siting/propose", {"unit": VILLAGE, "k": 21}, 400, "k"),
    ("/siting/evaluate", {"unit": VILLAGE, "sites": [[118.43, 24.80]] * 21}, 400, "sites"),
    ("/siting/evaluate", {"unit": VILLAGE, "sites": [[118.43, 24.80]], "ids": ["a", "b"]}, 422, "2 ids for 1"),
    ("/siting/evaluate", {"unit": VILLAGE, "sites": [[118.43, 24.80]] * 2, "ids": ["a", "a"]}, 422, "repeat"),
    ("/siting/evaluate", {"unit": VILLAGE, "sites": [[24.80, 118.43]]}, 422, "lon/lat"),
    ("/siting/evaluate", {"unit": VILLAGE, "sites": [[110.0, 20.0]]}, 422, "from the scope"),
])
def test_bad_requests_are_problems(client, planner, path, body, status, words):
    r = client.post(path, json=body, headers=planner)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM and words in r.text


def test_the_operations_are_documented(client):
    doc = client.get("/openapi.json").json()
    for path in ("/siting/propose", "/siting/evaluate"):
        op = doc["paths"][path]["post"]
        assert {"200", "400", "401", "403", "404", "422", "503"} <= set(op["responses"]), path
        assert op["summary"] and op["description"]


@pytest.mark.parametrize(("minutes", "metres"), [(5, 300.0), (10, 500.0), (15, 1000.0), (12, 800.0)])
def test_minutes_are_the_life_circles_the_coverage_figures_count(client, planner, minutes, metres):
    """A planner's 10 minutes is GB 50180's 500 m, as the one map's 10-minute coverage, not 667 m at 4 km/h;
    minutes outside the standard's circles are walked at 4 km/h (12 minutes = 800 m)."""
    from gridgeo.coverage import GB50180_CIRCLES

    r = client.post("/siting/propose", json={"unit": VILLAGE, "k": 1, "minutes": minutes}, headers=planner)
    assert r.status_code == 200, r.text
    assert r.json()["radius_m"] == pytest.approx(GB50180_CIRCLES.get(minutes, minutes * 4000 / 60)) == metres


def test_either_store_gives_the_same_proposal(url, api_keys, planner, proposed, client):
    """The same answer from a GeoPackage and from PostGIS: the layers read at the version served."""
    import gridgeo.derived
    import gridgeo.store
    from fastapi.testclient import TestClient

    from api import Settings, create_app

    with gridgeo.store.open(url) as store:
        gridgeo.derived.build(store, progress=False)
    with TestClient(create_app(Settings(store=url, keys_file=api_keys["file"])),
                    raise_server_exceptions=False) as other:
        r = other.post("/siting/propose", json={"unit": VILLAGE, "k": 2, "minutes": 7.5}, headers=planner)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["units"] == proposed["units"] and answer["totals"] == proposed["totals"]
        assert answer["sites"] == proposed["sites"]
        moved = {"unit": VILLAGE, "minutes": 7.5, "sites": [[118.4486, 24.7716], [118.4518, 24.7792]]}
        here = other.post("/siting/evaluate", json=moved, headers=planner)
    assert here.status_code == 200 and here.json()["totals"]["households_gained"] > 0
    assert here.json() == client.post("/siting/evaluate", json=moved, headers=planner).json()
