"""The run summary: what tonight's scores say, in numbers (JSON) and for people (Markdown).

Only counts, distributions and lead ids: no attribute of any lead, so it may go to MLflow. Every
name and id in the Markdown is escaped (:mod:`leadml.common.safe_text`): a lead id cannot break out
of its code span, a feature name out of its table cell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from leadml.common.safe_text import md_code, md_text
from leadml.data.profiles import bin_counts, psi, psi_of_counts
from leadml.data.validation import Problem


@dataclass
class Notes:
    """What a night's input gave to note: validation's warnings (``problems``, as
    :class:`~leadml.data.validation.Problem` fields) and others (``warnings``). The shards of a
    night each validate their own rows: their counts add up (:meth:`merge`)."""

    problems: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cut: bool = False  # validation saw a shard's rows only (not the whole input)

    @classmethod
    def of(cls, problems, warnings: list[str], *, cut: bool) -> Notes:
        return cls([_plain(asdict(p)) for p in problems], list(warnings), cut)

    def format(self) -> list[str]:
        return [Problem(**p).format() for p in self.problems] + self.warnings

    @classmethod
    def merge(cls, parts: list[Notes]) -> Notes:
        """The counts of shards cut from the input add up; shards that all validated the whole
        input (scored from data loaded whole) report it once."""
        cut = [part for part in parts if part.cut]
        counted = cut + [part for part in parts if not part.cut][:1]
        problems: dict[tuple, dict] = {}
        for problem in (p for part in counted for p in part.problems):
            key = (problem["severity"], problem["table"], problem["column"], problem["message"])
            if key not in problems:
                problems[key] = dict(problem)
            elif problem["rows"] is not None:
                problems[key]["rows"] = (problems[key]["rows"] or 0) + problem["rows"]
        warnings = dict.fromkeys(w for part in parts for w in part.warnings)
        return cls(list(problems.values()), list(warnings), bool(cut))


def _plain(problem: dict) -> dict:
    """A problem whose example JSON can carry as it is."""
    if not isinstance(problem["example"], str | int | float | bool | None):
        problem["example"] = str(problem["example"])
    return problem


@dataclass
class NightStats:
    """What the summary needs beyond the score rows, in sums that add up over the shards of a
    night (:meth:`merge`), so a sharded night's summary is the unsharded one's."""

    rows: int
    method: str  # how reasons were computed
    features_explained: list[str]
    reference_note: str
    effect_sums: dict[str, float]  # feature -> sum of |effect| (probability points)
    drift_counts: dict[str, list[int]]  # feature -> leads per bin of its training reference
    notes: Notes = field(default_factory=Notes)
    # Reasons that depend on the other leads scored with it (occlusion ranks features on a
    # sample; a feature without a training reference is compared with tonight's median).
    reasons_from_sample: bool = False

    @classmethod
    def of(cls, features: pd.DataFrame, explainer, reference: dict | None, note: str,
           notes: Notes, *, from_sample: bool) -> NightStats:  # fmt: skip
        stored = (reference or {}).get("features", {})
        return cls(
            rows=len(features),
            method=explainer.method,
            features_explained=list(explainer.features),
            reference_note=note,
            effect_sums={str(k): float(v) for k, v in explainer.effect_sums.items()},
            drift_counts={
                f: bin_counts(features[f], stored[f]).tolist()
                for f in explainer.features if f in stored and f in features.columns
            },
            notes=notes,
            reasons_from_sample=from_sample,
        )  # fmt: skip

    @classmethod
    def empty(cls, notes: Notes) -> NightStats:
        """Of no lead (a shard that holds none of the night's open leads), with its notes."""
        return cls(0, "", [], "", {}, {}, notes)

    @classmethod
    def from_dict(cls, values: dict) -> NightStats:
        return cls(**{**values, "notes": Notes(**values["notes"])})

    @property
    def importance(self) -> pd.Series:
        """Mean absolute effect (probability points) of each explained feature."""
        sums = pd.Series(self.effect_sums, dtype="float64")
        return (sums / max(self.rows, 1)).sort_values(ascending=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def merge(cls, parts: list[NightStats]) -> NightStats:
        notes = Notes.merge([p.notes for p in parts])  # of every shard, with leads or not
        parts = [p for p in parts if p.rows] or parts[:1]
        first = parts[0]
        explained = list(dict.fromkeys(f for p in parts for f in p.features_explained))
        # A feature counted in every part, else its drift would be of some of the leads.
        counted = [f for f in first.drift_counts if all(f in p.drift_counts for p in parts)]
        methods = sorted({p.method for p in parts})
        return cls(
            rows=sum(p.rows for p in parts),
            method=methods[0] if len(methods) == 1 else " and ".join(methods),
            features_explained=explained,
            reference_note=first.reference_note,
            effect_sums={
                f: sum(p.effect_sums.get(f, 0.0) for p in parts) for f in explained
            },
            drift_counts={
                f: np.sum([p.drift_counts[f] for p in parts], axis=0).tolist() for f in counted
            },
            notes=notes,
            reasons_from_sample=any(p.reasons_from_sample for p in parts) or len(methods) > 1,
        )  # fmt: skip


def model_facts(model) -> dict:
    """The summary's account of a :class:`~leadml.scoring.ScoringModel`."""
    return {
        "name": model.name,
        "version": model.version,
        "run_id": model.run_id,
        "source": model.source,
        "family": model.metadata.get("family"),
        "calibration": model.metadata.get("calibration"),
    }


def summarise(scores, stats: NightStats, *, as_of, model: dict, reference: dict | None,
              settings, scored_at) -> dict:  # fmt: skip
    """The run summary of a night's ``scores`` (every column of the score files but the
    reasons is used) with its :class:`NightStats`; ``model`` is :func:`model_facts`."""
    scoring = settings.scoring
    p = scores["mql_probability"].to_numpy()
    tiers = []
    for tier in scores["model_tier"].cat.categories:
        mask = (scores["model_tier"] == tier).to_numpy()
        tiers.append({
            "tier": str(tier), "leads": int(mask.sum()),
            "expected_conversions": float(p[mask].sum()),
            "mean_probability": float(p[mask].mean()) if mask.any() else None,
            "rule_mql": int(scores["rule_mql"].to_numpy()[mask].sum()),
        })  # fmt: skip
    cells = []
    for cell in scores["agreement"].cat.categories:
        mask = (scores["agreement"] == cell).to_numpy()
        cells.append({"agreement": str(cell), "leads": int(mask.sum()),
                      "expected_conversions": float(p[mask].sum())})  # fmt: skip
    missed = scores.loc[~scores["rule_mql"].to_numpy()].nsmallest(scoring.top_missed, "model_rank")
    drift = _drift(scores, stats, reference, scoring)
    importance = stats.importance.head(15)
    return {
        "as_of": as_of.isoformat(),
        "scored_at": scored_at.isoformat(),
        "model": model,
        "open_leads": len(scores),
        "expected_conversions": float(p.sum()),
        "target": f"{settings.target.stage} within {settings.target.horizon_days} days",
        "tiers_by": scoring.tiers.by,
        "tiers": tiers,
        "model_mql": int(scores["model_mql"].sum()),
        "rule_mql": int(scores["rule_mql"].sum()),
        "agreement": cells,
        "missed_by_rules": {
            "description": f"the {scoring.top_missed} leads the rules do not make MQL that the "
            "model ranks highest",
            "lead_ids": [str(i) for i in missed["lead_id"]],
            "probabilities": [round(float(v), 6) for v in missed["mql_probability"]],
        },
        "reasons": {
            "method": stats.method,
            "features_explained": len(stats.features_explained),
            "reference": stats.reference_note,
            "top_features": {str(k): float(v) for k, v in importance.items()},
        },
        "drift": drift,
        "warnings": [*stats.notes.format(), *drift["warnings"]],
    }


def _drift(scores, stats: NightStats, reference, settings) -> dict:
    threshold = settings.psi_warning
    if not reference:
        return {
            "threshold": threshold, "score_psi": None, "features": {},
            "warnings": [], "note": "the model's metadata holds no training reference: drift "
            "was not measured (models trained before reference profiles were stored)",
        }  # fmt: skip
    out: dict = {"threshold": threshold, "features": {}, "warnings": []}
    score_reference = reference.get("score")
    out["score_psi"] = (
        None if score_reference is None else _round(psi(scores["mql_probability"], score_reference))
    )
    stored = reference.get("features", {})
    main = [f for f in stats.importance.index if f in stats.drift_counts]
    for feature in main[: settings.drift_features]:
        counts = np.asarray(stats.drift_counts[feature], dtype="int64")
        out["features"][feature] = _round(psi_of_counts(counts, stored[feature]))
    if out["score_psi"] is not None and out["score_psi"] > threshold:
        out["warnings"].append(
            f"drift: the score's population stability index is {out['score_psi']:.3f} (> "
            f"{threshold:g}): tonight's probabilities are distributed unlike the training data's"
        )
    for feature, value in out["features"].items():
        if value is not None and value > threshold:
            out["warnings"].append(
                f"drift: feature {feature} has a population stability index of {value:.3f} "
                f"(> {threshold:g}) against the training data"
            )
    out["reference_rows"] = reference.get("rows")
    return out


def _round(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def metrics(summary: dict) -> dict[str, float]:
    """The summary's numbers, flat, for MLflow."""
    out = {
        "open_leads": summary["open_leads"],
        "expected_conversions": summary["expected_conversions"],
        "model_mql": summary["model_mql"],
        "rule_mql": summary["rule_mql"],
    }
    for row in summary["tiers"]:
        out[f"tier_{row['tier']}_leads"] = row["leads"]
        out[f"tier_{row['tier']}_expected_conversions"] = row["expected_conversions"]
    for row in summary["agreement"]:
        out[f"agreement_{row['agreement']}_leads"] = row["leads"]
    drift = summary["drift"]
    if drift.get("score_psi") is not None:
        out["psi_score"] = drift["score_psi"]
    for feature, value in drift.get("features", {}).items():
        if value is not None:
            out[f"psi_{feature}"] = value
    for step, seconds in summary.get("timings_seconds", {}).items():
        out[f"seconds_{step}"] = seconds
    return {k: float(v) for k, v in out.items()}


def render_markdown(summary: dict) -> str:
    model = summary["model"]
    lines = [
        f"# Nightly scoring as of {summary['as_of'][:10]}",
        "",
        f"Scored at {summary['scored_at']} with **{md_text(model['name'])}** version "
        f"{md_text(model['version'])} (run {md_code(model['run_id'])}, "
        f"{md_text(model['source'])}).",
        "",
        f"- open leads: **{summary['open_leads']:,}**",
        f"- expected conversions ({summary['target']}): **{summary['expected_conversions']:,.1f}**",
        f"- model MQLs: {summary['model_mql']:,}; rule MQLs: {summary['rule_mql']:,}",
        "",
        f"## Tiers (by {summary['tiers_by']})",
        "",
        "| tier | leads | expected conversions | mean probability | rule MQLs |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary["tiers"]:
        mean = "" if row["mean_probability"] is None else f"{row['mean_probability']:.1%}"
        expected = f"{row['expected_conversions']:,.1f}"
        lines.append(f"| {md_text(row['tier'])} | {row['leads']:,} | {expected} | {mean} "
                     f"| {row['rule_mql']:,} |")  # fmt: skip
    lines += ["", "## Model and rules", "", "| agreement | leads | expected conversions |",
              "|---|---:|---:|"]  # fmt: skip
    for row in summary["agreement"]:
        lines.append(f"| {md_text(row['agreement'])} | {row['leads']:,} | "
                     f"{row['expected_conversions']:,.1f} |")  # fmt: skip
    missed = summary["missed_by_rules"]
    lines += ["", "## Missed by the rules", "", missed["description"] + ":", ""]
    pairs = zip(missed["lead_ids"], missed["probabilities"], strict=True)
    lines += [f"{i}. {md_code(lead)} ({prob:.1%})" for i, (lead, prob) in enumerate(pairs, 1)]
    drift = summary["drift"]
    lines += ["", "## Drift against the training data", ""]
    if drift.get("note"):
        lines.append(drift["note"])
    else:
        score_psi = drift["score_psi"]
        lines += [f"Population stability index (warning above {drift['threshold']:g}):", "",
                  "| what | PSI |", "|---|---:|",
                  f"| score | {'' if score_psi is None else f'{score_psi:.3f}'} |"]  # fmt: skip
        lines += [f"| {md_text(f)} | {'' if v is None else f'{v:.3f}'} |"
                  for f, v in drift["features"].items()]  # fmt: skip
    reasons = summary["reasons"]
    lines += ["", "## Reasons", "",
              f"Method: {reasons['method']} over {reasons['features_explained']} features; "
              f"reference: {reasons['reference']}. Features that moved tonight's probabilities "
              "most (mean absolute effect):", ""]  # fmt: skip
    lines += [f"- {md_text(f)}: {v:.2%}" for f, v in reasons["top_features"].items()]
    if summary["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {md_text(w, 1000)}" for w in summary["warnings"]]
    timings = summary.get("timings_seconds")
    if timings:
        lines += ["", "## Timings", "", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())]
    return "\n".join(lines) + "\n"
