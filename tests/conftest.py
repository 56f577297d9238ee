from __future__ import annotations

import pandas as pd
import pytest


def utc(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True))


@pytest.fixture
def tiny_tables() -> dict[str, pd.DataFrame]:
    """A small, valid history: two accounts, three leads, a few events and stage changes."""
    accounts = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "industry": ["software", "retail"],
            "employee_count": [250, 12],
            "annual_revenue": [40e6, 1.5e6],
            "country": ["US", "DE"],
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "created_at": utc("2025-01-01", "2025-01-10", "2025-02-01"),
            "lead_source": ["paid_search", "referral", "organic_search"],
            "account_id": ["A1", "A1", "A2"],
            "job_title": ["VP Marketing", "Data Engineer", "Student"],
            "email": ["ann@acme.com", "bob@acme.com", "cy@uni.edu"],
        }
    )
    events = pd.DataFrame(
        {
            "lead_id": ["L1", "L1", "L2", "L3"],
            "occurred_at": utc("2025-01-02", "2025-01-20", "2025-01-11", "2025-02-02"),
            "event_type": ["page_view", "demo_request", "webinar_attended", "blog_view"],
        }
    )
    stages = pd.DataFrame(
        {
            "lead_id": ["L1", "L1", "L1", "L2"],
            "stage": ["lead", "mql", "sql", "lead"],
            "entered_at": utc("2025-01-01", "2025-01-20", "2025-02-05", "2025-01-10"),
        }
    )
    return {"accounts": accounts, "leads": leads, "events": events, "stages": stages}


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """An initialised, empty MLflow SQLite database to copy per test (its migrations take ~10 s)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, mlflow_template, monkeypatch):
    """Settings pointing at a fresh MLflow store in tmp_path, which is also the working folder."""
    from tracking_helpers import fresh_store, settings_for

    fresh_store(mlflow_template, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return settings_for(tmp_path)
