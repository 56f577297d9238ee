"""Rule scores: the nightly snapshot, side by side with the feature build."""

from __future__ import annotations

import time

from bench.harness import case, dataset
from leadml import load_data, load_rules, rule_scores_as_of


@case("rules: nightly snapshot, 1 M leads / ~50 M events", max_seconds=18, max_gib=3)
def nightly_rule_scores():
    """Load (with validation), then score every lead open at the snapshot with the default rules
    and their explanation columns: the whole nightly job, as the feature case measures it."""
    start = time.perf_counter()
    data = load_data(dataset(1_000_000))
    loaded = time.perf_counter()
    as_of = data.end().floor("D")
    scores = rule_scores_as_of(data, as_of, load_rules(settings=data.settings))
    done = time.perf_counter()
    return {
        "open_leads": len(scores),
        "mql": int(scores["rule_mql"].sum()),
        "load_s": round(loaded - start, 2),
        "score_s": round(done - loaded, 2),
    }
