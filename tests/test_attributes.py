from __future__ import annotations

import pandas as pd
import pytest

from leadml import Settings, load_data
from leadml.config import DomainSettings
from leadml.data.asof import registered
from leadml.data.attributes import ATTRIBUTES, lead_attributes

AS_OF = pd.Timestamp("2025-06-01", tz="UTC")


def attributes(tables, settings=None, as_of=AS_OF):
    data = load_data(tables, settings, now="2026-01-01")
    spine = pd.DataFrame({"lead_id": tables["leads"]["lead_id"], "as_of": as_of})
    with registered(data, spine) as name:
        return data.con.execute(lead_attributes(data, name)).df().set_index("lead_id")


def with_leads(tiny_tables, **columns):
    n = len(next(iter(columns.values())))
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": pd.Timestamp("2025-01-01", tz="UTC"),
            "lead_source": "web",
            **columns,
        }
    )
    events = tiny_tables["events"].assign(lead_id="L0")
    stages = tiny_tables["stages"].assign(lead_id="L0")
    return {**tiny_tables, "leads": leads, "events": events, "stages": stages}


@pytest.mark.parametrize(
    ("title", "seniority", "department"),
    [
        ("VP Marketing", "vp", "marketing"),
        ("Vice President, Sales", "vp", "sales"),
        ("Chief Technology Officer", "c_level", "other"),
        ("CTO", "c_level", "engineering"),
        ("Head of IT", "director", "it"),
        ("Marketing Manager", "manager", "marketing"),
        ("Senior Data Engineer", "individual_contributor", "engineering"),
        ("Marketing Intern", "student", "education"),
        ("Student", "student", "education"),
        ("Chief Executive Officer & Co-Founder", "c_level", "executive"),
        ("Astronaut", "other", "other"),
        ("Editor", "other", "other"),  # "it" must match a whole word only
        (None, None, None),
    ],
)
def test_job_titles_map_to_seniority_and_department(tiny_tables, title, seniority, department):
    row = attributes(with_leads(tiny_tables, job_title=[title])).loc["L0"]
    assert (row["seniority"] if pd.notna(row["seniority"]) else None) == seniority
    assert (row["department"] if pd.notna(row["department"]) else None) == department


def test_input_seniority_and_department_win_over_the_title(tiny_tables):
    tables = with_leads(
        tiny_tables,
        job_title=["VP Marketing", "VP Marketing"],
        seniority=["Director", None],
        department=[" Finance", ""],
    )
    frame = attributes(tables)
    assert list(frame["seniority"]) == ["director", "vp"]
    assert list(frame["department"]) == ["finance", "marketing"]


def test_email_domains_become_flags_and_never_leave(tiny_tables):
    emails = [
        "a@Gmail.com",
        "b@cs.stanford.edu",
        "c@rival.io",
        "d@eu.rival.io",
        "e@acme.com",
        None,
        "not-an-email",
        "f@notrival.io",
    ]
    settings = Settings(domains=DomainSettings(competitor=("rival.io",)))
    frame = attributes(with_leads(tiny_tables, email=emails), settings)
    assert list(frame["is_free_mail"]) == [True, False, False, False, False, False, False, False]
    assert list(frame["is_student"]) == [False, True, False, False, False, False, False, False]
    assert list(frame["is_competitor"]) == [False, False, True, True, False, False, False, False]
    assert "email" not in frame.columns
    assert not frame.astype(str).apply(lambda c: c.str.contains("@")).any().any()


def test_bands_include_their_upper_edge(tiny_tables):
    accounts = pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3", "A4"],
            "industry": [" Software", "retail", "retail", "retail"],
            "employee_count": [10, 11, 5000, 5001],
            "annual_revenue": [999_999, 1_000_000, 2.5e8, 2e9],
            "country": ["US", "NO", "BR", "ZZ"],
        }
    )
    tables = with_leads(tiny_tables, account_id=["A1", "A2", "A3", "A4", None])
    frame = attributes({**tables, "accounts": accounts})
    assert list(frame["company_size_band"].fillna("-")) == [
        "1-10",
        "11-50",
        "1001-5000",
        "5001+",
        "-",
    ]
    assert list(frame["revenue_band"].fillna("-")) == ["<1M", "<1M", "50M-250M", "1B+", "-"]
    assert list(frame["region"].fillna("-")) == [
        "north_america",
        "europe",
        "latin_america",
        "other",
        "-",
    ]
    assert list(frame["industry"].fillna("-")) == ["software", "retail", "retail", "retail", "-"]
    assert list(frame["has_account"]) == [True, True, True, True, False]


def test_only_leads_that_existed_at_as_of_get_attributes(tiny_tables):
    frame = attributes(tiny_tables, as_of=pd.Timestamp("2025-01-10", tz="UTC"))
    assert list(frame.index) == ["L1"]  # L2 is created exactly at as_of: not yet there
    assert frame.loc["L1", "lead_age_days"] == 9.0
    assert set(frame.columns) == {"as_of", *ATTRIBUTES}
