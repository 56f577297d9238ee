"""Learned points: an additive rules file fitted to the team's own outcomes.

A points table a CRM can run is a sum of rule firings, so it is learned as one. Candidate rules
are written in the rules file's own form (a fit attribute ``in`` a list of values, in a
``range`` or ``is`` true; so many events of a type or buying stage within a window, counted up
to a cap) and evaluated by leadml's rule engine on the training window the model uses
(:func:`leadml.rules.rule_scores`, so what is learned is exactly what runs). Forward selection
keeps at most ``max_rules`` of them, one at a time (the score test shortlists, the ranking of the
training window chooses), refitting a logistic regression after each; a rule may only join with
the sign its meaning allows (no points for an unsubscribe or for going quiet, no fewer points
for more demo requests), so every engagement rule is monotone; how many is chosen by how well
they rank the calibration window. The log-odds are then scaled to
integer points (the best training lead scores about 100), the MQL threshold set on the
calibration window to send as many new MQLs as the hand rules (a lead is sent once, when its
score reaches the threshold, as :mod:`leadml.modeling.thresholds` counts them), grade bands cut
at quantiles of the training window, and the file written as text with each rule's evidence as a
comment (:mod:`leadml.modeling.points_file`). The candidates are in
:mod:`leadml.modeling.points_candidates`; the table as a candidate model in
:mod:`leadml.modeling.points_model`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from scipy.stats import rankdata
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.readers import Source
from leadml.errors import ColdStart
from leadml.modeling.crossings import first_crossings
from leadml.modeling.evaluation import head_to_head, ranking_metrics
from leadml.modeling.fitness import Fitness, ranking_fitness
from leadml.modeling.points_candidates import candidate_rules, firing_matrix, rule_sign
from leadml.modeling.points_file import (
    evidence,
    grade_bands,
    render_rules,
    rules_mapping,
    volume_threshold,
)
from leadml.modeling.thresholds import rescored, rules_figures, threshold_table, window_evidence
from leadml.modeling.training import sample_by_lead
from leadml.modeling.trainset import mature_pairs
from leadml.modeling.windows import WINDOWS, describe_windows, place_windows, too_little
from leadml.rules import Rules, load_rules, rule_scores

log = logging.getLogger("leadml.points")

#: How many candidates, those adding most likelihood, forward selection ranks at each step.
SHORTLIST = 20

KEYS = ["lead_id", "as_of"]


@dataclass
class LearnedPoints:
    """A learned rules file and how it compares with the hand rules on the test window.

    ``rules``: the validated :class:`~leadml.rules.Rules`; ``text``: the rules file with each
    rule's evidence as a comment (loads back to ``rules``); ``table``: one row per rule (kind,
    points, leads and snapshots it fires for, their conversion rate, the base rate);
    ``mapping``: the rules as a plain mapping (what the model file stores); ``metrics``
    and ``comparison``: hand rules vs learned rules on the test window (ROC AUC, conversions at
    the hand rules' MQL volume, new MQLs and their conversions at each table's own
    threshold); ``scores``: the test rows with both scores and the new MQLs (:func:`compare`);
    ``fitness``: the model's fitness gate applied to the table's points on the test window (it
    ranks better than chance by a margin, and at least as well as the hand rules).
    """

    rules: Rules
    text: str
    table: pd.DataFrame
    mapping: dict
    metrics: dict[str, float]
    comparison: pd.DataFrame
    scores: pd.DataFrame
    fitness: Fitness
    candidates: int = 0
    # Where the number of rules and the threshold were chosen: "calibration", or "training"
    # when there is none; its rows and the table's rule_score there.
    tuning_window: str = "calibration"
    tuning_scores: pd.DataFrame | None = None
    # As a candidate model of `leadml train`: whether it was preferred, and why (a sentence).
    choice: str | None = None

    @property
    def unfit(self) -> str | None:
        """Why the table failed the fitness gate (a sentence for the run's notes), or None."""
        if self.fitness.passed:
            return None
        return f"the learned points table failed the fitness gate: {self.fitness.reasons()}"

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
        The hand rules (default: ``configs/rules.yaml``): their new MQLs on the calibration
        window set the learned threshold, and they are the comparison on the test window.
    max_rules
        At most this many rules in the learned table.
    pairs
        ``lead_id``, ``as_of``, ``label`` and ``window`` (train, calibration, test) of the
        training set, when the caller has them (:func:`leadml.modeling.training.train`);
        otherwise built the way ``leadml train`` builds them.

    Raises
    ------
    ColdStart
        When the history (or ``pairs``) is too short for a training and a test window, or they
        hold too few conversions (``leadml train``'s own limits).
    """
    data = load_data(source, settings)
    settings = data.settings
    hand = load_rules(rules, settings)
    pairs = windowed_pairs(data) if pairs is None else pairs[[*KEYS, "label", "window"]]
    if short := too_little(describe_windows(pairs), settings):
        raise ColdStart(f"cold start: {short}")
    parts = {w: pairs[pairs["window"] == w].reset_index(drop=True) for w in WINDOWS}
    train = parts["train"]
    tuning = parts["calibration"] if len(parts["calibration"]) else train
    candidates = candidate_rules(data, train)
    log.info("%d candidate rules on %s training rows", len(candidates), f"{len(train):,}")
    # The rules are chosen and weighed on at most model.search_max_rows rows of each window,
    # whole leads, as the model's search is: the engine scores every candidate on every row.
    fitted, valid = (sample_by_lead(parts[w], settings.model.search_max_rows, settings)
                     for w in ("train", "calibration"))  # fmt: skip
    X_all, names = firing_matrix(data, pd.concat([fitted, valid], ignore_index=True), candidates)
    X, X_valid = X_all[: len(fitted)], X_all[len(fitted) :]
    y = fitted["label"].to_numpy(dtype=int)
    signs = np.array([rule_sign(candidates[n], settings) for n in names])
    # Every snapshot weighs the same, as in the model's fit and in the test window's ranking.
    # Weighing each lead the same instead (1 / its snapshots) ranked the test window 0.016 to
    # 0.026 lower (ROC AUC) on each of the three 20,000-lead histories of bench/bench_points.py.
    chosen, weights = forward_rules(X, y, signs, max_rules, X_valid,
                                    valid["label"].to_numpy(dtype=int))  # fmt: skip
    kept = [i for i, w in zip(chosen, weights, strict=True) if w != 0]
    weights = weights[weights != 0]
    linear = X[:, kept] @ weights
    # The best training lead scores 100, and no rule is worth more than 100 points: when
    # nothing predicts the outcomes, the best lead's log-odds are near 0 and scaling them to 100
    # alone would give tens of billions of points.
    top = float(np.max(linear, initial=0.0))
    largest = float(np.max(np.abs(weights), initial=0.0))
    scale = min(100.0 / top if top > 0 else np.inf, 100.0 / largest if largest > 0 else 0.0)
    points = np.round(weights * scale).astype(int)
    learned = [(names[i], int(p)) for i, p in zip(kept, points, strict=True) if p != 0]
    if len(learned) < len(chosen):
        log.info("%d of %d chosen rules dropped: weighed 0 by the refit or rounded to 0 points",
                 len(chosen) - len(learned), len(chosen))  # fmt: skip
    raw = rules_mapping(candidates, learned)
    raw |= {"grades": {"fit": {"a": {}}, "engagement": {"1": {}}}, "mql": {"threshold": 0}}
    draft = load_rules(raw, settings)  # the points; grades and threshold come next
    on_train = train[[*KEYS, "label"]].merge(rule_scores(data, train[KEYS], draft), on=KEYS)
    table = evidence(on_train, draft)
    raw["grades"] = grade_bands(on_train["rule_fit_score"], on_train["rule_engagement_score"])
    # The threshold sends as many new MQLs as the hand rules on the tuning window, counted as
    # `leadml rules threshold` counts them: a lead is sent once, when its score reaches it.
    window = "calibration" if len(parts["calibration"]) else "training"
    on_tuning = window_evidence(data, tuning[KEYS], hand, window=window)
    hand_mqls = rules_figures(on_tuning, hand.mql.threshold)["mqls"]
    on_tuning = rescored(data, on_tuning, draft)
    threshold = volume_threshold(threshold_table(on_tuning), hand_mqls)
    raw["mql"] = {"threshold": threshold}
    context = {
        "train": train,
        "tuning_window": window,
        "hand_mqls": hand_mqls,
        "learned_mqls": rules_figures(on_tuning, threshold)["mqls"],
        "candidates": len(candidates),
        "shortlist": SHORTLIST,
        "horizon": settings.target.horizon_days,
        "target": settings.target.stage,
    }
    text = render_rules(raw, table, context)
    learned_rules = _round_trip(text, raw, settings)
    scores, metrics, comparison = compare(data, parts["test"], hand, learned_rules)
    metrics["rules_learned_count"] = float(len(learned_rules.all_rules()))
    metrics["rules_learned_threshold"] = float(threshold)
    # A table is held to the model's gate: one learned from outcomes that history does not
    # predict (or from a past unlike the test window) must not replace the hand rules unseen.
    fitness = ranking_fitness(
        scores["label"], scores["learned_score"], scores["rule_score"], settings.model.fitness,
        groups=scores["lead_id"], random_state=settings.model.random_state,
        scored_by="learned table",
    )  # fmt: skip
    metrics |= {f"rules_learned_roc_auc_{end}": fitness.metrics[f"model_roc_auc_{end}"]
                for end in ("low", "high")}  # fmt: skip
    return LearnedPoints(
        rules=learned_rules,
        text=text,
        table=table,
        mapping=raw,
        metrics=metrics,
        comparison=comparison,
        scores=scores,
        fitness=fitness,
        candidates=len(candidates),
        tuning_window=window,
        tuning_scores=on_tuning.rows[[*KEYS, "rule_score"]],
    )


def windowed_pairs(data: LeadData) -> pd.DataFrame:
    """The training set's pairs (``lead_id``, ``as_of``, ``label``) and their ``window``, as
    ``leadml train`` places them, without building the features."""
    mature = mature_pairs(data)
    if mature.empty:
        raise ColdStart("cold start: no mature snapshot (the history is shorter than "
                        "trainset.warmup_days + one horizon)")  # fmt: skip
    placed, _ = place_windows(mature, data.settings)
    return placed[placed["window"].notna()].reset_index(drop=True)


def forward_rules(
    X: sp.csr_matrix,
    y: np.ndarray,
    signs: np.ndarray,
    max_rules: int,
    X_valid: sp.csr_matrix | None = None,
    y_valid: np.ndarray | None = None,
) -> tuple[list[int], np.ndarray]:
    """At most ``max_rules`` columns of ``X``, chosen one at a time by forward selection: at each
    step, of the :data:`SHORTLIST` columns whose score statistic at the current fit (the squared
    gradient of the log-likelihood over its information, as ``SELECTION=FORWARD`` of SAS's PROC
    LOGISTIC) is largest, among those whose sign their meaning allows (``signs``: +1 may only
    add points, -1 only take them away, 0 either), the one that ranks the training rows best
    after one Newton step of its weight joins, and the weights are refitted (:func:`refit`). Of
    the first 1, 2, ... ``max_rules`` columns, the set whose weights rank the later window
    (``X_valid``) best is kept; without one, all of them. Returns the columns and their weights
    (log-odds per firing).

    Forward selection replaced scikit-learn's L1 path: with the same candidates and at most 15
    rules it ranked each test window of bench/bench_points.py's three 20,000-lead histories
    better (ROC AUC +0.004 to +0.019), because a rule enters on what it adds to the rules
    already in, where the L1 penalty spends the budget on correlated variants of one signal.
    The shortlist ranked by ROC AUC, rather than the largest statistic alone, is for rules that
    add little likelihood and much ranking: "no event in 90 days" takes points from leads
    already unlikely to convert, but there are many of them, and it moved the seed 1 history's
    test window from 0.878 to 0.892 (throw-away measurement on bench_points' training pairs).
    """
    chosen: list[int] = []
    prefixes: list[tuple[list[int], np.ndarray]] = []
    squared = X.multiply(X).tocsr()
    columns = X.tocsc()
    p = np.full(len(y), y.mean())
    linear = np.zeros(len(y))  # the chosen rules' log-odds, without the intercept

    def ranks_after_a_step(j: int) -> float:
        step = gradient[j] / information[j]  # one Newton step of the candidate's weight
        return _roc_auc(y, linear + step * columns[:, j].toarray().ravel())

    for _ in range(min(max_rules, X.shape[1])):
        w = p * (1 - p)
        gradient = X.T @ (y - p)
        weighted = X.T @ w
        information = squared.T @ w - weighted**2 / w.sum()  # centred: the intercept is fitted
        statistic = gradient**2 / np.maximum(information, 1e-12)
        statistic[(signs * gradient < 0) | (information <= 1e-12)] = -1.0
        statistic[chosen] = -1.0
        allowed = np.flatnonzero(statistic > 0)
        if not len(allowed):
            break
        shortlist = allowed[np.argsort(-statistic[allowed], kind="stable")[:SHORTLIST]]
        chosen.append(int(max(shortlist, key=ranks_after_a_step)))
        weights, intercept = refit(X[:, chosen], y, signs[chosen])
        linear = X[:, chosen] @ weights
        p = expit(linear + intercept)
        prefixes.append((list(chosen), weights))
    if not prefixes:
        return [], np.zeros(0)
    if X_valid is None or X_valid.shape[0] == 0 or len(np.unique(y_valid)) < 2:
        return prefixes[-1]

    def ranks_valid(prefix: tuple[list[int], np.ndarray]) -> float:
        columns, weights = prefix
        return roc_auc_score(y_valid, X_valid[:, columns] @ weights)

    # ROC AUC, because a points table ranks: a log loss would also judge the intercept, which
    # moves with the base rate from one window to the next.
    return max(prefixes, key=ranks_valid)


def _roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic over average ranks (ties count half): the value of
    :func:`sklearn.metrics.roc_auc_score` in 2.0 ms instead of its 7.7 ms on 25,000 rows (its
    checks and curve), called 300 times by one :func:`forward_rules`."""
    positives = int(y.sum())
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * (len(y) - positives)))  # fmt: skip


def refit(X: sp.csr_matrix, y: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, float]:
    """Log-odds weights of the columns and the intercept (a light ridge only); a weight of
    forbidden sign is set to 0 and the rest fitted again."""
    weights = np.zeros(X.shape[1])
    columns = np.arange(X.shape[1])
    intercept = float(np.log(y.mean() / (1 - y.mean())))
    while len(columns):
        model = LogisticRegression(C=1.0, max_iter=2_000).fit(X[:, columns].toarray(), y)
        coef = model.coef_[0]
        wrong = (signs[columns] * coef) < 0
        if not wrong.any():
            weights[columns], intercept = coef, float(model.intercept_[0])
            break
        columns = columns[~wrong]
    return weights, intercept


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
    """Both rule scores on the test rows, flat metrics and a two-row comparison table.

    ROC AUC and the conversions at the hand rules' MQL volume rank the snapshots (every open
    lead at each). At each table's own threshold, MQLs are *new* MQLs, counted as ``leadml rules
    threshold`` counts them (:mod:`leadml.modeling.thresholds`): a lead is sent once per window,
    at the first snapshot its score reaches the threshold, and converts if it reaches the target
    stage within the horizon after. ``scores`` flags them (``rule_new_mql``, ``learned_new_mql``).
    """
    on_hand = window_evidence(data, test[KEYS], hand)
    on_learned = rescored(data, on_hand, learned)
    scores = test[[*KEYS, "label"]].reset_index(drop=True)
    figures = {}
    for who, prefix, rules, found in (("hand", "rule", hand, on_hand),
                                      ("learned", "learned", learned, on_learned)):  # fmt: skip
        rows, threshold = found.rows, rules.mql.threshold  # rows: in the order of test
        scores[f"{prefix}_score"] = rows["rule_score"].to_numpy()
        scores[f"{prefix}_mql"] = (rows["rule_score"] >= threshold).to_numpy()
        scores[f"{prefix}_new_mql"] = first_crossings(
            rows, rows["rule_score"], rows["previous_rule_score"], threshold
        )
        figures[who] = rules_figures(found, threshold)
    y = scores["label"].to_numpy(dtype=int)
    duel = head_to_head(y, scores["learned_score"].to_numpy(), scores["rule_mql"].to_numpy())
    rows = {}
    for who, score in (("hand", "rule_score"), ("learned", "learned_score")):
        rows[who] = {
            "rules": len(hand.all_rules() if who == "hand" else learned.all_rules()),
            "roc_auc": ranking_metrics(y, scores[score])["roc_auc"],
            "conversions_at_hand_volume": float(
                duel.loc["rules" if who == "hand" else "model", "conversions"]
            ),
            "new_mqls": figures[who]["mqls"],
            "new_mqls_per_week": figures[who]["mqls_per_week"],
            "new_mql_conversions": figures[who]["conversions"],
        }
    comparison = pd.DataFrame(rows).T
    comparison.index.name = "scored_by"
    metrics = {f"rules_{who}_{k}": float(v) for who, row in rows.items() for k, v in row.items()}
    metrics["test_rows"] = float(len(scores))
    metrics["test_positives"] = float(y.sum())
    metrics["test_weeks"] = float(on_hand.weeks)
    return scores, metrics, comparison


def learned_table(data: LeadData, rules: Rules, frame: pd.DataFrame) -> LearnedPoints | None:
    """For :func:`leadml.modeling.training.train`: the points table learned on the training
    run's own windows (``frame``: the snapshots with their ``window``), or None when
    ``evaluation.learned_rules`` is 0."""
    max_rules = data.settings.evaluation.learned_rules
    return learn_points(data, rules=rules, max_rules=max_rules, pairs=frame) if max_rules else None


def beside_the_model(
    points: LearnedPoints | None, mapped: pd.DataFrame, test: pd.DataFrame
) -> pd.DataFrame:
    """``test`` (the training run's test rows) with ``learned_score``, that score mapped to a
    probability on ``mapped`` (where the hand rules' is mapped, the window the table's threshold
    was set on: ``learned_probability``, from its scores there),
    ``learned_mql`` and the new MQLs of each table at its own threshold (``learned_new_mql``,
    ``rule_new_mql``: :func:`compare`); ``test`` as it is without a learned table."""
    if points is None:
        return test
    learned = points.scores[[*KEYS, "learned_score", "learned_mql", "learned_new_mql",
                             "rule_new_mql"]]  # fmt: skip
    test = test.merge(learned, on=KEYS, how="left", validate="one_to_one")
    on_mapped = mapped[[*KEYS, "label"]].merge(points.tuning_scores, on=KEYS, validate="1:1")
    to_probability = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4)
    to_probability.fit(on_mapped["rule_score"], on_mapped["label"])
    test["learned_probability"] = to_probability.predict(test["learned_score"])
    return test
