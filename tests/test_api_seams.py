"""The service's seams: api/ is wiring over gridgeo, its routes share one encoder and one
module of parameters, and the key store loads without the web framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROUTES = Path(__file__).resolve().parent.parent / "api" / "routes"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            out.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def test_no_route_module_imports_another_or_a_private_name():
    found = []
    for path in sorted(ROUTES.glob("*.py")):
        for module, names in _imports(path):
            if module.startswith("api.routes") or (module == "api" and "routes" in names):
                found.append(f"{path.name}: imports {module} {names}")
            private = [n for n in names if n.startswith("_") and n != "__future__"]
            if private and (module.startswith("gridgeo") or module.startswith("api")):
                found.append(f"{path.name}: imports private {private} from {module}")
    assert not found, "\n".join(found)


def test_the_key_store_loads_without_the_web_framework():
    code = ("import sys, api.keys; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'pydantic', 'uvicorn')); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    cli = subprocess.run([sys.executable, "-c", "import sys, gridgeo.cli.keys; "
                          "sys.exit(1 if 'fastapi' in sys.modules else 0)"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert cli.returncode == 0, cli.stderr


def test_the_encoder_is_the_one_json():
    import numpy as np
    import pandas as pd
    import shapely

    from api.encode import PRECISION, feature_collection, plain, records

    assert plain({"a": np.float64("nan"), "b": (np.int32(2), pd.NA)}) == {"a": None, "b": [2, None]}
    frame = pd.DataFrame({"code": ["1"], "share": [0.123456]}).set_index("code")
    assert records(frame) == [{"code": "1", "share": 0.1235}]
    import geopandas as gpd

    g = gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.Point(118.123456789, 24.1)], crs=4490)
    fc = feature_collection(g, id_column="code")
    assert fc["features"][0]["id"] == "1"
    assert fc["features"][0]["geometry"]["coordinates"][0] == round(118.123456789, PRECISION)


def test_the_docs_stand_alone():
    """Nothing in the repository sends a reader to a file outside it; the design is in docs/."""
    root = Path(__file__).resolve().parent.parent
    assert (root / "docs" / "design.md").exists() and "docs/design.md" in (root / "README.md").read_text("utf-8")
    outside = []
    for pattern in ("*.md", "gridgeo/**/*.py", "api/**/*.py", "docs/**/*.md", "notebooks/*.ipynb"):
        for path in root.glob(pattern):
            if "../shared" in path.read_text("utf-8", errors="replace"):
                outside.append(str(path.relative_to(root)))
    assert not outside, outside


def test_the_geometries_written_as_geos_wrote_them_read_back_as_the_encoders_own():
    """``feature_collection(raw=True)`` hands GEOS's GeoJSON text to ``dumps`` as it is: the answer
    reads back (json, and GDAL as a client) to the same features as the dict path, for every kind
    of geometry, a missing one, and text that looks like the splice's own marks."""
    import json

    import geopandas as gpd
    import pyogrio
    import shapely

    from api.encode import dumps, feature_collection

    shapes = [shapely.Point(118.5765328, 24.819604), shapely.box(118.1, 24.1, 118.2, 24.2).buffer(0.01),
              shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
              shapely.LineString([(118.1, 24.1), (118.3, 24.2)]), None, shapely.Polygon()]
    names = ["塘内社区", '"@gridgeo-fragment-0"', "a\"b", "x", "y", "z"]
    g = gpd.GeoDataFrame({"code": list("123456"), "name": names, "share": [0.1, None, 2, 3, 4, 5]},
                         geometry=shapes, crs=4490)
    plain = dumps(feature_collection(g, id_column="code"))
    spliced = dumps(feature_collection(g, id_column="code", raw=True))
    assert json.loads(spliced) == json.loads(plain)
    assert json.loads(spliced)["features"][1]["properties"]["name"] == '"@gridgeo-fragment-0"'
    read = pyogrio.read_dataframe(spliced.encode(), layer=None)
    assert read["name"].tolist() == names
    present = ~(g.geometry.isna() | g.geometry.is_empty).to_numpy()
    assert shapely.equals_exact(read.geometry[present].values, g.geometry[present].values, tolerance=1e-7).all()


def test_the_service_starts_without_scipy():
    """scipy (0.2-0.6 s to import) is imported where it is used, not when the service starts: its first
    answer after a restart waits for nothing it does not need."""
    code = ("import sys, api.main; bad = sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'); "
            "print(bad[:5]); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
