"""Small, real training results for the tracking and promotion tests (no mocks, a few seconds).

The synthetic leads are keyed by e-mail address on purpose: a CRM export that does so must still
leave no address anywhere in MLflow or the export, which the tests scan for.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.isotonic import IsotonicRegression
from threadpoolctl import threadpool_limits

from leadml.config import Settings
from leadml.modeling.calibration import calibrate
from leadml.modeling.evaluation import evaluate
from leadml.modeling.models import make_candidate
from leadml.modeling.training import TrainingResult

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
FEATURES = ["visits", "demo_requests", "seniority", "industry", "is_free_mail",
            "days_since_last_visit"]  # fmt: skip
WEEK = pd.Timedelta(days=7)


def settings_for(folder: Path, **promotion) -> Settings:
    """Settings whose tracking store and export live in ``folder``."""
    tracking = {"uri": f"sqlite:///{folder / 'mlflow.db'}", "export_dir": str(folder / "models")}
    if promotion:
        tracking["promotion"] = promotion
    return Settings.model_validate({"tracking": tracking})


def snapshots(n_rows: int = 6_000, weeks: int = 40, seed: int = 0) -> pd.DataFrame:
    """Weekly snapshots with a known signal; text, category, boolean, integer and missing values."""
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2025-01-06", tz="UTC") + WEEK * rng.integers(0, weeks, n_rows)
    visits = rng.poisson(2, n_rows).astype("float32")
    demos = rng.binomial(1, 0.1, n_rows).astype("int64")
    seniority = rng.choice(["vp", "manager", "student"], n_rows)
    industry = rng.choice(["software", "retail", "finance"], n_rows)
    free_mail = rng.random(n_rows) < 0.3
    recency = np.where(visits > 0, rng.exponential(20, n_rows), np.nan).astype("float32")
    logit = (-3.2 + 0.5 * visits + 1.5 * demos + (seniority == "vp") * 0.8
             - (seniority == "student") * 1.5 - 0.7 * free_mail)  # fmt: skip
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "lead_id": [f"lead{i}.person@example.com" for i in range(n_rows)],
            "as_of": as_of,
            "visits": visits,
            "demo_requests": demos,
            "seniority": pd.array(seniority, dtype="str"),
            "industry": pd.Categorical(industry),
            "is_free_mail": free_mail,
            "days_since_last_visit": recency,
            "lead_source": rng.choice(["paid_search", "referral", "webinar"], n_rows),
            "label": y,
        }
    )
    # A coarse points score that sees only part of the signal, as rules do.
    frame["rule_score"] = (5 * np.minimum(visits, 4) + 10 * (seniority == "vp")).astype(float)
    return frame.sort_values("as_of", ignore_index=True)


def make_result(settings: Settings, **kwargs) -> TrainingResult:
    """A trained result on :func:`snapshots` (see :func:`_make_result`), fitted on one thread:
    on data this small, OpenMP threads only add overhead, and much more on a busy machine."""
    with threadpool_limits(limits=1):
        return _make_result(settings, **kwargs)


def _make_result(
    settings: Settings,
    *,
    seed: int = 0,
    family: str = "hist_gradient_boosting",
    scramble: float = 0.0,
) -> TrainingResult:
    """A trained result on :func:`snapshots`: fitted pipeline, real calibration and evaluation.

    ``scramble`` replaces that share of training labels with noise: a worse challenger on the
    very same test rows.
    """
    frame = snapshots(seed=0)
    dates = np.sort(frame["as_of"].unique())
    edges = dates[int(len(dates) * 0.55)], dates[int(len(dates) * 0.75)]
    window = np.where(frame["as_of"] < edges[0], "train",
                      np.where(frame["as_of"] < edges[1], "calibration", "test"))  # fmt: skip
    parts = {w: frame[window == w].reset_index(drop=True) for w in ("train", "calibration", "test")}
    train = parts["train"]
    labels = train["label"].to_numpy().copy()
    rng = np.random.default_rng(seed)
    noisy = rng.random(len(labels)) < scramble
    labels[noisy] = rng.permutation(labels[noisy])
    model = make_candidate(family, train[FEATURES], random_state=seed)
    if family == "hist_gradient_boosting":
        model.set_params(classifier__max_iter=60, classifier__max_leaf_nodes=15)
    model.fit(train[FEATURES], labels)
    cal = parts["calibration"]
    calibrated, cal_table = calibrate(
        model, cal[FEATURES], cal["label"], cal["as_of"], ["sigmoid"], 500
    )
    mapping = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4)
    mapping.fit(cal["rule_score"], cal["label"])
    test = parts["test"].copy()
    test["model_probability"] = calibrated.predict_proba(test[FEATURES])[:, 1]
    test["rule_probability"] = mapping.predict(test["rule_score"])
    test["rule_mql"] = test["rule_score"] >= 20
    test = test[["lead_id", "as_of", "label", "model_probability", "rule_score",
                 "rule_probability", "rule_mql", "industry", "lead_source"]]  # fmt: skip
    result = TrainingResult(settings, describe(parts), list(FEATURES))
    result.model, result.family = calibrated, family
    result.params = {"classifier__max_leaf_nodes": 15} if family != "logistic" else {}
    result.search = pd.DataFrame(
        [{"family": family, "params": result.params, "cv_log_loss": 0.3, "cv_roc_auc": 0.8}]
    )
    result.calibration = cal_table
    result.test = test
    result.evaluation = evaluate(test, settings.evaluation)
    result.input_example = parts["test"][FEATURES].head(5)
    result.frames = {w: p[["as_of", *FEATURES, "label"]] for w, p in parts.items()}
    return result


def describe(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = [
        {
            "window": w,
            "first_snapshot": p["as_of"].min(),
            "last_snapshot": p["as_of"].max(),
            "snapshots": p["as_of"].nunique(),
            "rows": len(p),
            "positives": int(p["label"].sum()),
        }
        for w, p in parts.items()
    ]
    return pd.DataFrame(rows).set_index("window")


def cold_result(settings: Settings) -> TrainingResult:
    parts = {w: snapshots(300, seed=i).assign(label=0) for i, w in
             enumerate(("train", "calibration", "test"))}  # fmt: skip
    parts["train"].loc[:11, "label"] = 1
    reason = ("only 12 conversions in the training window (at least 100 are needed for a model "
              "to beat the rules reliably): no model was trained or registered; the rule score "
              "remains the answer")  # fmt: skip
    return TrainingResult(settings, describe(parts), list(FEATURES), cold_start=reason)


def fresh_store(template: Path, folder: Path) -> None:
    """Copy an initialised MLflow database (creating one costs ~10 s of migrations)."""
    shutil.copyfile(template, folder / "mlflow.db")


def store_for_sample(trained, template: Path, folder: Path) -> Settings:
    """The trained sample's own settings (only what was set: its domains must still come with its
    data) with a fresh MLflow store and export in ``folder``, also written to
    ``folder/leadml.yaml`` for the command line."""
    fresh_store(template, folder)
    values = trained.settings.model_dump(mode="json", exclude_unset=True)
    values["tracking"] = settings_for(folder).tracking.model_dump(mode="json", exclude_unset=True)
    (folder / "leadml.yaml").write_text(yaml.safe_dump(values))
    return Settings.model_validate(values)


def scan_for_emails(*roots: Path) -> list[str]:
    """Every e-mail address found in any file under ``roots`` (binary-safe).

    A PNG can carry text only in its metadata chunks; its compressed pixels are left out, as they
    can match the pattern by chance.
    """
    found = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if not path.is_file():
                continue
            if path.suffix.lower() == ".png":
                from PIL import Image

                with Image.open(path) as image:
                    content = "\n".join(f"{k}: {v}" for k, v in image.text.items()).encode()
            else:
                content = path.read_bytes()
            found += [f"{path}: {m.decode()}" for m in EMAIL.findall(content)]
    return found


class tracking_uri:
    """Point fluent MLflow calls at ``uri`` for a block."""

    def __init__(self, uri: str):
        self.uri = uri

    def __enter__(self):
        import mlflow

        self.previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.uri)

    def __exit__(self, *exc):
        import mlflow

        mlflow.set_tracking_uri(self.previous)
