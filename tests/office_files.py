"""Files written the way grid offices write them, made from the sample by the tests.

Each function writes one file into a folder and returns its path. The point
is the way they are written, not what they hold: GBK shapefiles with no .cpg
and no language driver id, Gauss-Krüger eastings with their zone prefix,
codes in numeric .dbf fields, Chinese field names and level labels, Excel
sheets with number cells, CSV exported by Excel, coordinates from Amap and
Baidu.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj

from gridgeo import crs as gcrs

LEVEL_LABELS = {"town": "镇街", "village": "村社", "grid1": "一级网格", "grid2": "二级网格", "grid3": "三级网格"}
KIND_LABELS = {"grid2_station": "二级网格服务站", "grid3_point": "三级网格服务点", "park_station": "园区服务站",
               "campus_station": "校园服务站", "police_station": "警格服务站", "community_centre": "党群服务中心"}


def digest(path) -> str:
    """sha256 of a file, or of every file of a shapefile."""
    path = Path(path)
    parts = sorted(path.parent.glob(path.stem + ".*")) if path.suffix.lower() == ".shp" else [path]
    h = hashlib.sha256()
    for part in parts:
        h.update(part.name.encode())
        h.update(part.read_bytes())
    return h.hexdigest()


def grid_shapefile(folder, grids, *, name="网格.shp", epsg=4527, prj_epsg=None):
    """A GBK shapefile as an office's desktop GIS writes it: no .cpg, no language
    driver id, projected in a zone-prefixed Gauss-Krüger system (EPSG:4527, CGCS2000
    zone 39: eastings 39xxxxxx), Chinese field names, level labels, and every code in
    a numeric field (GDAL writes 64-bit integers as N(19,0))."""
    path = Path(folder) / name
    frame = gpd.GeoDataFrame({
        "网格编码": grids["code"].astype("int64").to_numpy(),
        "网格名称": grids["name"].to_numpy(),
        "上级编码": pd.to_numeric(grids["parent"].replace("", "0")).astype("int64").to_numpy(),
        "网格等级": grids["level"].map(LEVEL_LABELS).to_numpy(),
    }, geometry=grids.geometry.to_crs(epsg).to_numpy(), crs=epsg)
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    dbf[29] = 0
    path.with_suffix(".dbf").write_bytes(dbf)
    if prj_epsg is not None:  # declared in another system than the coordinates are in
        path.with_suffix(".prj").write_text(pyproj.CRS.from_epsg(prj_epsg).to_wkt("WKT1_ESRI"))
    return path


def station_table(stations, system="gcj02", *, headers=("站点编号", "名称", "类型", "所属网格", "经度", "纬度"),
                  location=False):
    """Stations as a sheet collected on a web map: Chinese headers and kinds,
    coordinates in `system` rounded to 6 decimals as the map's picker gives them."""
    moved = gcrs.convert(stations, "cgcs2000", system) if system not in ("wgs84", "cgcs2000") else stations
    x, y = moved.geometry.x.round(6), moved.geometry.y.round(6)
    columns = {headers[0]: stations["station_id"].to_numpy(), headers[1]: stations["name"].to_numpy(),
               headers[2]: stations["kind"].map(KIND_LABELS).to_numpy(), headers[3]: stations["grid_code"].to_numpy()}
    if location:
        columns[headers[4]] = [f"{a:.6f},{b:.6f}" for a, b in zip(x, y)]
    else:
        columns[headers[4]], columns[headers[5]] = x.to_numpy(), y.to_numpy()
    return pd.DataFrame(columns)


def excel_mangled_csv(folder, stations, name="站点_Excel导出.csv"):
    """A station sheet saved as CSV by Excel after its 16-digit grid codes were
    typed as numbers: they come out as 3.50582106216E+15."""
    table = station_table(stations)
    table["所属网格"] = table["所属网格"].map(lambda c: f"{float(c):.11E}")
    path = Path(folder) / name
    table.to_csv(path, index=False, encoding="gbk")
    return path


BEIJING_LABELS = {"town": "街道", "village": "社区", "grid2": "单元网格"}


def beijing_grids(grids):
    """The sample recoded as Beijing's unit grids: towns as streets (9 digits),
    villages as communities (12), level-2 grids as unit grids of 15 digits,
    numbered west to east, north to south within each community. Returns the
    grids (code, name, level, parent as Beijing's) and old -> new codes."""
    from gridgeo import crs as g
    from gridgeo.schema import BEIJING_SCHEME, number_units

    keep = grids[grids["level"].isin(["town", "village", "grid2"])].copy()
    rename = dict(zip(keep["code"], keep["code"]))
    metric = g.metric_crs(keep)
    for village, units in keep[keep["level"] == "grid2"].groupby(keep["code"].str[:12]):
        codes = number_units(units.geometry.to_crs(metric).array, village, "grid", scheme=BEIJING_SCHEME)
        rename.update(dict(zip(units["code"], codes)))
    out = keep.assign(code=keep["code"].map(rename),
                      level=keep["level"].map({"town": "street", "village": "community", "grid2": "grid"}))
    out["parent"] = [BEIJING_SCHEME.parent_code(c) for c in out["code"]]
    out["name"] = [n if lv != "grid" else f"{n[:n.index('第')] if '第' in n else n}单元网格{c[-3:]}"
                   for n, lv, c in zip(out["name"], out["level"], out["code"])]
    return out.reset_index(drop=True), rename


def beijing_shapefile(folder, grids, name="北京单元网格.shp"):
    """Beijing's unit grids as a district office exports them: a GBK shapefile with
    单元网格编码 / 名称 / 级别 (街道, 社区, 单元网格) and CGCS2000 lon/lat."""
    path = Path(folder) / name
    labels = {"street": "街道", "community": "社区", "grid": "单元网格"}
    frame = gpd.GeoDataFrame({"单元网格编码": grids["code"].to_numpy(), "名称": grids["name"].to_numpy(),
                              "级别": grids["level"].map(labels).to_numpy()},
                             geometry=grids.geometry.to_numpy(), crs=4490)
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    return path
