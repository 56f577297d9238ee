"""The X Education benchmark needs a file the project never holds: without it, it says so."""

from __future__ import annotations

import json

import pytest


def test_the_benchmark_is_skipped_with_a_clear_message_when_the_export_is_absent(
    tmp_path, monkeypatch, capsys
):
    from bench import bench_xeducation, run
    from bench.harness import CASES, Skip

    monkeypatch.setattr(bench_xeducation, "LEADS", tmp_path / "Leads.csv")
    with pytest.raises(Skip, match=r"Leads.csv is absent: this case reads the X Education"):
        bench_xeducation.xeducation_training()
    index = next(i for i, c in enumerate(run.load_cases()) if "X Education" in c.name)
    assert CASES[index].func is bench_xeducation.xeducation_training
    run.run_child(index)  # what `bench/run.py` runs in a fresh process
    reported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reported["skipped"].startswith(str(tmp_path / "Leads.csv") + " is absent")
