"""Model files and export folders without MLflow: what the nightly scorer imports when it scores
from an export with tracking off. Checked in fresh interpreters, where ``sys.modules`` shows
everything that was imported."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from leadml.modeling.modelfile import load_exported


def _fresh_python(code: str, *args: str) -> list[str]:
    """Run ``code`` in a new interpreter; the last line it prints is a JSON list."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


MLFLOW_LOADED = (
    "import json, sys\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow')))\n"
)


def test_importing_modelfile_imports_no_mlflow():
    loaded = _fresh_python("import leadml.modeling.modelfile\n" + MLFLOW_LOADED)
    assert loaded == []
    # The check can fail: importing tracking does load MLflow.
    assert "mlflow" in _fresh_python("import leadml.tracking\n" + MLFLOW_LOADED)


@pytest.mark.slow
def test_scoring_an_export_with_tracking_off_never_imports_mlflow(
    store, trained_sample, sample_dir, tmp_path
):
    from leadml.tracking import log_training

    settings = trained_sample.settings.model_copy(update={"tracking": store.tracking})
    tracked = log_training(dataclasses.replace(trained_sample, settings=settings), plots=False)
    export = tracked.export_path
    assert load_exported(store.tracking.export_dir, alias="challenger").path == export

    score = (
        "import sys\n"
        "from leadml.scoring import score_to\n"
        "result = score_to(sys.argv[1], sys.argv[2], sys.argv[3], model=sys.argv[4], track=False)\n"
        "assert len(result.scores) and result.model.source.startswith('export'), result.model\n"
        "assert result.tracking_run_id is None\n"
    )
    out = tmp_path / "scores"
    night = "2026-06-29"
    loaded = _fresh_python(score + MLFLOW_LOADED, str(sample_dir), night, str(out), str(export))
    assert loaded == []
    assert (out / f"as_of={night}" / "part-0.parquet").exists()
