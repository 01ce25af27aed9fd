"""What the OpenAPI document promises, the service does: the keys it refuses, the
methods a path takes, the values a parameter may have, and the problem bodies and
statuses it documents. Each is a behaviour schemathesis found wanting (its full run is
in test_api_clients.py and test_ogc.py); here each is checked by hand over HTTP."""

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
    assert client.get("/stats/grid2", headers={"X-API-Key": ""}).status_code == 200
    # a proxy's own credentials are not a key of ours
    assert client.get("/stats/grid2", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 200
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

