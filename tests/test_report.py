"""The funnel report: its numbers against independent counts over the raw tables, its MQL
comparison against the generator's own record of who converted, and the written page checked
for real (strict HTML, every figure a real PNG, text escaped, no PII)."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leadml import load_data, rule_scores
from leadml.modeling.evaluation import capacity_curve
from leadml.modeling.plots import PALETTE, capacity_figure
from leadml.reports import (
    build_report,
    choose_period,
    comparison_figure,
    funnel_counts,
    nightly_counts,
    nightly_figure,
    read_scores,
    read_summary,
    training_scores,
    wilson_interval,
    write_report,
)
from report_helpers import EMAIL, check_static_page, tables_by_caption, text_of

HOUR = pd.Timedelta(hours=1)
LATER = {  # a lead that reached a stage passed the earlier ones
    "mql": {"mql", "sal", "srl", "sql", "opportunity", "customer"},
    "sal": {"sal", "sql", "opportunity", "customer"},
    "sql": {"sql", "opportunity", "customer"},
    "opportunity": {"opportunity", "customer"},
    "won": {"customer"},
}


def expected_funnel(leads: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    """The funnel per lead, counted with plain pandas over the generator's raw tables."""
    per_lead = pd.DataFrame({"lead_id": leads["lead_id"]}).set_index("lead_id")
    for name, reached in LATER.items():
        hit = stages[stages["stage"].isin(reached)]
        per_lead[name] = per_lead.index.isin(hit["lead_id"])
        per_lead[f"{name}_at"] = hit.groupby("lead_id")["entered_at"].min()
    rejected = stages.loc[stages["stage"] == "srl", "lead_id"]
    per_lead["srl"] = per_lead.index.isin(rejected) & ~per_lead["sal"]
    touches = stages[stages["stage"].isin(["sal", "srl", "sql", "opportunity"])]
    touches = touches.merge(per_lead["mql_at"].rename("mql_at"), left_on="lead_id",
                            right_index=True)  # fmt: skip
    first_touch = (
        touches[touches["entered_at"] >= touches["mql_at"]].groupby("lead_id")["entered_at"].min()
    )
    per_lead["speed_hours"] = (first_touch - per_lead["mql_at"]) / HOUR
    created = leads.set_index("lead_id")["created_at"]
    per_lead["week"] = created.dt.floor("D") - pd.to_timedelta(created.dt.day_of_week, unit="D")
    per_lead["lead_source"] = leads.set_index("lead_id")["lead_source"]
    return per_lead


def summarise(per_lead: pd.DataFrame) -> dict:
    counts = {c: int(per_lead[c].sum()) for c in ("mql", "sal", "srl", "sql", "opportunity", "won")}
    counts["leads"] = len(per_lead)
    if counts["mql"]:
        counts["mql_acceptance"] = counts["sal"] / counts["mql"]
        counts["mql_to_sql"] = counts["sql"] / counts["mql"]
    counts["speed_to_lead_hours"] = per_lead["speed_hours"].median()
    return counts


@pytest.fixture(scope="module")
def report(sample_data, nightly_scores):
    return build_report(sample_data, nightly_scores)


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    return write_report(report, tmp_path_factory.mktemp("report") / "out")


# --- the numbers -------------------------------------------------------------------------------


def test_funnel_numbers_equal_an_independent_count_over_the_stages_table(
    report, written, sample_history
):
    per_lead = expected_funnel(sample_history.leads, sample_history.stages)
    expected = summarise(per_lead)
    funnel = report.funnel.loc["all"]
    for column in ("leads", "mql", "sal", "srl", "sql", "opportunity", "won"):
        assert funnel[column] == expected[column], column
    assert funnel["mql"] == funnel["sal"] + funnel["srl"] + funnel["awaiting_review"]
    for column in ("mql_acceptance", "mql_to_sql", "speed_to_lead_hours"):
        assert funnel[column] == pytest.approx(expected[column]), column

    # Per week of creation and per lead source: every row.
    for by, table in (("week", report.weekly), ("lead_source", report.segments["lead_source"])):
        groups = per_lead.groupby(by)
        assert len(table) == groups.ngroups
        for key, part in groups:
            row, want = table.loc[key], summarise(part)
            for column in ("leads", "mql", "sal", "srl", "sql", "won"):
                assert row[column] == want[column], (by, key, column)

    # And the page shows those numbers, not others.
    tables = tables_by_caption(check_static_page(written)["tree"])
    head, row = tables[next(c for c in tables if c.startswith("The funnel:"))]
    shown = dict(zip(head, row, strict=True))
    assert shown["Leads"] == f"{expected['leads']:,}"
    assert shown["MQL"] == f"{expected['mql']:,}"
    assert shown["Accepted (SAL)"] == f"{expected['sal']:,}"
    assert shown["SQL"] == f"{expected['sql']:,}"
    assert shown["Won"] == f"{expected['won']:,}"
    assert shown["MQL acceptance"] == f"{expected['mql_acceptance']:.1%}"


def test_funnel_counts_is_the_same_funnel(sample_data, report):
    counts = funnel_counts(sample_data)
    overall = report.funnel.loc["all"]
    assert counts.loc["mql", "leads"] == overall["mql"]
    assert counts.loc["srl", "leads"] == overall["srl"]
    assert counts.loc["customer", "leads"] == overall["won"]
    assert counts.loc["sal", "rate_from_previous"] == pytest.approx(overall["mql_acceptance"])


def test_model_mqls_are_followed_up_exactly_as_the_generator_recorded_them(
    sample_history, sample_data
):
    """An oracle 'model' (the generator's exact probabilities) on its monthly as-of dates: every
    MQL's conversion must be the generator's own record of whether that lead reached SQL within
    the horizon, and the oracle must pick better leads than the rules."""
    truth = sample_history.truth
    rules = rule_scores(sample_data, truth[["lead_id", "as_of"]], explain=False)
    history = truth.merge(rules[["lead_id", "as_of", "rule_mql"]], on=["lead_id", "as_of"])
    history["model_mql"] = history["p_true"] >= 0.15
    report = build_report(sample_data, history)
    c = report.comparison
    # The last as-of whose horizon ends by the end of the data, and the quarter before it.
    mature = truth["as_of"][truth["as_of"] + pd.Timedelta(days=90) <= sample_data.end()]
    assert c.period.end == mature.max() + pd.Timedelta(days=1)
    inside = history[(history["as_of"] >= c.period.start) & (history["as_of"] < c.period.end)]
    baseline = history.loc[history["as_of"] < c.period.start, "as_of"].max()
    for definition, flag in (("model", "model_mql"), ("rules", "rule_mql")):
        # New MQLs: leads that were not MQLs on the night before the period.
        already = history.loc[(history["as_of"] == baseline) & history[flag], "lead_id"]
        fresh = inside[inside[flag] & ~inside["lead_id"].isin(already)]
        first = fresh.sort_values("as_of").groupby("lead_id").head(1)
        row = c.summary.loc[definition]
        assert row["mqls"] == len(first) > 20
        assert row["converted"] == int(first["converted"].sum())
        # Acceptance, from the raw stages: sales's verdict by the end of each follow-up.
        stages = sample_history.stages.merge(first[["lead_id", "as_of"]], on="lead_id")
        stages = stages[stages["entered_at"] <= stages["as_of"] + pd.Timedelta(days=90)]
        accepted = set(stages.loc[stages["stage"].isin(LATER["sal"]), "lead_id"])
        rejected = set(stages.loc[stages["stage"] == "srl", "lead_id"]) - accepted
        assert row["accepted"] == len(accepted)
        assert row["reviewed"] == len(accepted | rejected)
    model, rules = c.summary.loc["model"], c.summary.loc["rules"]
    assert model["conversion"] > rules["conversion"]
    # A history without the model's probabilities: no comparison at the rules' volume, said so.
    assert "model_at_volume" not in c.summary.index
    assert "cannot be compared at the rules' volume" in c.headline()
    assert f"{model['conversion']:.1%} reached SQL" in c.headline()


def test_a_training_runs_test_window_becomes_the_models_mqls(trained_sample, sample_data):
    scores = training_scores(trained_sample)
    tiers = trained_sample.settings.scoring.tiers.probability
    assert (scores["model_mql"] == (scores["mql_probability"] >= tiers["B"])).all()
    report = build_report(sample_data, scores)
    c = report.comparison
    labelled = trained_sample.test.merge(scores, on=["lead_id", "as_of"])
    # The baseline: the last snapshot before the period, or its first when there is none.
    nights = labelled["as_of"]
    before = nights[nights < c.period.start]
    baseline = before.max() if len(before) else nights[nights >= c.period.start].min()
    already = labelled.loc[(nights == baseline) & labelled["model_mql"], "lead_id"]
    fresh = labelled[labelled["model_mql"] & (nights > baseline) & (nights < c.period.end)
                     & ~labelled["lead_id"].isin(already)]  # fmt: skip
    first = fresh.sort_values("as_of").groupby("lead_id").head(1)
    # The label training measured is the conversion the report counts.
    assert c.summary.loc["model", "mqls"] == len(first)
    assert c.summary.loc["model", "converted"] == int(first["label"].sum())


def test_the_period_is_the_last_quarter_whose_outcomes_are_known(report, sample_data):
    period = report.comparison.period
    assert period.end - period.start == pd.Timedelta(days=91)
    assert period.end <= sample_data.end() - pd.Timedelta(days=90) + pd.Timedelta(days=1)
    assert list(period.nights.strftime("%Y-%m-%d")) == [
        "2026-01-05", "2026-01-19", "2026-02-02", "2026-02-16", "2026-03-02", "2026-03-16",
        "2026-03-30",
    ]  # fmt: skip
    assert "1 scored night(s) outside this period" in report.comparison.notes[0]
    # Nights all too recent: the model's outcomes are unknown, and the report says so.
    recent = choose_period(sample_data.end(), 90, 91, pd.DatetimeIndex(["2026-06-29"], tz="UTC"))
    assert not len(recent.nights) and "not known yet" in recent.note


def test_wilson_intervals_contain_the_rate_and_narrow_with_more_trials():
    low, high = wilson_interval([5, 50, 0], [10, 100, 0])
    assert low[0] < 0.5 < high[0] and high[1] - low[1] < high[0] - low[0]
    assert np.isnan(low[2]) and np.isnan(high[2])


# --- the page ----------------------------------------------------------------------------------


def test_the_page_is_strict_html_with_real_figures_and_working_links(report, written):
    checked = check_static_page(written)
    tree = checked["tree"]
    assert text_of(tree.find("head/title")) == "Lead funnel report"
    assert len(checked["images"]) == len(report.figures())  # every figure inside the page
    assert {p.name for p in written.parent.glob("*.png")} == {f"{s}.png" for s in report.figures()}
    assert {p.name for p in checked["links"]} == {f"{stem}.csv" for stem in report.tables()}
    headline = text_of(next(e for e in tree.iter("p") if e.get("class") == "headline"))
    assert headline == report.comparison.headline()
    assert headline.startswith("Like with like") and "cannot be compared" not in headline
    assert "estimate on observed outcomes" in headline


@pytest.mark.slow
def test_every_text_is_escaped_and_nothing_can_run(tmp_path):
    from leadml.synth import generate_history

    tables = generate_history(n_leads=400, seed=2).tables()
    hostile = '<script>alert("x")</script> & <b onmouseover=1>'
    leads = tables["leads"].copy()
    leads.loc[leads.index[:150], "lead_source"] = hostile
    tables["leads"] = leads
    page = write_report(build_report(tables, title='Q2 <review> & "plans"'), tmp_path)
    checked = check_static_page(page)  # no <script>, no on* attribute got through
    html = page.read_text()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b onmouseover=1&gt;" in html
    assert text_of(checked["tree"].find("head/title")) == 'Q2 <review> & "plans"'
    assert any(hostile.lower() in " ".join(r[0] for r in rows).lower()
               for rows in tables_by_caption(checked["tree"]).values())  # fmt: skip


def test_the_report_holds_no_pii(sample_history, written):
    leads = sample_history.leads
    names = set(leads["first_name"] + " " + leads["last_name"])
    files = [p for p in written.parent.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".html", ".png", ".csv"}
    for path in files:
        if path.suffix == ".png":  # pixels, and text only in its metadata chunks
            with Image.open(path) as image:
                text = " ".join(str(v) for v in image.info.values())
        else:
            text = path.read_text()
        assert not EMAIL.findall(text.encode()), path
        assert not any(name in text for name in names), path
        assert "L0000" not in text, f"{path}: a lead id"


def test_a_history_too_small_for_any_mql_still_makes_a_valid_page(tiny_tables, tmp_path):
    data = load_data(tiny_tables, now="2026-01-01")
    report = build_report(data)
    assert report.funnel.loc["all", "leads"] == 3
    assert len(report.comparison.summary) == 0
    page = write_report(report, tmp_path / "out")
    check_static_page(page)
    assert "No MQLs in this period." in page.read_text()


# --- figures and the nightly readers ------------------------------------------------------------


def test_figures_are_titled_labelled_and_keep_the_shared_colours(report, trained_sample):
    figures = report.figures()
    for name, figure in figures.items():
        for ax in figure.axes:
            assert ax.get_title() and ax.get_xlabel(), name
            # Quantities carry a unit; a bar chart's categories stand in for the other label.
            assert "(" in ax.get_xlabel() + ax.get_ylabel(), name
            categories = [t.get_text() for t in figure.axes[0].get_yticklabels()]
            assert ax.get_ylabel() or any(categories), name
    colours = {mcolors.to_rgba(PALETTE[who]) for who in ("recorded", "rules", "model")}
    drawn = {p.get_facecolor() for p in figures["mql_comparison"].axes[0].patches}
    assert colours <= drawn
    lines = {mcolors.to_rgba(line.get_color()) for line in figures["mql_weekly"].axes[0].lines}
    assert colours <= lines
    assert {mcolors.to_rgba(PALETTE["recorded"])} <= {
        p.get_facecolor() for p in figures["funnel"].axes[0].patches
    }
    test = trained_sample.test
    curve = capacity_curve(test, {"model": "model_probability", "rules": "rule_score"})
    assert (curve.diff().dropna()[["model", "rules", "random"]] >= -1e-12).all().all()
    assert curve["model"].iloc[-1] == pytest.approx(curve["all_conversions"].iloc[-1])
    ax = capacity_figure(curve, 40.0, 28).axes[0]
    assert "per 28 days" in ax.get_xlabel() and "(leads)" in ax.get_ylabel()
    line_colours = {mcolors.to_rgba(line.get_color()) for line in ax.lines}
    assert {mcolors.to_rgba(PALETTE["model"]), mcolors.to_rgba(PALETTE["rules"])} <= line_colours
    assert comparison_figure(report.comparison.summary).axes[1].get_ylim()[1] > 1


def test_nightly_readers_give_the_latest_night_and_every_summary(nightly_scores):
    latest = read_scores(nightly_scores)
    assert (latest["as_of"] == pd.Timestamp("2026-06-29", tz="UTC")).all()
    assert latest["lead_id"].is_unique and latest["model_tier"].notna().all()
    earlier = read_scores(nightly_scores, "2026-01-05")
    assert len(earlier) != len(latest)
    summary = read_summary(nightly_scores)
    assert summary["open_leads"] == len(latest)
    counts = nightly_counts(nightly_scores)
    assert len(counts) == 8 and counts.index.is_monotonic_increasing
    assert (
        counts.loc[pd.Timestamp("2026-06-29", tz="UTC"), "model_mql"] == latest["model_mql"].sum()
    )
    ax = nightly_figure(counts).axes[0]
    assert ax.get_title() and "(leads)" in ax.get_ylabel()


def test_a_page_long_segment_value_keeps_the_chart_readable():
    """A CRM's free text as an industry (10,000 characters, a tab inside) is cut on the axis:
    the chart keeps its layout instead of collapsing it (matplotlib said so, and drew nothing)."""
    import io
    import warnings

    from leadml.reports._figures import segment_figure

    values = ["software", "x\t" + "y" * 10_000]
    table = pd.DataFrame({"leads": [40, 30], "lead_to_mql": [0.3, 0.2], "mql_to_sql": [0.5, 0.4]},
                         index=pd.Index(values, name="industry"))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = segment_figure(table, "industry")
        figure.savefig(io.BytesIO(), format="png")
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert max(len(label) for label in labels) < 60 and "\t" not in "".join(labels)
