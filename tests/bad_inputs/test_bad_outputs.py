"""Faults while writing: a kill at the wrong moment, a crash mid-run, a run that never ended.

What must hold: a file under its final name is the previous complete one or the new complete
one, never half of either; what a killed process leaves (staging files, scratch folders,
MLflow runs stuck in RUNNING, lock files) is cleaned up by the next run, and never what a live
process still uses; what leadml writes is readable by other users (0644/0755 under umask 022).

Kills are real (``SIGKILL`` of a subprocess stalled mid-write); nothing here is mocked except
the point where the write stalls or fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadml.cli import app
from leadml.common.atomic import replacing, scratch_dir, sweep_scratch, write_atomic

runner = CliRunner()

#: Runs the CLI in a subprocess whose table writers stall halfway through the file.
STALLING_CLI = """
import os, sys, time
import pandas as pd

def stall(self, path, *args, **kwargs):
    with open(path, "wb") as out:
        out.write(b"half a file")
    open(os.environ["LEADML_TEST_READY"], "w").close()
    time.sleep(120)

pd.DataFrame.to_parquet = stall
pd.DataFrame.to_csv = stall
from leadml.cli import app
app(sys.argv[1:], prog_name="leadml")
"""


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _dead_pid() -> int:
    """The pid of a process that has just ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def tiny_folder(tiny_tables, tmp_path) -> tuple[Path, Path]:
    """The tiny history as Parquet files, and a config that makes a training set of it."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in tiny_tables.items():
        frame.to_parquet(folder / f"{name}.parquet")
    config = tmp_path / "c.yaml"
    config.write_text("target:\n  horizon_days: 14\ntrainset:\n  warmup_days: 0\n")
    return folder, config


def _arguments(command: str, folder: Path, config: Path, out: Path) -> list[str]:
    extra = {"features": ["--as-of", "2025-02-03"], "rules": ["--as-of", "2025-02-03"],
             "trainset": []}[command]  # fmt: skip
    return [command, "--data", str(folder), "--config", str(config), "--now", "2026-01-01",
            *extra, "--out", str(out)]  # fmt: skip


# --- a kill mid-write ------------------------------------------------------------------------


@pytest.mark.slow  # each runs the CLI in a subprocess and kills it mid-write
@pytest.mark.parametrize(
    ("command", "name", "previous"),
    [
        ("features", "features.parquet", True),
        ("rules", "rules.csv", True),
        ("trainset", "trainset.csv.gz", True),
        ("features", "features.csv", False),
    ],
)
def test_a_kill_mid_write_leaves_the_previous_file_or_none(
    command, name, previous, tiny_folder, tmp_path
):
    folder, config = tiny_folder
    out = tmp_path / "out" / name
    out.parent.mkdir()
    args = _arguments(command, folder, config, out)
    if previous:
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    before = out.read_bytes() if previous else None

    script = tmp_path / "stalling_cli.py"
    script.write_text(STALLING_CLI)
    ready = tmp_path / "ready"
    env = {**os.environ, "LEADML_TEST_READY": str(ready)}
    process = subprocess.Popen([sys.executable, str(script), *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the subprocess never started writing"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()

    if previous:
        assert out.read_bytes() == before  # the previous complete file, untouched
    else:
        assert not out.exists()
    debris = list(out.parent.glob(f".tmp-{process.pid}-*-{name}"))
    assert len(debris) == 1 and debris[0].read_bytes() == b"half a file"

    # The next run writes the file whole and removes the killed run's half-written one.
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert not debris[0].exists()
    assert sorted(p.name for p in out.parent.iterdir()) == [name]
    frame = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    assert len(frame) > 0


def test_a_writer_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "scores.csv"
    write_atomic(path, lambda staging: staging.write_text("lead_id\nL1\n"))

    def half_then_fail(staging: Path) -> None:
        staging.write_text("lead_id\nL")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "lead_id\nL1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]  # no staging file either


@pytest.mark.parametrize("link", ["beside", "elsewhere", "chain"])
def test_a_write_through_a_symlink_replaces_its_target_and_the_link_stays(tmp_path, link):
    target = tmp_path / "shared" / "rules.yaml"
    target.parent.mkdir()
    target.write_text("threshold: 71\n")
    path = (tmp_path if link == "beside" else tmp_path / "deploy") / "link.yaml"
    path.parent.mkdir(exist_ok=True)
    if link == "beside":
        path.symlink_to("shared/rules.yaml")  # relative, as `ln -s` usually makes them
    elif link == "elsewhere":
        path.symlink_to(target)
    else:  # a link to a link beside the target
        (target.parent / "current.yaml").symlink_to("rules.yaml")
        path.symlink_to(target.parent / "current.yaml")
    pointing = os.readlink(path)
    stagings = []

    def write(staging: Path) -> None:
        stagings.append(staging)
        staging.write_text("threshold: 83\n")

    assert write_atomic(path, write) == path
    assert target.read_text() == path.read_text() == "threshold: 83\n"
    assert path.is_symlink() and os.readlink(path) == pointing
    assert stagings[0].parent == target.parent  # beside the target: one file system, one rename
    names = {p.name for folder in {path.parent, target.parent} for p in folder.iterdir()}
    assert not [name for name in names if name.startswith(".tmp-")]


@pytest.mark.parametrize("mode", [0o664, 0o444, 0o600], ids=oct)
def test_a_replaced_file_keeps_its_permission_bits(tmp_path, mode):
    from leadml.jobs import write_table

    text, table = tmp_path / "rules.yaml", tmp_path / "data" / "scores.parquet"
    table.parent.mkdir()
    link = tmp_path / "scores.parquet"
    link.symlink_to(table)  # a Parquet writer, through a link
    text.write_text("threshold: 71\n")
    write_table(pd.DataFrame({"lead_id": ["L1"]}), table)
    for path in (text, table):
        path.chmod(mode)  # a read-only file is replaced all the same (as `sed -i` does)
    with umask(0o022):
        write_atomic(text, lambda staging: staging.write_text("threshold: 83\n"))
        write_table(pd.DataFrame({"lead_id": ["L1", "L2"]}), link)
    assert text.read_text() == "threshold: 83\n" and len(pd.read_parquet(table)) == 2
    assert _mode(text) == _mode(table) == mode and link.is_symlink()


def test_an_output_that_cannot_be_written_is_exit_8_and_names_the_file(tiny_folder, tmp_path):
    folder, config = tiny_folder
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    out = blocker / "features.csv"
    done = runner.invoke(app, _arguments("features", folder, config, out))
    assert done.exit_code == 8, done.output
    assert str(out) in done.output and "nothing was written" in done.output
    assert "Traceback" not in done.output


# --- what a killed run leaves behind ---------------------------------------------------------


def test_scratch_folders_of_dead_processes_are_removed_and_no_others(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal\n"
         "from leadml.common.atomic import scratch_dir\n"
         "held = scratch_dir('run')\n"
         "folder = held.__enter__()\n"
         "(folder / 'model.skops').write_bytes(b'x' * 100_000)\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n"],
        env={**os.environ, "TMPDIR": str(tmp_path)}, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob("leadml-run-*")
    assert (left / "model.skops").exists()

    dead = _dead_pid()
    (tmp_path / f"leadml-report-{dead}-ab12").mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [tmp_path / f"leadml-run-{live.pid}-cd34",  # a live process's
                tmp_path / "leadml-run-q1w2e3r4",  # no pid: not ours to judge
                tmp_path / f"leadml-run-{os.getpid()}-ef56"]  # fmt: skip
        for path in kept:
            path.mkdir()
        with scratch_dir("run") as folder:
            assert folder.name.startswith(f"leadml-run-{os.getpid()}-")
            assert not left.exists()
            assert not (tmp_path / f"leadml-report-{dead}-ab12").exists()
            assert all(path.exists() for path in kept)
        assert not folder.exists()
        assert sweep_scratch() == []
    finally:
        live.kill()
        live.wait()


def _run_left_running(uri: str, experiment: str, folder: Path) -> str:
    """A run started by a leadml process that was then killed: its id."""
    script = folder / "killed_run.py"
    script.write_text(
        "import os, signal, sys\n"
        "import mlflow\n"
        "from leadml.tracking._store import owner_tags\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "mlflow.set_experiment(sys.argv[2])\n"
        "print(mlflow.start_run(tags=owner_tags()).info.run_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, str(script), uri, experiment], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    return killed.stdout.split()[-1]


def test_a_run_left_running_by_a_killed_process_is_marked_failed_by_the_next(store, tmp_path):
    from leadml.tracking import log_scoring

    uri, experiment = store.tracking.uri, store.tracking.scoring_experiment
    client = MlflowClient(tracking_uri=uri)
    killed = _run_left_running(uri, experiment, tmp_path)
    assert client.get_run(killed).info.status == "RUNNING"
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    host = socket.gethostname()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        untouched = [
            client.create_run(experiment_id, tags={"leadml.pid": str(live.pid),
                                                   "leadml.host": host}),  # still running
            client.create_run(experiment_id, tags={"leadml.pid": str(_dead_pid()),
                                                   "leadml.host": "another-machine"}),
            client.create_run(experiment_id),  # not started by leadml
        ]  # fmt: skip
        run_id = log_scoring(store, {"as_of": "2026-06-29T00:00:00+00:00"}, "# Night\n",
                             metrics={"open_leads": 3.0}, model_name=None, model_version=None,
                             model_run_id=None)  # fmt: skip
        after = client.get_run(killed)
        assert after.info.status == "FAILED"
        assert "ended without finishing" in after.data.tags["leadml.abandoned"]
        assert [client.get_run(r.info.run_id).info.status for r in untouched] == ["RUNNING"] * 3
        this = client.get_run(run_id)
        assert this.info.status == "FINISHED" and this.data.tags["leadml.pid"] == str(os.getpid())
    finally:
        live.kill()
        live.wait()


def test_a_run_that_fails_midway_is_ended_as_failed(store, monkeypatch):
    from flat_helpers import export_frame, fast_settings
    from leadml.flat import train_flat
    from leadml.tracking import log_scoring, log_training

    client = MlflowClient(tracking_uri=store.tracking.uri)
    with pytest.raises(ValueError):  # a metric that is not a number: fails mid-run
        log_scoring(store, {"as_of": "2026-06-29"}, "# Night\n", metrics={"x": "many"},
                    model_name=None, model_version=None, model_run_id=None)  # fmt: skip
    scoring = client.get_experiment_by_name(store.tracking.scoring_experiment)
    (run,) = client.search_runs([scoring.experiment_id])
    assert run.info.status == "FAILED"

    settings = fast_settings().model_copy(update={"tracking": store.tracking})
    cold = train_flat(export_frame(80), "Converted", settings=settings)  # a quick cold start
    dead = _dead_pid()
    training = client.create_experiment(store.tracking.experiment)
    abandoned = client.create_run(
        training, tags={"leadml.pid": str(dead), "leadml.host": socket.gethostname()}
    ).info.run_id

    def fail(*args, **kwargs):
        raise RuntimeError("the artifact store went away")

    monkeypatch.setattr("leadml.tracking._runs._log_lineage", fail)
    with pytest.raises(RuntimeError, match="went away"):
        log_training(cold, plots=False)
    runs = {r.info.run_id: r.info.status for r in client.search_runs([training])}
    assert runs.pop(abandoned) == "FAILED"  # marked by the training that started after it
    assert list(runs.values()) == ["FAILED"]  # and the failed training ended itself


# --- the nightly lock ------------------------------------------------------------------------


def test_no_lock_file_is_left_after_a_run_failed_or_not(
    sample_data, trained_sample, tmp_path, monkeypatch
):
    from leadml.scoring import OutputError, ScoringModel, score_to

    result = trained_sample
    model = ScoringModel(result.model, result.feature_names, "sample-model", "1", None, "object",
                         {"family": result.family})  # fmt: skip
    with umask(0o022):
        done = score_to(sample_data, "2026-06-29", tmp_path, model, csv=True, track=False)
    assert [p.name for p in tmp_path.iterdir()] == [done.path.name]  # no lock, no staging
    # Readable by a BI tool running as another user.
    assert _mode(done.path) == 0o755
    assert {p.name: _mode(p) for p in done.path.iterdir()} == {
        "part-0.parquet": 0o644, "_scores.csv": 0o644, "_summary.json": 0o644,
        "_summary.md": 0o644,
    }  # fmt: skip

    def disk_full(scores, as_of, path, **meta):
        path.write_bytes(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("leadml.scoring._nightly.write_parquet", disk_full)
    with pytest.raises(OutputError, match="No space left"):
        score_to(sample_data, "2026-06-29", tmp_path, model, track=False)
    assert [p.name for p in tmp_path.iterdir()] == [done.path.name]
    assert _mode(done.path / "_scores.csv") == 0o644  # the previous night, untouched


def test_the_lock_is_never_held_twice_when_its_file_is_removed_in_between(tmp_path, monkeypatch):
    from leadml.scoring import OutputLockedError, partition_lock

    name = "as_of=2026-06-29"
    first = partition_lock(tmp_path, name)
    first.__enter__()
    real_flock = fcntl.flock
    finished = []

    def first_run_finishes_now(fd, operation):
        # The second run has opened the lock file; before it can lock it, the first run ends
        # (and removes the file). The second run must not trust the file it opened.
        if not finished:
            finished.append(first.__exit__(None, None, None))
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", first_run_finishes_now)
    with partition_lock(tmp_path, name) as path:
        monkeypatch.setattr(fcntl, "flock", real_flock)
        assert finished and path.exists()  # it locked the file now under that name
        with pytest.raises(OutputLockedError), partition_lock(tmp_path, name):
            pass  # so a third run is refused
    assert not path.exists()


def test_modes_of_files_leadml_writes_respect_the_umask(tiny_folder, tmp_path):
    from leadml.modeling.modelfile import set_export_alias
    from leadml.tracking._export import install_export

    folder, config = tiny_folder
    with umask(0o022):
        out = tmp_path / "out" / "features.csv"
        out.parent.mkdir()
        assert runner.invoke(app, _arguments("features", folder, config, out)).exit_code == 0
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        (bundle / "metadata.json").write_text("{}")
        export = install_export(tmp_path / "models", "m", 1, bundle, uri="sqlite:///m.db")
        set_export_alias(tmp_path / "models", "m", "champion", 1)
        with replacing(tmp_path / "plain.txt") as staging:
            staging.write_text("x")
    assert _mode(out) == 0o644
    assert _mode(export) == 0o755 and _mode(export / "metadata.json") == 0o644
    assert _mode(tmp_path / "models" / "m" / "aliases.json") == 0o644
    assert _mode(tmp_path / "plain.txt") == 0o644
    with umask(0o077), replacing(tmp_path / "private.txt") as staging:  # a private umask too
        staging.write_text("x")
    assert _mode(tmp_path / "private.txt") == 0o600
