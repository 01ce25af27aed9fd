"""Codes as text, exactly as the office wrote them.

A division or grid code is a string of digits (350582106201), and an id may
hold letters (S3505821060001): neither is a number. Files carry them in ways
that can lose digits before gridgeo sees them:

- a .dbf numeric field: :func:`gridgeo.io.read` reads the digits themselves;
- an Excel number cell: Excel keeps 15 significant digits, so a 19-digit
  code typed as a number has already lost its last four;
- a CSV saved by Excel from such a cell: ``3.50582106201E+11``.

:func:`exact_codes` keeps every code that is exact and refuses every one that
may not be. The rule: text is taken as it is (trimmed); a whole number stored
as a number (int, or a float with no fraction) is exact up to 15 digits; text
in scientific notation, and a float of more than 15 digits, was mangled on its
way and is refused.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["exact_codes", "MANGLED"]

MANGLED = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
"""Scientific notation: what Excel writes for a long number it shows in a narrow column."""

_FLOAT_TEXT = re.compile(r"^(\d+)\.0+$")
_EXACT_DIGITS = 15  # a double holds every whole number of up to 15 digits exactly


def exact_codes(values) -> tuple[pd.Series, np.ndarray]:
    """The codes of a column as text, and where they cannot be trusted.

    Parameters
    ----------
    values : pandas.Series
        As read from the file: text, whole numbers or floats.

    Returns
    -------
    codes : pandas.Series of str
        The same index; missing values as ``""``. A whole number keeps its
        digits (``350582106201.0`` -> ``"350582106201"``); text is trimmed.
    mangled : ndarray of bool
        True where the value is in scientific notation or is a float of more
        than 15 digits: its digits are not the office's any more.

    Examples
    --------
    >>> import pandas as pd
    >>> codes, bad = exact_codes(pd.Series(["350582106201", 350582106202, 350582106203.0,
    ...                                     "3.50582106201E+11", 3.505821062010101e18, None]))
    >>> codes.tolist()
    ['350582106201', '350582106202', '350582106203', '3.50582106201E+11', '3505821062010101248', '']
    >>> bad.tolist()
    [False, False, False, True, True, False]
    """
    series = pd.Series(values, copy=False)
    out = np.empty(len(series), dtype=object)
    mangled = np.zeros(len(series), dtype=bool)
    for i, value in enumerate(series.to_numpy(dtype=object)):
        out[i], mangled[i] = _one(value)
    return pd.Series(out, index=series.index, dtype="str"), mangled


def _one(value) -> tuple[str, bool]:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "", False
    if isinstance(value, (bool, np.bool_)):
        return str(value), True
    if isinstance(value, (int, np.integer)):
        return str(int(value)), False
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return str(value), True
        if float(value).is_integer():
            text = str(int(value))
            return text, len(text.lstrip("-")) > _EXACT_DIGITS
        return repr(float(value)), True
    text = str(value).strip()
    if MANGLED.match(text):
        return text, True
    whole = _FLOAT_TEXT.match(text)
    if whole:  # "350582106201.0": a number written by a program that read it as a float
        digits = whole.group(1)
        return digits, len(digits) > _EXACT_DIGITS
    return text, False
