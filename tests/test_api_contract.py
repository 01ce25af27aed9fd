"""What the OpenAPI document promises, the service does: the keys it refuses, the
methods a path takes, the values a parameter may have, and the problem bodies and
statuses it documents, a 503 among them while the data is being prepared. Each is a
behaviour schemathesis found wanting (its full run is in test_api_clients.py and
test_ogc.py) or cannot reach (a store never prepared); here each is checked by hand."""

import pytest

PROBLEM = "application/problem+json"


def problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    return body


# --- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/stats/grid2", "/collections", "/collections/grid2/items?limit=1",
                                  "/vocabulary", "/health", "/tiles/grid2.json"])
def test_a_key_the_service_does_not_know_is_refused_on_every_path(client, path):
    assert client.get(path).status_code == 200  # no key: anonymous, as before
    for headers in ({"X-API-Key": "gg_not-a-key"}, {"Authorization": "Bearer gg_not-a-key"}):
        body = problem(client.get(path, headers=headers), 401)
        assert "not known" in body["detail"] and "密钥" in body["detail"]
        assert "instance" not in body  # a refused request's path is not echoed


def test_no_key_an_empty_key_and_other_schemes_are_anonymous(client, api_keys):
    import base64

    assert client.get("/stats/grid2", headers={"X-API-Key": ""}).status_code == 200
    # schemes that carry no key of ours are anonymous; HTTP Basic carries one as its password (QGIS, GDAL),
    # so a Basic password the service does not know is refused like any unknown key
    assert client.get("/stats/grid2", headers={"Authorization": "Negotiate YIIBhgYGKwYBBQUC"}).status_code == 200
    assert client.get("/stats/grid2", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    basic = base64.b64encode(f"qgis:{api_keys['viewer']}".encode()).decode()
    assert client.get("/collections/addresses/items?limit=1",
                      headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert client.get("/collections/addresses/items", headers={"X-API-Key": ""}).status_code == 401
    assert client.get("/stats/grid2", headers={"X-API-Key": api_keys["viewer"]}).status_code == 200


def test_a_cached_tile_is_not_served_to_a_key_the_service_does_not_know(client, sample):
    import morecantile

    west, south, east, north = sample.grids.total_bounds
    tile = next(iter(morecantile.tms.get("WebMercatorQuad").tiles(west, south, east, north, [13])))
    path = f"/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt"
    assert client.get(path).status_code in (200, 204)  # rendered and cached: later ones take the fast path
    assert client.get(path).status_code in (200, 204)
    problem(client.get(path, headers={"X-API-Key": "gg_not-a-key"}), 401)


# --- methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, allowed", [
    ("OPTIONS", "/plans", "GET, POST"),             # GET and POST are two routes
    ("DELETE", "/plans/1/diff", "GET, POST"),
    ("PUT", "/plans/1/export", "GET, POST"),
    ("DELETE", "/collections", "GET"),
    ("POST", "/collections/grid2/items", "GET, HEAD"),
])
def test_a_method_a_path_does_not_take_is_a_405_problem_naming_every_one_it_does(client, method, path, allowed):
    r = client.request(method, path)
    body = problem(r, 405)
    assert r.headers["allow"] == allowed
    assert method in body["detail"] and allowed in body["detail"]


# --- parameters ---------------------------------------------------------------------------------------


def test_an_empty_kind_or_category_is_none_given(client):
    every = client.get("/coverage/areas", params={"minutes": 10}).json()
    assert client.get("/coverage/areas?minutes=10&kind=").json() == every
    some = client.get("/coverage/areas", params={"minutes": 10, "kind": "grid3_point"}).json()
    assert 0 < len(some["features"]) < len(every["features"])
    assert {f["properties"]["kind"] for f in some["features"]} == {"grid3_point"}
    assert client.get("/events/heat?category=").json() == client.get("/events/heat").json()
    assert client.get("/events/heat?category=&category=fire").json() == client.get("/events/heat?category=fire").json()
    for path, word in (("/coverage/areas?kind=palace", "kind"), ("/events/heat?category=theft", "category")):
        assert word in problem(client.get(path), 400)["detail"]


@pytest.mark.parametrize("query", ["to=0", "from=20250301", "from=2025-02-30", "to=2025-3-1", "from=",
                                   "from=2025-03-01T00:00:00"])
def test_days_are_dates_written_yyyy_mm_dd(client, query):
    body = problem(client.get(f"/events/heat?{query}"), 400)
    assert "YYYY-MM-DD" in body["detail"] and query.split("=")[0] in body["detail"]


def test_a_span_of_days_selects_its_events(client, sample):
    events = sample.events
    all_cells = client.get("/events/heat", params={"cell": 500}).json()
    spring = client.get("/events/heat", params={"cell": 500, "from": "2025-03-01", "to": "2025-06-01"}).json()
    reported = events["reported_at"].dt.tz_localize(None) if events["reported_at"].dt.tz else events["reported_at"]
    inside = ((reported >= "2025-03-01") & (reported < "2025-06-01")).sum()
    assert sum(c[2] for c in spring["cells"]) == inside < sum(c[2] for c in all_cells["cells"])


@pytest.mark.parametrize("path, word", [("/map/served/0.json", "minutes"), ("/coverage?minutes=7", "minutes"),
                                        ("/stats/grid2/breaks?field=band", "field"),
                                        ("/collections/grid2/items?crs=EPSG:3857", "crs"),
                                        ("/collections/grid2/items?bbox-crs=null", "bbox-crs"),
                                        ("/collections/grid2/items?filter-crs=gcj02&filter=code%3D%271%27",
                                         "filter-crs")])
def test_a_value_off_the_documented_list_is_refused(client, path, word):
    assert word in problem(client.get(path), 400)["detail"]


def test_an_empty_crs_is_the_default(client):
    plain = client.get("/collections/grid2/items?limit=2")
    empty = client.get("/collections/grid2/items?limit=2&crs=&bbox-crs=&filter-crs=")
    assert empty.status_code == 200 and empty.headers["content-crs"] == plain.headers["content-crs"]
    assert empty.json()["features"] == plain.json()["features"]


@pytest.mark.parametrize("path", ["/coverage?minutes=5&minutes=15", "/collections/grid2/items?code=1&code=2",
                                  "/stats/grid2/breaks?k=3&k=4"])
def test_a_single_valued_parameter_given_twice_is_refused(client, path):
    name = path.split("?")[1].split("=")[0]
    assert name in problem(client.get(path), 400)["detail"]


def test_assign_refuses_ids_that_do_not_pair_with_the_points(client):
    points = [[118.47, 24.80], [118.45, 24.78]]
    assert "ids" in problem(client.post("/assign", json={"points": points, "ids": ["a"]}), 422)["detail"]
    assert client.post("/assign", json={"points": points, "ids": ["a", "b"]}).json()["results"][1]["id"] == "b"
    problem(client.post("/assign", json={"points": [[118.47, 24.80, 3.0]]}), 400)  # not a [lon, lat] pair
    assert "crs" in problem(client.post("/assign", json={"points": points, "crs": "mars2000"}), 422)["detail"]


# --- the document ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(client):
    return client.get("/openapi.json").json()


def test_every_error_is_documented_as_a_problem(document):
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
    assert "HTTPValidationError" not in document["components"]["schemas"]  # validation answers 400, not 422
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "401" in answers, (method, path)  # a key the service does not know
            if operation.get("parameters") or operation.get("requestBody"):
                assert "400" in answers, (method, path)
            for status, answer in answers.items():
                if status >= "400":
                    assert list(answer["content"]) == [PROBLEM], (method, path, status)
                    assert answer["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            if "503" in answers:
                assert answers["503"]["headers"]["Retry-After"]["required"], (method, path)


def test_the_document_says_who_may_call(document):
    paths = document["paths"]
    public, planner = paths["/stats/{level}"]["get"], paths["/plans"]["post"]
    assert {} in public["security"] and "403" not in public["responses"]
    assert {} not in planner["security"] and planner["security"] and "403" in planner["responses"]
    assert {"404", "422"} <= set(planner["responses"]) and "409" in paths["/plans/{plan_id}/save"]["post"]["responses"]


def test_the_document_lists_what_a_parameter_may_be(document):
    paths = document["paths"]

    def parameter(path, name, method="get", part="schema"):
        return next(p for p in paths[path][method]["parameters"] if p["name"] == name).get(part)

    assert parameter("/map/served/{minutes}.json", "minutes")["enum"] == [5, 10, 15]
    assert parameter("/coverage", "minutes")["enum"] == [5, 10, 15]
    kinds = parameter("/coverage/areas", "kind")
    assert kinds["anyOf"][0]["items"]["enum"][:2] == ["", "grid2_station"]
    assert parameter("/events/heat", "from")["anyOf"][0]["format"] == "date"
    assert "band" not in parameter("/stats/{level}/breaks", "field")["enum"]
    assert "" in parameter("/collections/grid2/items", "crs")["anyOf"][0]["enum"]
    assert parameter("/tiles/{layer}/{z}/{x}/{y}.{ext}", "ext")["enum"] == ["mvt", "pbf"]
    # `kind=` is a form with nothing chosen: the document says these may be sent empty, and no other
    for path, name in (("/coverage/areas", "kind"), ("/events/heat", "category"), ("/collections/grid2/items", "crs")):
        assert parameter(path, name, part="allowEmptyValue") is True, (path, name)
    for path, name in (("/coverage", "minutes"), ("/events/heat", "from"), ("/search", "q")):
        assert parameter(path, name, part="allowEmptyValue") is None, (path, name)
    assert "text/html" in paths["/collections"]["get"]["responses"]["200"]["content"]
    assert "application/schema+json" in paths["/collections/{collection_id}/queryables"]["get"]["responses"]["200"][
        "content"]
    ids = [op["operationId"] for operations in paths.values() for op in operations.values()]
    assert len(ids) == len(set(ids))


def test_docstring_examples_of_the_service_run():
    import doctest

    import api.dependencies
    import api.encode
    import api.keys
    import api.problems

    for module in (api.problems, api.dependencies, api.encode, api.keys):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def test_every_items_request_the_document_allows_fits_the_http_servers_limit(document):
    """The HTTP server reads request targets up to features.MAX_TARGET bytes; past it the
    client gets the server's plain-text 400, not a problem. The longest values the document
    allows, at 12 bytes a character (four UTF-8 bytes, percent-encoded), stay within it."""
    from api.routes.features import MAX_TARGET

    for path, operations in document["paths"].items():
        if not path.endswith("/items"):
            continue
        longest = len(path)
        for parameter in operations["get"]["parameters"]:
            schema = parameter["schema"]
            branch = next((b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"), schema)
            if parameter["in"] != "query":
                continue
            if branch.get("type") == "string":
                assert "maxLength" in branch or "enum" in branch, (path, parameter["name"])
                chars = branch.get("maxLength") or max(len(v) for v in branch["enum"])
            else:
                chars = 25  # a number
            longest += len(parameter["name"]) + 2 + 12 * chars
        assert longest < MAX_TARGET, (path, longest)


# --- the statuses a deployment answers: 503 while the data is prepared, 429 past a rate limit ---------

VILLAGE = "350582106201"
CITY = "118.3,24.4,118.8,25.0"
"""A bbox over the whole sample: an items request the rate limit calls wide."""


def _service(sample_store, api_keys, tmp_path_factory, *, unprepared=False, **settings):
    """An in-process service on a copy of the sample store (the calls below start plans)."""
    import shutil

    from fastapi.testclient import TestClient

    import gridgeo.store
    from api import Settings, create_app

    path = tmp_path_factory.mktemp("contract-store") / "gridgeo.gpkg"
    shutil.copy(sample_store, path)
    if unprepared:
        with gridgeo.store.open(path) as store:
            store.drop_derived(before=store.version + 1)
            assert store.derived_versions() == []
    return TestClient(create_app(Settings(store=str(path), keys_file=api_keys["file"],
                                          imports_dir=str(tmp_path_factory.mktemp("contract-imports")),
                                          **settings)), raise_server_exceptions=False)


def _every_operation(client, sample, planner: dict) -> list[tuple[str, str, dict, dict]]:
    """Every operation of the service's document, each with a request it takes:
    (method, path, operation, the request's arguments). A plan and an upload are made
    first, so that their operations find them; publishing is left out (it would change
    the grids under the other calls, and reads the store alone)."""
    made = client.post("/plans", json={"name": "契约", "parent": VILLAGE}, headers=planner)
    assert made.status_code == 201, made.text
    pid = made.json()["plan"]["id"]
    plan = client.get(f"/plans/{pid}", headers=planner).json()
    working = {"assignment": plan["assignment"], "names": {u["code"]: u["name"] for u in plan["units"]}}
    grids = sample.grids[(sample.grids["level"] == "grid2") & sample.grids["code"].str.startswith(VILLAGE)]
    upload = {"file": ("二级网格.geojson", grids.to_json(drop_id=True).encode("utf-8"), "application/geo+json")}
    uploaded = client.post("/imports", files=upload, headers=planner)
    assert uploaded.status_code == 201, uploaded.text
    values = {"collection_id": "grid2", "feature_id": grids["code"].iloc[0], "layer": "grid2", "z": 0, "x": 0,
              "y": 0, "ext": "mvt", "code": VILLAGE, "level": "grid2", "minutes": 5, "plan_id": pid,
              "import_id": uploaded.json()["id"]}
    bodies = {"/assign": {"points": [[118.47, 24.80]]}, "/plans": {"name": "又一个", "parent": VILLAGE},
              "/plans/{plan_id}/edit": {**working, "op": "renumber"}, "/plans/{plan_id}/diff": working,
              "/plans/{plan_id}/export": working, "/imports/{import_id}/check": {}, "/imports/{import_id}/plans":
              {"name": "导入"}, "/plans/{plan_id}/save": {**working, "base": plan["assignment"],
                                                       "base_revision": plan["revision"]},
              "/siting/propose": {"unit": VILLAGE, "k": 1}, "/siting/evaluate": {"unit": VILLAGE, "sites": []}}
    calls = []
    for path, methods in client.get("/openapi.json").json()["paths"].items():
        for method, operation in methods.items():
            if path == "/plans/{plan_id}/publish":
                continue
            query = {"q": "晋江"} if path == "/search" else {"bbox": CITY} if path.endswith("/items") else \
                {"boundaries": "警格"} if path.startswith("/crosswalk") else None
            calls.append((method, path, operation, {
                "method": method.upper(), "url": path.format(**values), "params": query, "json": bodies.get(path),
                "files": upload if path == "/imports" else None}))
    return calls


def test_503_is_documented_exactly_where_an_operation_reads_the_data_being_prepared(
        sample_store, api_keys, tmp_path_factory, sample):
    """On a store never prepared, and not being prepared (GRIDGEO_PREPARE=off), every
    operation called with values it takes: those that answer 503 (with Retry-After and
    ``preparing``) are those whose document says they may."""
    planner = {"X-API-Key": api_keys["planner"]}
    answered = {}
    with _service(sample_store, api_keys, tmp_path_factory, unprepared=True, prepare="off") as client:
        # the workbench and the imports read the store itself: they do not wait for the derived data
        for method, path, operation, request in _every_operation(client, sample, planner):
            r = client.request(**request, headers=planner)
            answered[method, path] = r.status_code
            documented = "503" in operation["responses"]
            assert (r.status_code == 503) == documented, (method, path, r.status_code, r.text[:300])
            if documented:
                assert problem(r, 503)["preparing"] is True and int(r.headers["retry-after"]) > 0
    # the calls reached each operation's work, not a refusal of the request
    assert answered["get", "/stats/{level}"] == 503 and answered["post", "/plans/{plan_id}/diff"] == 200
    assert answered["get", "/collections/grid2/items"] == answered["get", "/plans/{plan_id}/export"] == 200
    assert answered["get", "/imports/{import_id}"] == 200 and answered["post", "/imports/{import_id}/plans"] == 201
    assert answered["post", "/siting/propose"] == answered["post", "/siting/evaluate"] == 503


def test_429_is_documented_exactly_where_a_rate_limit_holds(sample_store, api_keys, tmp_path_factory, sample):
    """With every rate limit at one request an hour, every operation called twice without a
    key: those refused the second time (429, Retry-After) are those whose document says so;
    and with the limits off, the document says it of none."""
    planner = {"X-API-Key": api_keys["planner"]}
    hour = "1/3600"
    answered = {}
    with _service(sample_store, api_keys, tmp_path_factory, rate_assign=hour, rate_areas=hour,
                  rate_items=hour, rate_print=hour) as client:
        for method, path, operation, request in _every_operation(client, sample, planner):
            first, second = (client.request(**request) for _ in range(2))
            answered[method, path] = first.status_code, second.status_code
            if "429" not in operation["responses"]:
                assert 429 not in answered[method, path], (method, path)
                continue
            assert second.status_code == 429, (method, path, second.text[:300])
            seconds = int(second.headers["retry-after"])
            assert 0 < seconds <= 3600 and (method == "head" or problem(second, 429)["retry_after"] == seconds)
    assert answered["post", "/assign"] == (200, 429) and answered["get", "/coverage/areas"] == (200, 429)
    assert answered["get", "/collections/grid2/items"][1] == 429 and answered["get", "/tiles"] == (200, 200)
    assert answered["get", "/export/map.png"] == (200, 429) and answered["get", "/export/figures.xlsx"] == (200, 200)
    with _service(sample_store, api_keys, tmp_path_factory) as client:  # the suite's: limits off
        paths = client.get("/openapi.json").json()["paths"]
        assert not [path for path, ops in paths.items() for op in ops.values() if "429" in op["responses"]]
