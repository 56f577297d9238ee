"""Models that cannot ship upside down: the default sample, a drifting history (event history and
flat export) and the same histories with their labels shuffled.

``python bench/bench_drift.py`` prints the table of docs/training.md (a few minutes: five
trainings); ``python bench/run.py -k drift`` times the drifting event history.

Per case: the conversion rate of the training and test windows, the test ROC AUC of the
calibrated model, of the same model before calibration and of the rule score, the truth's ROC AUC
(the generator's own probabilities, on its monthly snapshots inside the test window: the ceiling),
the expected calibration error on the test window with and without the prior-shift correction
and with the best constant intercept (fitted on the test labels: the floor of any intercept),
and the fitness gate's verdict.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from bench.harness import case  # noqa: E402

LEADS, FLAT_LEADS, SEED = 5_000, 20_000, 7


def _events(scenario: str, shuffle: bool = False) -> dict:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from leadml import Settings, load_data
    from leadml.modeling.training import train
    from leadml.modeling.trainset import build_trainset
    from leadml.synth import generate_history, write_history

    history = generate_history(n_leads=LEADS, seed=SEED, scenario=scenario)
    folder = Path(tempfile.mkdtemp(prefix="leadml-bench-drift-")) / "data"
    write_history(history, folder)
    data = load_data(folder, Settings())
    built = build_trainset(data)
    if shuffle:
        labels = np.random.default_rng(0).permutation(built.frame["label"].to_numpy())
        built = type(built)(built.frame.assign(label=labels), built.report)
    result = train(data, trainset=built)
    test = result.frames["test"]
    inner = result.model.calibrated_classifiers_[0].estimator
    raw = inner.predict_proba(test[result.feature_names])[:, 1]
    truth = history.truth
    start, end = result.windows.loc["test", ["first_snapshot", "last_snapshot"]]
    truth = truth[(truth["as_of"] >= start) & (truth["as_of"] <= end)]
    figures = _figures(result, roc_auc_score(test["label"], raw))
    figures["truth_roc_auc"] = float(roc_auc_score(truth["converted"], truth["p_true"]))
    return figures


def _flat(scenario: str, shuffle: bool = False) -> dict:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from leadml import Settings
    from leadml.flat import train_flat
    from leadml.synth import flat_export, generate_history, write_flat

    export = flat_export(generate_history(n_leads=FLAT_LEADS, seed=SEED, scenario=scenario))
    if shuffle:
        export["converted"] = np.random.default_rng(0).permutation(export["converted"].to_numpy())
    path = write_flat(export, Path(tempfile.mkdtemp(prefix="leadml-bench-drift-")) / "flat.csv")
    # The generated export holds only leads whose outcome is known: the correction may follow it.
    settings = Settings.model_validate({"flat": {"prior_shift": True}})
    result = train_flat(path, "converted", id="lead_id", time="created_at", settings=settings)
    test = result.frames["test"]
    step = result.model.named_steps["flat"]
    inner = result.model.named_steps["calibrated"].calibrated_classifiers_[0].estimator
    raw = inner.predict_proba(step.transform(test[result.feature_names]))[:, 1]
    return _figures(result, roc_auc_score(test["label"], raw))


def _figures(result, uncalibrated_auc: float) -> dict:
    import numpy as np
    from scipy.special import expit, logit

    from leadml.modeling.calibration import fit_prior_shift
    from leadml.modeling.evaluation import expected_calibration_error

    metrics = result.evaluation.metrics
    rates = result.windows["base_rate"]
    # The floor of any one intercept: the one fitted on the test labels themselves.
    y = result.test["label"].to_numpy()
    log_odds = logit(np.clip(result.test["model_probability"].to_numpy(), 1e-6, 1 - 1e-6))
    best = expit(log_odds + fit_prior_shift(log_odds, y).shift)
    return {
        "rate_train": round(float(rates["train"]), 4),
        "rate_test": round(float(rates["test"]), 4),
        "model_roc_auc": round(metrics["model_roc_auc"], 4),
        "uncalibrated_roc_auc": round(float(uncalibrated_auc), 4),
        "rules_roc_auc": round(metrics.get("rules_points_roc_auc", float("nan")), 4),
        "ece": round(metrics["model_ece"], 4),
        "ece_uncorrected": round(metrics["model_ece_uncorrected"], 4),
        "ece_best_constant": round(expected_calibration_error(y, best), 4),
        "calibration": str(result.calibration.attrs["chosen"]),
        "gate": "passed" if result.fitness.passed else "FAILED: " + result.fitness.reasons(),
    }


@case("training: drifting history (5,000 leads), calibration and gate", repeats=1)
def drifting_history():
    return _events("drift")


CASES = {
    "default sample, event history": lambda: _events("default"),
    "drift, event history": lambda: _events("drift"),
    "drift, flat export (20,000 leads)": lambda: _flat("drift"),
    "drift, event history, labels shuffled": lambda: _events("drift", shuffle=True),
    "drift, flat export, labels shuffled": lambda: _flat("drift", shuffle=True),
}


def main() -> None:
    import pandas as pd
    from threadpoolctl import threadpool_limits

    rows = {}
    with threadpool_limits(limits=1):
        for name, run in CASES.items():
            print(f"running: {name} ...", file=sys.stderr, flush=True)
            rows[name] = run()
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(pd.DataFrame(rows).T.to_string())


if __name__ == "__main__":
    main()
