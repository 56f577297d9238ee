"""Plots: every figure is titled and labelled, and the model and rules keep their colours."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest

from leadml.config import Settings
from leadml.modeling.plots import PALETTE, permutation_importance_table, training_figures
from tracking_helpers import make_result


@pytest.fixture(scope="module")
def drawn():
    result = make_result(Settings())
    figures, importance = training_figures(result)
    return result, figures, importance


def test_every_figure_has_titles_axis_labels_and_the_shared_colours(drawn):
    _, figures, _ = drawn
    assert set(figures) == {"calibration", "lift_gains", "roc_pr", "feature_importance"}
    model, rules = mcolors.to_rgba(PALETTE["model"]), mcolors.to_rgba(PALETTE["rules"])
    for name, figure in figures.items():
        for ax in figure.axes:
            assert ax.get_title() and ax.get_xlabel(), name
            if name != "feature_importance":
                assert ax.get_ylabel(), name
                colours = {mcolors.to_rgba(line.get_color()) for line in ax.get_lines()}
                colours |= {patch.get_facecolor() for patch in ax.patches}
                assert model in colours and rules in colours, name
    assert "%" in figures["calibration"].axes[0].get_xlabel()


def test_feature_importance_is_log_loss_based_and_finds_the_signal(drawn):
    result, _, importance = drawn
    assert list(importance.columns) == ["feature", "importance", "stderr"]
    assert importance["importance"].is_monotonic_decreasing
    # The synthetic label depends on visits, demos and seniority, not on industry.
    top = set(importance["feature"].head(3))
    assert top == {"visits", "demo_requests", "seniority"}
    assert importance.set_index("feature").loc["industry", "importance"] < 0.005
    sample = permutation_importance_table(
        result.model, result.frames["test"][result.feature_names], result.frames["test"]["label"],
        max_rows=300, n_repeats=2,
    )  # fmt: skip
    assert sample.attrs["rows"] == 300 and len(sample) == len(result.feature_names)


def test_an_importance_table_given_is_drawn_as_it_is(drawn):
    # The training job computes it once for its report and hands it to MLflow's logging.
    result, _, importance = drawn
    given = importance.assign(importance=importance["importance"][::-1].to_numpy())
    figures, returned = training_figures(result, importance=given)
    assert returned is given
    axes = figures["feature_importance"].axes[0]
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert set(labels) <= set(given["feature"]) and labels
    # The bars are the given (reversed) values, not a table computed afresh.
    widths = sorted(bar.get_width() for bar in axes.patches)
    assert widths == sorted(given.set_index("feature").loc[labels, "importance"])
