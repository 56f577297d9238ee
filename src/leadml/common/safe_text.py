"""Data values made safe for the tools people open leadml's outputs with.

Lead ids, categories and column names come from a CRM that anyone filling in a web form can
write to. Written raw, some of them turn into something else:

- **Spreadsheets** run a CSV cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return as a formula (``=HYPERLINK(...)``, ``+cmd|' /c calc'!A0``). :func:`csv_safe` and
  :func:`to_csv`, through which leadml writes every CSV file, prefix such text cells (and
  headers, and index values) with ``'`` (the OWASP rule). Numbers are left alone: numeric
  columns, and text that is a plain number such as ``-3.5`` (a spreadsheet reads it as the
  number, nothing runs). Parquet files stay raw: they are typed data, not a spreadsheet.
- **Markdown**: a backtick and a newline in a lead id break out of its code span, a ``|`` out of
  its table cell. :func:`md_code` and :func:`md_text` keep a value inside.
- **Size**: a 1 MB category value slows a report's rendering and swells pages, tables and
  metadata. :func:`shorten` cuts text shown to people to :data:`DISPLAY_LIMIT` characters with a
  visible marker (``…[+N chars]``); keys (lead ids in score files) are never cut.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

#: Longest text shown whole in reports, tables, Markdown and model metadata.
DISPLAY_LIMIT = 200

_FORMULA_START = "=+-@\t\r"
_CUT = re.compile(r"…\[\+[\d,]+ chars\]\Z")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
#: CommonMark lets any ASCII punctuation be escaped; these are the ones with a meaning inline.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|#~&])")


def shorten(value: Any, limit: int = DISPLAY_LIMIT) -> Any:
    """``value`` cut to ``limit`` characters with a marker saying how much was cut, if it is
    text longer than that; anything else as it is.

    Examples
    --------
    >>> shorten("x" * 205)[-16:]
    'xxxxx…[+5 chars]'
    >>> shorten("short"), shorten(3.5), shorten(shorten("x" * 205)) == shorten("x" * 205)
    ('short', 3.5, True)
    """
    if isinstance(value, str) and len(value) > limit:
        cut = _CUT.search(value)
        if cut is not None and cut.start() <= limit:  # cut already: cutting again loses the count
            return value
        return f"{value[:limit]}…[+{len(value) - limit:,} chars]"
    return value


def shorten_series(values: pd.Series, limit: int = DISPLAY_LIMIT) -> pd.Series:
    """:func:`shorten` of every text value of ``values`` (cheap when none is too long)."""
    if not pd.api.types.is_string_dtype(values.dtype):
        return values
    try:
        long = values.str.len().gt(limit).fillna(False).to_numpy(dtype=bool)
    except (AttributeError, TypeError):  # an object column that is not all text
        return values.map(lambda v: shorten(v, limit))
    if not long.any():
        return values
    values = values.copy()
    values[long] = [shorten(v, limit) for v in values[long]]
    return values


def shorten_json(value: Any, limit: int = DISPLAY_LIMIT) -> Any:
    """Every text (dictionary keys too) of a JSON-like structure :func:`shorten`-ed."""
    if isinstance(value, dict):
        return {shorten(k, limit): shorten_json(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shorten_json(v, limit) for v in value]
    return shorten(value, limit)


def csv_cell(value: Any) -> Any:
    """One value as a spreadsheet may show it: text a spreadsheet would run as a formula gets a
    leading ``'``; anything else is returned as it is.

    Examples
    --------
    >>> [csv_cell(v) for v in ("=HYPERLINK(1)", "-1+1", "@SUM(A1)", "-3.5", "L-1", -3.5)]
    ["'=HYPERLINK(1)", "'-1+1", "'@SUM(A1)", '-3.5', 'L-1', -3.5]
    """
    if (
        isinstance(value, str)
        and value[:1]
        and value[0] in _FORMULA_START
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def _is_text(values: pd.Series | pd.Index) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _is_text(dtype.categories)
    return not (
        pd.api.types.is_numeric_dtype(dtype)  # bool too
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype)
    )


def _safe_values(values: pd.Series, limit: int | None) -> pd.Series:
    if not _is_text(values):
        return values
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = pd.Series(values.cat.categories)
        renamed = _safe_values(categories, limit)
        if renamed.is_unique:
            return values.cat.rename_categories(list(renamed))
        values = values.astype(object)  # two categories that now read the same
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        if limit is not None:
            values = shorten_series(values, limit)
        formula = values.str[:1].isin(list(_FORMULA_START)).to_numpy(dtype=bool)
        if formula.any():
            values = values.copy()
            values[formula] = [csv_cell(v) for v in values[formula]]
        return values
    # Object columns may mix text with numbers, lists or None: one value at a time.
    cell = csv_cell if limit is None else (lambda v: csv_cell(shorten(v, limit)))
    return values.map(cell)


def _safe_index(index: pd.Index, limit: int | None) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        levels = [_safe_index(index.get_level_values(i), limit) for i in range(index.nlevels)]
        return pd.MultiIndex.from_arrays(levels, names=[csv_cell(n) for n in index.names])
    if not _is_text(index):
        return index.rename(csv_cell(index.name))
    values = _safe_values(pd.Series(index, dtype=index.dtype), limit)
    return pd.Index(values, name=csv_cell(index.name), dtype=values.dtype)


def csv_safe(frame: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """``frame`` with every text cell, header and index value :func:`csv_cell`-ed (and, with
    ``limit``, :func:`shorten`-ed): what a CSV writer should write.

    Examples
    --------
    >>> frame = pd.DataFrame({"lead_id": ["=1+1", "L2"], "score": [-3.5, 2.0]})
    >>> csv_safe(frame).to_dict("list")
    {'lead_id': ["'=1+1", 'L2'], 'score': [-3.5, 2.0]}
    """
    safe = frame.copy(deep=False)
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if _is_text(column):
            safe.isetitem(position, _safe_values(column, limit))
    if not isinstance(frame.columns, pd.MultiIndex):
        safe.columns = pd.Index(
            [csv_cell(shorten(c, limit) if limit else c) for c in frame.columns],
            name=frame.columns.name,
        )
    safe.index = _safe_index(frame.index, limit)
    return safe


def to_csv(frame: pd.DataFrame, target, *, limit: int | None = None, **options) -> None:
    """``frame.to_csv(target, **options)`` with the cells :func:`csv_safe`: how leadml writes
    every CSV file. ``limit`` also cuts long text (for tables meant to be read, not keys)."""
    csv_safe(frame, limit).to_csv(target, **options)


def md_text(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """``value`` as literal Markdown text, fit for a table cell: shortened, on one line, every
    character with an inline meaning escaped.

    Examples
    --------
    >>> md_text("a|b *c*\\n# d")
    'a\\\\|b \\\\*c\\\\* \\\\# d'
    """
    text = " ".join(str(shorten(str(value), limit)).splitlines())
    return _MARKDOWN.sub(r"\\\1", text)


def md_code(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """``value`` as a Markdown code span that holds it whole, whatever it contains: shortened,
    on one line, between more backticks than it has in a row.

    Examples
    --------
    >>> md_code("L1"), md_code("a`b")
    ('`L1`', '``a`b``')
    """
    text = " ".join(str(shorten(str(value), limit)).splitlines()) or " "
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"
