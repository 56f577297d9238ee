"""Learned points against the model and the hand rules, over three generated histories.

Issue 20's figures: on each of three 20,000-lead histories (seeds 1, 2, 3, as `leadml synth
--leads 20000 --seed S` writes them), on the test window of `leadml train`:

- the learned table (at most 15 rules) against the model (mean of three model seeds): ROC AUC,
  and conversions at the hand rules' MQL volume;
- the learned table at its own threshold (set on the calibration window to send as many new
  MQLs as the hand rules) against the hand rules at theirs: new MQLs (a lead is sent once, when
  its score reaches the threshold, as `leadml rules threshold` counts them) and the conversions
  among them (within the horizon after), so "the same MQL volume (+-10 %) and >= 15 % more
  conversions" reads directly;
- the same bar read as the issue's other figures read "MQL volume" (snapshots at or above the
  threshold, "conversions at the rules' volume of 2,851 MQLs"): a threshold set on the
  calibration window so that as many snapshots are at or above it as the hand rules', and on
  the test window its snapshots and their conversions against the hand rules'.

And how far 15 rules are from what could be said at all, on the same test rows: every candidate
rule at once (a ridge-penalised logistic regression, no limit on their number, on the rows
learn_points fits on), and an additive model of the model's own features (gradient boosting of
single-split trees: each tree reads one feature).

A quality benchmark, not a timing one, so it is a script rather than a ``bench/run.py`` case
(those time one function in a fresh process). Run from the project root::

    python -m bench.bench_points            # about 20 minutes on 2 cores
    python -m bench.bench_points --leads 5000 --seeds 7   # a quick look
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def measure(leads: int, seed: int, model_seeds: tuple[int, ...]) -> dict:
    """One history: the learned table and the hand rules (from the first model seed's run, on
    the same test rows) and the model under each model seed."""
    from leadml import Settings, generate_history, load_data
    from leadml.modeling.training import train
    from leadml.modeling.trainset import build_trainset

    data = load_data(generate_history(n_leads=leads, seed=seed).tables())
    trainset = build_trainset(data)
    runs = []
    for i, model_seed in enumerate(model_seeds):
        settings = Settings.model_validate(
            {"model": {"random_state": model_seed}, "evaluation": {"learned_rules": 0 if i else 15}}
        )
        started = time.perf_counter()
        result = train(load_data(data, settings), trainset=trainset)
        runs.append((result, time.perf_counter() - started))
    first, m = runs[0][0], runs[0][0].evaluation.metrics
    models = [r.evaluation.metrics for r, _ in runs]
    learned_mqls, hand_mqls = m["learned_rules_new_mqls"], m["rules_new_mqls"]
    weeks = first.points.metrics["test_weeks"]
    return (
        {
            "history": f"{leads:,} leads, seed {seed}",
            "test_rows": int(m["test_rows"]),
            "test_conversions": int(m["test_positives"]),
            "learned_rules": len(first.points.rules.all_rules()),
            "learned_threshold": first.points.rules.mql.threshold,
            "model_family": first.family,
            "model_roc_auc": float(np.mean([x["model_roc_auc"] for x in models])),
            "model_roc_auc_by_seed": [round(x["model_roc_auc"], 4) for x in models],
            "learned_roc_auc": m["learned_rules_points_roc_auc"],
            "hand_roc_auc": m["rules_points_roc_auc"],
            "model_conversions_at_hand_volume": float(
                np.mean([x["model_conversions_at_rule_mql_volume"] for x in models])
            ),
            "learned_conversions_at_hand_volume": m["learned_rules_conversions_at_rule_mql_volume"],
            "hand_conversions_at_hand_volume": m["rules_conversions_at_rule_mql_volume"],
            "test_weeks": weeks,
            "learned_new_mqls": int(learned_mqls),
            "hand_new_mqls": int(hand_mqls),
            "learned_new_mqls_per_week": learned_mqls / weeks,
            "hand_new_mqls_per_week": hand_mqls / weeks,
            "learned_new_mql_conversions": int(m["learned_rules_new_mql_conversions"]),
            "hand_new_mql_conversions": int(m["rules_new_mql_conversions"]),
            "learned_volume_vs_hand": learned_mqls / hand_mqls - 1 if hand_mqls else float("nan"),
            "train_seconds": [round(s, 1) for _, s in runs],
        }
        | snapshot_volume(data, first.points)
        | ceilings(data, trainset.frame, first.points)
    )


def ceilings(data, frame, points) -> dict:
    """ROC AUC and conversions at the hand rules' volume on the test rows (``points.scores``) of
    every candidate rule at once and of an additive model of the features (``frame``: the
    training set, features and label)."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from leadml.modeling.evaluation import head_to_head, ranking_metrics
    from leadml.modeling.points_candidates import candidate_rules, firing_matrix
    from leadml.modeling.training import sample_by_lead
    from leadml.modeling.windows import place_windows

    keys = ["lead_id", "as_of"]
    placed, _ = place_windows(frame, data.settings)
    train = placed[placed["window"] == "train"].reset_index(drop=True)
    test = points.scores[[*keys, "label", "rule_mql"]]
    y, rule_mql = test["label"].to_numpy(), test["rule_mql"].to_numpy()

    candidates = candidate_rules(data, train)
    fitted = sample_by_lead(train, data.settings.model.search_max_rows, data.settings)
    X, _ = firing_matrix(data, fitted, candidates)
    ridge = LogisticRegression(C=1.0, max_iter=3_000).fit(X, fitted["label"])
    every = ridge.decision_function(firing_matrix(data, test, candidates)[0])

    features = [c for c in frame.columns if c not in (*keys, "label", "window")]

    on_test = test[keys].merge(placed, on=keys, how="left", validate="one_to_one")
    both = pd.concat([train[features], on_test[features]], ignore_index=True)
    for c in features:  # text as categories (the same for both windows), flags as numbers
        if pd.api.types.is_bool_dtype(both[c]):
            both[c] = both[c].astype(float)
        elif not pd.api.types.is_numeric_dtype(both[c]):
            both[c] = both[c].astype("category")

    stumps = HistGradientBoostingClassifier(
        max_depth=1,
        max_iter=600,
        learning_rate=0.1,
        categorical_features="from_dtype",
        random_state=0,
    )
    stumps.fit(both.iloc[: len(train)], train["label"])
    additive = stumps.predict_proba(both.iloc[len(train) :])[:, 1]
    found = {}
    for name, score in (("all_candidates", every), ("additive_features", additive)):
        found[f"{name}_roc_auc"] = ranking_metrics(y, score)["roc_auc"]
        found[f"{name}_conversions_at_hand_volume"] = float(
            head_to_head(y, score, rule_mql).loc["model", "conversions"]
        )
    return found | {"candidates": len(candidates)}


def snapshot_volume(data, points) -> dict:
    """The learned table at a threshold set on the calibration window to hold at least as many
    snapshots at or above it as the hand rules (the ``volume``-th highest learned score; scores
    tie), and both on the test window (``points.scores``): snapshots at or above, and their
    conversions."""
    from leadml.rules import load_rules, rule_scores

    calibration = points.tuning_scores  # the calibration window, scored by the table
    hand = rule_scores(data, calibration[["lead_id", "as_of"]], load_rules(None, data.settings),
                       explain=False)  # fmt: skip
    volume = int(hand["rule_mql"].sum())
    if volume == 0:
        raise ValueError("the hand rules make no MQL snapshot on the calibration window")
    learned = calibration["rule_score"]
    threshold = float(np.sort(learned.to_numpy())[::-1][volume - 1])
    test = points.scores
    sent, hand_sent = test["learned_score"] >= threshold, test["rule_mql"]
    return {
        "snapshot_threshold": threshold,
        "learned_snapshot_mqls": int(sent.sum()),
        "hand_snapshot_mqls": int(hand_sent.sum()),
        "learned_snapshot_conversions": int(test.loc[sent, "label"].sum()),
        "hand_snapshot_conversions": int(test.loc[hand_sent, "label"].sum()),
    }


def verdict(rows: list[dict]) -> dict:
    """The issue's bars over all histories."""
    auc_ok = all(r["learned_roc_auc"] >= r["model_roc_auc"] - 0.01 for r in rows)
    learned = sum(r["learned_conversions_at_hand_volume"] for r in rows)
    model = sum(r["model_conversions_at_hand_volume"] for r in rows)
    volume_ok = all(abs(r["learned_volume_vs_hand"]) <= 0.10 for r in rows)
    extra = [r["learned_new_mql_conversions"] / max(r["hand_new_mql_conversions"], 1) - 1
             for r in rows]  # fmt: skip
    snapshots = [r["learned_snapshot_mqls"] / max(r["hand_snapshot_mqls"], 1) - 1 for r in rows]
    snapshot_extra = [r["learned_snapshot_conversions"] / max(r["hand_snapshot_conversions"], 1)
                      - 1 for r in rows]  # fmt: skip
    return {
        "learned_roc_auc_at_least_model_minus_0.01_on_each": auc_ok,
        "conversions_at_hand_volume_summed": {"learned": learned, "model": round(model, 1)},
        "learned_conversions_at_least_model": learned >= model,
        "new_mqls_vs_hand": [round(r["learned_volume_vs_hand"], 3) for r in rows],
        "learned_new_mqls_within_10pct_of_hand_on_each": volume_ok,
        "extra_new_mql_conversions_vs_hand_at_own_threshold": [round(e, 3) for e in extra],
        "at_least_15pct_more_on_each": all(e >= 0.15 for e in extra),
        "snapshot_mqls_vs_hand": [round(v, 3) for v in snapshots],
        "snapshot_conversions_vs_hand": [round(e, 3) for e in snapshot_extra],
        "snapshots_within_10pct_and_at_least_15pct_more_on_each": all(
            abs(v) <= 0.10 and e >= 0.15 for v, e in zip(snapshots, snapshot_extra, strict=True)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        rows.append(measure(args.leads, seed, tuple(args.model_seeds)))
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps(verdict(rows), indent=2))
    print(markdown(
        ("history", "rules", "ROC AUC learned / model / hand",
         "conv. at hand volume learned / model / hand", "new MQLs a week learned / hand",
         "their conv. learned / hand", "MQL snapshots learned / hand",
         "their conv. learned / hand"),
        [[r["history"], str(r["learned_rules"]),
          f"{r['learned_roc_auc']:.3f} / {r['model_roc_auc']:.3f} / {r['hand_roc_auc']:.3f}",
          f"{r['learned_conversions_at_hand_volume']:,.0f} / "
          f"{r['model_conversions_at_hand_volume']:,.1f} / "
          f"{r['hand_conversions_at_hand_volume']:,.0f}",
          f"{r['learned_new_mqls_per_week']:.1f} / {r['hand_new_mqls_per_week']:.1f}",
          f"{r['learned_new_mql_conversions']:,} / {r['hand_new_mql_conversions']:,}",
          f"{r['learned_snapshot_mqls']:,} / {r['hand_snapshot_mqls']:,}",
          f"{r['learned_snapshot_conversions']:,} / {r['hand_snapshot_conversions']:,}"]
         for r in rows],
    ))  # fmt: skip
    print()
    print(markdown(
        ("history", "ROC AUC: learned / all candidates / additive / model",
         "conv. at hand volume: learned / all candidates / additive / model"),
        [[r["history"],
          f"{r['learned_roc_auc']:.3f} / {r['all_candidates_roc_auc']:.3f} / "
          f"{r['additive_features_roc_auc']:.3f} / {r['model_roc_auc']:.3f}",
          f"{r['learned_conversions_at_hand_volume']:,.0f} / "
          f"{r['all_candidates_conversions_at_hand_volume']:,.0f} / "
          f"{r['additive_features_conversions_at_hand_volume']:,.0f} / "
          f"{r['model_conversions_at_hand_volume']:,.1f}"]
         for r in rows],
    ))  # fmt: skip


def markdown(header: tuple[str, ...], rows: list[list[str]]) -> str:
    """A Markdown table: the header, its rule, a line per row."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


if __name__ == "__main__":
    main()
