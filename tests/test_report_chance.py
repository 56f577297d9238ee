"""How sure the report's comparison at equal volume is: the difference of conversions between the
model at the rules' volume and the rules, with a paired bootstrap interval over the leads, and
the conversions the count credits to the rules although the model had sent the lead earlier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadml.reports import build_report, write_report
from leadml.reports._chance import difference_interval
from report_helpers import oracle_report


def cohorts(model: list[bool], rules: list[bool], shared: int = 0) -> pd.DataFrame:
    """Mature outcomes of two cohorts; the first ``shared`` leads are in both."""
    model_ids = [f"L{i}" for i in range(len(model))]
    rules_ids = model_ids[:shared] + [f"R{i}" for i in range(len(rules) - shared)]
    return pd.DataFrame({
        "lead_id": model_ids + rules_ids, "mature": True,
        "definition": ["model_at_volume"] * len(model) + ["rules"] * len(rules),
        "converted": model + rules,
    })  # fmt: skip


def test_the_interval_is_a_bootstrap_over_the_leads_either_cohort_sent():
    rng = np.random.default_rng(5)
    model, rules = list(rng.random(250) < 0.14), list(rng.random(250) < 0.18)
    outcomes = cohorts(model, rules, shared=100)
    d = difference_interval(outcomes, "model_at_volume")
    assert d.difference == sum(model) - sum(rules)
    assert d.leads == 400  # 100 shared, 150 + 150 apart
    # The same bootstrap done the long way: draw leads with replacement, each with what it did
    # in both cohorts, and count the difference of conversions.
    frame = outcomes.pivot_table(index="lead_id", columns="definition", values="converted",
                                 aggfunc="any", fill_value=False).astype(int)  # fmt: skip
    step = (frame["model_at_volume"] - frame["rules"]).to_numpy()
    draws = np.random.default_rng(9).integers(0, len(step), size=(4000, len(step)))
    low, high = np.percentile(step[draws].sum(axis=1), [2.5, 97.5])
    assert abs(d.low - low) <= 2 and abs(d.high - high) <= 2
    assert d.low <= d.difference <= d.high


@pytest.mark.parametrize(("model", "rules", "settled"), [(35, 45, False), (120, 40, True)])
def test_counts_this_small_are_no_verdict_and_a_large_gap_is_one(model, rules, settled):
    n = 252
    outcomes = cohorts([i < model for i in range(n)], [i < rules for i in range(n)])
    d = difference_interval(outcomes, "model_at_volume")
    assert d.settled is settled
    assert (d.low < 0 < d.high) is not settled


@pytest.fixture(scope="module")
def oracle(sample_history, sample_data):
    return oracle_report(sample_history, sample_data)


def test_the_report_says_how_sure_it_is_and_what_it_cannot_credit(oracle):
    history, c = oracle
    d = c.differences["model_at_volume"]
    converted = c.summary["converted"]
    assert d.difference == converted["model_at_volume"] - converted["rules"]
    assert d.low <= d.difference <= d.high
    words = "is beyond chance" if d.settled else "no verdict either way"
    assert f"The difference, {d.difference:+,} conversions" in c.headline()
    assert words in c.headline()
    # The head start counted by hand: the rules' converted new MQLs that the model had sent on
    # an earlier night -- on the baseline night its top leads as many as the rules' MQLs then,
    # later its picks in the outcomes -- and that are no conversion of the model's.
    baseline = history[history["as_of"] == c.nights[0]]
    sent = dict.fromkeys(baseline.nlargest(int(baseline["rule_mql"].sum()),
                                           "mql_probability")["lead_id"], c.nights[0])  # fmt: skip
    model = c.outcomes[c.outcomes["definition"] == "model_at_volume"]
    sent |= dict(zip(model["lead_id"], model["flagged_at"], strict=True))
    credited = set(model.loc[model["converted"] & model["mature"], "lead_id"])
    rules = c.outcomes[(c.outcomes["definition"] == "rules") & c.outcomes["mature"]]
    by_hand = sum(
        lead in sent and sent[lead] < at and lead not in credited
        for lead, at in zip(rules.loc[rules["converted"], "lead_id"],
                            rules.loc[rules["converted"], "flagged_at"], strict=True)
    )  # fmt: skip
    assert by_hand > 0 and d.head_start == by_hand
    assert f"{by_hand:,} of the rules' conversions are leads the model had sent" in c.headline()


def test_the_difference_is_written_with_the_report(oracle, sample_data, tmp_path):
    history, c = oracle
    write_report(build_report(sample_data, history), tmp_path)
    table = pd.read_csv(tmp_path / "tables" / "mql_difference.csv", index_col="definition")
    d = c.differences["model_at_volume"]
    row = table.loc["model_at_volume"]
    assert (row["difference"], row["low"], row["high"], row["head_start"]) == (
        d.difference, d.low, d.high, d.head_start)  # fmt: skip
    assert "tables/mql_difference.csv" in (tmp_path / "index.html").read_text()
