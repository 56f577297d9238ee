"""Learned points: an additive rules file fitted to the team's own outcomes.

A points table a CRM can run is a sum of rule firings, so it is learned as one. Candidate rules
are written in the rules file's own form (a fit attribute ``in`` a list of values, in a
``range`` or ``is`` true; so many events of a type or buying stage within a window, counted up
to a cap) and evaluated by leadml's rule engine on the training window the model uses
(:func:`leadml.rules.rule_scores`, so what is learned is exactly what runs). An L1-penalised
logistic regression along a path of penalties keeps at most ``max_rules`` of them; rules whose
sign contradicts their meaning (points for an unsubscribe, fewer points for more demo requests)
are dropped and the rest refitted, so every engagement rule is monotone. The log-odds are then
scaled to integer points (the best training lead scores about 100), the MQL threshold set on the
calibration window to send as many MQLs as the hand rules, grade bands cut at quantiles of the
training window, and the file written as text with each rule's evidence as a comment
(:mod:`leadml.modeling.points_file`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.svm import l1_min_c

from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.asof import as_spine, label_pairs, open_leads
from leadml.data.attributes import ATTRIBUTES, attributes_table
from leadml.data.readers import Source
from leadml.errors import ColdStart
from leadml.modeling.evaluation import head_to_head, ranking_metrics
from leadml.modeling.points_file import render_rules
from leadml.modeling.training import _place_windows, _sample_by_lead, _too_little
from leadml.modeling.trainset import snapshot_dates
from leadml.rules import Rules, load_rules, rule_problems, rule_scores

log = logging.getLogger("leadml.points")

KEYS = ["lead_id", "as_of"]
#: Candidate engagement windows (days; None: ever) and how many events a rule counts at most.
WINDOWS = (7, 30, 90, None)
COUNTS = (1, 3)
#: Quantiles of a numeric attribute that become ``from``/``below`` edges.
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
#: A value (or a range) must hold for this share of the training window's leads (and at least
#: MIN_LEADS of them) to become a candidate: rarer ones are noise.
MIN_SUPPORT = 0.02
MIN_LEADS = 30
#: Text attributes with more values than this keep only the most frequent ones, and get no
#: candidate groups of values (country: a group of eight countries is a fit to noise).
MAX_VALUES = 12
MAX_GROUPED = 8
#: Rows the engine scores at once (bounds the memory of ~250 candidate columns).
CHUNK_ROWS = 40_000


@dataclass
class LearnedPoints:
    """A learned rules file and how it compares with the hand rules on the test window.

    ``rules``: the validated :class:`~leadml.rules.Rules`; ``text``: the rules file with each
    rule's evidence as a comment (loads back to ``rules``); ``table``: one row per rule (kind,
    points, log-odds weight, leads and snapshots matching, their conversion rate); ``metrics``
    and ``comparison``: hand rules vs learned rules on the test window (ROC AUC, conversions at
    the hand rules' MQL volume, MQLs and conversions at each threshold); ``scores``: the test
    rows with both scores.
    """

    rules: Rules
    text: str
    table: pd.DataFrame
    metrics: dict[str, float]
    comparison: pd.DataFrame
    windows: pd.DataFrame
    scores: pd.DataFrame
    candidates: int = 0
    notes: list[str] = field(default_factory=list)

    def write(self, out: str | Path) -> Path:
        """Write :attr:`text` to ``out`` atomically."""
        from leadml.common.atomic import write_atomic

        out = Path(out)
        write_atomic(out, lambda path: path.write_text(self.text, encoding="utf-8"))
        return out


def learn_points(
    source: Source | LeadData,
    settings: Settings | None = None,
    *,
    rules: Rules | str | Path | None = None,
    max_rules: int = 15,
    pairs: pd.DataFrame | None = None,
) -> LearnedPoints:
    """Learn a points table from ``source``'s outcomes and test it against the hand ``rules``.

    Parameters
    ----------
    source
        The history (a folder, tables or :class:`~leadml.data.LeadData`).
    rules
        The hand rules (default: ``configs/rules.yaml``): their MQL volume on the calibration
        window sets the learned threshold, and they are the comparison on the test window.
    max_rules
        At most this many rules in the learned table.
    pairs
        ``lead_id``, ``as_of``, ``label`` and ``window`` (train, calibration, test) of the
        training set, when the caller has them (:func:`leadml.modeling.training.train`);
        otherwise built the way ``leadml train`` builds them.

    Raises
    ------
    ColdStart
        When the history is too short for a training and a test window.
    """
    data = load_data(source, settings)
    settings = data.settings
    hand = load_rules(rules, settings)
    pairs = windowed_pairs(data) if pairs is None else pairs[[*KEYS, "label", "window"]]
    parts = {w: pairs[pairs["window"] == w].reset_index(drop=True) for w in WINDOWS_}
    train = parts["train"]
    tuning = parts["calibration"] if len(parts["calibration"]) else train
    candidates = candidate_rules(data, train)
    log.info("%d candidate rules on %s training rows", len(candidates), f"{len(train):,}")
    valid = parts["calibration"]
    X_all, names = firing_matrix(data, pd.concat([train, valid], ignore_index=True), candidates)
    X, X_valid = X_all[: len(train)], X_all[len(train) :]
    y = train["label"].to_numpy(dtype=int)
    rows = train.assign(row=np.arange(len(train)))
    sample = _sample_by_lead(rows, settings.model.search_max_rows, settings)["row"].to_numpy()
    signs = np.array([_sign(candidates[n], settings) for n in names])
    # Each lead weighs the same, however many snapshots it is open for: a lead open for months
    # would otherwise teach the path its own attributes many times over.
    weight = 1.0 / train.groupby("lead_id")["label"].transform("size").to_numpy(dtype=float)
    weight *= len(weight) / weight.sum()
    path = rule_path(X[sample], y[sample], signs, max_rules, settings.model.random_state,
                     weight[sample])  # fmt: skip
    # The penalty is chosen on the later window, as the model's search chooses its settings:
    # a lead open for months is many snapshots, so the training window alone over-trusts rules
    # that fit a few hundred leads.
    chosen, weights = choose_rules(path, X, y, signs, X_valid, valid["label"].to_numpy(dtype=int))
    kept = [i for i, w in zip(chosen, weights, strict=True) if w != 0]
    weights = weights[weights != 0]
    linear = X[:, kept] @ weights
    scale = 100.0 / max(float(np.max(linear)), 1e-9)
    points = np.round(weights * scale).astype(int)
    learned = [(names[i], int(p)) for i, p in zip(kept, points, strict=True) if p != 0]
    table = evidence(X, names, learned, train, candidates, weights, kept)
    raw = _rules_mapping(candidates, learned)
    fit_score, engagement_score = _section_scores(X, names, learned, candidates)
    raw["grades"] = grade_bands(fit_score, engagement_score)
    hand_tuning = rule_scores(data, tuning[KEYS], hand, explain=False)
    raw["mql"] = {"threshold": 0}
    draft = rule_scores(data, tuning[KEYS], load_rules(raw, settings), explain=False)
    threshold, sent = volume_threshold(draft["rule_score"], int(hand_tuning["rule_mql"].sum()))
    raw["mql"] = {"threshold": threshold}
    context = {
        "train": train,
        "tuning_window": "calibration" if len(parts["calibration"]) else "training",
        "hand_mqls": int(hand_tuning["rule_mql"].sum()),
        "learned_mqls": sent,
        "candidates": len(candidates),
        "horizon": settings.target.horizon_days,
        "target": settings.target.stage,
    }
    text = render_rules(raw, table, context)
    learned_rules = _round_trip(text, raw, settings)
    scores, metrics, comparison = compare(data, parts["test"], hand, learned_rules)
    metrics["rules_learned_count"] = float(len(learned))
    metrics["rules_learned_threshold"] = float(threshold)
    return LearnedPoints(
        learned_rules,
        text,
        table,
        metrics,
        comparison,
        _windows(parts),
        scores,
        candidates=len(candidates),
    )


WINDOWS_ = ("train", "calibration", "test")


def windowed_pairs(data: LeadData) -> pd.DataFrame:
    """The training set's pairs (``lead_id``, ``as_of``, ``label``) and their ``window``, as
    ``leadml train`` places them, without building the features."""
    dates = snapshot_dates(data)
    spine = open_leads(data, list(dates)) if len(dates) else pd.DataFrame(columns=KEYS)
    labelled = label_pairs(data, spine)
    mature = labelled[labelled["mature"]][[*KEYS, "label"]].reset_index(drop=True)
    if mature.empty:
        raise ColdStart("cold start: no mature snapshot (the history is shorter than "
                        "trainset.warmup_days + one horizon)")  # fmt: skip
    mature["label"] = mature["label"].astype("int8")
    placed, _ = _place_windows(mature, data.settings)
    short = _too_little(_windows({w: placed[placed["window"] == w] for w in WINDOWS_}),
                        data.settings)  # fmt: skip
    if short:
        raise ColdStart(f"cold start: {short}")
    return placed[placed["window"].notna()].reset_index(drop=True)


def _windows(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = {
        w: {
            "rows": len(p),
            "positives": int(p["label"].sum()) if len(p) else 0,
            "first_snapshot": p["as_of"].min() if len(p) else pd.NaT,
            "last_snapshot": p["as_of"].max() if len(p) else pd.NaT,
        }
        for w, p in parts.items()
    }
    return pd.DataFrame(rows).T


# --- candidates ---------------------------------------------------------------------------------


def candidate_rules(data: LeadData, train: pd.DataFrame) -> dict[str, dict]:
    """Candidate rules, by name, in the rules file's form with 1 point each: fit rules on the
    values, groups of values and ranges the training window holds often enough, engagement rules
    per event type and buying stage, window and count. Every one is valid for ``data``'s
    settings."""
    settings = data.settings
    spine = as_spine(train[KEYS])
    with attributes_table(data, spine) as name:
        attrs = data.con.execute(f"SELECT * FROM {name} ORDER BY as_of, lead_id").df()
    attrs = spine.merge(attrs, on=KEYS, how="left").assign(label=train["label"].to_numpy())
    found: dict[str, dict] = {}
    for attribute in ATTRIBUTES:
        if attribute in data.unavailable or attribute not in attrs:
            continue
        for rule in _fit_candidates(attrs, attribute):
            found.setdefault(rule["name"], rule)
    stage_of = settings.data.buying_stage_lookup()
    selectors = [("event_type", t) for t in stage_of]
    selectors += [("buying_stage", s) for s in sorted(set(stage_of.values())) if s != "none"]
    for key, value in selectors:
        negative = key == "event_type" and stage_of[value] == "none"
        for window in (None, 90) if negative else WINDOWS:
            for count in (1,) if negative else COUNTS:
                name = _name(value, _count_word(count), f"{window}d" if window else "ever")
                rule = {"name": name, key: [value], "points": 1, "cap": count, "decay": "none"}
                if window:
                    rule["window_days"] = window
                found[rule["name"]] = rule
        if not negative:  # a fading count: recent events weigh most
            found[_name(value, "recent")] = {"name": _name(value, "recent"), key: [value],
                                             "points": 1, "cap": 3,
                                             "decay": {"half_life_days": 30}}  # fmt: skip
    return {n: r for n, r in found.items() if _valid(r, settings)}


def _fit_candidates(attrs: pd.DataFrame, attribute: str) -> list[dict]:
    values, y, leads = attrs[attribute], attrs["label"], attrs["lead_id"]
    minimum = max(MIN_SUPPORT * leads.nunique(), MIN_LEADS)

    def support(mask) -> int:
        return leads[mask].nunique()

    if pd.api.types.is_bool_dtype(values):
        return [{"name": attribute, "attribute": attribute, "is": True, "points": 1}]
    if pd.api.types.is_numeric_dtype(values):
        known = values.dropna()
        if known.nunique() < 3:
            return []
        edges = sorted({_round(q) for q in known.quantile(list(QUANTILES)) if q > 0})
        rules = []
        for edge in edges:
            if support(values >= edge) >= minimum:
                name = _name(attribute, _short(edge), "plus")
                rules.append({"name": name, "attribute": attribute, "range": {"from": edge}})
            if support(values < edge) >= minimum:
                name = _name(attribute, "under", _short(edge))
                rules.append({"name": name, "attribute": attribute, "range": {"below": edge}})
        return [rule | {"points": 1} for rule in rules]
    text = values.astype("str").str.strip().str.lower().where(values.notna())
    rate = (
        pd.DataFrame({"y": y, "lead": leads})
        .groupby(text)
        .agg(leads=("lead", "nunique"), rate=("y", "mean"))
    )
    rate = rate[rate["leads"] >= minimum].nlargest(MAX_VALUES, "leads").sort_values("rate")
    ordered = list(rate.index[::-1])  # best converting first
    groups = [[v] for v in ordered]
    if len(ordered) <= MAX_GROUPED:
        # Runs of the best and of the worst values: "c_level or vp", one rule instead of two.
        groups += [ordered[:k] for k in range(2, len(ordered) - 1)]
        groups += [ordered[-k:] for k in range(2, len(ordered) - 1)]
    rules = []
    for group in groups:
        name = _name(attribute, *group)
        if len(name) > 48:
            best = group == ordered[: len(group)]
            name = _name(attribute, "top" if best else "bottom", str(len(group)))
        rules.append({"name": name, "attribute": attribute, "in": sorted(group), "points": 1})
    return rules


def _valid(rule: dict, settings: Settings) -> bool:
    kind = "fit" if "attribute" in rule else "engagement"
    raw = {kind: {"rules": [rule]}, "grades": {"fit": {"a": {}}, "engagement": {"1": {}}},
           "mql": {"threshold": 0}}  # fmt: skip
    return not rule_problems(raw, settings)


def _count_word(count: int) -> str:
    return "any" if count == 1 else f"up_to_{count}"


def _name(*parts: str) -> str:
    text = "_".join(re.sub(r"[^a-z0-9]+", "_", str(p).lower()).strip("_") for p in parts)
    text = re.sub(r"_+", "_", text).strip("_")
    return text if re.match(r"^[a-z]", text) else f"r_{text}"


def _round(value: float) -> float:
    """Two significant figures: 237 -> 240, 48_512_000 -> 49_000_000."""
    if value <= 0:
        return float(value)
    digits = 1 - int(np.floor(np.log10(value)))
    return float(round(value, digits))


def _short(value: float) -> str:
    for size, suffix in ((1e9, "b"), (1e6, "m"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}".replace(".", "_")
    return f"{value:g}".replace(".", "_")


def _sign(rule: dict, settings: Settings) -> int:
    """+1: the rule may only add points (more engagement never loses any), -1: only take them
    away (unsubscribes, bounces: buying stage 'none'), 0: either (fit rules)."""
    if "attribute" in rule:
        return 0
    stage_of = settings.data.buying_stage_lookup()
    stages = rule.get("buying_stage") or [stage_of.get(t, "none") for t in rule["event_type"]]
    return -1 if all(s == "none" for s in stages) else 1


# --- the engine's firings and the sparse fit ----------------------------------------------------


def firing_matrix(
    data: LeadData, pairs: pd.DataFrame, candidates: dict[str, dict]
) -> tuple[sp.csr_matrix, list[str]]:
    """Each candidate's points (1 per firing or event, up to its cap) on each pair, computed by
    the rule engine in chunks of snapshots; rows in ``pairs``' order."""
    fit = [r for r in candidates.values() if "attribute" in r]
    engagement = [r for r in candidates.values() if "attribute" not in r]
    rules = load_rules(
        {"fit": {"rules": fit}, "engagement": {"rules": engagement},
         "grades": {"fit": {"a": {}}, "engagement": {"1": {}}}, "mql": {"threshold": 0}},
        data.settings,
    )  # fmt: skip
    names = list(candidates)
    spine = pairs[KEYS].assign(row=np.arange(len(pairs)))
    blocks, rows = [], []
    dates = spine["as_of"].drop_duplicates().sort_values()
    per_date = spine.groupby("as_of").size().reindex(dates).to_numpy()
    start = 0
    while start < len(dates):
        stop = start + max(int(np.searchsorted(np.cumsum(per_date[start:]), CHUNK_ROWS)), 1)
        chunk = spine[spine["as_of"].isin(dates.iloc[start:stop])]
        scored = rule_scores(data, chunk[KEYS], rules).merge(chunk, on=KEYS)
        columns = [f"points__{n}" for n in names]
        # A fit rule on an attribute the input lacks has no column: it never fires.
        frame = scored.reindex(columns=columns, fill_value=0.0)
        blocks.append(sp.csr_matrix(frame.to_numpy(dtype="float32")))
        rows.append(scored["row"].to_numpy())
        start = stop
    X = sp.vstack(blocks).tocsr()
    order = np.argsort(np.concatenate(rows))
    return X[order], names


def rule_path(
    X: sp.csr_matrix,
    y: np.ndarray,
    signs: np.ndarray,
    max_rules: int,
    random_state: int = 0,
    weight: np.ndarray | None = None,
) -> list[list[int]]:
    """The distinct sets of columns an L1 logistic regression keeps along a path of penalties,
    from the strongest, while they hold at most ``max_rules`` columns with the signs their
    meaning demands (``signs``: +1, -1 or 0 for free); the last is the largest.

    At each penalty, columns with a forbidden sign are dropped and the fit repeated until none is
    left: what remains is the best sparse fit among the rules that mean what they say.
    """
    path: list[list[int]] = []
    # Standardised columns: otherwise the penalty favours rules that fire often, and a rare,
    # strong one (a demo request this week) never enters before the budget of rules is spent.
    spread = np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel() - np.square(X.mean(axis=0).A1))
    X = (X @ sp.diags(1.0 / np.where(spread > 0, spread, 1.0))).tocsr()

    def fit(C: float) -> bool:
        kept = _signed_support(X, y, signs, C, random_state, weight)
        log.debug("C %.4g: %d rules", C, len(kept))
        if len(kept) > max_rules:
            return False
        if kept and kept not in path:
            path.append(kept)
        return True

    low = high = None
    for C in l1_min_c(X, y, loss="log") * np.logspace(0.1, 4, 16):
        if not fit(C):
            high = C
            break
        low = C
    # Between the last penalty under max_rules and the first over it, halve the gap (in log
    # space): the count of rules jumps by several from one step of the grid to the next.
    for _ in range(6 if low and high else 0):
        middle = np.sqrt(low * high)
        low, high = (middle, high) if fit(middle) else (low, middle)
    return path


def choose_rules(path, X, y, signs, X_valid, y_valid) -> tuple[list[int], np.ndarray]:
    """The set of ``path`` whose refitted weights (:func:`refit`) rank the later window
    (``X_valid``) best, and those weights; without a later window, the largest set. ROC AUC,
    because a points table ranks: a log loss there would also judge the intercept, which moves
    with the base rate."""
    if not path:
        return [], np.zeros(0)
    if X_valid.shape[0] == 0 or len(np.unique(y_valid)) < 2:
        chosen = max(path, key=len)
        return chosen, refit(X[:, chosen], y, signs[chosen])
    best, best_auc = (path[-1], None), -np.inf
    for columns in path:
        weights = refit(X[:, columns], y, signs[columns])
        auc = roc_auc_score(y_valid, X_valid[:, columns] @ weights)
        if auc > best_auc:
            best, best_auc = (columns, weights), auc
    return best


def _signed_support(X, y, signs, C: float, random_state: int, weight=None) -> list[int]:
    columns = np.arange(X.shape[1])
    while True:
        model = LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", intercept_scaling=10,
                                   random_state=random_state, max_iter=500)  # fmt: skip
        coef = model.fit(X[:, columns], y, sample_weight=weight).coef_[0]
        wrong = (signs[columns] * coef) < 0
        if not wrong.any():
            return [int(c) for c, w in zip(columns, coef, strict=True) if w != 0]
        columns = columns[~wrong]


def refit(X: sp.csr_matrix, y: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Log-odds weights of the chosen columns, refitted without the L1 shrinkage (a light ridge
    only); a weight of forbidden sign is set to 0 and the rest fitted again."""
    weights = np.zeros(X.shape[1])
    columns = np.arange(X.shape[1])
    while len(columns):
        model = LogisticRegression(C=1.0, max_iter=2_000).fit(X[:, columns].toarray(), y)
        coef = model.coef_[0]
        wrong = (signs[columns] * coef) < 0
        if not wrong.any():
            weights[columns] = coef
            break
        columns = columns[~wrong]
    return weights


# --- from weights to a rules file ---------------------------------------------------------------


def evidence(X, names, learned, train, candidates, weights, kept) -> pd.DataFrame:
    """One row per learned rule: its kind, points, log-odds weight, and on the training window
    the leads and snapshots it fires on and their conversion rate."""
    index = {n: i for i, n in enumerate(names)}
    weight_of = {names[i]: w for i, w in zip(kept, weights, strict=True)}
    y = train["label"].to_numpy(dtype=float)
    leads = train["lead_id"].to_numpy()
    rows = []
    for name, points in learned:
        fires = X[:, index[name]].toarray().ravel() > 0
        rows.append(
            {
                "rule": name,
                "kind": "fit" if "attribute" in candidates[name] else "engagement",
                "points": points,
                "weight": float(weight_of[name]),
                "leads": int(pd.unique(leads[fires]).size),
                "snapshots": int(fires.sum()),
                "conversion_rate": float(y[fires].mean()) if fires.any() else float("nan"),
                "base_rate": float(y.mean()),
            }
        )
    return pd.DataFrame(rows)


def _rules_mapping(candidates: dict[str, dict], learned: list[tuple[str, int]]) -> dict:
    fit, engagement = [], []
    for name, points in learned:
        rule = dict(candidates[name], points=points)
        if "attribute" in rule:
            fit.append(rule)
        else:
            rule["cap"] = abs(points) * rule["cap"]
            engagement.append(rule)
    return {"fit": {"rules": fit}, "engagement": {"decay": "none", "rules": engagement}}


def _section_scores(X, names, learned, candidates) -> tuple[np.ndarray, np.ndarray]:
    index = {n: i for i, n in enumerate(names)}
    fit = np.zeros(X.shape[0])
    engagement = np.zeros(X.shape[0])
    for name, points in learned:
        column = X[:, index[name]].toarray().ravel() * points
        if "attribute" in candidates[name]:
            fit += column
        else:
            engagement += column
    return fit, engagement


def grade_bands(fit: np.ndarray, engagement: np.ndarray) -> dict:
    """Fit letters A-D and engagement numbers 1-4 cut at the training window's quantiles (the
    top 5 %, the next 15 %, the next 30 % and the rest; engagement among the engaged)."""
    engaged = engagement[engagement > 0]
    return {
        "fit": _bands(fit, "ABCD"),
        "engagement": _bands(engaged if len(engaged) else engagement, "1234"),
    }


def _bands(values: np.ndarray, labels: str) -> dict:
    edges = sorted({int(np.ceil(q)) for q in np.quantile(values, [0.5, 0.8, 0.95])})
    if len(edges) and edges[0] <= np.min(values):
        edges = edges[1:]  # a band nobody is below
    bands = {}
    lows = [None, *edges]
    highs = [*edges, None]
    for label, low, high in zip(labels[: len(edges) + 1], lows[::-1], highs[::-1], strict=True):
        band = {}
        if low is not None:
            band["from"] = low
        if high is not None:
            band["below"] = high
        bands[label] = band
    return bands


def volume_threshold(scores: pd.Series, volume: int) -> tuple[int, int]:
    """The integer threshold whose MQL count (``scores >= threshold``) is closest to
    ``volume`` (the highest of equals), and that count."""
    values = np.sort(scores.to_numpy(dtype=float))[::-1]
    if volume <= 0 or not len(values):
        return int(np.floor(values.max())) + 1 if len(values) else 0, 0
    candidates = np.arange(int(np.floor(values.min())), int(np.ceil(values.max())) + 2)
    counts = len(values) - np.searchsorted(values[::-1], candidates, side="left")
    gap = np.abs(counts - volume)
    best = int(np.flatnonzero(gap == gap.min())[-1])  # the highest of equals: a score reached
    return int(candidates[best]), int(counts[best])


def _round_trip(text: str, raw: dict, settings: Settings) -> Rules:
    """The written file, loaded by the rules loader: it must be the rules that were learned."""
    import yaml

    loaded = load_rules(yaml.safe_load(text), settings)
    if loaded != load_rules(raw, settings):  # pragma: no cover - a bug in the writer
        raise AssertionError("the learned rules file does not load back to the learned rules")
    return loaded


# --- hand vs learned on the test window ---------------------------------------------------------


def compare(
    data: LeadData, test: pd.DataFrame, hand: Rules, learned: Rules
) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame]:
    """Both rule scores on the test rows, flat metrics and a two-row comparison table."""
    a = rule_scores(data, test[KEYS], hand, explain=False)
    b = rule_scores(data, test[KEYS], learned, explain=False)
    scores = (
        test[[*KEYS, "label"]]
        .merge(a[[*KEYS, "rule_score", "rule_mql"]], on=KEYS, how="left")
        .merge(
            b[[*KEYS, "rule_score", "rule_mql"]].rename(
                columns={"rule_score": "learned_score", "rule_mql": "learned_mql"}
            ),
            on=KEYS,
            how="left",
        )
    )
    y = scores["label"].to_numpy(dtype=int)
    duel = head_to_head(y, scores["learned_score"].to_numpy(), scores["rule_mql"].to_numpy())
    rows = {}
    for who, score, mql in (("hand", "rule_score", "rule_mql"),
                            ("learned", "learned_score", "learned_mql")):  # fmt: skip
        sent = scores[mql].to_numpy(dtype=bool)
        rows[who] = {
            "rules": len(hand.all_rules() if who == "hand" else learned.all_rules()),
            "roc_auc": ranking_metrics(y, scores[score])["roc_auc"],
            "conversions_at_hand_volume": float(
                duel.loc["rules" if who == "hand" else "model", "conversions"]
            ),
            "mqls": int(sent.sum()),
            "mql_conversions": int(y[sent].sum()),
        }
    comparison = pd.DataFrame(rows).T
    comparison.index.name = "rules"
    metrics = {f"rules_{who}_{k}": float(v) for who, row in rows.items() for k, v in row.items()}
    metrics["test_rows"] = float(len(scores))
    metrics["test_positives"] = float(y.sum())
    return scores, metrics, comparison
