"""Scoring on Spark: a real local Spark session (local[2], Java 17), the sample's real model in a
real MLflow store, real Parquet. The night Spark writes is the night one process writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from leadml.config import Settings
from leadml.errors import DataError
from leadml.features import features_as_of
from leadml.scoring import score_to
from shard_helpers import night_of, rounded
from tracking_helpers import store_for_sample, tracking_uri

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a Spark session: seconds each

NIGHT = "2026-03-02"
NAME = "leadml-mql"


@pytest.fixture(scope="module")
def spark():
    from leadml.spark import session

    # Two cores, and a failed task tried up to three times (Spark's default on a cluster).
    spark = session("local[2,3]", "leadml-tests", **{"spark.sql.shuffle.partitions": "2"})
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def registered(trained_sample, mlflow_template, tmp_path_factory) -> Settings:
    """The sample's model logged and registered as version 1 of NAME."""
    from leadml.tracking import log_training

    folder = tmp_path_factory.mktemp("spark-store")
    settings = store_for_sample(trained_sample, mlflow_template, folder)

    log_training(dataclasses.replace(trained_sample, settings=settings), plots=False)
    return settings


@pytest.fixture(scope="module")
def unsharded(sample_dir, registered, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-process")
    return score_to(sample_dir, NIGHT, out, f"models:/{NAME}/1", registered, track=False).path


def test_spark_cuts_shards_as_leadml_does(spark):
    """Spark's own crc32 of a key gives leadml's shard: a lake laid out by Spark is cut alike."""
    from pyspark.sql import functions as F

    from leadml.data.shards import shard_numbers

    keys = ["ACC-000123", "L0000001", "société-é1", "客户-7", "", " spaced "]
    frame = spark.createDataFrame([(k,) for k in keys], "key string")
    crc = frame.select((F.crc32(F.col("key").cast("binary")) % 7).alias("shard")).toPandas()
    assert crc["shard"].tolist() == shard_numbers(keys, 7).tolist()


def test_spark_writes_the_night_one_process_writes(spark, sample_dir, registered, unsharded,
                                                   tmp_path):  # fmt: skip
    from mlflow import MlflowClient

    from leadml.spark import score_night

    night = score_night(spark, str(sample_dir), NIGHT, tmp_path, f"models:/{NAME}/1",
                        registered, shards=3)  # fmt: skip
    assert night.shards == 3 and night.path == tmp_path / unsharded.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [unsharded.name]
    rows, summary = night_of(night.path)
    expected, expected_summary = night_of(unsharded)
    np.testing.assert_allclose(rows.pop("mql_probability"), expected.pop("mql_probability"),
                               rtol=1e-12)  # fmt: skip
    pd.testing.assert_frame_equal(rows, expected, check_exact=True)
    assert rounded(summary) == rounded(expected_summary)
    client = MlflowClient(tracking_uri=registered.tracking.uri)
    experiment = client.get_experiment_by_name(registered.tracking.scoring_experiment)
    (run,) = client.search_runs([experiment.experiment_id], f"run_id = '{night.tracking_run_id}'")
    assert run.data.metrics["open_leads"] == len(rows)


def test_spark_dataframes_in_and_a_task_killed_then_retried(spark, sample_dir, registered,
                                                           unsharded, tmp_path):  # fmt: skip
    """The tables as Spark DataFrames; the Python worker of shard 1 dies after writing its files
    on the first attempt: Spark runs the task again, and the night holds each lead once."""
    from pyspark import TaskContext

    from leadml.spark import score_night

    frames = {name: spark.read.parquet(str(sample_dir / f"{name}.parquet"))
              for name in ("accounts", "leads", "events", "stages")}  # fmt: skip

    def die_once(result):
        if result.shard.index == 1 and TaskContext.get().attemptNumber() == 0:
            os._exit(1)

    night = score_night(spark, frames, NIGHT, tmp_path, f"models:/{NAME}/1", registered,
                        shards=2, track=False, after_shard=die_once)  # fmt: skip
    rows, _ = night_of(night.path)
    expected, _ = night_of(unsharded)
    assert rows["lead_id"].is_unique
    assert rows["lead_id"].tolist() == expected["lead_id"].tolist()
    assert rows["model_rank"].tolist() == expected["model_rank"].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == [unsharded.name]  # inputs staged, gone


def test_the_cli_scores_on_spark(spark, sample_dir, registered, unsharded, tmp_path):
    from typer.testing import CliRunner

    from leadml.cli import app

    config = tmp_path / "leadml.yaml"
    config.write_text(yaml.safe_dump(registered.model_dump(mode="json")))
    args = ["--json", "score", "--data", str(sample_dir), "--as-of", NIGHT, "--out",
            str(tmp_path / "scores"), "--model", f"models:/{NAME}/1", "--engine", "spark",
            "--master", "local[2]", "--shards", "2", "--no-track", "-c", str(config)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["shards"] == 2 and record["open_leads"] == len(night_of(unsharded)[0])
    rows, _ = night_of(tmp_path / "scores" / unsharded.name)
    assert rows["lead_id"].tolist() == night_of(unsharded)[0]["lead_id"].tolist()


def test_invalid_data_in_a_shard_fails_the_night_with_its_error(spark, sample_dir, registered,
                                                                tmp_path):  # fmt: skip
    from leadml.spark import score_night

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    stages = pd.read_parquet(data / "stages.parquet")
    stages.loc[stages.index[:3], "stage"] = "won?"
    stages.to_parquet(data / "stages.parquet", index=False)
    with pytest.raises(DataError, match=r"shard \d/2: .*stage"):
        score_night(spark, str(data), NIGHT, tmp_path / "scores", f"models:/{NAME}/1",
                    registered, shards=2, track=False)  # fmt: skip
    assert not (tmp_path / "scores" / f"as_of={NIGHT}").exists()


def test_mlflow_spark_udf_agrees_with_leadml_score(spark, sample_data, trained_sample, registered,
                                                   unsharded):  # fmt: skip
    names = list(trained_sample.feature_names)  # the udf takes them in the model's order
    features = features_as_of(sample_data, NIGHT)
    frame = spark.createDataFrame(features[["lead_id", *names]])
    with tracking_uri(registered.tracking.uri):
        udf = mlflow.pyfunc.spark_udf(spark, f"models:/{NAME}/1", result_type="double",
                                      env_manager="local")  # fmt: skip
    scored = frame.select("lead_id", udf(*names).alias("p")).toPandas()
    expected = pd.read_parquet(unsharded).set_index("lead_id")["mql_probability"]
    assert len(scored) == len(expected) > 100
    np.testing.assert_allclose(scored["p"], expected.loc[scored["lead_id"]].to_numpy(), rtol=1e-9)


def test_a_training_set_built_on_spark_is_the_one_process_one(spark, sample_dir, sample_data):
    from leadml.modeling.trainset import build_trainset
    from leadml.spark import build_trainset as build_on_spark

    settings = sample_data.settings
    one = build_trainset(sample_data)
    built = build_on_spark(spark, str(sample_dir), settings, shards=3)
    pd.testing.assert_frame_equal(built.frame, one.frame, check_exact=True)
    pd.testing.assert_frame_equal(built.report, one.report[built.report.columns])
    assert built.summary() == one.summary()

    # A row budget: whole accounts (or leads without one) reach the driver, up to it.
    small = settings.model_copy(
        update={"trainset": settings.trainset.model_copy(update={"max_rows": len(one.frame) // 4})}
    )
    sampled = build_on_spark(spark, str(sample_dir), small, shards=3).frame
    assert len(one.frame) // 8 < len(sampled) <= len(one.frame) // 4
    accounts = sample_data.leads.set_index("lead_id")["account_id"]
    kept = accounts.loc[sampled["lead_id"].unique()].dropna().unique()
    rows_of_kept = one.frame["lead_id"].map(accounts).isin(kept)
    assert rows_of_kept.sum() == sampled["lead_id"].map(accounts).isin(kept).sum()


def test_the_cli_builds_a_training_set_on_spark(spark, sample_dir, sample_data, tmp_path):
    from typer.testing import CliRunner

    from leadml.cli import app

    config = tmp_path / "leadml.yaml"
    config.write_text(yaml.safe_dump(sample_data.settings.model_dump(mode="json")))
    out = tmp_path / "trainset.parquet"
    args = ["trainset", "--data", str(sample_dir), "--out", str(out), "--engine", "spark",
            "--master", "local[2]", "--shards", "2", "-c", str(config)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    written = pd.read_parquet(out)
    assert len(written) > 1000 and {"lead_id", "as_of", "label"} <= set(written.columns)
