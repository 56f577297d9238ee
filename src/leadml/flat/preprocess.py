"""From an export's columns as text to model features: the parsers and the scikit-learn step.

:class:`FlatPreprocessor` is the first step of every model trained on a flat export, so the
logged model takes the export's columns as they come (text, or already typed) and applies
exactly the cleaning used in training: placeholders and empty strings as missing, thousands
separators, yes/no booleans, dates as days after the lead's time column, spellings that differ
only in case merged. Its whole state is plain Python data (names, strings, dicts), so model
files stay loadable by skops without trusting anything beyond this one class.

This module's path is part of every stored flat model: do not move the class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

#: Roles whose columns become features.
FEATURE_ROLES = ("numeric", "boolean", "categorical", "date")
_SYMBOLS = re.compile(r"[\s$€£¥%\u00a0\u202f]")  # currency, percent and (non-breaking) spaces
_GROUPED_DOT_DECIMAL = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")  # 1,234.5
_GROUPED_COMMA_DECIMAL = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")  # 1.234,5
_COMMA_DECIMAL = re.compile(r"^[+-]?\d*,\d+$")  # 2,5 (and ,5)
#: Date formats tried in order when ISO 8601 does not fit; day-first and month-first both
#: tried, the one that reads more values wins.
DATE_FORMATS = (
    "ISO8601",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
)


def as_text(values: pd.Series) -> pd.Series:
    """Any column as text (``str`` dtype, missing kept missing); text columns as they are."""
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return values
    missing = values.isna()
    return values.astype("str").where(~missing)


def clean_text(values: pd.Series, placeholders: Iterable[str]) -> pd.Series:
    """Trimmed text, with empty strings and placeholder values (ignoring case) as missing.

    Examples
    --------
    >>> clean_text(pd.Series([" Mumbai ", "Select", "", None]), ["Select"]).tolist()
    ['Mumbai', nan, nan, nan]
    """
    text = as_text(values).str.strip()
    blank = {p.strip().lower() for p in placeholders} | {""}
    return text.where(~text.str.lower().isin(blank))


def number_format(text: pd.Series) -> tuple[str, str]:
    """(thousands separator, decimal mark) that most of the values use: ``(",", ".")`` for
    1,234.5 and ``(".", ",")`` for 1.234,5 or 2,5.

    Examples
    --------
    >>> number_format(pd.Series(["1,200", "950", "12,400.50"]))
    (',', '.')
    >>> number_format(pd.Series(["1.200", "2,5", "950"]))
    ('.', ',')
    """
    bare = text.dropna().str.replace(_SYMBOLS, "", regex=True)
    dot_decimal = bare.str.match(_GROUPED_DOT_DECIMAL).sum()
    comma_decimal = (
        bare.str.match(_GROUPED_COMMA_DECIMAL) & bare.str.contains(",", regex=False)
    ).sum() + bare.str.match(_COMMA_DECIMAL).sum()
    # A dot grouping without a comma ("1.200") is ambiguous; it counts only with two groups.
    comma_decimal += bare.str.match(r"^[+-]?\d{1,3}(\.\d{3}){2,}$").sum()
    return (".", ",") if comma_decimal > dot_decimal else (",", ".")


def parse_numbers(text: pd.Series, thousands: str = ",", decimal: str = ".") -> pd.Series:
    """Numbers (float64) from text with currency symbols, percent signs, spaces and thousands
    separators; what does not parse is NaN.

    Examples
    --------
    >>> parse_numbers(pd.Series(["1,234", "$ 56.5", "7%", "about 5", None])).tolist()
    [1234.0, 56.5, 7.0, nan, nan]
    >>> parse_numbers(pd.Series(["1.234,5"]), thousands=".", decimal=",").tolist()
    [1234.5]
    """
    if pd.api.types.is_numeric_dtype(text) and not pd.api.types.is_bool_dtype(text):
        return text.astype("float64")
    bare = as_text(text).str.replace(_SYMBOLS, "", regex=True)
    bare = bare.str.replace(thousands, "", regex=False)
    if decimal != ".":
        bare = bare.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(bare, errors="coerce").astype("float64")


def parse_booleans(
    text: pd.Series, true_values: Iterable[str], false_values: Iterable[str]
) -> pd.Series:
    """1.0 for yes-like, 0.0 for no-like values (ignoring case), NaN otherwise.

    Examples
    --------
    >>> parse_booleans(pd.Series(["Yes", "no", "maybe", None]), ["yes"], ["no"]).tolist()
    [1.0, 0.0, nan, nan]
    """
    lower = as_text(text).str.strip().str.lower()
    mapping = {v.lower(): 1.0 for v in true_values} | {v.lower(): 0.0 for v in false_values}
    return lower.map(mapping).astype("float64")


def parse_dates(text: pd.Series, date_format: str) -> pd.Series:
    """Timestamps in UTC (naive values taken as UTC); what does not parse is NaT."""
    if pd.api.types.is_datetime64_any_dtype(text):
        values = pd.to_datetime(text)
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    return pd.to_datetime(as_text(text), format=date_format, utc=True, errors="coerce")


def date_format(text: pd.Series, sample: int = 2_000) -> tuple[str | None, float]:
    """The format of :data:`DATE_FORMATS` that reads most of the present values, and that share.

    Examples
    --------
    >>> date_format(pd.Series(["2024-05-01", "2024-05-13T08:00:00Z"]))
    ('ISO8601', 1.0)
    >>> date_format(pd.Series(["05/01/2024", "25/01/2024"]))
    ('%d/%m/%Y', 1.0)
    """
    present = text.dropna()
    if not len(present):
        return None, 0.0
    present = present.sample(min(sample, len(present)), random_state=0)
    # Plain numbers ("2024", "17") are numbers, not dates.
    if present.str.fullmatch(r"[+-]?\d+([.,]\d+)?").mean() > 0.5:
        return None, 0.0
    best, share = None, 0.0
    for candidate in DATE_FORMATS:
        parsed = pd.to_datetime(present, format=candidate, utc=True, errors="coerce")
        read = float(parsed.notna().mean())
        if read > share:
            best, share = candidate, read
        if share == 1.0:
            break
    return best, share


def spelling_map(text: pd.Series) -> dict[str, str]:
    """For values that differ only in case: lower case -> the most frequent spelling.

    Examples
    --------
    >>> spelling_map(pd.Series(["Google", "google", "Google", "Direct"]))
    {'google': 'Google'}
    """
    present = text.dropna()
    counts = present.value_counts()
    lower = counts.index.str.lower()
    grouped = pd.Series(counts.to_numpy(), index=counts.index).groupby(lower)
    out = {}
    for key, group in grouped:
        if len(group) > 1:
            out[str(key)] = str(group.idxmax())
    return out


class FlatPreprocessor(TransformerMixin, BaseEstimator):
    """Turn an export's columns into model features, the same way in training and scoring.

    Parameters
    ----------
    columns
        One dict per feature column: ``name``, ``role`` (numeric, boolean, categorical, date)
        and, for numbers, ``thousands`` and ``decimal``; for dates, ``format``.
    placeholders
        Values meaning "no answer" (ignoring case); empty strings always are.
    true_values, false_values
        Spellings of yes and no for boolean columns (ignoring case).
    time_column, time_format
        Each row's own instant and its format (see :data:`DATE_FORMATS`); date columns become
        days after it. Needed only with dates.

    Attributes
    ----------
    spellings_ : dict
        Per categorical column, lower-case value -> the spelling used in training.
    feature_names_in_ : ndarray
        The input columns it reads (the feature columns and, with dates, the time column).

    Examples
    --------
    >>> export = pd.DataFrame({"Visits": ["1,200", "Select", "3"], "Opted in": ["Yes", "no", ""],
    ...                        "Source": ["Google", "google", "Direct"]})
    >>> step = FlatPreprocessor(
    ...     columns=[{"name": "Visits", "role": "numeric", "thousands": ",", "decimal": "."},
    ...              {"name": "Opted in", "role": "boolean"},
    ...              {"name": "Source", "role": "categorical"}],
    ...     placeholders=["Select"], true_values=["yes"], false_values=["no"])
    >>> features = step.fit_transform(export)
    >>> features["Visits"].tolist(), features["Opted in"].tolist()
    ([1200.0, nan, 3.0], [1.0, 0.0, nan])
    >>> features["Source"].tolist()
    ['Google', 'Google', 'Direct']
    """

    def __init__(
        self,
        columns: Sequence[dict] = (),
        placeholders: Sequence[str] = (),
        true_values: Sequence[str] = ("yes", "true"),
        false_values: Sequence[str] = ("no", "false"),
        time_column: str | None = None,
        time_format: str = "ISO8601",
    ):
        self.columns = columns
        self.placeholders = placeholders
        self.true_values = true_values
        self.false_values = false_values
        self.time_column = time_column
        self.time_format = time_format

    def _inputs(self) -> list[str]:
        names = [c["name"] for c in self.columns]
        if self.time_column is not None and any(c["role"] == "date" for c in self.columns):
            names.append(self.time_column)
        return names

    def fit(self, X: pd.DataFrame, y=None) -> FlatPreprocessor:
        unknown = [c["role"] for c in self.columns if c["role"] not in FEATURE_ROLES]
        if unknown:
            raise ValueError(f"roles {unknown} are not feature roles {FEATURE_ROLES}")
        if any(c["role"] == "date" for c in self.columns) and self.time_column is None:
            raise ValueError("date columns need a time_column to be measured from")
        self._check_columns(X)
        self.spellings_ = {
            c["name"]: spelling_map(clean_text(X[c["name"]], self.placeholders))
            for c in self.columns
            if c["role"] == "categorical"
        }
        self.feature_names_in_ = np.asarray(self._inputs(), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _check_columns(self, X: pd.DataFrame) -> None:
        missing = [c for c in self._inputs() if c not in X.columns]
        if missing:
            raise KeyError(f"the export lacks column(s) {missing}")

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "spellings_")
        self._check_columns(X)
        out = {}
        time = None
        if self.time_column is not None and any(c["role"] == "date" for c in self.columns):
            time = self._dates(X[self.time_column], self.time_format)
        for column in self.columns:
            name, role = column["name"], column["role"]
            raw = X[name]
            if role == "numeric":
                out[name] = parse_numbers(
                    clean_text(raw, self.placeholders)
                    if not pd.api.types.is_numeric_dtype(raw)
                    else raw,
                    column.get("thousands", ","),
                    column.get("decimal", "."),
                )
            elif role == "boolean":
                if pd.api.types.is_bool_dtype(raw) or pd.api.types.is_numeric_dtype(raw):
                    out[name] = raw.astype("float64")
                else:
                    out[name] = parse_booleans(
                        clean_text(raw, self.placeholders), self.true_values, self.false_values
                    )
            elif role == "date":
                when = self._dates(raw, column["format"])
                out[name] = ((when - time) / pd.Timedelta(days=1)).astype("float64")
            else:
                text = clean_text(raw, self.placeholders)
                spellings = self.spellings_.get(name, {})
                if spellings:
                    lower = text.str.lower()
                    text = lower.map(spellings).fillna(text).astype("str").where(text.notna())
                out[name] = text.astype("str")
        return pd.DataFrame(out, index=X.index)

    def _dates(self, raw: pd.Series, fmt: str) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(raw):
            return parse_dates(raw, fmt)
        return parse_dates(clean_text(raw, self.placeholders), fmt)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "spellings_")
        return np.asarray([c["name"] for c in self.columns], dtype=object)
