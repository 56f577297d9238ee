"""The learned points table as a candidate model: a scikit-learn classifier over the features.

Every candidate rule of :mod:`leadml.modeling.points_candidates` is a function of the feature
frame (the fit attributes are features of the same name; an engagement rule counts the feature
``<event type>_<w>d``, ``<stage>_actions_<w>d`` or their sum), so the table runs where a model
runs: :class:`PointsClassifier` computes the points from the features, as the rule engine does
from the events, and maps them to a probability with a one-variable logistic fit; it is then
calibrated like every candidate and saved in the same skops model file (its state is plain
data). :func:`prefer_points` puts it beside the searched model on the calibration window and
prefers it when it is within the promotion tolerances: simpler, readable, runs in a CRM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.utils.validation import check_is_fitted

from leadml.modeling.calibration import calibrate_on_window


class PointsClassifier(ClassifierMixin, BaseEstimator):
    """A points table (a rules mapping without caps of groups or sections) over the feature frame.

    Parameters
    ----------
    rules
        The learned rules mapping (``LearnedPoints.mapping``): fit rules on attributes,
        engagement rules on one window of the features, without decay, and inactivity rules
        over every action (``days_since_last_action``) or every event
        (``days_since_last_event``).
    stage_of
        Canonical event type -> buying stage (``settings.data.buying_stage_lookup()``), to
        count the types of a buying stage.

    Examples
    --------
    >>> rules = {"fit": {"rules": [{"name": "vp", "attribute": "seniority", "in": ["vp"],
    ...          "points": 20}]}, "engagement": {"rules": [{"name": "demo", "points": 30,
    ...          "cap": 60, "window_days": 30, "event_type": ["demo_request"]}]}}
    >>> X = pd.DataFrame({"seniority": ["VP", "manager"], "demo_request_30d": [5, 1]})
    >>> PointsClassifier(rules, {"demo_request": "decision"}).points(X).tolist()
    [80.0, 30.0]
    """

    def __init__(self, rules: dict | None = None, stage_of: dict | None = None):
        self.rules = rules
        self.stage_of = stage_of

    def fit(self, X: pd.DataFrame, y) -> PointsClassifier:
        """Fit the map from points to log-odds (one slope, one intercept) on ``X``, ``y``."""
        score = self.points(X)
        fitted = LogisticRegression(C=1e6).fit(score.reshape(-1, 1), np.asarray(y))
        self.classes_ = fitted.classes_
        self.slope_ = float(fitted.coef_[0, 0])
        self.intercept_ = float(fitted.intercept_[0])
        return self

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """The table's score of each row, as the rule engine computes it from the events."""
        rules = self.rules or {}
        total = np.zeros(len(X))
        for rule in rules.get("fit", {}).get("rules", []):
            total += rule["points"] * _condition(X[rule["attribute"]], rule)
        for rule in rules.get("engagement", {}).get("rules", []):
            if "inactive_days" in rule:
                (column,) = _count_columns(rule, self.stage_of or {})
                since = pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=float)
                with np.errstate(invalid="ignore"):  # NaN: never engaged, so not inactive
                    total += rule["points"] * (since > rule["inactive_days"])
                continue
            count = sum(
                pd.to_numeric(X[c], errors="coerce").fillna(0).to_numpy(dtype=float)
                for c in _count_columns(rule, self.stage_of or {})
            )
            cap = rule.get("cap", np.inf) / abs(rule["points"])
            total += rule["points"] * np.minimum(count, cap)
        return np.round(total, 6)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "slope_")
        return self.slope_ * self.points(X) + self.intercept_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def required_columns(rules: dict, stage_of: dict) -> list[str]:
    """The feature columns a points table reads."""
    columns = [r["attribute"] for r in rules.get("fit", {}).get("rules", [])]
    for rule in rules.get("engagement", {}).get("rules", []):
        columns += _count_columns(rule, stage_of)
    return list(dict.fromkeys(columns))


def _count_columns(rule: dict, stage_of: dict) -> list[str]:
    if "inactive_days" in rule:
        # The features hold the days since the latest action and since the latest event.
        actions = set(stage_of.values()) - {"none"}
        since = {frozenset(actions): "days_since_last_action",
                 frozenset({*actions, "none"}): "days_since_last_event"}  # fmt: skip
        stages = frozenset(rule.get("buying_stage") or ())
        if stages not in since:
            raise ValueError(f"rule {rule['name']!r}: the features hold the days since the "
                             "latest action or event, not of some types")  # fmt: skip
        return [since[stages]]
    window = int(rule["window_days"])
    if rule.get("event_type"):
        return [f"{t}_{window}d" for t in rule["event_type"]]
    # A buying stage's types are counted together by the feature <stage>_actions_<w>d.
    return [f"{s}_actions_{window}d" for s in rule["buying_stage"]]


def _condition(values: pd.Series, rule: dict) -> np.ndarray:
    if "in" in rule:
        wanted = {str(v).strip().lower() for v in rule["in"]}
        text = values.astype("object").where(values.notna())
        return text.map(lambda v: isinstance(v, str) and v.lower() in wanted).to_numpy(float)
    if "range" in rule:
        number = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        low, high = rule["range"].get("from", -np.inf), rule["range"].get("below", np.inf)
        with np.errstate(invalid="ignore"):
            return ((number >= low) & (number < high)).astype(float)
    flag = values.astype("boolean").fillna(not rule["is"])
    return (flag == rule["is"]).to_numpy(dtype=float)


def prefer_points(points, best, parts: dict, features: list[str], settings):
    """The points table, calibrated as ``best`` (the calibrated searched model) was, when it is
    within the promotion tolerances of ``best`` on the calibration window, else None; and a
    sentence saying which and why. The table's number of rules was chosen on that window too
    (the model's hyper-parameters were not), which favours the table slightly; the test window
    judges both without favour.
    """
    calibration = parts["calibration"]
    stage_of = settings.data.buying_stage_lookup()
    needed = required_columns(points.mapping, stage_of)
    lacking = [c for c in needed if c not in features]
    if lacking or not len(calibration):
        why = f"it needs features left out of the model ({lacking[:3]})" if lacking else (
            "there is no calibration window to compare them on")  # fmt: skip
        return None, f"the learned points table was not tried as a model: {why}"
    model = PointsClassifier(points.mapping, stage_of).fit(
        parts["train"][features], parts["train"]["label"]
    )
    X, y = calibration[features], calibration["label"].to_numpy()
    calibrated, table = calibrate_on_window(model, calibration, features, settings.model)
    measured = {}
    for who, candidate in (("best", best), ("points", calibrated)):
        p = np.clip(candidate.predict_proba(X)[:, 1], 1e-6, 1 - 1e-6)
        measured[who] = {"roc_auc": roc_auc_score(y, p), "log_loss": log_loss(y, p, labels=[0, 1])}
    tolerances = settings.tracking.promotion.tolerances
    within = all(
        measured["points"][m] >= measured["best"][m] - tolerances.get(m, 0.0)
        if m == "roc_auc"
        else measured["points"][m] <= measured["best"][m] + tolerances.get(m, 0.0)
        for m in ("roc_auc", "log_loss")
    )
    figures = (
        f"calibration window ROC AUC {measured['points']['roc_auc']:.4f} against "
        f"{measured['best']['roc_auc']:.4f}, log loss {measured['points']['log_loss']:.4f} "
        f"against {measured['best']['log_loss']:.4f}; tolerances {dict(tolerances)}"
    )
    if within:
        return (calibrated, table), (
            f"the learned points table ({len(points.rules.all_rules())} rules) is "
            f"within the promotion tolerances of the searched model ({figures}): it is the "
            "model, being simpler, readable and runnable in a CRM"
        )
    return None, f"the learned points table was not within the promotion tolerances ({figures})"


def points_as_candidate(points, calibrated, calibration_table, found, parts, features, settings):
    """For :func:`leadml.modeling.training.train`, with ``points`` among ``model.candidates``:
    the calibrated model to keep and its calibration table, the points table when
    :func:`prefer_points` prefers it (``found``, the search result, then names it). The sentence
    saying which and why goes to ``points.choice`` and the run's notes."""
    if points is None or "points" not in settings.model.candidates:
        return calibrated, calibration_table
    chosen, points.choice = prefer_points(points, calibrated, parts, features, settings)
    found.skipped.append(points.choice)
    if chosen is None:
        return calibrated, calibration_table
    found.family, found.params = "points", {"rules": len(points.rules.all_rules())}
    return chosen
