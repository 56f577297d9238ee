"""Reading a flat export as it comes: CSV (any line ending, delimiter, common encodings) or
Parquet, every column as text so that nothing is guessed away before the roles are decided.

What reading itself finds (line endings, encoding, delimiter, trailing empty columns, header
problems) starts the export's :class:`~leadml.flat.quality.DataQuality`.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.errors import DataError
from leadml.flat.preprocess import as_text
from leadml.flat.quality import DataQuality, QualityFinding

_HEAD_BYTES = 1 << 16
_DELIMITERS = ",;\t|"


@dataclass
class FlatExport:
    """A flat export: ``frame`` has every column as text (``str`` dtype; CSV cells as written,
    empty ones as ""), ``source`` names it in messages, ``quality`` holds what reading found."""

    frame: pd.DataFrame
    source: str
    path: Path | None
    quality: DataQuality

    @property
    def rows(self) -> int:
        return len(self.frame)


def read_flat(source: str | Path | pd.DataFrame, *, name: str | None = None) -> FlatExport:
    """Read a flat export from a CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet file, or take a
    DataFrame, with every column as text.

    Raises
    ------
    DataError
        The file is missing, empty, has no rows, or cannot be parsed; the message names it.

    Examples
    --------
    >>> export = read_flat(pd.DataFrame({"Visits": [3, None], "Converted": [1, 0]}))
    >>> export.frame.dtypes.astype(str).tolist(), export.frame["Visits"].tolist()
    (['str', 'str'], ['3.0', nan])
    """
    if isinstance(source, pd.DataFrame):
        label = name or "DataFrame"
        frame = _as_text_frame(source)
        quality = DataQuality(label, len(frame), frame.shape[1])
        _check_not_empty(frame, label)
        _check_finite(frame, label)
        return FlatExport(frame, label, None, quality)
    path = Path(source)
    label = name or path.name
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes): nothing to read")
    if path.name.endswith(".parquet"):
        try:
            frame = _as_text_frame(pd.read_parquet(path))
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise DataError(f"{path}: cannot read it as Parquet: {exc}") from None
        quality = DataQuality(label, len(frame), frame.shape[1])
    else:
        frame, quality = _read_csv(path, label)
    _check_not_empty(frame, label)
    _check_finite(frame, label)
    return FlatExport(frame, label, path, quality)


def _as_text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.strftime("%Y-%m-%dT%H:%M:%S%z").where(values.notna())
        out[str(column).strip()] = as_text(values)
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _check_not_empty(frame: pd.DataFrame, label: str) -> None:
    if frame.shape[1] == 0:
        raise DataError(f"{label}: no columns")
    if len(frame) == 0:
        raise DataError(
            f"{label}: no rows (only a header with {frame.shape[1]} columns, e.g. "
            f"{list(frame.columns[:3])})"
        )


def _check_finite(frame: pd.DataFrame, label: str) -> None:
    """Refuse infinite numbers ('inf', 1e400) in a column of numbers: no model can use them.

    Only columns most of whose values are numbers count, so that a category named "Infinity"
    stays a category; 'NaN' is missing, as a placeholder (``flat.placeholders``).
    """
    for column in frame.columns:
        text = frame[column]
        numbers = pd.to_numeric(text.str.strip(), errors="coerce")
        present = text.notna() & (text.str.strip() != "")
        infinite = np.isinf(numbers.to_numpy(dtype="float64", na_value=np.nan))
        if infinite.any() and numbers.notna().sum() * 2 > present.sum():
            raise DataError(
                f"{label}: column {column!r}: {int(infinite.sum()):,} row(s) hold a number that "
                f"is not finite (inf or beyond ±1.8e308), e.g. {text[infinite].iloc[0]!r}: "
                "leave the value empty when it is unknown"
            )


def _head(path: Path) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read it: {exc}") from None


def _read_csv(path: Path, label: str) -> tuple[pd.DataFrame, DataQuality]:
    head = _head(path)
    found: list[QualityFinding] = []
    encoding = "utf-8-sig"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the sample
            encoding = "cp1252"
            found.append(
                QualityFinding(None, "encoding", "not UTF-8: read as Windows-1252 (cp1252)")
            )
        text = head[: exc.start].decode("utf-8", errors="ignore")
    if text.startswith("\ufeff"):
        text = text[1:]
        found.append(
            QualityFinding(None, "byte_order_mark", "starts with a byte-order mark: ignored")
        )
    if not text.strip():
        raise DataError(f"{path}: the file holds no text: nothing to read")
    if "\r\n" in text:
        found.append(
            QualityFinding(None, "line_endings", "Windows line endings (CRLF): read as line ends")
        )
    first_line = text.splitlines()[0]
    try:
        delimiter = csv.Sniffer().sniff(first_line, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    if delimiter != ",":
        found.append(QualityFinding(None, "delimiter", f"fields separated by {delimiter!r}"))
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter))
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            dtype="str",
            keep_default_na=False,
            na_filter=False,
            encoding=encoding,
            encoding_errors="replace",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no header line: nothing to read") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse it as CSV: {exc}") from None
    except (OSError, EOFError, zlib.error) as exc:  # click would print a bare "Aborted." for EOF
        raise DataError(f"{path}: cannot read it (truncated or damaged?): {exc}") from None
    frame = _tidy_header(frame, header, found)
    quality = DataQuality(label, len(frame), frame.shape[1])
    for finding in found:
        quality.add(finding)
    return frame, quality


def _tidy_header(frame: pd.DataFrame, header: list[str], found: list[QualityFinding]):
    """Drop the nameless, empty columns a trailing delimiter leaves; trim names; report
    duplicate and missing names."""
    nameless = [
        column
        for position, column in enumerate(frame.columns)
        if (position >= len(header) or not header[position].strip())
    ]
    empty = [c for c in nameless if not frame[c].str.strip().astype(bool).any()]
    if empty:
        frame = frame.drop(columns=empty)
        found.append(
            QualityFinding(
                None,
                "trailing_empty_columns",
                f"{len(empty)} column(s) without a name or any value (a delimiter at the end of "
                f"every line): dropped ({', '.join(map(str, empty))})",
            )
        )
    for column in nameless:
        if column not in empty:
            found.append(QualityFinding(str(column), "no_header", "has values but no header name"))
    stripped = {c: str(c).strip() for c in frame.columns}
    if any(k != v for k, v in stripped.items()):
        changed = [k for k, v in stripped.items() if k != v]
        found.append(
            QualityFinding(
                None, "header_spaces", f"spaces around {len(changed)} column name(s): trimmed"
            )
        )
        frame = frame.rename(columns=stripped)
    names = [h.strip() for h in header]
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        found.append(
            QualityFinding(
                name,
                "duplicate_header",
                f"the name appears {names.count(name)} times; the copies are read as "
                f"{name!r}, {name + '.1'!r}, ...: rename them in the export to be sure which is "
                "which",
            )
        )
    return frame
