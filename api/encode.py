"""One encoder for every answer: plain values, records and GeoJSON feature collections.

Every route hands its frames and values to these functions, so the service
speaks one JSON: numpy and pandas scalars become Python values, NaN, NA and
NaT become ``null``, times become ISO 8601 text, and coordinates are rounded
to :data:`PRECISION` decimals (1e-7 degree, about a centimetre). Large
collections write GEOS's text of each geometry as it is (:class:`Fragment`),
which may spell such a number with 17 significant digits
(``24.819604000000002``): the same double, read back the same.

Examples
--------
>>> import numpy as np, pandas as pd
>>> plain({"n": np.int64(3), "share": np.float64("nan"), "pair": (1, np.bool_(True))})
{'n': 3, 'share': None, 'pair': [1, True]}
>>> records(pd.DataFrame({"code": ["1"], "households": [412.123456]}))
[{'code': '1', 'households': 412.1235}]
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import secrets

import numpy as np
import pandas as pd
import shapely

__all__ = ["PRECISION", "FIGURE_DIGITS", "plain", "records", "table_records", "feature_collection", "dumps",
           "Fragment"]

PRECISION = 7
"""Decimals of a coordinate in every GeoJSON answer (1e-7 degree, about 1 cm)."""

FIGURE_DIGITS = 4
"""Decimals of a figure (a share, a rate) in records."""


def plain(value, *, digits: int | None = None):
    """``value`` made of JSON-ready Python values, recursively.

    Parameters
    ----------
    value : any
        Dicts, lists, tuples, arrays, numpy and pandas scalars, timestamps.
    digits : int, optional
        Round floats to this many decimals.
    """
    if isinstance(value, dict):
        return {str(k): plain(v, digits=digits) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [plain(v, digits=digits) for v in list(value)]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return None
        return round(number, digits) if digits is not None else number
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    return value


def records(frame: pd.DataFrame, *, digits: int | None = FIGURE_DIGITS) -> list[dict]:
    """The rows of a table as JSON-ready dicts (a ``code`` index becomes a column)."""
    if frame.index.name is not None and frame.index.name not in frame.columns:
        frame = frame.reset_index()
    frame = pd.DataFrame(frame.drop(columns=[c for c in frame.columns if c == "geometry"]))
    return [plain(row, digits=digits) for row in frame.to_dict("records")]


def table_records(frame: pd.DataFrame, *, digits: int = FIGURE_DIGITS) -> list[dict]:
    """:func:`records` of a large table of plain columns (numbers, flags, text), a column at a time.

    The same JSON as :func:`records` (NaN and NA as ``null``, floats rounded), made
    column by column with numpy instead of value by value: for tables of tens of
    thousands of rows (indicators per unit and period).

    Examples
    --------
    >>> frame = pd.DataFrame({"code": ["1", "2"], "n": pd.array([3, None], dtype="Int64"),
    ...                       "rate": [0.123456, np.nan], "flag": [True, False]})
    >>> table_records(frame) == records(frame)
    True
    """
    columns = {}
    for name in frame.columns:
        column = frame[name]
        missing = column.isna().to_numpy().copy()
        if pd.api.types.is_bool_dtype(column.dtype) and not missing.any():
            values = column.to_numpy(dtype=bool).tolist()
        elif pd.api.types.is_integer_dtype(column.dtype):
            values = column.fillna(0).to_numpy(dtype=np.int64).tolist()
        elif pd.api.types.is_float_dtype(column.dtype):
            numbers = column.to_numpy(dtype=float, na_value=np.nan)
            missing |= ~np.isfinite(numbers)
            values = np.round(np.where(missing, 0.0, numbers), digits).tolist()
        elif pd.api.types.is_string_dtype(column.dtype):
            values = column.to_numpy(dtype=object, na_value=None).tolist()
        else:
            values = [plain(v, digits=digits) for v in column.tolist()]
        if missing.any():
            values = [None if m else v for v, m in zip(values, missing.tolist())]
        columns[str(name)] = values
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


class Fragment:
    """JSON text already written (a geometry from GEOS's GeoJSON writer), which :func:`dumps` puts
    into its answer as it is instead of reading it into Python objects and writing it again."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Fragment({self.text[:40]!r})"


def feature_collection(frame, properties=None, *, id_column: str | None = None, geometries=None,
                       digits: int | None = FIGURE_DIGITS, raw: bool = False) -> dict:
    """A GeoJSON FeatureCollection of a GeoDataFrame (EPSG:4490 longitude/latitude).

    Parameters
    ----------
    frame : GeoDataFrame or None
        None or empty gives an empty collection.
    properties : list of str, optional
        The columns to carry (default: every column but the geometry).
    id_column : str, optional
        The column whose value is each feature's ``id``.
    geometries : array of shapely geometries, optional
        The geometries to write instead of the frame's (already transformed
        to an output coordinate system).
    digits : int, optional
        Decimals of float properties.
    raw : bool, default False
        Each geometry as a :class:`Fragment` of GEOS's text, for :func:`dumps` to write as it
        is (several times faster for large polygons); False: as a dict, for anything else that
        reads or encodes the collection.
    """
    if frame is None or len(frame) == 0:
        return {"type": "FeatureCollection", "features": []}
    geoms = np.asarray(frame.geometry.array if geometries is None else geometries)
    geoms = shapely.transform(geoms, lambda c: np.round(c, PRECISION))
    columns = [c for c in frame.columns if c != frame.geometry.name] if properties is None else \
        [c for c in properties if c in frame.columns]
    rows = records(pd.DataFrame(frame[columns]).reset_index(drop=True), digits=digits)
    features = []
    for row, text in zip(rows, shapely.to_geojson(geoms)):
        feature = {"type": "Feature"}
        if id_column is not None:
            feature["id"] = row.get(id_column)
        feature["geometry"] = (Fragment(text) if raw else json.loads(text)) if text else None
        feature["properties"] = row
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def dumps(body) -> str:
    """Compact JSON text, Chinese kept as it is; a :class:`Fragment` written as it is.

    Examples
    --------
    >>> dumps({"name": "塘内", "geometry": Fragment('{"type":"Point","coordinates":[1,2]}')})
    '{"name":"塘内","geometry":{"type":"Point","coordinates":[1,2]}}'
    """
    fragments: list[str] = []
    token = None

    def hold(value):
        nonlocal token
        if not isinstance(value, Fragment):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        token = token or f"@gridgeo-fragment-{secrets.token_hex(8)}-"  # no text of the body can hold it
        fragments.append(value.text)
        return f"{token}{len(fragments) - 1}"

    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=hold)
    if not fragments:
        return text
    return re.sub(f'"{token}(\\d+)"', lambda m: fragments[int(m.group(1))], text)
