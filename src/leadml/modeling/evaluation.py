"""Evaluation: how well scores rank and how honest their probabilities are, model and rules alike.

Pure functions of labels and scores; nothing here knows where the scores came from, so the model
and the rule score are measured by exactly the same code on exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from leadml.config import EvaluationSettings


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate − mean probability| over equal-count bins, weighted by bin size.

    Equal-count (quantile) bins, because conversion probabilities crowd near zero and equal-width
    bins would put almost every lead in the first one.

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1]); p = np.array([0.0, 0.0, 1.0, 1.0])
    >>> float(expected_calibration_error(y, p, bins=2))
    0.0
    >>> float(expected_calibration_error(y, np.full(4, 0.5), bins=2))
    0.0
    >>> float(expected_calibration_error(y, np.zeros(4), bins=2))
    0.5
    """
    table = reliability_table(y, p, bins)
    weights = table["rows"] / table["rows"].sum()
    return float((weights * (table["observed"] - table["predicted"]).abs()).sum())


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per equal-count bin of ``p``: rows, mean predicted probability and observed rate."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    # Equal predictions always share a bin (a mapped rule score has few distinct values), so
    # there may be fewer bins than asked for
    # (and a constant prediction is one bin, which qcut leaves unlabelled).
    frame["bin"] = pd.qcut(frame["p"], q=bins, labels=False, duplicates="drop")
    frame["bin"] = frame["bin"].fillna(0)
    table = frame.groupby("bin").agg(
        rows=("y", "size"), predicted=("p", "mean"), observed=("y", "mean")
    )
    return table.reset_index(drop=True)


def probability_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, log loss and expected calibration error."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p, bins),
        "base_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
    }


def auc_interval(
    y: np.ndarray,
    score: np.ndarray,
    groups: np.ndarray | pd.Series | None = None,
    *,
    resamples: int = 200,
    level: float = 0.95,
    random_state: int = 0,
) -> tuple[float, float, float]:
    """ROC AUC of ``score`` and a bootstrap interval of it: (auc, low, high).

    ``groups`` (e.g. the lead of each snapshot row) are resampled whole, because a lead's rows
    are not independent of each other; without them, rows are. With one outcome only, the
    AUC is undefined: (nan, nan, nan).

    Examples
    --------
    >>> y = np.array([0, 1] * 200); s = y + np.random.default_rng(0).normal(0, 1, 400)
    >>> auc, low, high = auc_interval(y, s)
    >>> bool(low < auc < high), bool(low > 0.5)
    (True, True)
    """
    y = np.asarray(y, dtype="int64")
    score = np.asarray(score, dtype="float64")
    if len(np.unique(y)) < 2:
        return (float("nan"),) * 3
    codes = np.arange(len(y)) if groups is None else pd.factorize(np.asarray(groups))[0]
    n_groups = int(codes.max()) + 1
    # Rank once: rows of equal score form a block; a weighted AUC is then a sum over blocks.
    blocks = np.unique(score, return_inverse=True)[1]
    positive = y == 1

    def weighted_auc(weight: np.ndarray) -> float:
        pos = np.bincount(blocks[positive], weight[positive], minlength=blocks.max() + 1)
        neg = np.bincount(blocks[~positive], weight[~positive], minlength=blocks.max() + 1)
        below = np.cumsum(neg) - neg  # negatives' weight strictly below each block
        return float(np.sum(pos * (below + neg / 2)) / (pos.sum() * neg.sum()))

    auc = weighted_auc(np.ones(len(y)))
    rng = np.random.default_rng(random_state)
    found = []
    for _ in range(resamples):
        # A group drawn k times counts k times: its rows' weight is its count in the draw.
        weight = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[codes]
        if weight[positive].any() and weight[~positive].any():
            found.append(weighted_auc(weight.astype("float64")))
    if not found:
        return auc, float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(found, [tail, 100 - tail])
    return auc, float(low), float(high)


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC: for scores that are not probabilities (the raw rule score)."""
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
    }


def _order(score: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices from the highest score down; ties broken at random so that a coarse score (the
    rule score has few distinct values) is not flattered or punished by the input order."""
    tiebreak = np.random.default_rng(seed).random(len(score))
    return np.lexsort((tiebreak, -np.asarray(score, dtype=float)))


def gains_table(y: np.ndarray, score: np.ndarray, groups: int = 10) -> pd.DataFrame:
    """Lift and cumulative gains by decile (or ``groups``) of the score, best decile first."""
    y = np.asarray(y, dtype=float)[_order(score)]
    decile = np.arange(len(y)) * groups // max(len(y), 1) + 1
    frame = pd.DataFrame({"decile": decile, "y": y})
    table = frame.groupby("decile").agg(rows=("y", "size"), conversions=("y", "sum"))
    total, base = max(y.sum(), 1), max(y.mean(), 1e-12)
    table["conversion_rate"] = table["conversions"] / table["rows"]
    table["lift"] = table["conversion_rate"] / base
    table["cumulative_share_of_leads"] = table["rows"].cumsum() / len(y)
    table["cumulative_gain"] = table["conversions"].cumsum() / total
    return table.reset_index()


def at_capacity(y: np.ndarray, score: np.ndarray, fractions: Sequence[float]) -> pd.DataFrame:
    """Precision and recall if sales works the top ``fraction`` of leads by ``score``."""
    y = np.asarray(y, dtype=float)[_order(score)]
    total = max(y.sum(), 1)
    rows = []
    for fraction in fractions:
        k = max(round(fraction * len(y)), 1)
        hits = y[:k].sum()
        rows.append(
            {
                "capacity": fraction,
                "leads": k,
                "conversions": int(hits),
                "precision": hits / k,
                "recall": hits / total,
            }
        )
    return pd.DataFrame(rows)


def per_week_capacity(
    frame: pd.DataFrame, score: str, per_week: int, label: str = "label"
) -> dict[str, float]:
    """Precision and recall if sales works the top ``per_week`` leads of each weekly snapshot."""
    top = (
        frame.sample(frac=1.0, random_state=0)
        .sort_values(score, ascending=False, kind="stable")
        .groupby("as_of")
        .head(per_week)
    )
    total = max(frame[label].sum(), 1)
    return {
        "leads": len(top),
        "conversions": int(top[label].sum()),
        "precision": float(top[label].mean()) if len(top) else float("nan"),
        "recall": float(top[label].sum() / total),
    }


def capacity_curve(
    frame: pd.DataFrame,
    scores: Mapping[str, str],
    label: str = "label",
    by: str = "as_of",
    points: int = 200,
) -> pd.DataFrame:
    """Sales capacity against conversions reached: if sales works the top ``k`` leads of each
    snapshot by each score, how many conversions does it reach per snapshot, on average?

    Parameters
    ----------
    frame
        One row per (lead, snapshot): the ``label``, the snapshot column ``by`` and a column per
        score (higher is better).
    scores
        Curve name -> score column, e.g. ``{"model": "model_probability", "rules": "rule_score"}``.
    points
        At most this many capacities, spread from 0 to the largest snapshot.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``leads_per_snapshot`` (the capacity k); a column per score, ``random``
        (k leads picked at random) and ``all_conversions`` (what working every lead reaches).

    Examples
    --------
    >>> f = pd.DataFrame({"as_of": [1, 1, 1, 2, 2], "label": [1, 0, 0, 0, 1],
    ...                   "s": [0.9, 0.1, 0.2, 0.3, 0.8]})
    >>> capacity_curve(f, {"model": "s"}).loc[1, "model"]
    np.float64(1.0)
    """
    groups = [g for _, g in frame.groupby(by, sort=True)]
    largest = max((len(g) for g in groups), default=0)
    k = np.unique(np.linspace(0, largest, min(points, largest + 1)).round().astype(int))
    out = pd.DataFrame(index=pd.Index(k, name="leads_per_snapshot"))
    for name, column in scores.items():
        reached = np.zeros(len(k))
        for group in groups:
            y = group[label].to_numpy(dtype=float)[_order(group[column].to_numpy())]
            cumulative = np.concatenate([[0.0], np.cumsum(y)])
            reached += cumulative[np.minimum(k, len(y))]
        out[name] = reached / max(len(groups), 1)
    random = np.zeros(len(k))
    total = 0.0
    for group in groups:
        y = group[label].to_numpy(dtype=float)
        random += y.mean() * np.minimum(k, len(y)) if len(y) else 0.0
        total += y.sum()
    out["random"] = random / max(len(groups), 1)
    out["all_conversions"] = total / max(len(groups), 1)
    return out


def head_to_head(y: np.ndarray, model: np.ndarray, rule_mql: np.ndarray) -> pd.DataFrame:
    """Model vs rules at the rules' own MQL volume.

    The rules send ``n = rule_mql.sum()`` leads to sales; the model sends its top ``n``. For each:
    leads sent, conversions among them, share of all conversions captured, and MQL→conversion rate.
    """
    y = np.asarray(y, dtype=float)
    rule_mql = np.asarray(rule_mql, dtype=bool)
    n = int(rule_mql.sum())
    model_mql = np.zeros(len(y), dtype=bool)
    model_mql[_order(model)[:n]] = True
    total = max(y.sum(), 1)
    rows = {}
    for name, sent in (("model", model_mql), ("rules", rule_mql)):
        hits = y[sent].sum()
        rows[name] = {
            "mqls": int(sent.sum()),
            "conversions": int(hits),
            "share_of_conversions": hits / total,
            "mql_conversion_rate": hits / n if n else float("nan"),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "scored_by"
    return table


def by_segment(
    frame: pd.DataFrame,
    segments: Sequence[str],
    scores: Mapping[str, str],
    label: str = "label",
    min_rows: int = 50,
) -> pd.DataFrame:
    """ROC AUC of each score, conversions and rows, per value of each segment column.

    Segments with fewer than ``min_rows`` rows or a single class get NaN AUCs rather than noise.
    """
    rows = []
    for segment in segments:
        if segment not in frame.columns:
            continue
        for value, part in frame.groupby(frame[segment].astype("str").fillna("(missing)")):
            row = {
                "segment": segment,
                "value": value,
                "rows": len(part),
                "conversions": int(part[label].sum()),
                "conversion_rate": part[label].mean(),
            }
            for name, column in scores.items():
                enough = len(part) >= min_rows and part[label].nunique() == 2
                row[f"{name}_roc_auc"] = (
                    roc_auc_score(part[label], part[column]) if enough else float("nan")
                )
            rows.append(row)
    return pd.DataFrame(rows)


def learned_metrics(test: pd.DataFrame, bins: int = 10) -> dict[str, float]:
    """The learned points table's metrics (``learned_rules_*``), named as the hand rules'
    (``rules_*``): ranking by its points, probabilities by its points mapped on the calibration
    window (``learned_probability``), conversions at the hand rules' MQL volume, and the new MQLs
    and their conversions of each table at its own threshold (``learned_new_mql``,
    ``rule_new_mql``: a lead is sent once, when its score reaches the threshold, and converts
    within the horizon after; :func:`leadml.modeling.points.compare`)."""
    y = test["label"].to_numpy(dtype=int)
    score = test["learned_score"].to_numpy(dtype=float)
    metrics = {
        f"learned_rules_{k}": v
        for k, v in probability_metrics(y, test["learned_probability"].to_numpy(), bins).items()
    }
    metrics |= {f"learned_rules_points_{k}": v for k, v in ranking_metrics(y, score).items()}
    duel = head_to_head(y, score, test["rule_mql"].to_numpy(dtype=bool))
    metrics["learned_rules_conversions_at_rule_mql_volume"] = float(
        duel.loc["model", "conversions"]
    )
    metrics["learned_rules_mql_conversion_rate"] = float(duel.loc["model", "mql_conversion_rate"])
    for who, column in (("learned_rules", "learned_new_mql"), ("rules", "rule_new_mql")):
        sent = test[column].to_numpy(dtype=bool)
        metrics[f"{who}_new_mqls"] = float(sent.sum())
        metrics[f"{who}_new_mql_conversions"] = float(y[sent].sum())
    return metrics


@dataclass
class Evaluation:
    """The test-window comparison: flat ``metrics`` (model_*, rules_*) and named ``tables``."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def evaluate(test: pd.DataFrame, settings: EvaluationSettings) -> Evaluation:
    """Measure the model and the rule score on the same test rows.

    ``test`` has ``label``, ``model_probability`` and, for the comparison with the rules,
    ``rule_score`` (raw points, for ranking), ``rule_probability`` (the points mapped to a
    probability on the calibration window) and ``rule_mql``; ``as_of`` for the per-week
    capacity, plus any segment columns. Without ``rule_score`` (a flat export has no rule
    score) only the model is measured; without ``as_of``, capacity is by share only.
    """
    y = test["label"].to_numpy(dtype=int)
    model = test["model_probability"].to_numpy()
    has_rules = "rule_score" in test.columns
    bins = settings.calibration_bins
    metrics = {f"model_{k}": v for k, v in probability_metrics(y, model, bins).items()}
    scores = {"model": model}
    tables: dict[str, pd.DataFrame] = {}
    if has_rules:
        rules = test["rule_probability"].to_numpy()
        metrics |= {f"rules_{k}": v for k, v in probability_metrics(y, rules, bins).items()}
        # Ranking by raw points; the mapped probability only ties or reorders nothing.
        metrics |= {
            f"rules_points_{k}": v for k, v in ranking_metrics(y, test["rule_score"]).items()
        }
        duel = head_to_head(y, model, test["rule_mql"].to_numpy(dtype=bool))
        for who in ("model", "rules"):
            metrics[f"{who}_conversions_at_rule_mql_volume"] = float(duel.loc[who, "conversions"])
            metrics[f"{who}_mql_conversion_rate"] = float(duel.loc[who, "mql_conversion_rate"])
        tables["head_to_head"] = duel.reset_index()
        scores["rules"] = test["rule_score"].to_numpy()
    if has_rules and "learned_score" in test.columns:
        metrics |= learned_metrics(test, bins)
        scores["learned_rules"] = test["learned_score"].to_numpy()
    capacity = []
    for who, score in scores.items():
        table = at_capacity(y, score, settings.capacity_fractions).assign(scored_by=who)
        capacity.append(table)
        for row in table.itertuples():
            metrics[f"{who}_recall_at_{row.capacity:g}"] = float(row.recall)
            metrics[f"{who}_precision_at_{row.capacity:g}"] = float(row.precision)
        for per_week in settings.capacity_per_week if "as_of" in test.columns else ():
            column = {"model": "model_probability", "rules": "rule_score"}.get(who, "learned_score")
            figures = per_week_capacity(test, column, per_week)
            metrics[f"{who}_recall_at_{per_week}_per_week"] = figures["recall"]
            metrics[f"{who}_precision_at_{per_week}_per_week"] = figures["precision"]
    segments = [s for s in settings.segments if s in test.columns]
    tables["capacity"] = pd.concat(capacity, ignore_index=True)
    tables["gains_model"] = gains_table(y, model)
    tables["reliability_model"] = reliability_table(y, model, bins)
    if has_rules:
        tables["gains_rules"] = gains_table(y, test["rule_score"].to_numpy())
        tables["reliability_rules"] = reliability_table(
            y, test["rule_probability"].to_numpy(), bins
        )
    if "learned_rules" in scores:
        tables["gains_learned_rules"] = gains_table(y, scores["learned_rules"])
        tables["reliability_learned_rules"] = reliability_table(
            y, test["learned_probability"].to_numpy(), bins
        )
    columns = {"model": "model_probability"} | ({"rules": "rule_score"} if has_rules else {})
    tables["segments"] = by_segment(test, segments, columns)
    metrics["test_rows"] = float(len(test))
    metrics["test_positives"] = float(y.sum())
    return Evaluation(metrics, tables)
