"""gridgeo: geospatial analysis for community grid governance (网格化服务管理).

The library takes and returns GeoDataFrames. Its modules, one per idea:

- :mod:`gridgeo.schema`     levels, codes and the columns of every layer
- :mod:`gridgeo.crs`        CGCS2000, Gauss-Krüger zones, GCJ-02 and BD-09
- :mod:`gridgeo.io`         reading and writing GeoJSON, GeoPackage, Shapefile, tables
- :mod:`gridgeo.sample`     realistic, reproducible sample data
- :mod:`gridgeo.validation` checks of a grid hierarchy (``gridgeo.validate``, ``gridgeo.repair``)
- :mod:`gridgeo.assignment` points to nested grids (``gridgeo.assign``)
- :mod:`gridgeo.stats`      figures per unit, rolled up the hierarchy
- :mod:`gridgeo.events`     events over time: indicators per unit and period, trends, rankings, hot spots
- :mod:`gridgeo.disclosure` public figures that never count fewer than k (the minimum count)
- :mod:`gridgeo.network`, :mod:`gridgeo.coverage`, :mod:`gridgeo.siting`
- :mod:`gridgeo.store`      GeoPackage and PostGIS stores with versioned plans
- :mod:`gridgeo.plan`       replanning: edits, impact, diff, automatic division, the pre-publish report
- :mod:`gridgeo.crosswalk`  other boundaries (police precincts, catchments) against the grids;
                            ``gridgeo.crosswalk(grids, other)`` is its main verb
- :mod:`gridgeo.review`     roles, scopes and the review before publish: who may do what to a plan
- :mod:`gridgeo.tiles`, :mod:`gridgeo.maps`

Submodules are imported on first use, so ``import gridgeo`` stays light.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "validate": "validation",
    "repair": "validation",
    "assign": "assignment",
    "AssignIndex": "assignment",
}
_SUBMODULES = {
    "schema", "crs", "io", "sample", "validation", "assignment", "stats", "network",
    "coverage", "siting", "store", "plan", "tiles", "maps", "disclosure", "events",
    "review", "crosswalk",
}


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f"gridgeo.{_EXPORTS[name]}"), name)
    elif name in _SUBMODULES:
        value = import_module(f"gridgeo.{name}")
    else:
        raise AttributeError(f"module 'gridgeo' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
