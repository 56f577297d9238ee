"""Sharded nights: the union of the shards is the unsharded night, row for row, with one summary.

Real scoring of the sample history with its trained model, real Parquet, no mocks.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_tables
from leadml import load_data
from leadml.cli import app
from leadml.data.profiles import reference_profile
from leadml.data.validation import DataValidationError
from leadml.errors import ConfigError, OutputError
from leadml.reports import ScoreHistory, read_scores, score_partitions
from leadml.rules import load_rules
from leadml.scoring import (
    ScoringModel,
    Shard,
    finish_night,
    score_shard,
    score_to,
)
from shard_helpers import night_of, rounded

NIGHT = "2026-03-02"


@pytest.fixture(scope="module")
def model(trained_sample):
    result = trained_sample
    test = result.frames["test"]
    reference = reference_profile(test[result.feature_names], result.test["model_probability"])
    return ScoringModel(result.model, result.feature_names, "sample-model", "1", None, "object",
                        {"family": result.family, "reference": reference})  # fmt: skip


@pytest.fixture(scope="module")
def noisy_dir(sample_dir, tmp_path_factory):
    """The sample with an event type nobody knows on one event in 50: a validation warning,
    whose rows every shard counts for itself."""
    folder = tmp_path_factory.mktemp("noisy") / "data"
    shutil.copytree(sample_dir, folder)
    events = pd.read_parquet(folder / "events.parquet")
    events.loc[events.index[::50], "event_type"] = "mystery_event"
    events.to_parquet(folder / "events.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def unsharded(noisy_dir, sample_data, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("unsharded")
    result = score_to(noisy_dir, NIGHT, out, model, sample_data.settings, track=False)
    assert any("mystery_event" in w for w in result.warnings)
    return result.path


@pytest.mark.parametrize("count", [1, 3, 7])
def test_the_union_of_the_shards_is_the_unsharded_night(count, noisy_dir, sample_data, model,
                                                        unsharded, tmp_path):  # fmt: skip
    settings = sample_data.settings
    for index in reversed(range(count)):  # in any order, each reading its rows of the folder
        score_shard(noisy_dir, NIGHT, tmp_path, Shard(index, count), model, settings)
    assert not (tmp_path / unsharded.name).exists()  # nothing is a partition until finished
    finished = finish_night(tmp_path, NIGHT, sample_data.settings, track=False)

    assert finished.path == tmp_path / unsharded.name and finished.shards == count
    assert sorted(p.name for p in tmp_path.iterdir()) == [unsharded.name]  # shards removed
    rows, summary = night_of(finished.path)
    expected_rows, expected_summary = night_of(unsharded)
    assert len(rows) == len(expected_rows) > 100 and rows["lead_id"].is_unique
    # A probability is the same number, to the rounding of the matrix products, which depends
    # on where a row sits in its batch (scikit-learn's linear algebra): 1e-17 here.
    probability = rows.pop("mql_probability")
    np.testing.assert_allclose(probability, expected_rows.pop("mql_probability"), rtol=1e-12)
    pd.testing.assert_frame_equal(rows, expected_rows, check_exact=True)  # ranks, tiers, reasons…
    assert rounded(summary) == rounded(expected_summary)
    # The report reads every file of the night.
    assert len(read_scores(tmp_path)) == len(expected_rows)
    history = ScoreHistory.of(tmp_path).rows(score_partitions(tmp_path).index)
    assert sorted(history["lead_id"]) == expected_rows["lead_id"].tolist()


@pytest.mark.parametrize("kind", ["files", "frames"])
def test_every_input_row_is_in_exactly_one_shard(kind, tiny_tables, tmp_path):
    """A shard reads its leads, their events, stages and accounts (files through a filtering
    view, frames copied); shard 0 also what belongs to no lead, so its validation reports it as
    the whole history's does."""
    accounts = tiny_tables["accounts"]
    lonely = accounts.iloc[[0]].assign(account_id="A9")  # an account without leads
    tables = {**tiny_tables, "accounts": pd.concat([accounts, lonely], ignore_index=True)}
    folder = write_tables(tables, tmp_path / "data", "parquet")
    source = folder if kind == "files" else tables
    whole = load_data(source)
    parts = [load_data(source, shard=Shard(i, 3)) for i in range(3)]
    for name in ("accounts", "leads", "events", "stages"):
        assert sum(len(p.table(name)) for p in parts) == len(whole.table(name)), name
    for part in parts:  # an account's leads stay together, with their events
        assert set(part.events["lead_id"]) <= set(part.leads["lead_id"])
        assert set(part.leads["account_id"].dropna()) <= set(part.accounts["account_id"])
    assert "A9" in set(parts[0].accounts["account_id"])

    events = tables["events"]
    orphan = events.iloc[[0]].assign(lead_id="NOBODY")  # an event of an unknown lead
    write_tables({"events": pd.concat([events, orphan], ignore_index=True)}, folder, "parquet")
    with pytest.raises(DataValidationError, match="NOBODY"):
        load_data(folder, shard=Shard(0, 3))
    assert len(load_data(folder, shard=Shard(1, 3)).events) == len(parts[1].events)


def test_a_shard_holds_every_lead_of_an_account(sample_dir, sample_data):
    parts = [load_data(sample_dir, shard=Shard(i, 5)).leads for i in range(5)]
    placed = pd.concat([p.assign(part=i) for i, p in enumerate(parts)], ignore_index=True)
    assert placed["lead_id"].is_unique and len(placed) == len(sample_data.leads)
    accounts = placed.dropna(subset=["account_id"]).groupby("account_id")["part"].nunique()
    assert accounts.max() == 1 and len(accounts) > 10
    assert all(len(p) for p in parts)  # and the shards share the leads out


def test_a_missing_shard_or_other_settings_finish_nothing(sample_data, model, tmp_path):
    for index in (0, 2):
        score_shard(sample_data, NIGHT, tmp_path, Shard(index, 3), model)
    with pytest.raises(OutputError, match=r"1 of 3 shards are not in .*shard 1/3"):
        finish_night(tmp_path, NIGHT, sample_data.settings, track=False)
    score_shard(sample_data, NIGHT, tmp_path, "1/3", model)
    settings = sample_data.settings
    scoring = settings.scoring.model_copy(update={"top_missed": settings.scoring.top_missed + 1})
    other = settings.model_copy(update={"scoring": scoring})
    with pytest.raises(OutputError, match="other settings"):
        finish_night(tmp_path, NIGHT, other, track=False)
    shards = tmp_path / f".as_of={NIGHT}.shards"
    manifest = shards / "shard-1-of-3.json"
    kept = manifest.read_text()
    manifest.write_text("{}")  # a manifest cut short
    with pytest.raises(OutputError, match=r"shard-1-of-3\.json cannot be read"):
        finish_night(tmp_path, NIGHT, sample_data.settings, track=False)
    # Shard 1 scored with other rules, then (its run stopped before the manifest) its file
    # replaced under the old manifest.
    rules = load_rules(None, settings)
    stricter = rules.model_copy(update={"mql": rules.mql.model_copy(update={"threshold": 90})})
    score_shard(sample_data, NIGHT, tmp_path, "1/3", model, rules=stricter)
    with pytest.raises(OutputError, match="different rules files"):
        finish_night(tmp_path, NIGHT, sample_data.settings, track=False)
    manifest.write_text(kept)
    with pytest.raises(OutputError, match="not the file its manifest describes"):
        finish_night(tmp_path, NIGHT, sample_data.settings, track=False)
    score_shard(sample_data, NIGHT, tmp_path, "1/3", model)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    assert finish_night(tmp_path, NIGHT, sample_data.settings, track=False).shards == 3


def test_a_shard_scored_again_replaces_its_rows(noisy_dir, sample_data, model, unsharded,
                                               tmp_path):  # fmt: skip
    """Shards of data loaded whole (a notebook's LeadData): each keeps its leads, and the
    input's validation warnings are counted once, not once per shard."""
    data = load_data(noisy_dir, sample_data.settings)
    for index in range(3):
        score_shard(data, NIGHT, tmp_path, Shard(index, 3), model)
    score_shard(data, NIGHT, tmp_path, Shard(1, 3), model)  # a retried task
    # A shard left over from a night cut in 2 is not part of this one.
    (tmp_path / f".{unsharded.name}.shards" / "shard-0-of-2.json").write_text("{}")
    score_shard(data, NIGHT, tmp_path, Shard(2, 3), model)
    finished = finish_night(tmp_path, NIGHT, sample_data.settings, track=False)
    rows, summary = night_of(finished.path)
    expected, expected_summary = night_of(unsharded)
    pd.testing.assert_frame_equal(rows, expected)
    assert summary["warnings"] == expected_summary["warnings"]
    # Data read as one shard scores that shard only.
    part = load_data(noisy_dir, sample_data.settings, shard="0/3")
    with pytest.raises(ConfigError, match="holds shard 0/3 of its input, not 1/3"):
        score_shard(part, NIGHT, tmp_path / "other", Shard(1, 3), model)


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1/0", "a/b", "2"])
def test_a_bad_shard_is_refused_by_name(text):
    with pytest.raises(ConfigError, match="shard"):
        Shard.parse(text)


def test_the_cli_scores_shards_then_finishes_once(store, trained_sample, sample_dir, unsharded,
                                                  tmp_path):  # fmt: skip
    """`leadml score --shard I/N` per shard, then `--finish`: one partition, one MLflow run."""
    import dataclasses

    import yaml
    from mlflow import MlflowClient

    from leadml.config import Settings
    from leadml.tracking import log_training

    settings = Settings.model_validate({**trained_sample.settings.model_dump(),
                                        "tracking": store.tracking.model_dump()})  # fmt: skip
    tracked = log_training(dataclasses.replace(trained_sample, settings=settings), plots=False)
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    out = tmp_path / "scores"
    runner = CliRunner()
    for index in range(2):
        done = runner.invoke(app, ["score", "--data", str(sample_dir), "--as-of", NIGHT,
                                   "--out", str(out), "--model", str(tracked.export_path),
                                   "--shard", f"{index}/2", "-c", str(config)])  # fmt: skip
        assert done.exit_code == 0, done.output
        assert f"shard {index}/2:" in done.output
    finish = ["score", "--finish", "--as-of", NIGHT, "--out", str(out), "-c", str(config)]
    done = runner.invoke(app, finish)
    assert done.exit_code == 0, done.output
    assert "2 shards joined" in done.output
    rows, summary = night_of(out / unsharded.name)
    assert len(rows) == summary["open_leads"] == len(night_of(unsharded)[0])

    client = MlflowClient(tracking_uri=store.tracking.uri)
    experiment = client.get_experiment_by_name(settings.tracking.scoring_experiment)
    (run,) = client.search_runs([experiment.experiment_id])  # the night, logged once
    assert run.data.metrics["open_leads"] == len(rows)

    again = runner.invoke(app, finish)
    assert again.exit_code == 8 and "no shards to finish" in again.output
    wrong = runner.invoke(app, ["score", "--finish", "--data", str(sample_dir), "--as-of", NIGHT,
                                "--out", str(out), "--csv"])  # fmt: skip
    assert wrong.exit_code == 2 and "--finish takes" in wrong.output
    garbled = runner.invoke(app, ["score", "--finish", "--as-of", "someday", "--out", str(out)])
    assert garbled.exit_code == 3 and "someday" in garbled.output
    assert "Traceback" not in garbled.output
