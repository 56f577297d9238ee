"""A history without accounts (B2C, a young CRM): every command runs on it, end to end.

The sample history, written as `leadml synth` writes it, then stripped of its accounts table and
of the leads' account_id: what is left out is said once (validation, training notes) and never
filled with placeholders; fit rules on the missing attributes are skipped.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from conftest import FAST_SETTINGS
from leadml import Settings, load_data
from leadml.cli import app
from leadml.errors import ModelMismatchError
from leadml.features import feature_specs
from leadml.rules import load_rules, rule_scores
from report_helpers import check_static_page

runner = CliRunner()
AS_OF = "2026-03-02"
ACCOUNT_ATTRIBUTES = ("has_account", "industry", "employee_count", "annual_revenue",
                      "company_size_band", "revenue_band")  # fmt: skip
FIRMOGRAPHIC_RULES = ("core_industry", "mid_market", "enterprise", "small_business",
                      "micro_business", "revenue_50m_plus")  # fmt: skip


@pytest.fixture(scope="module")
def no_accounts(sample_history, tmp_path_factory):
    """The sample history without accounts.parquet and without leads.account_id."""
    from leadml.synth import write_history

    folder = tmp_path_factory.mktemp("no-accounts") / "data"
    paths = write_history(sample_history, folder)
    paths["accounts"].unlink()
    paths["truth"].unlink()
    leads = pd.read_parquet(paths["leads"]).drop(columns="account_id")
    leads.to_parquet(paths["leads"], index=False)
    return folder


def _run(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _config(path, store=None) -> str:
    settings = dict(FAST_SETTINGS)
    if store is not None:
        settings["tracking"] = store.tracking.model_dump(mode="json")
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def test_validate_passes_and_says_once_what_is_left_out(no_accounts):
    result = _run("validate", "--data", str(no_accounts), "--now", "2027-01-01")
    assert result.exit_code == 0, result.output
    assert "0 error(s), 1 warning(s)" in result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("warning")]
    assert line.startswith("warning accounts: no accounts table and no leads.account_id")
    assert "account features (account_*)" in line and "fit rules on them are skipped" in line


def test_summary_counts_an_empty_accounts_table(no_accounts):
    result = _run("summary", "--data", str(no_accounts), "--now", "2027-01-01")
    assert result.exit_code == 0, result.output
    assert "accounts             0 rows" in result.stdout
    assert "leads            1,500 rows" in result.stdout


def test_features_leave_out_the_account_and_firmographic_columns(no_accounts, tmp_path):
    out = tmp_path / "features.parquet"
    result = _run("features", "--data", str(no_accounts), "--as-of", AS_OF, "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) > 100
    assert not [c for c in frame.columns if c.startswith("account_") or c in ACCOUNT_ATTRIBUTES]
    # The rest is all there: what the leads and their events supply.
    assert {"seniority", "lead_source", "country", "region", "events_30d"} <= set(frame.columns)
    expected = [f.name for f in feature_specs(load_data(no_accounts).settings,
                                              load_data(no_accounts))]  # fmt: skip
    assert list(frame.columns) == ["lead_id", "as_of", *expected]


def test_trainset_is_built_without_accounts(no_accounts, tmp_path):
    out = tmp_path / "trainset.parquet"
    config = _config(tmp_path / "settings.yaml")
    result = _run("trainset", "--data", str(no_accounts), "--out", str(out), "-c", config)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["label"].sum() > 50
    assert "industry" not in frame.columns and "account_other_leads" not in frame.columns


def test_rules_skip_the_rules_on_missing_attributes(no_accounts, tmp_path):
    out = tmp_path / "rules.csv"
    result = _run("rules", "--data", str(no_accounts), "--as-of", AS_OF, "--out", str(out))
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    columns = set(scores.columns)
    assert not {f"points__{r}" for r in FIRMOGRAPHIC_RULES} & columns
    assert "cap__firmographics" not in columns  # the group has no rule left to cap
    assert {"points__vp_or_c_level", "points__warm_source", "points__demo_request"} & columns
    fit = [
        c
        for c in scores.columns
        if c.startswith("points__") and c[8:] in {r.name for r in load_rules().fit.rules}
    ] + ["cap__fit"] * ("cap__fit" in columns)
    assert (scores[fit].sum(axis=1) - scores["rule_fit_score"]).abs().max() < 1e-6


def test_a_fit_rule_on_a_missing_attribute_scores_as_if_it_were_not_in_the_file(no_accounts):
    """Skipping is exact: the score equals that of the rules file without the rule."""
    data = load_data(no_accounts)
    with_rule = load_rules()
    raw = with_rule.model_dump(by_alias=True, exclude_none=True)
    raw["fit"]["rules"] = [r for r in raw["fit"]["rules"] if r["name"] not in FIRMOGRAPHIC_RULES]
    without = load_rules(raw)
    spine = pd.DataFrame({"lead_id": data.leads["lead_id"], "as_of": pd.Timestamp(AS_OF, tz="UTC")})
    a = rule_scores(data, spine, with_rule, explain=True)
    b = rule_scores(data, spine, without, explain=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_train_promote_score_and_report_run_without_accounts(no_accounts, store, tmp_path):
    config = _config(tmp_path / "settings.yaml", store)
    with threadpool_limits(1):
        trained = _run("train", "--data", str(no_accounts), "-c", config, "--now", "2027-01-01")
    assert trained.exit_code == 0, trained.output
    assert "Note: accounts: no accounts table and no leads.account_id" in trained.stdout
    assert "registered" in trained.stdout

    promoted = _run("promote", "-c", config)
    assert promoted.exit_code == 0, promoted.output

    scores = tmp_path / "scores"
    scored = _run("score", "--data", str(no_accounts), "--as-of", "2026-06-29", "--out",
                  str(scores), "-c", config, "--top", "0", "--no-report")  # fmt: skip
    assert scored.exit_code == 0, scored.output
    (partition,) = scores.glob("as_of=*/part-0.parquet")
    night = pd.read_parquet(partition)
    assert len(night) > 100 and night["mql_probability"].between(0, 1).all()
    used = set(night.filter(regex=r"^reason_\d_feature$").stack())
    assert used and not {f for f in used if f.startswith("account_") or f in ACCOUNT_ATTRIBUTES}
    fired = set(" ".join(night["rules_fired"].astype(str)).replace(";", " ").split())
    assert "warm_source" in fired and not set(FIRMOGRAPHIC_RULES) & fired

    report = tmp_path / "report"
    done = _run("report", "--data", str(no_accounts), "--scores", str(scores), "--out",
                str(report), "-c", config)  # fmt: skip
    assert done.exit_code == 0, done.output
    check_static_page(report / "index.html")
    page = (report / "index.html").read_text()
    assert "lead source" in page.lower() and "industry" not in page.lower()


def test_a_model_trained_with_accounts_refuses_data_without_them(trained_sample, no_accounts):
    from leadml.scoring import score

    data = load_data(no_accounts, Settings.model_validate(FAST_SETTINGS))
    with pytest.raises(ModelMismatchError, match="no accounts table") as refused:
        score(data, "2026-06-29", trained_sample.model, trained_sample.settings)
    assert "retrain the model on this data" in str(refused.value)


# --- the optional inputs one at a time, on the tiny history ------------------------------------


def _warnings(tables) -> list[str]:
    from leadml.data.validation import validate_data

    report = validate_data(tables, now="2026-01-01")
    assert report.ok, report.format()
    return [p.format() for p in report.warnings]


def test_an_empty_accounts_table_is_no_accounts_table(tiny_tables):
    tables = {**tiny_tables, "accounts": tiny_tables["accounts"].iloc[:0]}
    accounts, country = _warnings(tables)  # the tiny leads' country came from their accounts
    assert accounts.startswith("warning accounts: no accounts table (or an empty one)")
    assert "the account features still count the leads sharing a leads.account_id" in accounts
    assert country.startswith("warning leads.country: no country")
    data = load_data(tables, now="2026-01-01")
    names = [f.name for f in feature_specs(data.settings, data)]
    assert "account_other_leads" in names and "has_account" in names  # leads.account_id remains
    assert "industry" not in names and "company_size_band" not in names


@pytest.mark.parametrize(
    ("column", "left_out"),
    [
        ("industry", {"industry"}),
        ("employee_count", {"employee_count", "company_size_band"}),
        ("annual_revenue", {"annual_revenue", "revenue_band"}),
    ],
)
def test_a_missing_firmographic_column_leaves_out_its_attributes(tiny_tables, column, left_out):
    tables = {**tiny_tables, "accounts": tiny_tables["accounts"].drop(columns=column)}
    (warning,) = _warnings(tables)
    assert warning.startswith(f"warning accounts.{column}: accounts has no {column} column")
    data = load_data(tables, now="2026-01-01")
    assert data.unavailable == left_out
    names = {f.name for f in feature_specs(data.settings, data)}
    assert not names & left_out and "account_other_leads" in names


@pytest.mark.parametrize(
    ("column", "left_out", "rule"),
    [
        ("lead_source", {"lead_source"}, "warm_source"),
        ("job_title", {"seniority", "department"}, "vp_or_c_level"),
    ],
)
def test_a_missing_lead_column_leaves_out_its_attributes(tiny_tables, column, left_out, rule):
    tables = {**tiny_tables, "leads": tiny_tables["leads"].drop(columns=column)}
    (warning,) = _warnings(tables)
    assert warning.startswith(f"warning leads.{column}: leads has no {column} column")
    data = load_data(tables, now="2026-01-01")
    assert data.unavailable == left_out
    scores = rule_scores(data, pd.DataFrame({"lead_id": ["L1"], "as_of": [AS_OF]}))
    assert f"points__{rule}" not in scores.columns


def test_country_is_left_out_only_when_neither_table_has_it(tiny_tables):
    assert not _warnings(tiny_tables)  # the accounts' country stands in for the leads'
    tables = {**tiny_tables, "accounts": tiny_tables["accounts"].drop(columns="country")}
    (warning,) = _warnings(tables)
    assert "no country (neither leads.country nor accounts.country)" in warning
    assert load_data(tables, now="2026-01-01").unavailable == {"country", "region"}


def test_accounts_without_leads_account_id_are_not_used(tiny_tables):
    tables = {**tiny_tables, "leads": tiny_tables["leads"].drop(columns="account_id")}
    warnings = _warnings(tables)
    assert warnings[0].startswith("warning leads.account_id: leads has no account_id column, so "
                                  "no lead can be matched to an account")  # fmt: skip
    data = load_data(tables, now="2026-01-01")
    assert not data.has_accounts and "industry" in data.unavailable


def test_passing_through_an_account_column_without_accounts_names_the_setting(tiny_tables):
    from leadml.errors import DataError
    from leadml.features import build_features

    tables = {k: v for k, v in tiny_tables.items() if k != "accounts"}
    settings = Settings.model_validate({"features": {"passthrough": {"accounts": ["tier"]}}})
    data = load_data(tables, settings, now="2026-01-01")
    spine = pd.DataFrame({"lead_id": ["L1"], "as_of": ["2025-03-01"]})
    with pytest.raises(DataError, match=r"features.passthrough.accounts: .* no accounts table"):
        build_features(data, spine)


def test_a_header_only_accounts_csv_is_no_accounts_table(tiny_tables, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in tiny_tables.items():
        frame.iloc[: 0 if name == "accounts" else None].to_csv(folder / f"{name}.csv", index=False)
    result = _run("validate", "--data", str(folder), "--now", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert "warning accounts: no accounts table (or an empty one)" in result.stdout
