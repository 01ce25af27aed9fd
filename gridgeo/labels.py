"""Where a map writes each unit's name.

The one map and the workbench write a unit's name at the centre of its
largest inscribed circle, which is always inside the unit, however concave;
the circle's radius says how much room the label has.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme, check

__all__ = ["label_points"]


def label_points(grids, *, levels=None, tolerance_m: float = 1.0, source=None,
                 scheme: CodeScheme = DEFAULT_SCHEME, metric=None) -> gpd.GeoDataFrame:
    """Where each unit's name is written: the centre of its largest inscribed circle.

    A centroid can fall outside a concave unit (a U-shaped village); the
    centre of the maximum inscribed circle (the pole of inaccessibility) is
    always inside, as far from the boundary as possible.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid units (``code``, ``name``, ``level``, ``parent``, polygons).
    levels : list of str, optional
        Only these levels (default every level present).
    tolerance_m : float, default 1.0
        How close to the true centre the search stops, in metres.
    source : optional
        The coordinate system of `grids` if it does not say, as in
        :func:`gridgeo.crs.to_storage`.
    metric : pyproj.CRS, optional
        The metric CRS the circles are found in (default
        :func:`gridgeo.crs.metric_crs` of the units given): give that of a whole
        level to find the labels of some of its units as the whole level would.

    Returns
    -------
    GeoDataFrame
        ``code``, ``name``, ``level``, ``radius_m`` (the inscribed circle's
        radius: how much room the label has) and the point, in EPSG:4490, in
        the order of `grids`.

    Examples
    --------
    >>> from gridgeo import sample
    >>> grids = sample.load().grids
    >>> points = label_points(grids, levels=["village"])
    >>> villages = grids.set_index("code").geometry.loc[points["code"]]
    >>> len(points), bool(points.within(villages, align=False).all())
    (28, True)
    """
    frame = _units(grids, levels, source=source, name="grids", scheme=scheme)
    metric = gcrs.metric_crs(frame) if metric is None else metric
    geoms = frame.geometry.to_crs(metric).array
    spokes = shapely.maximum_inscribed_circle(np.asarray(geoms), tolerance_m)
    centres = gpd.GeoSeries(shapely.get_point(spokes, 0), crs=metric).to_crs(gcrs.STORAGE_CRS)
    out = pd.DataFrame({"code": frame["code"].to_numpy(), "name": frame["name"].to_numpy(),
                        "level": frame["level"].to_numpy(), "radius_m": shapely.length(spokes)})
    return gpd.GeoDataFrame(out, geometry=centres.to_numpy(), crs=gcrs.STORAGE_CRS)


def _units(grids, levels, *, source, name, scheme):
    frame = check(gcrs.to_storage(grids, source=source, name=name), "grids", name=name, scheme=scheme)
    if levels is not None:
        unknown = sorted(set(levels) - set(scheme.names))
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}: use some of {list(scheme.names)}")
        frame = frame[frame["level"].isin(levels)]
    return frame.reset_index(drop=True)
