"""Scoring the open leads as of a date: probability, tier, reasons, and the rule score beside."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadml.common.steps import Progress, StepClock
from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.asof import open_leads, to_utc
from leadml.data.readers import Source
from leadml.data.shards import Shard
from leadml.errors import DataError, ModelMismatchError
from leadml.scoring._explain import Explainer, top_reasons
from leadml.scoring._model import ScoringModel, resolve_model
from leadml.scoring._phrases import Phrasebook
from leadml.scoring._summary import NightStats, Notes
from leadml.scoring._texts import fired_text, join_texts, reason_texts

log = logging.getLogger("leadml.scoring")


AGREEMENT = ("both", "model_only", "rules_only", "neither")
NIGHT_COLUMNS = ("model_tier", "model_rank", "model_mql", "agreement")
RULE_COLUMNS = ("rule_fit_score", "rule_engagement_score", "rule_score", "rule_grade", "rule_mql")
_EMAIL_SQL = r"regexp_matches(lead_id, '[^@\s]+@[^@\s]+\.[A-Za-z]{2,}')"


@dataclass
class ScoringResult:
    """What a scoring run produced.

    ``scores`` has one row per lead open at ``as_of`` (see docs/scoring.md for every column);
    ``summary`` is the run summary (JSON-serialisable) and ``markdown`` the same for people.
    """

    scores: pd.DataFrame
    summary: dict
    markdown: str
    as_of: pd.Timestamp
    scored_at: pd.Timestamp
    model: ScoringModel
    reason_method: str
    importance: pd.Series
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    path: Path | str | None = None  # the partition written, or the database table (a URI)
    tracking_run_id: str | None = None

    @property
    def drift_warnings(self) -> list[str]:
        return list(self.summary.get("drift", {}).get("warnings", []))


@dataclass
class Prepared:
    """A run whose inputs passed every check: nothing computed or written yet."""

    data: LeadData
    as_of: pd.Timestamp
    model: ScoringModel
    rules: Any
    settings: Settings
    clock: StepClock
    warnings: list[str] = field(default_factory=list)


def prepare(
    data: LeadData | Source,
    as_of: pd.Timestamp | str,
    model: Any = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    now: pd.Timestamp | str | None = None,
    shard: Shard | None = None,
) -> Prepared:
    """Check everything a run needs before it computes or writes anything (with ``shard``,
    of data read from a source: that shard's rows, see :func:`leadml.load_data`).

    Raises
    ------
    DataValidationError, DataError
        The input breaks the contract, no lead is open at ``as_of``, or lead ids are e-mail
        addresses (they would carry PII into the score files).
    ConfigError
        The rules file is invalid.
    TrackingError
        No model can be found.
    """
    from leadml.rules import load_rules

    clock = StepClock(log)
    try:
        as_of = to_utc(as_of)
    except (ValueError, TypeError) as exc:
        raise DataError(f"as_of {as_of!r} is not a date or instant: {exc}") from None
    loaded = load_data(data, settings, now=now, shard=shard)
    settings = loaded.settings
    checked_rules = load_rules(rules, settings)
    clock.lap("validate", "input valid: %s", _counts(loaded))
    warnings = []  # beyond validation's, which the report holds
    emails, example = loaded.con.execute(
        f"SELECT count(*), any_value(lead_id) FROM leads WHERE {_EMAIL_SQL}"
    ).fetchall()[0]  # fetched to the end: the connection takes other work next
    if emails:
        raise DataError(
            f"leads.lead_id: {emails:,} ids are e-mail addresses (e.g. {_mask(example)}); score "
            "files and summaries carry lead ids, and e-mail addresses may not leave the "
            "pipeline: key the leads by a CRM id instead"
        )
    end = loaded.end()
    if pd.notna(end) and as_of - end > pd.Timedelta(days=2):
        warnings.append(
            f"the data ends {end:%Y-%m-%d %H:%M} UTC, {(as_of - end).days} days before as_of: "
            "recent engagement is missing (a stale export?)"
        )
        log.warning(warnings[-1])
    resolved = resolve_model(model, settings)
    clock.lap("model", "%s version %s from %s", resolved.name, resolved.version, resolved.source)
    return Prepared(loaded, as_of, resolved, checked_rules, settings, clock, warnings)


def score(
    data: LeadData | Source,
    as_of: pd.Timestamp | str,
    model: Any = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    progress: Progress | None = None,
    now: pd.Timestamp | str | None = None,
) -> ScoringResult:
    """Score every lead open at ``as_of``: calibrated probability, tier, reasons, rule score.

    Parameters
    ----------
    data
        Loaded data or anything :func:`leadml.load_data` reads (validated first).
    as_of
        The instant (a date means its midnight UTC); only data strictly before it is seen.
    model
        ``None`` for the registry's champion (the export's, with a warning, when the tracking
        store is unreachable); see :func:`leadml.scoring.resolve_model` for the other forms.
    settings
        Settings (default: the data's, else the built-in ones); ``scoring`` holds the tiers,
        reasons and drift thresholds.
    rules
        The rules file or object (default: ``configs/rules.yaml``).
    progress
        Called as ``progress(step, done, total)`` while chunks of leads are scored.

    Returns
    -------
    ScoringResult
        Nothing is written; :func:`score_to` writes a partition and records the run.
    """
    return run(prepare(data, as_of, model, settings, rules=rules, now=now), progress=progress)


def run(prepared: Prepared, *, progress: Progress | None = None) -> ScoringResult:
    """Compute a prepared run (see :func:`prepare`)."""
    from leadml.scoring._summary import model_facts, render_markdown, summarise

    p, clock = prepared, prepared.clock
    scored = score_rows(prepared, progress=progress)
    scores = with_night_columns(scored.rows, p.settings)
    clock.lap("assemble", "tiers, agreement and reason texts")
    summary = summarise(
        scores, scored.stats, as_of=p.as_of, model=model_facts(p.model),
        reference=p.model.reference, settings=p.settings, scored_at=scored.scored_at,
    )  # fmt: skip
    clock.lap("summary", "expected conversions %.1f", summary["expected_conversions"])
    summary["timings_seconds"] = dict(clock.seconds)
    return ScoringResult(
        scores=scores,
        summary=summary,
        markdown=render_markdown(summary),
        as_of=p.as_of,
        scored_at=scored.scored_at,
        model=p.model,
        reason_method=scored.stats.method,
        importance=scored.stats.importance,
        timings=clock.seconds,
        warnings=list(summary["warnings"]),
    )


@dataclass
class ScoredRows:
    """The open leads' scores without the columns that rank them against each other (see
    :func:`with_night_columns`), and the sums the night's summary needs."""

    rows: pd.DataFrame
    stats: NightStats
    scored_at: pd.Timestamp


def score_rows(
    prepared: Prepared, *, progress: Progress | None = None, keep: Callable | None = None
) -> ScoredRows:
    """Score the leads open at the prepared instant (those ``keep(data, spine)`` selects, when
    given: a shard). Every column of a row depends on its lead (and the lead's account) alone."""
    from leadml.data.attributes import attributes_table
    from leadml.features import feature_catalogue, feature_specs, features_of_checked_spine
    from leadml.rules import rule_scores_of_checked_spine

    p, clock, settings = prepared, prepared.clock, prepared.settings
    scoring = settings.scoring
    scored_at = pd.Timestamp(datetime.now(UTC)).floor("s")
    spine = open_leads(p.data, p.as_of)
    if keep is not None and len(spine):
        spine = spine[keep(p.data, spine)].reset_index(drop=True)
    clock.lap("open_leads", "%s leads open at %s", f"{len(spine):,}", f"{p.as_of:%Y-%m-%d}")
    if not len(spine):
        if keep is not None:  # a shard may hold none; the night as a whole is checked later
            return ScoredRows(pd.DataFrame(), NightStats.empty(_notes(p)), scored_at)
        raise DataError(no_open_lead(p.as_of))

    # The open leads are a checked spine (one pair per lead); features and rules share their
    # attributes.
    with attributes_table(p.data, spine) as attributes:
        features = features_of_checked_spine(p.data, spine, attributes=attributes)
        names = p.model.feature_names
        missing = [f for f in names if f not in features.columns]
        if missing and (lacked := _lacked_inputs(p.data, missing)):
            raise ModelMismatchError(
                f"model {p.model.name} version {p.model.version} was trained on features this "
                f"data cannot supply, e.g. {missing[:5]}: {'; '.join(lacked)}. Score data that "
                "has these inputs, or retrain the model on this data"
            )
        if missing:
            raise ModelMismatchError(
                f"model {p.model.name} version {p.model.version} needs {len(missing)} feature(s) "
                f"tonight's features lack, e.g. {missing[:5]}: retrain it with the current "
                "configuration, or score with the settings it was trained with"
            )
        clock.lap("features", "%s × %d features", f"{len(features):,}", len(names))

        ruled = rule_scores_of_checked_spine(
            p.data, spine, p.rules, explain=True, attributes=attributes
        )
    if not ruled["lead_id"].equals(features["lead_id"]):  # same spine: the same rows, in order
        ruled = features[["lead_id"]].merge(ruled, on="lead_id", how="left", validate="1:1")
    clock.lap("rules", "%s leads", f"{len(ruled):,}")

    specs = {f.name: f for f in feature_specs(settings, p.data)}
    reference, reference_note, from_tonight = _reference_values(
        names, specs, p.model.reference, features
    )
    explainer = Explainer(
        p.model.model, names, reference,
        candidates=scoring.reason_features, sample=features.iloc[:2_000],
    )  # fmt: skip
    n, chunk = len(features), scoring.chunk_rows
    probability = np.empty(n)
    top_index = np.empty((n, scoring.reasons), dtype="int32")
    top_effect = np.empty((n, scoring.reasons), dtype="float32")
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        part = explainer.explain(features.iloc[start:stop])
        probability[start:stop] = part.probability
        # Ranked by log-odds, so a lead at 0.5% has reasons as clear as one at 50%; reported
        # in probability points.
        index, _ = top_reasons(part.log_odds(), scoring.reasons, scoring.reason_min_log_odds)
        top_index[start:stop] = index
        top_effect[start:stop] = np.where(
            index >= 0, np.take_along_axis(part.effects, np.maximum(index, 0), axis=1), 0.0
        )
        if progress is not None:
            progress("score", stop, n)
    clock.lap("probability", "%s leads, reasons by %s over %d features",
              f"{n:,}", explainer.method, len(explainer.features))  # fmt: skip

    phrasebook = Phrasebook(settings, feature_catalogue(settings))
    rows = _assemble(p, features, ruled, probability, top_index, top_effect, explainer,
                     phrasebook, scored_at)  # fmt: skip
    stats = NightStats.of(features, explainer, p.model.reference, reference_note, _notes(p),
                          from_sample=from_tonight or explainer.method == "occlusion")  # fmt: skip
    return ScoredRows(rows, stats, scored_at)


def _notes(prepared: Prepared) -> Notes:
    cut = prepared.data.shard is not None  # its validation saw a shard's rows
    return Notes.of(prepared.data.report.warnings, prepared.warnings, cut=cut)


def no_open_lead(as_of: pd.Timestamp) -> str:
    return f"no lead is open at {as_of:%Y-%m-%d %H:%M} UTC: nothing to score"


def _counts(data: LeadData) -> str:
    counts = data.report.row_counts or data.row_counts()  # validation counted them already
    return ", ".join(f"{name} {count:,}" for name, count in counts.items())


def _mask(value: str) -> str:
    """``a***@example.com``: enough to find the row, not the person."""
    local, _, domain = str(value).partition("@")
    return f"{local[:1]}***@{domain}"


def _reference_values(names, specs, profile, features) -> tuple[dict, str, bool]:
    """Reference value per feature: the feature's own empty value for counts and flags with a
    fill (0, False, 'lead'), else the training median or most common value from the model's
    metadata, else tonight's (the third value says whether any is)."""
    stored = (profile or {}).get("features", {})
    out, from_tonight = {}, []
    for name in names:
        spec = specs.get(name)
        if spec is not None and spec.fill is not None:
            out[name] = spec.fill
            continue
        column = stored.get(name)
        if column is not None:
            out[name] = column.get("median") if column["kind"] == "number" else column.get("mode")
            continue
        values = features[name]
        from_tonight.append(name)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[name] = float(values.median()) if values.notna().any() else None
        else:
            mode = values.mode(dropna=True)
            out[name] = mode.iloc[0] if len(mode) else None
    if not from_tonight:
        note = "counts and flags against none; other features against the training median or mode"
    else:
        note = (f"{len(from_tonight)} feature(s) without a training reference in the model's "
                "metadata are compared with tonight's median or mode")  # fmt: skip
    return out, note, bool(from_tonight)


def assign_tiers(probability: np.ndarray, lead_ids: np.ndarray, settings: Settings):
    """(tier, rank): rank 1 is the highest probability (ties: lead id); the tier by the
    configured bands, of probability or of capacity (share of the ranked leads)."""
    tiers = settings.scoring.tiers
    # Ties broken by lead id: a stable sort of rows already in lead-id order does it without
    # comparing a million strings. Through pandas, so text held by Arrow is sorted by Arrow.
    # Ranked on 12 decimals: leads with the same inputs tie whichever batch scored them (matrix
    # products round a row's last bits by its place in the batch: a shard is another batch).
    by_id = pd.Series(lead_ids).argsort(kind="stable").to_numpy()
    order = by_id[np.argsort(-np.round(probability[by_id], 12), kind="stable")]
    rank = np.empty(len(probability), dtype="int64")
    rank[order] = np.arange(1, len(probability) + 1)
    names = list(tiers.probability)
    if tiers.by == "probability":
        lows = np.array(list(tiers.probability.values()))
        # The first tier (best first) whose lowest probability the lead reaches.
        index = np.argmax(probability[:, None] >= lows[None, :], axis=1)
    else:
        shares = np.array(list(tiers.capacity.values()))
        limits = np.ceil(shares * len(probability)).astype("int64")
        index = np.searchsorted(limits, rank, side="left")
    return pd.Categorical.from_codes(index, categories=names, ordered=True), rank


def _lacked_inputs(data, features: list[str]) -> list[str]:
    """The data's missing inputs (:attr:`~leadml.data.LeadData.missing_inputs`) that take away
    some of ``features``, in words."""
    from leadml.features import feature_specs

    everything = {f.name for f in feature_specs(data.settings)}
    supplied = {f.name for f in feature_specs(data.settings, data)}
    gone = {f for f in features if f in everything - supplied}
    if not gone:
        return []
    return [
        m.message
        for m in data.missing_inputs
        if gone & set(m.attributes) or (m.account_features and any(
            f.startswith("account_") for f in gone))
    ]  # fmt: skip


def _assemble(p, features, ruled, probability, top_index, top_effect, explainer, phrasebook,
              scored_at) -> pd.DataFrame:  # fmt: skip
    texts, reason_features = reason_texts(
        top_index, top_effect, features, explainer.features, phrasebook
    )
    n = len(features)

    def constant(value) -> pd.Categorical:
        return pd.Categorical.from_codes(np.zeros(n, dtype="int8"), categories=[str(value)])

    columns: dict[str, Any] = {
        # The arrays as they are: to_numpy() would turn instants into a million Timestamps.
        "lead_id": features["lead_id"].array,
        "as_of": features["as_of"].array,
        "mql_probability": probability,
    }
    for column in RULE_COLUMNS:
        columns[column] = ruled[column].array
    columns["rule_grade"] = pd.Categorical(ruled["rule_grade"].astype("str"))
    columns["rules_fired"] = fired_text(ruled)
    columns["top_reasons"] = join_texts(texts)
    for j, (text, feature) in enumerate(zip(texts, reason_features, strict=True), start=1):
        columns[f"reason_{j}"] = text
        columns[f"reason_{j}_feature"] = feature
        columns[f"reason_{j}_effect"] = top_effect[:, j - 1]
    columns["model_name"] = constant(p.model.name)
    columns["model_version"] = constant(p.model.version)
    columns["model_run_id"] = constant(p.model.run_id)
    columns["scored_at"] = np.full(n, scored_at.to_datetime64(), dtype="datetime64[us]")
    frame = pd.DataFrame(columns)
    frame["scored_at"] = frame["scored_at"].dt.tz_localize("UTC")
    return frame


def night_columns(rows: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """The columns that rank each lead of ``rows`` (every lead open that night: ``lead_id``,
    ``mql_probability``, ``rule_mql``) against the others: ``model_tier``, ``model_rank``,
    ``model_mql`` and ``agreement`` with the rules."""
    tier, rank = assign_tiers(rows["mql_probability"].to_numpy(), rows["lead_id"].array, settings)
    mql_codes = [list(tier.categories).index(t) for t in settings.scoring.tiers.mql]
    model_mql = np.isin(np.asarray(tier.codes), mql_codes)
    rule_mql = rows["rule_mql"].to_numpy(dtype=bool)
    agreement = np.where(model_mql, np.where(rule_mql, 0, 1), np.where(rule_mql, 2, 3))
    return {
        "model_tier": tier,
        "model_rank": rank,
        "model_mql": model_mql,
        "agreement": pd.Categorical.from_codes(agreement, categories=list(AGREEMENT)),
    }


def with_night_columns(rows: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """``rows`` with :func:`night_columns`, where the score files have them."""
    out = rows.assign(**night_columns(rows, settings))
    return out[score_columns(out.columns)]


def score_columns(columns) -> list[str]:
    """``columns`` in the order of the score files: each of :data:`NIGHT_COLUMNS` where the
    unsharded run puts it."""
    out = [c for c in columns if c not in NIGHT_COLUMNS]
    at = out.index("mql_probability") + 1
    out[at:at] = ["model_tier", "model_rank", "model_mql"]
    out.insert(out.index("rules_fired") + 1, "agreement")
    return out
