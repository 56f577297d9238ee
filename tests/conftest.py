from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

#: Fixtures that take seconds to build: a test that uses one, even through another fixture,
#: belongs to the slow tier that `make test-fast` skips.
SLOW_FIXTURES = {
    "trained_sample",  # a model trained on the sample history (~15 s)
    "mlflow_template",  # a real MLflow store (its migrations, ~10 s per process)
    "world",  # test_scoring.py: two models trained on real features
    "by_folds",  # test_flat_train.py: flat exports trained both ways
    "by_time",
    "postgres",  # test_warehouse.py: a PostgreSQL server started for the session (~3 s)
    "night",  # test_warehouse.py: a model trained and a night scored
}


def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test that needs a slow fixture, wherever it is."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, format: str = "csv") -> Path:
    """Write ``tables`` into ``folder`` as ``<name>.csv`` or ``<name>.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if format == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


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


# --- one small sample history for the reports and notebooks, built once per session ------------

#: Settings that train in seconds on the sample: monthly snapshots, one model family.
FAST_SETTINGS = {
    "trainset": {"cadence_days": 28},
    "model": {
        "candidates": ["logistic"],
        "search_folds": 2,
        "calibration_methods": ["sigmoid"],
        "min_training_positives": 50,
    },
}


def with_gate(settings: dict, **gate) -> dict:
    """``settings`` with the fitness gate's values in ``gate`` changed (model.fitness)."""
    model = settings.get("model", {})
    return {**settings, "model": {**model, "fitness": {**model.get("fitness", {}), **gate}}}


#: Nights the sample's model scores: every other Monday of the quarter whose outcomes are known
#: (its test window, so out of sample), and the last night of the data.
SCORED_NIGHTS = ("2026-01-05", "2026-01-19", "2026-02-02", "2026-02-16", "2026-03-02",
                 "2026-03-16", "2026-03-30", "2026-06-29")  # fmt: skip


@pytest.fixture(scope="session")
def sample_history():
    """1,500 leads over two years (~0.1 s): big enough for every window, small enough to share."""
    from leadml.synth import generate_history

    return generate_history(n_leads=1_500, seed=3)


@pytest.fixture(scope="session")
def sample_dir(sample_history, tmp_path_factory):
    """The sample history written as Parquet files, as `leadml synth` writes it."""
    from leadml.synth import write_history

    folder = tmp_path_factory.mktemp("sample") / "data"
    write_history(sample_history, folder)
    return folder


@pytest.fixture(scope="session")
def sample_data(sample_dir):
    """The sample, loaded with :data:`FAST_SETTINGS` (shared: do not change its tables)."""
    from leadml import Settings, load_data

    return load_data(sample_dir, Settings.model_validate(FAST_SETTINGS))


@pytest.fixture(scope="session")
def trained_sample(sample_data):
    """A model trained, calibrated and tested on the sample (~15 s, one thread)."""
    from threadpoolctl import threadpool_limits

    from leadml.modeling.training import train

    with threadpool_limits(limits=1):
        return train(sample_data)


@pytest.fixture(scope="session")
def nightly_scores(sample_data, trained_sample, tmp_path_factory):
    """A scores folder as the nightly job writes it: the sample's model at :data:`SCORED_NIGHTS`
    (real `score_to` runs, no tracking)."""
    from leadml.data.profiles import reference_profile
    from leadml.scoring import ScoringModel, score_to

    result = trained_sample
    test = result.frames["test"]
    reference = reference_profile(test[result.feature_names], result.test["model_probability"])
    model = ScoringModel(result.model, result.feature_names, "sample-model", "1", None, "object",
                         {"family": result.family, "reference": reference})  # fmt: skip
    folder = tmp_path_factory.mktemp("nightly") / "scores"
    for night in SCORED_NIGHTS:
        score_to(sample_data, night, folder, model, track=False)
    return folder
