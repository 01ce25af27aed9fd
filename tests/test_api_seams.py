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
