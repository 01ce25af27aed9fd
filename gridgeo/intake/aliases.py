"""The names offices give their columns and values, and what they mean in gridgeo's schema.

Every table here is data, not logic: a column name or value found in a file is
normalised (:func:`normal`: Unicode NFKC, so full-width letters and brackets
become half-width; lower case; spaces, underscores, hyphens and brackets
removed) and looked up. The first alias that matches wins, so the lists go
from the most specific name to the most general one.
"""

from __future__ import annotations

import re
import unicodedata

from gridgeo.schema import EVENT_CATEGORIES, EVENT_STATUSES, ROSTER_ROLE_ALIASES, STATION_KINDS, CodeScheme

_DROP = re.compile(r"[\s_\-()（）\[\]【】:：.·/\\]+")


def normal(text) -> str:
    """A column name or value as it is compared: NFKC, lower case, no spaces,
    underscores, hyphens, brackets or separators.

    Examples
    --------
    >>> normal(" 网格_编码 "), normal("ＧＲＩＤ－ＣＯＤＥ"), normal("村（社区）")
    ('网格编码', 'gridcode', '村社区')
    """
    return _DROP.sub("", unicodedata.normalize("NFKC", str(text)).strip().lower())


# --- columns ----------------------------------------------------------------------

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "grids": {
        "code": ("code", "网格编码", "网格代码", "网格编号", "网格id", "gridcode", "gridid", "wgbm", "wgbh",
                 "单元网格编码", "单元网格代码", "区划代码", "区划编码", "行政区划代码", "统计用区划代码", "adcode",
                 "单位编码", "编码", "代码", "编号", "bm", "dm"),
        "name": ("name", "网格名称", "网格名", "单元网格名称", "区划名称", "名称", "名字", "wgmc", "mc"),
        "parent": ("parent", "上级编码", "上级代码", "上级网格编码", "父级编码", "父编码", "父级代码",
                   "所属村社编码", "所属社区编码", "所属村居编码", "所属村编码", "所属镇街编码", "所属上级编码",
                   "parentcode", "parentid", "pcode", "sjbm", "sjdm"),
        "level": ("level", "网格等级", "网格层级", "网格级别", "层级", "级别", "等级", "grade", "wgdj", "jb"),
        "workers": ("workers", "网格员人数", "网格员数", "网格员数量", "专职网格员数", "网格员"),
    },
    "stations": {
        "station_id": ("stationid", "站点编号", "站点编码", "站点代码", "服务站编号", "服务站编码", "服务点编号",
                       "id", "编号", "编码", "zdbh"),
        "name": ("name", "站点名称", "服务站名称", "服务点名称", "站名", "名称", "名字", "zdmc"),
        "kind": ("kind", "站点类型", "服务站类型", "站点类别", "类型", "类别", "type"),
        "grid_code": ("gridcode", "所属网格编码", "所属网格代码", "所属网格", "网格编码", "网格代码", "网格编号",
                      "grid", "ssgw", "sswg"),
    },
    "addresses": {
        "addr_id": ("addrid", "地址编码", "地址编号", "标准地址编码", "标准地址编号", "门牌编码", "地址id",
                    "id", "编号", "编码"),
        "address": ("address", "标准地址", "详细地址", "地址名称", "地址", "门牌地址", "dz"),
        "households": ("households", "户数", "实有户数", "住户数", "hs"),
        "population": ("population", "人口", "人口数", "实有人口", "实有人口数", "人数", "rk"),
        "units": ("units", "单位数", "实有单位", "实有单位数", "单位数量"),
        "grid_code": ("gridcode", "所属网格编码", "所属网格", "网格编码"),
    },
    "events": {
        "event_id": ("eventid", "事件编号", "事件编码", "案件编号", "案卷编号", "工单编号", "id", "编号", "编码"),
        "category": ("category", "事件类型", "事件类别", "事件分类", "案件类型", "案件类别", "类型", "类别", "大类"),
        "status": ("status", "事件状态", "办理状态", "处理状态", "案件状态", "状态"),
        "reported_at": ("reportedat", "上报时间", "报告时间", "发生时间", "登记时间", "受理时间", "创建时间"),
        "filed_at": ("filedat", "立案时间"),
        "dispatched_at": ("dispatchedat", "派遣时间", "派单时间"),
        "handled_at": ("handledat", "处置时间", "处理时间", "处置完成时间"),
        "verified_at": ("verifiedat", "核查时间", "核实时间"),
        "closed_at": ("closedat", "办结时间", "结案时间", "关闭时间", "完成时间"),
        "grid_code": ("gridcode", "所属网格编码", "所属网格", "网格编码"),
    },
    "roads": {
        "road_id": ("roadid", "道路编号", "道路编码", "编号", "编码", "id"),
        "name": ("name", "道路名称", "路名", "名称"),
        "class": ("class", "道路等级", "道路类型", "等级", "fclass", "highway"),
    },
    "roster": {
        "grid_code": ("gridcode", "网格编码", "网格代码", "网格编号", "所属网格编码", "所属网格", "网格"),
        "name": ("name", "姓名", "人员姓名", "名字", "xm"),
        "role": ("role", "职务", "岗位", "职务岗位", "职务/岗位", "角色", "身份", "职位"),
        "phone": ("phone", "联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "lxdh"),
    },
    "boundaries": {
        "boundary_id": ("boundaryid", "precinctid", "警格编号", "警格编码", "警格代码", "警务网格编号",
                        "学区编号", "学区编码", "区域编号", "区域编码", "片区编号", "id", "编号", "编码", "代码",
                        "code", "bm", "dm"),
        "name": ("name", "警格名称", "警格名", "警务网格名称", "学区名称", "区域名称", "片区名称", "名称", "名字",
                 "mc"),
    },
}
"""For each layer kind, each schema column and the names offices give it."""

CODE_COLUMNS = ("code", "parent", "grid_code", "station_id", "addr_id", "event_id", "road_id", "boundary_id",
                "phone")
"""Columns holding codes or ids: read as the exact text in the file."""

TIME_COLUMNS = ("reported_at", "filed_at", "dispatched_at", "handled_at", "verified_at", "closed_at")
COUNT_COLUMNS = ("households", "population", "units", "workers")

# coordinate columns: (longitude names, latitude names, the system they imply or None)
COORDINATES = (
    (("百度经度", "bd经度", "bdlng", "bdlon", "bd09lng", "bd09lon", "baidulng", "baidulon"),
     ("百度纬度", "bd纬度", "bdlat", "bd09lat", "baidulat"), "bd09"),
    (("高德经度", "gcj经度", "gcjlng", "gcjlon", "gcj02lng", "gcj02lon", "amaplng", "amaplon",
      "腾讯经度", "txlng"),
     ("高德纬度", "gcj纬度", "gcjlat", "gcj02lat", "amaplat", "腾讯纬度", "txlat"), "gcj02"),
    (("wgs84经度", "gps经度", "wgslng", "wgslon", "wgs84lng", "wgs84lon"),
     ("wgs84纬度", "gps纬度", "wgslat", "wgs84lat"), "wgs84"),
    (("经度", "lng", "lon", "long", "longitude", "x", "x坐标", "东经", "point_x", "pointx"),
     ("纬度", "lat", "latitude", "y", "y坐标", "北纬", "point_y", "pointy"), None),
)
LOCATION = ("location", "坐标", "经纬度", "位置坐标", "lnglat", "lonlat")
"""A single "lng,lat" column, as Amap's web services return it."""


# --- file names -------------------------------------------------------------------

FILE_KINDS = (
    ("events", ("event", "事件", "案件", "工单", "案卷")),
    ("stations", ("station", "站点", "服务站", "服务点", "驿站")),
    ("addresses", ("address", "addr", "地址", "门牌", "一标")),
    ("roads", ("road", "道路", "路网", "街巷")),
    ("roster", ("roster", "花名册", "人员名单", "网格员名单", "名单", "通讯录")),
    ("boundaries", ("precinct", "警格", "警务网格", "学区", "catchment")),
    ("grids", ("grid", "网格", "镇街", "村社", "村居", "社区", "区划", "boundary", "边界")),
)
"""Words in a file's name that say which layer it holds, tried in this order."""

BOUNDARY_SETS = (("警格", ("precinct", "警格", "警务网格")), ("学区", ("学区", "catchment")))
"""The boundary set a file's name implies when the caller names none (``precincts.shp``: 警格)."""


# --- values -------------------------------------------------------------------------

_LEVEL_WORDS = {
    # by position among the scheme's levels that end in a number: "一级网格" is the first grid level
    1: ("一级网格", "1级网格", "一级", "1级", "网格一级", "一级网格单元", "grid1", "level1", "1"),
    2: ("二级网格", "2级网格", "二级", "2级", "网格二级", "grid2", "level2", "2"),
    3: ("三级网格", "3级网格", "三级", "3级", "网格三级", "grid3", "level3", "3"),
}

_LEVEL_EXTRA = {
    "town": ("镇街", "镇", "街道", "乡", "乡镇", "镇街道", "乡镇街道", "镇（街道）", "街镇", "town", "street",
             "township", "subdistrict"),
    "village": ("村社", "村", "社区", "村居", "村（社区）", "行政村", "村委会", "居委会", "village", "community"),
    "street": ("街道", "镇街", "街乡", "乡镇", "street", "subdistrict"),
    "community": ("社区", "村社", "村", "居委会", "community", "village"),
    "grid": ("单元网格", "网格", "万米单元网格", "grid", "unitgrid"),
    "prefecture": ("地级市", "市", "地市", "设区市", "prefecture", "city"),
    "county": ("县区", "区县", "县", "区", "县级市", "县（市、区）", "county", "district"),
}


def level_labels(scheme: CodeScheme) -> dict[str, str]:
    """normalised label -> level name, for every level of ``scheme``: its name,
    its Chinese and English labels, and the words offices use for it.

    Examples
    --------
    >>> from gridgeo.schema import DEFAULT_SCHEME, BEIJING_SCHEME
    >>> labels = level_labels(DEFAULT_SCHEME)
    >>> labels[normal("二级网格")], labels[normal("社区")], labels["2"]
    ('grid2', 'village', 'grid2')
    >>> level_labels(BEIJING_SCHEME)[normal("单元网格")]
    'grid'
    """
    out: dict[str, str] = {}
    numbered = [lv.name for lv in scheme.levels if re.fullmatch(r"grid\d", lv.name)]
    for lv in scheme.levels:
        words = [lv.name, lv.label, lv.label_en, *getattr(lv, "aliases", ())]
        if lv.name in numbered:
            words += _LEVEL_WORDS.get(int(lv.name[-1]), ())
        words += _LEVEL_EXTRA.get(lv.name, ())
        for word in words:
            key = normal(word)
            if key and key not in out:
                out[key] = lv.name
    return out


def _labels(table: dict[str, tuple[str, str]], extra: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out = {}
    for value, (zh, en) in table.items():
        for word in (value, zh, en, *extra.get(value, ())):
            out.setdefault(normal(word), value)
    return out


STATION_KIND_LABELS = _labels(STATION_KINDS, {
    "grid2_station": ("网格服务站", "二级服务站", "二级站", "网格站", "党群服务站", "二级网格党群服务站"),
    "grid3_point": ("服务点", "三级服务点", "网格服务点", "三级点", "三级网格党群服务点"),
    "park_station": ("园区站", "园区", "企业服务站", "园区党群服务站"),
    "campus_station": ("校园站", "校园", "学校服务站"),
    "police_station": ("警格站", "警务站", "警网服务站", "警网融合服务站", "警务室"),
    "community_centre": ("党群服务中心", "邻里中心", "社区服务中心", "便民服务中心", "党群中心"),
})
"""normalised label -> station kind."""

EVENT_CATEGORY_LABELS = _labels(EVENT_CATEGORIES, {
    "dispute": ("纠纷", "矛盾", "矛盾调解", "纠纷调解"),
    "safety": ("安全", "安全生产", "隐患"),
    "fire": ("消防",),
    "sanitation": ("卫生", "环卫", "市容环境", "市容环卫", "环境"),
    "building": ("违建", "违法建设", "违章搭建", "两违"),
    "public_order": ("治安", "社会治安"),
    "road": ("道路", "设施", "市政设施", "基础设施"),
    "service": ("民生", "便民服务", "民生诉求", "服务"),
})
"""normalised label -> event category."""

EVENT_STATUS_LABELS = _labels(EVENT_STATUSES, {
    "open": ("未处理", "待办", "待受理", "新建", "已上报", "未办结", "待处置", "new", "pending"),
    "in_progress": ("办理中", "在办", "处置中", "已派遣", "已立案", "已受理", "待核查", "processing"),
    "closed": ("办结", "已结案", "结案", "已关闭", "关闭", "已完成", "完成", "已处理", "done", "finished"),
})
"""normalised label -> event status."""

ROLE_LABELS = {normal(word): role for word, role in ROSTER_ROLE_ALIASES.items()}
"""A roster's roles (职务/岗位) as offices write them -> :data:`gridgeo.schema.ROSTER_ROLES`."""

VALUE_LABELS = {"kind": STATION_KIND_LABELS, "category": EVENT_CATEGORY_LABELS, "status": EVENT_STATUS_LABELS,
                "role": ROLE_LABELS}
"""The value tables of the columns whose values are labels (levels follow the scheme)."""
