"""A real flat export: X Education's 9,240 leads. Does the leakage guard catch the columns sales
filled in after contact, and what does the default run reach without them?

Reads ``../shared/datasets/x_education_leads/Leads.csv`` next to the repository (its terms of
use are unknown: it is never copied into the project); skipped, with a message, when absent.
``python bench/bench_xeducation.py`` prints the whole report; ``python bench/run.py -k
"X Education"`` times it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from bench.harness import Skip, case  # noqa: E402

LEADS = ROOT.parent / "shared" / "datasets" / "x_education_leads" / "Leads.csv"
#: Filled in by sales after contact, as the data set's README says: they must be flagged.
POST_CONTACT = ("Tags", "Lead Quality", "Last Activity", "Last Notable Activity")
#: "Assigned to each customer based on their activity and profile" (the data dictionary): when,
#: it does not say; the guard has no evidence against them (see docs/flat.md).
ASSIGNED = (
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
)


def leads_csv() -> Path:
    if not LEADS.is_file():
        raise Skip(
            f"{LEADS} is absent: this case reads the X Education export from "
            "../shared/datasets/x_education_leads/ next to the repository; nothing to measure"
        )
    return LEADS


def train_on_leads():
    """The default flat run: every setting at its default, the lead id given."""
    from leadml.flat import train_flat

    result = train_flat(leads_csv(), "Converted", id="Prospect ID")
    missed = [c for c in POST_CONTACT if c not in result.leakage.excluded]
    if missed:
        raise AssertionError(f"the leakage guard let post-contact column(s) {missed} through")
    return result


def baselines() -> dict[str, float]:
    """5-fold ROC AUC of a plain HistGradientBoostingClassifier (defaults, native categories)
    on: every column but the ids (what a pipeline without a guard does), without the four
    post-contact columns, and without the 'assigned' columns too."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    frame = pd.read_csv(leads_csv()).drop(columns=["Unnamed: 37", "Prospect ID", "Lead Number"])
    y = frame.pop("Converted")
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("category")
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    without = [c for c in frame.columns if c not in POST_CONTACT]
    sets = {
        "every_column": list(frame.columns),
        "without_post_contact": without,
        "without_post_contact_and_assigned": [c for c in without if c not in ASSIGNED],
    }
    out = {}
    with threadpool_limits(limits=1):
        for name, columns in sets.items():
            model = HistGradientBoostingClassifier(
                categorical_features="from_dtype", random_state=0
            )
            scores = cross_val_score(model, frame[columns], y, cv=folds, scoring="roc_auc")
            out[f"hgb_{name}_roc_auc"] = round(float(scores.mean()), 3)
    return out


@case("flat: X Education export (9,240 leads), leakage guard + default training", repeats=1)
def xeducation_training():
    result = train_on_leads()
    metrics = result.evaluation.metrics
    return {
        "excluded": "; ".join(result.leakage.excluded),
        "cv_roc_auc": round(metrics["model_roc_auc"], 3),
        "fold_std": round(metrics["model_roc_auc_fold_std"], 3),
        "ece": round(metrics["model_ece"], 4),
        "brier": round(metrics["model_brier"], 4),
        "log_loss": round(metrics["model_log_loss"], 4),
        "model": f"{result.family}, {result.calibration.loc[0, 'method']}",
    }


@case("flat: X Education export, plain gradient boosting with and without the leaks", repeats=1)
def xeducation_baselines():
    return baselines()


def main() -> None:
    import time

    from leadml.modeling.card import comparison_table, format_value

    start = time.perf_counter()
    result = train_on_leads()
    seconds = time.perf_counter() - start
    print(result.inputs.quality.format(), end="\n\n")
    print(result.leakage.format(), end="\n\n")
    columns = result.inputs.columns
    print(f"{int(columns['used'].sum())} of {len(columns)} columns used:")
    print(columns[["column", "role", "used", "leakage"]].to_string(index=False), end="\n\n")
    table = comparison_table(result.evaluation.metrics).map(format_value)
    print("Out of fold, 5-fold stratified cross-validation:")
    print(table.to_string(), end="\n\n")
    metrics = result.evaluation.metrics
    print(
        f"ROC AUC per fold: {metrics['model_roc_auc_fold_mean']:.3f} ± "
        f"{metrics['model_roc_auc_fold_std']:.3f}; model {result.family} {result.params}, "
        f"calibration {result.calibration.loc[0, 'method']}; {seconds:.0f} s"
    )
    print("Plain HistGradientBoosting, 5-fold ROC AUC:", baselines())


if __name__ == "__main__":
    try:
        main()
    except Skip as skip:
        print(f"skipped: {skip}")
