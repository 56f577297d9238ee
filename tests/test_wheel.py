"""leadml installs like a library: the wheel built from this checkout runs outside it, with the
settings and rules it ships, and declares every library it imports."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import FAST_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-06-30"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_library_imported_at_run_time_is_declared_and_every_declared_one_used():
    imported = set()
    for path in (ROOT / "src" / "leadml").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"leadml"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> set[str]:
        return {_canonical(re.match(r"[\w.-]+", d)[0]) for d in requirements}

    declared = names(project["dependencies"])
    extras = {e: names(r) for e, r in project["optional-dependencies"].items() if e != "dev"}
    # A module may come from several distributions (mlflow: mlflow, mlflow-skinny, ...).
    known = packages_distributions()
    providers = {m: {_canonical(d) for d in known.get(m, [])} for m in third_party}
    optional = set().union(*extras.values())
    assert [m for m, found in providers.items() if not found & (declared | optional)] == [], (
        "imported but not in [project] dependencies or an extra"
    )
    assert extras["spark"] <= set().union(*providers.values())  # leadml.spark imports pyspark
    used = set().union(*providers.values())
    assert declared - used == set(), "declared in [project] dependencies but never imported"


def _run(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}"
    return done


def _build_wheel(out: Path, tmp: Path) -> Path:
    """Build the wheel from a copy of the checkout, so no build/ or egg-info lands in it."""
    tree = tmp / "tree"
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    # Offline with the environment's setuptools (the dev extra brings one recent enough);
    # an older environment lets pip fetch the build requirements instead.
    offline = int(version("setuptools").split(".")[0]) >= 77
    flags = ["--no-build-isolation", "--no-index"] if offline else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *flags, "-q", "-w", str(out),
          str(tree)], cwd=tmp)  # fmt: skip
    (wheel,) = out.glob("leadml-*.whl")
    return wheel


@pytest.mark.integration
def test_the_wheel_installs_into_a_fresh_venv_and_runs_there_with_its_own_defaults(
    tmp_path, mlflow_template
):
    wheel = _build_wheel(tmp_path / "dist", tmp_path)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "-q", str(wheel)], cwd=tmp_path)  # fmt: skip
    # The dependencies come from this environment, not PyPI (fast, offline): a .pth line appends
    # its site-packages after the venv's own, and .pth files there (the editable leadml's) are
    # not processed, so the only leadml the venv can import is the wheel's.
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run([str(python), "-c", code], cwd=tmp_path).stdout.strip())
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (purelib / "_leadml_test_dependencies.pth").write_text("\n".join(ours) + "\n")

    work = tmp_path / "work"  # outside the checkout, which is not importable from here
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    where = _run([str(python), "-c", "import leadml, leadml.config as c, leadml.rules as r; "
                  "print(leadml.__file__, c.DEFAULT_SETTINGS, r.DEFAULT_RULES, sep='\\n')"],
                 cwd=work, env=env).stdout.splitlines()  # fmt: skip
    package = Path(where[0]).parent
    assert package.is_relative_to(venv), f"leadml imported from {package}, not the new venv"
    shipped = [package / "configs" / "default.yaml", package / "configs" / "rules.yaml"]
    assert [Path(p) for p in where[1:]] == shipped
    assert (package / "py.typed").is_file() and (package / "reports" / "report.html.j2").is_file()

    def leadml(*args: str) -> str:
        return _run([str(bin_dir / "leadml"), *args], cwd=work, env=env).stdout

    leadml("synth", "--out", "data", "--leads", "1500", "--seed", "3")
    tables = {p.stem for p in (work / "data").glob("*.parquet")}
    assert tables == {"accounts", "events", "leads", "stages", "truth"}
    assert "0 error(s)" in leadml("validate", "--data", "data")
    leadml("rules", "--data", "data", "--as-of", AS_OF, "--out", "rules.parquet")
    rules = pd.read_parquet(work / "rules.parquet")
    assert len(rules) > 500 and rules["rule_mql"].any()
    # The default model search takes a minute here: train with the suite's fast settings (one
    # candidate, coarser snapshots); the rules it is compared with are still the packaged ones.
    (work / "fast.yaml").write_text(yaml.safe_dump(FAST_SETTINGS))
    shutil.copyfile(mlflow_template, work / "mlflow.db")  # the default store, its migrations done
    trained = leadml("train", "--data", "data", "--no-plots", "--no-report", "-c", "fast.yaml")
    assert "in sqlite:///mlflow.db" in trained  # the default store, in the working folder
    assert "registered leadml-mql version 1" in trained
    export = work / "models" / "leadml-mql" / "v1"
    assert export.is_dir()
    leadml("score", "--data", "data", "--as-of", AS_OF, "--out", "scores", "--model", str(export),
           "--no-track", "--top", "0")  # fmt: skip
    night = pd.read_parquet(work / "scores" / f"as_of={AS_OF}" / "part-0.parquet")
    assert set(night["lead_id"]) == set(rules["lead_id"])
    assert night["mql_probability"].between(0, 1).all()
    merged = night.merge(rules, on="lead_id", suffixes=("", "_rules"))
    assert (merged["rule_score"] == merged["rule_score_rules"]).all()
