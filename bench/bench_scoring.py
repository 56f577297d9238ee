"""Nightly scoring, end to end: read, validate, features, probability, rules, reasons, write."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.harness import DATA, case, dataset

MODEL = DATA / "scoring-hgb-model.joblib"


def scoring_model():
    """The production recipe (gradient boosting, 300 trees of 31 leaves, sigmoid calibration),
    trained once on weekly snapshots of the 100,000-lead history and cached under bench/data."""
    import joblib

    from leadml.scoring import ScoringModel

    if not MODEL.exists():
        _train(MODEL)
    saved = joblib.load(MODEL)
    return ScoringModel(
        saved["model"],
        saved["features"],
        "bench-hgb",
        "1",
        "bench",
        "object",
        {"family": "hist_gradient_boosting", "reference": saved["reference"]},
    )


def _train(path: Path) -> None:
    import joblib
    import pandas as pd

    from leadml import load_data
    from leadml.data.asof import label_pairs, open_leads
    from leadml.data.profiles import reference_profile
    from leadml.features import build_features
    from leadml.modeling.calibration import calibrate
    from leadml.modeling.models import make_candidate

    data = load_data(dataset(100_000))
    end = data.end().floor("D")
    dates = [end - pd.Timedelta(days=d) for d in (300, 260, 220, 180, 140, 100)]
    spine = open_leads(data, dates).sample(n=120_000, random_state=0)
    labels = label_pairs(data, spine)
    labels = labels[labels["mature"]]
    keys = ["lead_id", "as_of"]
    frame = build_features(data, labels[keys]).merge(labels[[*keys, "label"]], on=keys)
    names = [c for c in frame.columns if c not in (*keys, "label")]
    last = frame["as_of"].max()
    train, cal = frame[frame["as_of"] < last], frame[frame["as_of"] == last]
    model = make_candidate("hist_gradient_boosting", train[names])
    model.fit(train[names], train["label"].astype(int))
    calibrated, _ = calibrate(model, cal[names], cal["label"].astype(int), cal["as_of"],
                              ["sigmoid"], 500)  # fmt: skip
    profile = reference_profile(cal[names], calibrated.predict_proba(cal[names])[:, 1])
    joblib.dump({"model": calibrated, "features": names, "reference": profile}, path)


@case("score: nightly run, 1 M leads / ~50 M events, end to end", max_seconds=30, max_gib=4,
      repeats=1)  # fmt: skip
def nightly_million():
    from leadml.scoring import score_to

    model = scoring_model()
    out = Path(tempfile.mkdtemp(prefix="leadml-bench-scores-"))
    try:
        result = score_to(dataset(1_000_000), "2026-06-29", out, model, track=False)
        timings = {f"{k}_s": round(v, 1) for k, v in result.timings.items()}
        return {"open_leads": len(result.scores), "reasons": result.reason_method, **timings}
    finally:
        shutil.rmtree(out, ignore_errors=True)
