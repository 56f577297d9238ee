from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadml.config import EvaluationSettings
from leadml.modeling.evaluation import (
    at_capacity,
    by_segment,
    evaluate,
    expected_calibration_error,
    gains_table,
    head_to_head,
    per_week_capacity,
    probability_metrics,
)


def test_head_to_head_at_the_rules_mql_volume_is_hand_computed():
    y = np.array([1, 1, 0, 0, 1, 0])
    model = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.05])
    rule_mql = np.array([True, False, True, True, False, False])  # rules send 3 leads, 1 converts
    table = head_to_head(y, model, rule_mql)
    assert table.loc["rules", "mqls"] == 3
    assert table.loc["rules", "conversions"] == 1
    assert table.loc["model", "mqls"] == 3  # the model's top 3: 0.9, 0.8, 0.3 -> all convert
    assert table.loc["model", "conversions"] == 3
    assert table.loc["model", "share_of_conversions"] == 1.0
    assert table.loc["rules", "mql_conversion_rate"] == pytest.approx(1 / 3)


def test_capacity_and_gains_are_hand_computed():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    score = np.arange(10, 0, -1)  # already in descending order
    capacity = at_capacity(y, score, [0.2, 0.5]).set_index("capacity")
    assert capacity.loc[0.2, "conversions"] == 1
    assert capacity.loc[0.2, "precision"] == 0.5
    assert capacity.loc[0.5, "recall"] == pytest.approx(2 / 3)
    gains = gains_table(y, score, groups=5)
    assert list(gains["conversions"]) == [1, 1, 0, 0, 1]
    assert gains["cumulative_gain"].iloc[-1] == 1.0
    assert gains["lift"].iloc[0] == pytest.approx(0.5 / 0.3)


def test_ties_in_a_coarse_score_are_broken_at_random_not_by_row_order():
    y = np.array([1] * 50 + [0] * 50)
    flat = np.zeros(100)  # a score that knows nothing must not look good
    assert at_capacity(y, flat, [0.5])["conversions"].iloc[0] < 40


def test_calibration_error_is_small_for_true_probabilities_and_large_for_distorted_ones():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 8, 50_000)
    y = rng.random(p.size) < p
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.sqrt(p)) > 0.1
    metrics = probability_metrics(y, p)
    assert 0.5 < metrics["roc_auc"] < 1 and metrics["base_rate"] == pytest.approx(p.mean(), 0.05)


def test_per_week_capacity_takes_the_top_n_of_each_snapshot():
    frame = pd.DataFrame(
        {
            "as_of": ["w1"] * 3 + ["w2"] * 3,
            "score": [3, 2, 1, 3, 2, 1],
            "label": [1, 0, 0, 0, 0, 1],
        }
    )
    figures = per_week_capacity(frame, "score", per_week=1)
    assert figures == {"leads": 2, "conversions": 1, "precision": 0.5, "recall": 0.5}


def test_segments_report_auc_only_where_there_is_enough_data():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "industry": ["a"] * 200 + ["b"] * 10,
            "label": rng.integers(0, 2, 210),
            "s": rng.random(210),
        }
    )
    table = by_segment(frame, ["industry", "absent"], {"model": "s"}).set_index("value")
    assert table.loc["a", "rows"] == 200 and not np.isnan(table.loc["a", "model_roc_auc"])
    assert np.isnan(table.loc["b", "model_roc_auc"])


def test_evaluate_measures_model_and_rules_on_the_same_rows():
    rng = np.random.default_rng(2)
    n = 4_000
    p = rng.beta(1, 6, n)
    y = (rng.random(n) < p).astype(int)
    rule_score = np.round(p * 10 + rng.normal(0, 1.5, n))  # a noisier, coarser view of p
    test = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2025-01-06", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 4, n) * 7, "D"),
            "label": y,
            "model_probability": p,
            "rule_score": rule_score,
            "rule_probability": np.clip(rule_score / 20, 0.001, 0.999),
            "rule_mql": rule_score >= np.quantile(rule_score, 0.8),
            "industry": rng.choice(["software", "retail"], n),
        }
    )
    result = evaluate(test, EvaluationSettings())
    m = result.metrics
    assert m["model_roc_auc"] > m["rules_points_roc_auc"]
    assert m["model_ece"] < 0.02
    assert m["model_conversions_at_rule_mql_volume"] >= m["rules_conversions_at_rule_mql_volume"]
    assert m["test_rows"] == n
    assert {
        "head_to_head",
        "capacity",
        "gains_model",
        "gains_rules",
        "reliability_model",
        "reliability_rules",
        "segments",
    } <= set(result.tables)
    assert set(result.tables["segments"]["value"]) == {"software", "retail"}
