"""Column roles of a flat export: what each column is, whether it may become a feature, and
every mess found on the way (recorded in the export's data-quality summary).

Roles, decided from the values (``flat.roles`` overrides them by column name):

============ ==================================================================================
numeric      numbers, possibly with thousands separators, currency or percent signs
boolean      yes/no, true/false, 1/0 in any case (``flat.true_values``/``false_values``)
categorical  any other short text; spellings that differ only in case are merged
date         dates; features as days after the ``--time`` column (not used without one)
identifier   one value per lead (text, or integers named like an id): never a feature
free_text    long, mostly distinct text (notes): reported, not modelled
pii          e-mail addresses, names, phone numbers: never a feature, never logged or shown
constant     a single value: carries no information
empty        no values at all
============ ==================================================================================

plus the columns given on the command line: the target, ``--id``, ``--time`` and ``--exclude``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass, field

import pandas as pd

from leadml.config import FlatSettings, LeakageSettings
from leadml.errors import DataError
from leadml.flat.preprocess import (
    clean_text,
    date_format,
    number_format,
    parse_booleans,
    parse_dates,
    parse_numbers,
    spelling_map,
)
from leadml.flat.quality import QualityFinding
from leadml.flat.read import FlatExport
from leadml.modeling.leakage import looks_like_identifier, name_words

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
#: Column names (as lower-case words joined by _) that hold personal data whatever their values
#: look like; e-mail addresses are also recognised by their values ("Do Not Email" is a flag).
_PII_NAMES = frozenset({
    "email", "e_mail", "email_address", "e_mail_address", "mail", "phone", "phone_number",
    "mobile", "mobile_number", "mobile_phone", "telephone", "fax", "first_name", "firstname",
    "last_name", "lastname", "surname", "full_name", "fullname", "name", "contact_name",
    "lead_name", "address", "street", "street_address", "postal_address", "date_of_birth",
    "birth_date", "ip_address",
})  # fmt: skip


@dataclass(frozen=True)
class ColumnRole:
    """One column: its ``role``, whether it is a model input (``used``, before the leakage
    guard) and why, and how to parse it (``params``)."""

    name: str
    role: str
    used: bool
    note: str
    params: dict = field(default_factory=dict)


@dataclass
class ColumnPlan:
    """Roles of every column, the binary label of the rows kept, and the key columns."""

    roles: list[ColumnRole]
    target: str
    positive: str
    label: pd.Series  # 1 converted, 0 not, for the rows kept (index of the export's frame)
    id: str | None = None
    time: str | None = None
    time_format: str | None = None
    times: pd.Series | None = None  # the time column parsed (UTC), rows kept

    def role(self, name: str) -> ColumnRole:
        return next(r for r in self.roles if r.name == name)

    @property
    def used(self) -> list[str]:
        return [r.name for r in self.roles if r.used]

    def spec(self, names: Collection[str]) -> list[dict]:
        """:class:`~leadml.flat.preprocess.FlatPreprocessor` column specs of ``names``; an
        identifier given here (kept on purpose) is read as a category."""
        out = []
        for r in self.roles:
            if r.name in names:
                role = "categorical" if r.role == "identifier" else r.role
                out.append({"name": r.name, "role": role, **r.params})
        return out

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"column": r.name, "role": r.role, "used": r.used, "note": r.note} for r in self.roles]
        )


def unknown_column(source: str, frame: pd.DataFrame, name: str, what: str) -> DataError:
    """The error for a column the export lacks: its size, its columns and the closest names."""
    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close += [c for c in names if c.lower() == name.lower() and c not in close]
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
    return DataError(
        f"{source}: {what} {name!r} is not a column ({len(frame):,} rows, {len(names)} columns: "
        f"{shown}){hint}"
    )


def plan_columns(
    export: FlatExport,
    target: str,
    *,
    id: str | None = None,
    time: str | None = None,
    exclude: Collection[str] = (),
    positive: str | None = None,
    settings: FlatSettings | None = None,
    leakage: LeakageSettings | None = None,
) -> ColumnPlan:
    """Decide every column's role and read the target, recording the mess found in
    ``export.quality``.

    Raises
    ------
    DataError
        A named column (target, id, time, excluded, or in ``flat.roles``) is missing, the target
        is not binary, or the time column does not hold dates; the message names the file, the
        column, the row count and an example.
    """
    settings = settings or FlatSettings()
    leakage = leakage or LeakageSettings()
    frame, source = export.frame, export.source
    for name, what in [(target, "target"), (id, "--id"), (time, "--time")]:
        if name is not None and name not in frame.columns:
            raise unknown_column(source, frame, name, what)
    for name in exclude:
        if name not in frame.columns:
            raise unknown_column(source, frame, name, "--exclude")
    for name in settings.roles:
        if name not in frame.columns:
            raise unknown_column(source, frame, name, "flat.roles names")
    if len({c for c in (target, id, time) if c is not None}) < sum(
        c is not None for c in (target, id, time)
    ):
        raise DataError(f"{source}: the target, --id and --time must be different columns")

    label, positive = _label(export, target, positive, settings)
    kept = label.index
    roles = [ColumnRole(target, "target", False, f"the target: 1 when {positive!r}")]
    times, time_format = None, None
    if id is not None:
        roles.append(ColumnRole(id, "id", False, "the lead's key: in score files, never a feature"))
        _report_duplicate_ids(export, id)
    if time is not None:
        times, time_format = _times(export, time, kept, settings)
        roles.append(ColumnRole(time, "time", False, "orders the rows: later rows are tested"))
    for name in exclude:
        roles.append(ColumnRole(name, "excluded", False, "left out with --exclude"))
    taken = {r.name for r in roles}
    for name in frame.columns:
        if name not in taken:
            roles.append(_role(export, str(name), settings, leakage, time is not None))
    order = {str(c): i for i, c in enumerate(frame.columns)}
    roles.sort(key=lambda r: order[r.name])
    return ColumnPlan(roles, target, positive, label, id, time, time_format, times)


def _label(export: FlatExport, target: str, positive: str | None, settings: FlatSettings):
    source, frame = export.source, export.frame
    text = clean_text(frame[target], settings.placeholders)
    present = text.dropna()
    if not len(present):
        raise DataError(f"{source}: target column {target!r} has no values in {len(frame):,} rows")
    lower = present.str.lower()
    values = list(dict.fromkeys(lower))
    spelled = {v: present[lower == v].iloc[0] for v in values}
    if len(values) == 1:
        raise DataError(
            f"{source}: target column {target!r} has a single value ({spelled[values[0]]!r} on "
            f"all {len(present):,} rows with a value): a model needs leads that converted and "
            "leads that did not"
        )
    if len(values) > 2:
        examples = ", ".join(repr(spelled[v]) for v in values[:5])
        raise DataError(
            f"{source}: target column {target!r} must be binary (converted or not) but has "
            f"{len(values)} distinct values in {len(present):,} rows, e.g. {examples}"
        )
    chosen = _positive(values, positive, settings)
    if chosen is None:
        raise DataError(
            f"{source}: target column {target!r} has the values {spelled[values[0]]!r} and "
            f"{spelled[values[1]]!r}; say which one means converted with --positive"
        )
    missing = len(frame) - len(present)
    if missing:
        example = frame[target][text.isna()].iloc[0]
        export.quality.add(
            QualityFinding(
                target,
                "missing_target",
                "no target value: left out of training and validation",
                rows=missing,
                example=str(example),
            )
        )
    return (lower == chosen).astype("int8"), spelled[chosen]


def _positive(values: list[str], positive: str | None, settings: FlatSettings) -> str | None:
    if positive is not None:
        wanted = positive.strip().lower()
        if wanted not in values:
            raise DataError(f"--positive {positive!r} is not a value of the target ({values})")
        return wanted
    yes = {v.lower() for v in settings.true_values}
    no = {v.lower() for v in settings.false_values}
    if set(values) <= yes | no and len(set(values) & yes) == 1:
        return next(v for v in values if v in yes)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    if set(numbers) == {0.0, 1.0}:
        return values[int(numbers.idxmax())]
    return None


def _report_duplicate_ids(export: FlatExport, id: str) -> None:
    ids = export.frame[id]
    duplicated = ids[ids.duplicated(keep=False) & (ids.str.strip() != "")]
    if len(duplicated):
        export.quality.add(
            QualityFinding(
                id,
                "duplicate_id",
                f"{duplicated.nunique():,} id(s) appear more than once; each row is kept as a "
                "lead of its own",
                rows=len(duplicated),
            )
        )


def _times(export: FlatExport, time: str, kept: pd.Index, settings: FlatSettings):
    text = clean_text(export.frame[time], settings.placeholders).loc[kept]
    fmt, share = date_format(text)
    present = text.dropna()
    if fmt is None or share < settings.parse_min_share:
        example = present.iloc[0] if len(present) else None
        raise DataError(
            f"{export.source}: --time column {time!r} must hold dates, but only {share:.0%} of "
            f"its {len(present):,} values read as one (e.g. {example!r})"
        )
    times = parse_dates(text, fmt)
    unread = times.isna() & text.notna()
    if unread.any() or times.isna().any():
        export.quality.add(
            QualityFinding(
                time,
                "missing_time",
                "no readable date: left out (a time-ordered split needs each lead's date)",
                rows=int(times.isna().sum()),
                example=str(text[unread].iloc[0]) if unread.any() else None,
            )
        )
    return times, fmt


def _is_pii(name: str, present: pd.Series) -> bool:
    if "_".join(name_words(name)) in _PII_NAMES:
        return True
    sample = present.head(1_000).astype("str")
    return bool(len(sample)) and sample.str.match(_EMAIL).mean() >= 0.5


def _role(
    export: FlatExport,
    name: str,
    settings: FlatSettings,
    leakage: LeakageSettings,
    has_time: bool,
) -> ColumnRole:
    raw = export.frame[name]
    text = clean_text(raw, settings.placeholders)
    present = text.dropna()
    if _is_pii(name, present):
        return ColumnRole(name, "pii", False, "personal data: never a feature, never logged")
    _report_missing(export, name, raw, text, settings)
    forced = settings.roles.get(name)
    if forced == "ignore":
        return ColumnRole(name, "ignore", False, "ignored (flat.roles)")
    if not len(present):
        export.quality.add(QualityFinding(name, "empty_column", "no values at all: not used"))
        return ColumnRole(name, "empty", False, "no values")
    # One value and no gaps carries nothing; one value with gaps is a filled-in-or-not flag.
    if forced is None and present.str.lower().nunique() == 1 and len(present) == len(text):
        export.quality.add(
            QualityFinding(
                name,
                "constant",
                "the same value in every row: not used",
                rows=len(present),
                example=present.iloc[0],
            )
        )
        return ColumnRole(name, "constant", False, "a single value: no information")
    role = forced or _infer(name, present, settings, leakage)
    return _decide(export, name, role, present, settings, leakage, has_time, forced is not None)


def _report_missing(export, name, raw, text, settings) -> None:
    original = raw.fillna("").astype("str")
    stripped = original.str.strip()
    empty = int((stripped == "").sum())
    if empty and empty < len(raw):
        export.quality.add(
            QualityFinding(name, "empty_strings", "empty cells: read as missing", rows=empty)
        )
    placeholder = text.isna() & (stripped != "")
    if placeholder.any():
        values = stripped[placeholder].value_counts()
        shown = ", ".join(f"{v!r} x{n:,}" for v, n in values.items())
        export.quality.add(
            QualityFinding(
                name,
                "placeholder",
                f"placeholder values read as missing: {shown}",
                rows=int(placeholder.sum()),
                example=str(values.index[0]),
            )
        )
    padded = (original != stripped) & (stripped != "")
    if padded.any():
        export.quality.add(
            QualityFinding(
                name,
                "whitespace",
                "spaces around values: trimmed",
                rows=int(padded.sum()),
                example=str(original[padded].iloc[0]),
            )
        )


def _infer(name: str, present: pd.Series, settings: FlatSettings, leakage) -> str:
    lower = set(present.str.lower().unique())
    if lower <= {v.lower() for v in (*settings.true_values, *settings.false_values)}:
        return "boolean"
    numbers = parse_numbers(present, *number_format(present))
    if numbers.notna().mean() >= settings.parse_min_share:
        if looks_like_identifier(numbers, name, leakage) is not None:
            return "identifier"
        return "numeric"
    fmt, share = date_format(present)
    if fmt is not None and share >= settings.parse_min_share:
        return "date"
    distinct = present.nunique() / len(present)
    if present.str.len().mean() >= settings.free_text_min_length and distinct >= 0.5:
        return "free_text"  # before identifiers: notes are distinct too
    if looks_like_identifier(present, name, leakage) is not None:
        return "identifier"
    return "categorical"


def _decide(export, name, role, present, settings, leakage, has_time, forced) -> ColumnRole:
    why = "set in flat.roles" if forced else "inferred from the values"
    add = export.quality.add
    if role == "numeric":
        thousands, decimal = number_format(present)
        numbers = parse_numbers(present, thousands, decimal)
        bare = present.str.replace(r"[\s$€£¥%]", "", regex=True)
        grouped = bare.str.contains(thousands, regex=False) & numbers.notna()
        if grouped.any():
            detail = f"numbers written with {thousands!r} between thousands: read as numbers"
            example = present[grouped].iloc[0]
            add(QualityFinding(name, "thousands_separator", detail, int(grouped.sum()), example))
        if decimal != ".":
            add(QualityFinding(name, "decimal_comma", "decimal commas: read as numbers"))
        symbols = present.str.contains(r"[$€£¥%]", regex=True)
        if symbols.any():
            detail, example = "currency or percent signs: dropped", present[symbols].iloc[0]
            add(QualityFinding(name, "number_symbols", detail, int(symbols.sum()), example))
        _report_unread(export, name, present, numbers.isna(), "numbers")
        return ColumnRole(name, "numeric", True, why, {"thousands": thousands, "decimal": decimal})
    if role == "boolean":
        flags = parse_booleans(present, settings.true_values, settings.false_values)
        spellings = sorted(present[flags.notna()].unique())
        add(
            QualityFinding(
                name,
                "boolean",
                f"yes/no values ({', '.join(map(repr, spellings[:6]))}) read as 1/0",
                rows=int(flags.notna().sum()),
            )
        )
        _report_unread(export, name, present, flags.isna(), "yes/no values")
        return ColumnRole(name, "boolean", True, why)
    if role == "date":
        fmt, _ = date_format(present)
        if fmt is None:
            raise DataError(
                f"{export.source}: column {name!r} is set to 'date' (flat.roles) but none of its "
                f"{len(present):,} values reads as one (e.g. {present.iloc[0]!r})"
            )
        _report_unread(export, name, present, parse_dates(present, fmt).isna(), "dates")
        if not has_time:
            return ColumnRole(
                name,
                "date",
                False,
                "a date, but without --time there is no instant to measure it from: not used",
                {"format": fmt},
            )
        return ColumnRole(name, "date", True, f"{why}: days after the time column", {"format": fmt})
    if role == "identifier":
        return ColumnRole(name, "identifier", False, "one value per lead: never a feature")
    if role == "free_text":
        return ColumnRole(name, "free_text", False, "long free text: not modelled")
    _report_categories(export, name, present, settings)
    return ColumnRole(name, "categorical", True, why)


def _report_unread(export, name, present, unread: pd.Series, what: str) -> None:
    if unread.any():
        export.quality.add(
            QualityFinding(
                name,
                "mixed_types",
                f"{unread.mean():.1%} of the values are not {what}: read as missing",
                rows=int(unread.sum()),
                example=str(present[unread.to_numpy()].iloc[0]),
            )
        )


def _report_categories(export, name, present, settings) -> None:
    numbers = parse_numbers(present, *number_format(present))
    share = numbers.notna().mean()
    if 0.5 <= share < settings.parse_min_share:
        text = present[numbers.isna().to_numpy()]
        export.quality.add(
            QualityFinding(
                name,
                "mixed_types",
                f"{share:.0%} numbers and {1 - share:.0%} text: read as categories (set "
                "flat.roles to numeric to read the numbers and drop the text)",
                rows=len(text),
                example=str(text.iloc[0]),
            )
        )
    merged = spelling_map(present)
    if merged:
        lower = present.str.lower()
        variants = present[lower.isin(list(merged)) & ~present.isin(list(merged.values()))]
        shown = ", ".join(f"{k!r} -> {v!r}" for k, v in list(merged.items())[:3])
        export.quality.add(
            QualityFinding(
                name,
                "case_variants",
                f"spellings that differ only in case merged ({shown})",
                rows=len(variants),
                example=str(variants.iloc[0]) if len(variants) else None,
            )
        )
