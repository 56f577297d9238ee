"""Reading flat exports and deciding column roles: each kind of mess is handled and reported."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import clone

from flat_helpers import export_frame, write_csv
from leadml.config import FlatSettings
from leadml.errors import DataError
from leadml.flat import FlatPreprocessor, plan_columns, read_flat
from leadml.tracking import load_model_file


def plan(frame_or_path, target="Converted", **kwargs):
    export = read_flat(frame_or_path)
    return export, plan_columns(export, target, **kwargs)


def finding(export, column, issue):
    found = [f for f in export.quality.findings if f.column == column and f.issue == issue]
    assert found, f"no {issue} finding for {column}: {export.quality.format()}"
    return found[0]


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    path = write_csv(export_frame(300), tmp_path_factory.mktemp("export") / "leads.csv")
    export, columns = plan(path, id="Lead ID")
    return path, export, columns


def test_crlf_and_a_trailing_delimiter_are_read_and_reported(messy):
    path, export, _ = messy
    assert path.read_bytes().count(b",\r\n") == 301  # every line ends ",\r\n"
    assert list(export.frame.columns)[-1] == "CRM Number"  # no empty "Unnamed: 17"
    assert export.rows == 300
    issues = export.quality.issues(None)
    assert {"line_endings", "trailing_empty_columns"} <= set(issues)
    assert "Unnamed: 17" in finding(export, None, "trailing_empty_columns").detail


def test_placeholders_and_empty_strings_are_missing_and_counted(messy):
    _, export, columns = messy
    raw = export.frame["Lead Source"]
    placeholder = finding(export, "Lead Source", "placeholder")
    assert placeholder.rows == int((raw == "Select").sum()) and placeholder.example == "Select"
    assert finding(export, "Lead Source", "empty_strings").rows == int((raw == "").sum())
    step = FlatPreprocessor(columns.spec(["Lead Source"]), placeholders=["Select"]).fit(
        export.frame
    )
    cleaned = step.transform(export.frame)["Lead Source"]
    assert cleaned.isna().sum() == int(raw.isin(["Select", ""]).sum())
    assert "Select" not in set(cleaned.dropna())


def test_case_variants_are_merged_into_the_common_spelling(messy):
    _, export, columns = messy
    merged = finding(export, "Lead Source", "case_variants")
    assert merged.rows == int((export.frame["Lead Source"] == "google").sum()) > 0
    step = FlatPreprocessor(columns.spec(["Lead Source"])).fit(export.frame)
    assert "google" not in set(step.transform(export.frame)["Lead Source"].dropna())


def test_numbers_with_thousands_separators_currency_and_stray_words(messy):
    _, export, columns = messy
    assert columns.role("Visits").role == "numeric" and columns.role("Revenue").role == "numeric"
    assert finding(export, "Visits", "thousands_separator").example.count(",") == 1
    assert finding(export, "Revenue", "number_symbols").example.startswith("$")
    mixed = finding(export, "Visits", "mixed_types")
    assert mixed.rows == 6 and mixed.example == "about 5"
    step = FlatPreprocessor(columns.spec(["Visits", "Revenue"])).fit(export.frame)
    parsed = step.transform(export.frame)
    raw = export.frame["Visits"]
    assert parsed["Visits"].dtype == "float64"
    thousands = raw.str.contains(",")
    assert (parsed["Visits"][thousands] >= 1_000).all()
    assert parsed["Visits"][raw == "about 5"].isna().all()
    assert parsed["Revenue"].notna().all()


def test_yes_no_booleans_in_any_spelling_read_as_one_and_zero(messy):
    _, export, columns = messy
    assert columns.role("Opted In").role == "boolean" and columns.role("Webinar").role == "boolean"
    assert "'Y'" in finding(export, "Opted In", "boolean").detail
    step = FlatPreprocessor(columns.spec(["Opted In"]), true_values=["yes", "y"]).fit(export.frame)
    parsed = step.transform(export.frame)["Opted In"]
    expected = export.frame["Opted In"].str.lower().isin(["yes", "y"]).astype(float)
    assert parsed.tolist() == expected.tolist()


def test_roles_of_the_other_columns(messy):
    _, _, columns = messy
    roles = {r.name: r.role for r in columns.roles}
    assert roles["Lead ID"] == "id" and roles["Converted"] == "target"
    assert roles["Email"] == "pii"
    assert roles["Notes"] == "free_text"
    assert roles["CRM Number"] == "identifier"
    assert roles["Unused Field"] == "constant"
    assert roles["Created"] == "date" and not columns.role("Created").used  # no --time
    assert roles["Country"] == "categorical"
    # A value or nothing is a flag, not a constant: the guard must see its presence.
    assert roles["Deal Amount"] == "numeric"
    assert columns.used == [
        "Lead Source",
        "Visits",
        "Revenue",
        "Opted In",
        "Webinar",
        "Country",
        "Lead Status",
        "Rep Verdict",
        "Deal Amount",
        "Call Duration",
    ]
    assert columns.label.sum() == (export_frame(300)["Converted"] == "1").sum()


def test_personal_data_is_never_used_nor_shown(messy):
    _, export, _ = messy
    assert all("@" not in (f.example or "") + f.detail for f in export.quality.findings)
    frame = pd.DataFrame(
        {
            "Do Not Email": ["Yes", "No"] * 20,
            "Contact": [f"p{i}@corp.io" for i in range(40)],
            "Phone Number": [f"+44 20 7946 {i:04d}" for i in range(40)],
            "Converted": ["1", "0"] * 20,
        }
    )
    _, columns = plan(frame)
    assert {r.name: r.role for r in columns.roles} == {
        "Do Not Email": "boolean",  # a flag, not an address
        "Contact": "pii",
        "Phone Number": "pii",
        "Converted": "target",
    }


def test_a_date_becomes_days_after_the_time_column():
    frame = pd.DataFrame(
        {
            "Created": ["2024-01-01", "2024-01-10", "2024-02-01", "2024-03-01"] * 10,
            "First Demo": ["2024-01-05", "", "2024-02-11", "2024-03-01"] * 10,
            "Converted": ["1", "0", "1", "0"] * 10,
        }
    )
    export, columns = plan(frame, time="Created")
    assert columns.role("First Demo").role == "date" and columns.role("First Demo").used
    step = FlatPreprocessor(columns.spec(["First Demo"]), time_column="Created").fit(export.frame)
    days = step.transform(export.frame)["First Demo"].head(4)
    assert days.fillna(-1).tolist() == [4.0, -1, 10.0, 0.0]
    assert list(step.feature_names_in_) == ["First Demo", "Created"]


def test_european_numbers_and_semicolons(tmp_path):
    path = tmp_path / "export.csv"
    rows = ["Umsatz;Besuche;Converted"] + [f"{i}.250,50;{i % 7};{i % 2}" for i in range(1, 41)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    export, columns = plan(path)
    assert "delimiter" in export.quality.issues(None)
    assert columns.role("Umsatz").params == {"thousands": ".", "decimal": ","}
    step = FlatPreprocessor(columns.spec(["Umsatz"])).fit(export.frame)
    assert step.transform(export.frame)["Umsatz"].iloc[0] == 1250.5


def test_latin1_files_and_byte_order_marks(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"Ville,Converted\r\n" + "Montréal,1\r\nQuébec,0\r\n".encode("cp1252"))
    export = read_flat(latin)
    assert "encoding" in export.quality.issues(None)
    assert export.frame["Ville"].tolist() == ["Montréal", "Québec"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffVisits,Converted\n1,0\n".encode())
    assert list(read_flat(bom).frame.columns) == ["Visits", "Converted"]


def test_duplicate_column_names_are_reported(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("Source,Source,Converted\na,b,1\nc,d,0\n")
    export = read_flat(path)
    assert list(export.frame.columns) == ["Source", "Source.1", "Converted"]
    assert finding(export, "Source", "duplicate_header").detail.startswith("the name appears 2")


def test_parquet_and_dataframes_read_like_csv(tmp_path, messy):
    _, export, _ = messy
    typed = export_frame(300).assign(Visits=lambda f: f["Visits"].str.replace(",", ""))
    typed["Visits"] = pd.to_numeric(typed["Visits"], errors="coerce")
    typed.to_parquet(tmp_path / "leads.parquet")
    again = read_flat(tmp_path / "leads.parquet")
    assert (again.frame.dtypes == "str").all()
    _, columns = plan(tmp_path / "leads.parquet", id="Lead ID")
    step = FlatPreprocessor(columns.spec(["Visits"])).fit(again.frame)
    from_csv = FlatPreprocessor(columns.spec(["Visits"])).fit(export.frame)
    assert np.allclose(
        step.transform(again.frame)["Visits"].fillna(-1),
        from_csv.transform(export.frame)["Visits"].fillna(-1),
    )


def test_roles_can_be_set_in_the_settings(messy):
    _, export, _ = messy
    settings = FlatSettings(roles={"Visits": "categorical", "Country": "ignore"})
    columns = plan_columns(export, "Converted", settings=settings)
    assert columns.role("Visits").role == "categorical"
    assert columns.role("Country").role == "ignore" and not columns.role("Country").used
    with pytest.raises(DataError, match=r"flat.roles names 'Cuntry' is not a column"):
        plan_columns(export, "Converted", settings=FlatSettings(roles={"Cuntry": "ignore"}))


def test_the_preprocessor_is_a_plain_sklearn_step_that_skops_stores_safely(tmp_path, messy):
    _, export, columns = messy
    step = FlatPreprocessor(columns.spec(columns.used), placeholders=["Select"])
    assert clone(step).get_params()["placeholders"] == ["Select"]
    fitted = step.fit(export.frame)
    assert list(fitted.get_feature_names_out()) == columns.used
    path = tmp_path / "step.skops"
    skops.io.dump(fitted, path)
    assert skops.io.get_untrusted_types(file=path) == ["leadml.flat.preprocess.FlatPreprocessor"]
    loaded = load_model_file(path)  # leadml trusts exactly this one of its own classes
    pd.testing.assert_frame_equal(loaded.transform(export.frame), fitted.transform(export.frame))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty (0 bytes)"),
        (b"Visits,Converted\r\n", "no rows (only a header with 2 columns"),
        (b"\r\n\r\n", "holds no text"),
    ],
)
def test_empty_files_are_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        read_flat(path)
    assert "export.csv" in str(caught.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_flat(tmp_path / "nope.csv")
