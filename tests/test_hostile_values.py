"""Hostile values in the data: every CSV file leadml writes quotes what a spreadsheet would run
as a formula (and leaves numbers alone), every Markdown file keeps ids inside their code spans,
and text shown to people is cut to 200 characters.

Each writer is run for real on data carrying the values, and its file read back with the
``csv`` module (what a spreadsheet import sees) or a Markdown parser.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from leadml import load_data
from leadml.common.safe_text import csv_cell, csv_safe, md_code, md_text, shorten, to_csv
from leadml.reports import build_report, write_report

#: One of each kind of formula a spreadsheet runs, and a code-span breaker.
HOSTILE = (
    '=HYPERLINK("http://evil.example","click {}")',
    "+cmd|' /c calc'!A{}",
    "-1+{}",
    "@SUM(1+{})",
    "\t=1+{}",
    "`{}`\n# owned\n",
)
FORMULA_START = tuple("=+-@\t\r")
HUGE = "z" * 1_000_000


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _assert_no_formula(rows: list[dict[str, str]], path: Path) -> None:
    """No cell (header included) starts like a formula, unless it is a plain number."""
    for row in rows[:1]:
        for name in row:
            assert not name.startswith(FORMULA_START), (path, name)
    for row in rows:
        for value in row.values():
            if value.startswith(FORMULA_START):
                float(value)  # -0.12 is a number, not a formula: anything else fails here


def _hostile_tables(history) -> dict[str, pd.DataFrame]:
    tables = {name: frame.copy() for name, frame in history.tables().items()}
    ids = sorted(tables["leads"]["lead_id"])
    renamed = {old: HOSTILE[i % len(HOSTILE)].format(i) for i, old in enumerate(ids)}
    for name in ("leads", "events", "stages"):
        tables[name]["lead_id"] = tables[name]["lead_id"].map(renamed)
    leads = tables["leads"]
    leads.loc[leads.index[:40], "lead_source"] = "=HYPERLINK(1)"
    leads.loc[leads.index[40:80], "lead_source"] = "@lead_source"
    return tables


@pytest.fixture(scope="module")
def hostile_tables(sample_history):
    return _hostile_tables(sample_history)


@pytest.fixture(scope="module")
def hostile_data(hostile_tables):
    from conftest import FAST_SETTINGS
    from leadml import Settings

    return load_data(hostile_tables, Settings.model_validate(FAST_SETTINGS))


# --- the helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+cmd|' /c calc'!A0", "'+cmd|' /c calc'!A0"),
        ("-1+1", "'-1+1"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-3.5", "-3.5"),  # a number written as text: a spreadsheet reads a number
        ("+1e5", "+1e5"),
        ("L-1", "L-1"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_quote(value, written):
    assert csv_cell(value) == written


def test_csv_safe_quotes_text_cells_headers_and_index_and_leaves_numbers_alone():
    frame = pd.DataFrame(
        {
            "lead_id": pd.array(["=1+1", "L2", None], dtype="str"),
            "source": pd.Categorical(["@x", "y", "@x"]),
            "mixed": pd.array(["-1+1", 3, None], dtype=object),
            "-delta": [-3.5, 0.0, math.nan],
            "flag": [True, False, True],
        },
        index=pd.Index(["=a", "b", "c"], name="@segment"),
    )
    safe = csv_safe(frame)
    assert list(safe.columns) == ["lead_id", "source", "mixed", "'-delta", "flag"]
    assert safe.index.name == "'@segment" and list(safe.index) == ["'=a", "b", "c"]
    assert safe["lead_id"].tolist()[:2] == ["'=1+1", "L2"] and pd.isna(safe["lead_id"].iloc[2])
    assert safe["source"].tolist() == ["'@x", "y", "'@x"]
    assert safe["mixed"].tolist() == ["'-1+1", 3, None]
    assert safe["'-delta"].dtype == "float64"
    assert safe["'-delta"].tolist()[:2] == [-3.5, 0.0] and math.isnan(safe["'-delta"].iloc[2])
    assert safe["flag"].dtype == bool
    pd.testing.assert_frame_equal(frame, frame.copy())  # the input is not changed


def test_shorten_marks_what_it_cut():
    assert shorten("a" * 200) == "a" * 200
    assert shorten("a" * 1_000_000) == "a" * 200 + "…[+999,800 chars]"
    frame = pd.DataFrame({"x": ["b" * 300, "c"]})
    buffer = __import__("io").StringIO()
    to_csv(frame, buffer, index=False, limit=200)
    assert buffer.getvalue().splitlines()[1] == "b" * 200 + "…[+100 chars]"


def test_markdown_helpers_keep_a_value_inside_its_span_or_cell():
    parser = pytest.importorskip("markdown_it").MarkdownIt("commonmark").enable("table")
    nasty = "`L1`\n# owned\n| x | *y* [z](http://e) <b>"
    tokens = parser.parseInline(f"id {md_code(nasty)} end")[0].children
    spans = [t.content for t in tokens if t.type == "code_inline"]
    assert spans == ["`L1` # owned | x | *y* [z](http://e) <b>"]
    table = parser.parse(f"| a | b |\n|---|---|\n| {md_text(nasty)} | 1 |\n")
    cells = [t.content for t in table if t.type == "inline"]
    assert len(cells) == 4 and cells[3] == "1"  # the value stayed in its cell
    rendered = parser.render(f"| a | b |\n|---|---|\n| {md_text(nasty)} | 1 |\n")
    assert "<h1>" not in rendered and "<em>" not in rendered and "<a " not in rendered
    assert "<b>" not in rendered


# --- every writer --------------------------------------------------------------------------------


def test_nightly_scores_csv_and_summary_keep_hostile_ids_harmless(
    hostile_data, trained_sample, tmp_path
):
    from leadml.scoring import ScoringModel, score_to

    result = trained_sample
    model = ScoringModel(result.model, result.feature_names, "sample-model", "1", None, "object",
                         {"family": result.family})  # fmt: skip
    done = score_to(hostile_data, "2026-06-29", tmp_path, model, csv=True, track=False)
    path = done.path / "_scores.csv"
    rows = _rows(path)
    assert len(rows) == len(done.scores)
    _assert_no_formula(rows, path)
    expected = {csv_cell(i) for i in done.scores["lead_id"]}
    assert {r["lead_id"] for r in rows} == expected
    assert any(r["lead_id"].startswith("'=HYPERLINK") for r in rows)
    # Numbers are numbers, negative effects included; the Parquet file holds the raw ids.
    effects = [float(r["reason_1_effect"]) for r in rows]
    assert min(effects) < 0
    assert float(rows[0]["mql_probability"]) == pytest.approx(done.scores["mql_probability"][0])
    raw = pd.read_parquet(done.path / "part-0.parquet")
    assert raw["lead_id"].str.startswith(FORMULA_START).any()

    parser = pytest.importorskip("markdown_it").MarkdownIt("commonmark").enable("table")
    markdown = (done.path / "_summary.md").read_text()
    missed = done.summary["missed_by_rules"]["lead_ids"]
    assert any("\n" in i for i in missed)  # the code-span breakers are among them
    tokens = parser.parse(markdown)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert not any("owned" in h for h in headings)
    spans = [c.content for t in tokens if t.type == "inline" for c in t.children or []
             if c.type == "code_inline"]  # fmt: skip
    for lead in missed:
        assert " ".join(lead.splitlines()) in spans


@pytest.mark.slow
def test_report_tables_and_page_quote_formulas_and_cut_huge_values(hostile_tables, tmp_path):
    accounts = hostile_tables["accounts"].copy()
    accounts.loc[accounts.index[0], "industry"] = HUGE
    data = load_data({**hostile_tables, "accounts": accounts})
    page = write_report(build_report(data), tmp_path / "report")
    folder = page.parent
    checked = 0
    for path in sorted((folder / "tables").glob("*.csv")):
        rows = _rows(path)
        _assert_no_formula(rows, path)
        checked += 1
    assert checked >= 5
    sources = _rows(folder / "tables" / "funnel_by_lead_source.csv")
    assert {"'=hyperlink(1)", "'@lead_source"} <= {r["lead_source"] for r in sources}
    assert all(float(r["leads"]) >= 0 for r in sources)
    industries = {r["industry"] for r in _rows(folder / "tables" / "funnel_by_industry.csv")}
    cut = [v for v in industries if v.startswith("z")]
    assert cut == ["z" * 200 + "…[+999,800 chars]"]
    html = page.read_text()
    assert "z" * 201 not in html and "…[+999,800 chars]" in html
    # Its figures are embedded (base64 PNG); the text around them stays small.
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert len(text) < 500_000


def test_flat_scores_csv_and_mlflow_tables_quote_formulas(store, tmp_path):
    from flat_helpers import export_frame, fast_settings
    from leadml.flat import flat_settings, score_flat_to, train_flat
    from leadml.tracking import log_training
    from tracking_helpers import tracking_uri

    frame = export_frame(400, seed=4)
    frame["Lead ID"] = [HOSTILE[i % 5].format(i) for i in range(len(frame))]  # no newline
    frame["=cmd|' /c calc'!A0"] = frame["Lead Source"]  # a column name is a cell of columns.csv
    frame.loc[:3, "Lead Source"] = "-2+3+cmd|' /C calc'!A0"
    frame.loc[0, "Country"] = HUGE
    settings = flat_settings(fast_settings().model_copy(update={"tracking": store.tracking}))
    result = train_flat(frame, "Converted", id="Lead ID", settings=settings)
    tracked = log_training(result, plots=False)

    client = MlflowClient(tracking_uri=store.tracking.uri)
    run = client.get_run(tracked.run_id)
    local = Path(mlflow.artifacts.download_artifacts(run.info.artifact_uri, dst_path=tmp_path))
    paths = sorted((local / "tables").glob("*.csv"))
    assert {"columns.csv", "data_quality.csv", "leakage_columns.csv"} <= {p.name for p in paths}
    for path in paths:
        _assert_no_formula(_rows(path), path)
    columns = {r["column"] for r in _rows(local / "tables" / "columns.csv")}
    assert "'=cmd|' /c calc'!A0" in columns
    # The huge value is cut in the input example and the export's metadata.
    registered = f"models:/{tracked.model_name}/{tracked.model_version}"
    with tracking_uri(store.tracking.uri):
        model = Path(mlflow.artifacts.download_artifacts(registered, dst_path=tmp_path / "m"))
    example = json.loads((model / "input_example.json").read_text())
    shown = json.dumps(example, ensure_ascii=False)
    assert "z" * 201 not in shown and "z" * 200 + "…[+999,800 chars]" in shown
    metadata = (tracked.export_path / "metadata.json").read_text()
    assert "z" * 201 not in metadata

    out = tmp_path / "scored.csv"
    scored = score_flat_to(frame, out, tracked.export_path, settings, id="Lead ID")
    rows = _rows(out)
    _assert_no_formula(rows, out)
    assert [r["Lead ID"] for r in rows] == [csv_cell(i) for i in scored.scores["Lead ID"]]
    assert rows[2]["Lead ID"] == "'-1+2"
    probabilities = [float(r["mql_probability"]) for r in rows]
    assert probabilities == pytest.approx(scored.scores["mql_probability"].tolist())
    raw = tmp_path / "scored.parquet"
    score_flat_to(frame, raw, tracked.export_path, settings, id="Lead ID")
    assert pd.read_parquet(raw)["Lead ID"].tolist()[:3] == frame["Lead ID"].tolist()[:3]
