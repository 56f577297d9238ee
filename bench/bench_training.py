"""Training on a million rows: search, fit, calibrate, test against the rules, log to MLflow."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.harness import DATA, case, dataset

TRAINSET = DATA / "trainset-100000-fortnightly.parquet"


def _settings():
    from leadml import Settings

    # Snapshots every 14 days of the 100,000-lead history: 1.47 M training-set rows, of which
    # ~1 M fall in the train, calibration and test windows (247 k in the train window).
    return Settings.model_validate({"trainset": {"cadence_days": 14}})


def _trainset(data):
    """Built once and cached under bench/data: the case times training, not the feature build
    (which has its own case). Built again when the features have changed since."""
    import pyarrow.parquet as pq

    from leadml.features import feature_specs
    from leadml.modeling.trainset import TrainingSet, build_trainset

    wanted = {spec.name for spec in feature_specs(data.settings, data)}
    if not TRAINSET.exists() or not wanted <= set(pq.read_schema(TRAINSET).names):
        built = build_trainset(data)
        built.frame.to_parquet(TRAINSET, index=False)
        built.report.to_parquet(TRAINSET.with_suffix(".report.parquet"), index=False)
    return TrainingSet(
        pd.read_parquet(TRAINSET), pd.read_parquet(TRAINSET.with_suffix(".report.parquet"))
    )


@case("train: 1 M training rows, search + calibrate + test + MLflow", max_seconds=300,
      repeats=1)  # fmt: skip
def train_million():
    from leadml import load_data
    from leadml.modeling.training import train
    from leadml.tracking import log_training

    data = load_data(dataset(100_000), _settings())
    trainset = _trainset(data)
    store = Path(tempfile.mkdtemp(prefix="leadml-bench-mlflow-"))
    settings = data.settings.model_copy(
        update={
            "tracking": data.settings.tracking.model_copy(
                update={
                    "uri": f"sqlite:///{store}/mlflow.db",
                    "export_dir": str(store / "models"),
                }
            )
        }
    )
    try:
        start = time.perf_counter()
        result = train(data, settings, trainset=trainset)
        trained = time.perf_counter()
        tracked = log_training(result, source=str(dataset(100_000)))
        total = time.perf_counter() - start
        metrics = result.evaluation.metrics
        return {
            "rows": len(trainset.frame),
            "train_rows": int(result.windows.loc["train", "rows"]),
            "family": result.family,
            "train_s": round(trained - start, 1),
            "mlflow_s": round(tracked.mlflow_seconds, 1),
            "mlflow_share": f"{tracked.mlflow_seconds / total:.0%}",
            "model_auc": round(metrics["model_roc_auc"], 3),
            "rules_auc": round(metrics["rules_roc_auc"], 3),
        }
    finally:
        shutil.rmtree(store, ignore_errors=True)
