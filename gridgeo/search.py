"""Finding units by what a person types: a code, a name, its pinyin, several words.

The rule
--------
The query is split into words at white space (an ideographic space too). A
unit is found when **every** word matches it, and a word matches when

- it is six digits or more and the start of the unit's code
  (``3505821062`` finds the units of that prefix; a shorter number is
  looked for in the names, as ``第3``), or
- it is part of the unit's name or of one of its ancestors' names
  (``许园 第3`` finds 许园村第3网格; ``内坑 许园`` the units of 许园村 in
  内坑镇), or
- it is Latin letters and part of the pinyin of those names, written
  without tones and spaces (``xuyuan`` finds 许园村, ``xu yuan`` too, as
  two words), or the start of a name's initials (``xyc`` finds 许园村).
  Case is ignored; ``ü`` may be typed ``v`` or ``u``.

Pinyin comes from :mod:`pypinyin` (each character's most common reading).
Results come in this order: a name equal to the query first; then units
whose own name or code matches every word before those found through an
ancestor's name; coarser levels first; then by code.

Examples
--------
>>> import pandas as pd
>>> from gridgeo.schema import DEFAULT_SCHEME
>>> units = pd.DataFrame({
...     "code": ["350582106", "350582106211", "35058210621101", "3505821062110103"],
...     "name": ["内坑镇", "许园村", "许园村一片区", "许园村第3网格"],
...     "level": ["town", "village", "grid1", "grid2"],
...     "parent": ["", "350582106", "350582106211", "35058210621101"]})
>>> finder = Finder(units, scheme=DEFAULT_SCHEME)
>>> finder.find("xuyuan")["name"].tolist()
['许园村', '许园村一片区', '许园村第3网格']
>>> finder.find("许园 第3")["code"].tolist()
['3505821062110103']
>>> finder.find("neikeng xyc")["name"].tolist()
['许园村', '许园村一片区', '许园村第3网格']
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["Finder", "words", "pinyin_of"]

CODE_DIGITS = 6
"""The shortest number taken as the start of a code (a county's six digits, GB/T 2260)."""

_SPACE = re.compile(r"[\s\u3000]+")
_LATIN = re.compile(r"^[a-z]+$")


def words(query: str) -> list[str]:
    """The words of a query, lower-cased, ``ü`` as ``v``.

    >>> words(" 许园　第3  XuYuan ")
    ['许园', '第3', 'xuyuan']
    """
    return [w for w in _SPACE.split(str(query).strip().lower().replace("ü", "v")) if w]


def pinyin_of(names) -> tuple[list[str], list[str]]:
    """The pinyin of each name without tones or spaces, and its initials.

    Characters without a reading (digits, Latin letters, punctuation) are kept
    as they are in the pinyin and left out of the initials.

    >>> pinyin_of(["许园村第3网格", "蔡厝社区"])
    (['xuyuancundi3wangge', 'caicuoshequ'], ['xycdwg', 'ccsq'])
    """
    from pypinyin import Style, lazy_pinyin

    names = ["" if n is None or (isinstance(n, float) and n != n) else str(n) for n in names]
    chars = sorted({c for name in names for c in name})
    reading = dict(zip(chars, (lazy_pinyin(c, style=Style.NORMAL, errors="default")[0].lower() for c in chars)))
    full, initials = [], []
    for name in names:
        syllables = [reading[c] for c in name]
        full.append("".join(syllables))
        # initials of the syllables read from characters (not of letters or digits written as they are)
        initials.append("".join(s[0] for s, c in zip(syllables, name) if s.isascii() and s.isalpha() and s != c.lower()))
    return full, initials


class Finder:
    """Units found by a query (see the module's rule), built once for a set of units.

    Parameters
    ----------
    units : DataFrame
        ``code``, ``name``, ``level`` and ``parent`` (the code may be the index).
    scheme : CodeScheme
        The levels, coarsest first, for the order of the results.
    """

    def __init__(self, units: pd.DataFrame, *, scheme):
        frame = units.reset_index() if "code" not in units.columns else units
        frame = pd.DataFrame({c: frame[c].astype("str").fillna("") for c in ("code", "name", "level", "parent")})
        frame = frame.fillna("").reset_index(drop=True)
        self.units = frame
        names = dict(zip(frame["code"], frame["name"]))
        parents = dict(zip(frame["code"], frame["parent"]))
        # each unit's ancestors' names, nearest first (a chain as long as the scheme's levels)
        above = []
        for code in frame["code"]:
            chain, seen, up = [], {code}, parents.get(code, "")
            while up and up not in seen and up in names:
                chain.append(names[up])
                seen.add(up)
                up = parents.get(up, "")
            above.append(chain)
        self._name = frame["name"].str.lower().to_numpy(dtype=object)
        self._code = frame["code"].to_numpy(dtype=object)
        self._context = np.array(["\u0001".join(chain) for chain in above], dtype=object)
        own_full, own_initials = pinyin_of(frame["name"])
        self._full = np.array(own_full, dtype=object)
        self._initials = np.array(own_initials, dtype=object)
        context_names = sorted({n for chain in above for n in chain})
        full, initials = pinyin_of(context_names)
        by_name = dict(zip(context_names, zip(full, initials)))
        self._context_full = np.array(["\u0001".join(by_name[n][0] for n in chain) for chain in above], dtype=object)
        self._context_initials = np.array(["\u0001".join(by_name[n][1] for n in chain) for chain in above],
                                          dtype=object)
        order = list(getattr(scheme, "names", []) or [])
        self._rank = np.array([order.index(lv) if lv in order else len(order) for lv in frame["level"]])

    def __len__(self) -> int:
        return len(self.units)

    def find(self, query: str, limit: int | None = 20) -> pd.DataFrame:
        """The units every word of ``query`` matches, in the module's order (at most ``limit``).

        Returns
        -------
        DataFrame
            ``code``, ``name``, ``level``, ``parent``; empty when nothing matches
            or the query has no word.
        """
        found = words(query)
        if not found or not len(self.units):
            return self.units.iloc[:0].copy()
        everywhere = np.ones(len(self.units), dtype=bool)
        own = np.ones(len(self.units), dtype=bool)
        for word in found:
            mine = self._matches(word, self._name, self._full, self._initials)
            if len(word) >= CODE_DIGITS and word.isdigit():
                mine |= _starts(self._code, word)
            theirs = self._matches(word, self._context, self._context_full, self._context_initials, chained=True)
            everywhere &= mine | theirs
            own &= mine
        hits = np.flatnonzero(everywhere)
        whole = "".join(found)
        exact = np.array([self._name[k] == whole for k in hits], dtype=bool)
        order = np.lexsort((self._code[hits].astype(str), self._rank[hits], ~own[hits], ~exact))
        out = self.units.iloc[hits[order]]
        return (out if limit is None else out.head(limit)).reset_index(drop=True)

    @staticmethod
    def _matches(word, names, full, initials, *, chained=False) -> np.ndarray:
        """Whether ``word`` is part of each name (or chain of names), of its pinyin, or the
        start of a name's initials (names of a chain are joined by "\x01")."""
        hit = _contains(names, word)
        if _LATIN.match(word):
            hit |= _contains(full, word)
            if "v" in word:
                hit |= _contains(full, word.replace("v", "u"))
            hit |= _starts(initials, word)
            if chained:
                hit |= _contains(initials, "\u0001" + word)
        return hit


def _contains(values, word) -> np.ndarray:
    return pd.Series(values, dtype="str").str.contains(word, regex=False).to_numpy(dtype=bool, copy=True)


def _starts(values, word) -> np.ndarray:
    return pd.Series(values, dtype="str").str.startswith(word).to_numpy(dtype=bool, copy=True)
