"""From learned weights to the rules file: the rules, their evidence, grade bands, the MQL
threshold, and the text in the ``configs/rules.yaml`` format with each rule's evidence.

YAML libraries drop comments, so the file is written line by line; every text value is quoted
(JSON strings are YAML scalars), so a country code ``NO`` stays Norway. The learner loads the
text back with the rules loader and checks it is the table it learned
(:mod:`leadml.modeling.points`).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from leadml.modeling.points_candidates import rule_name, short_number, unique_name

FIT_KEYS = ("attribute", "in", "range", "is", "points")
ENGAGEMENT_KEYS = (
    "event_type",
    "buying_stage",
    "points",
    "cap",
    "window_days",
    "decay",
    "inactive_days",
)


def render_rules(raw: dict, table: pd.DataFrame, context: dict) -> str:
    """The rules file of ``raw`` (a rules mapping) with a header and one evidence comment per
    rule from ``table`` (:func:`leadml.modeling.points.evidence`); ``context`` holds the training
    window (``train``), the new MQLs of each table on the tuning window and the target."""
    train = context["train"]
    base = float(train["label"].mean()) if len(train) else float("nan")
    evidence = table.set_index("rule") if len(table) else table
    lines = [
        "# Learned points: fitted by `leadml rules learn` to this history's outcomes, in the",
        "# format of configs/rules.yaml (run it with `leadml rules --rules FILE`).",
        "#",
        f"# Training window: {train['as_of'].min():%Y-%m-%d} to {train['as_of'].max():%Y-%m-%d}, "
        f"{len(train):,} snapshots of open leads,",
        f"# {int(train['label'].sum()):,} of them reached {context['target']} within "
        f"{context['horizon']} days ({_pct(base)}: the base rate).",
        f"# {len(table)} rules chosen from {context['candidates']} candidates one at a time: "
        f"of the {context['shortlist']} adding most",
        "# to a logistic regression of those already in, the one ranking the leads best;",
        "# engagement rules only add points (negative ones only take them away, as does going",
        "# quiet: no action, an event of a buying stage, for so many days), so",
        "# more of an action never lowers a score. Points are log-odds scaled so the best",
        "# training lead scores about 100. Each rule's comment: the leads it fires for in the",
        "# training window and how often those snapshots converted, against the base rate. A",
        "# rule's points are what it adds beside the others: a rule can convert above the base",
        "# rate and lose points, when the others already give its leads more than they earn.",
        "",
    ]
    for kind, keys in (("fit", FIT_KEYS), ("engagement", ENGAGEMENT_KEYS)):
        section = raw.get(kind, {})
        lines.append(f"{kind}:")
        if kind == "engagement":
            lines.append("  decay: none                 # rules say their own decay")
        rules = section.get("rules", [])
        if not rules:
            lines.append("  rules: []")
            continue
        lines.append("  rules:")
        for rule in rules:
            lines += _evidence_lines(evidence.loc[rule["name"]])
            lines.append(f"    - name: {rule['name']}")
            for key in keys:
                if key in rule:
                    lines.append(f"      {key}: {_value(rule[key])}")
        lines.append("")
    lines += ["# Grades: cut at the training window's quantiles of each score (top 5 %, next 15 %,",
              "# next 30 %, the rest; engagement among leads with any).", "grades:"]  # fmt: skip
    for which in ("fit", "engagement"):
        lines.append(f"  {which}:")
        for label, band in raw["grades"][which].items():
            lines.append(f"    {_value(str(label))}: {_value(band)}")
    threshold = raw["mql"]["threshold"]
    lines += [
        "",
        f"# MQL: set on the {context['tuning_window']} window to send as many new MQLs as the "
        f"hand rules ({context['learned_mqls']:,}",
        f"# against their {context['hand_mqls']:,}; a lead is sent once, when its score first "
        "reaches the threshold).",
        "mql:",
        f"  threshold: {_value(threshold)}",
        "",
    ]
    return "\n".join(lines)


def _evidence_lines(row: pd.Series) -> list[str]:
    lines = [
        f"    # {int(row['leads']):,} leads ({int(row['snapshots']):,} snapshots); "
        f"{_pct(row['conversion_rate'])} converted vs {_pct(row['base_rate'])} overall"
    ]
    above = row["conversion_rate"] > row["base_rate"]
    below = row["conversion_rate"] < row["base_rate"]
    if (row["points"] > 0 and below) or (row["points"] < 0 and above):  # a bug, unless said
        lines.append(
            "    # (points beside the other rules: "
            + ("they give these leads more than they earn)" if above
               else "they give these leads less than they earn)")
        )  # fmt: skip
    return lines


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f} %"


#: Characters YAML reads as line breaks or does not allow unescaped in a file.
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _quoted(text: str) -> str:
    """A double-quoted YAML string that reads back as ``text`` and shows it as written
    (télécom, 🚀): JSON's escapes for quotes, backslashes and control characters, ``\\u`` for
    the characters in :data:`_UNSAFE`."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", json.dumps(text, ensure_ascii=False))


def _value(value) -> str:
    """A YAML flow value: quoted text, plain numbers and booleans, lists and mappings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        # YAML reads 5e+07 and 5e-05 as text: integral numbers are written in full, and a
        # mantissa without a point gets one (5.0e-05).
        if float(value).is_integer():
            return str(int(value))
        mantissa, exponent, power = repr(float(value)).partition("e")
        return f"{mantissa}{'' if '.' in mantissa else '.0'}{exponent}{power}"
    if isinstance(value, str):
        return "none" if value == "none" else _quoted(value)
    if isinstance(value, list | tuple):  # in a list, the stage "none" is quoted like the rest
        return "[" + ", ".join(_quoted(v) if isinstance(v, str) else _value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} in a rules file")


def evidence(on_train: pd.DataFrame, rules) -> pd.DataFrame:
    """One row per rule of ``rules``: its kind and points, and on the training window
    (``on_train``: the engine's scores with their ``points__<rule>`` columns and ``label``) the
    leads and snapshots it fires for and their conversion rate, against the base rate."""
    y = on_train["label"].to_numpy(dtype=float)
    rows = []
    for rule in rules.all_rules():
        fires = on_train[f"points__{rule.name}"].to_numpy() != 0
        rows.append(
            {
                "rule": rule.name,
                "kind": rules.kind_of(rule.name),
                "points": int(rule.points),
                "leads": int(on_train.loc[fires, "lead_id"].nunique()),
                "snapshots": int(fires.sum()),
                "conversion_rate": float(y[fires].mean()) if fires.any() else float("nan"),
                "base_rate": float(y.mean()),
            }
        )
    return pd.DataFrame(rows)


def rules_mapping(candidates: dict[str, dict], learned: list[tuple[str, int]]) -> dict:
    """The rules mapping of the learned (candidate name, points) pairs: an engagement rule's cap
    scales with its points; fit rules on one attribute are made :func:`disjoint`."""
    fit, engagement = [], []
    for name, points in learned:
        rule = dict(candidates[name], points=points)
        if "attribute" in rule:
            fit.append(rule)
        else:
            if "cap" in rule:  # an inactivity rule has none: it fires once
                rule["cap"] = abs(points) * rule["cap"]
            engagement.append(rule)
    return {"fit": {"rules": disjoint(fit)}, "engagement": {"decay": "none", "rules": engagement}}


def disjoint(rules: list[dict]) -> list[dict]:
    """Fit rules rewritten so that, per attribute, each value (or stretch of numbers) gets its
    points from one rule: ``seniority in [vp, c_level, director] +5`` and ``seniority in [vp,
    c_level] +9`` become ``[c_level, vp] +14`` and ``[director] +5``. The same points for every
    lead, read once; kept as they are when rewriting would not make fewer or as many rules.

    Examples
    --------
    >>> rules = [{"name": "a", "attribute": "lead_age_days", "range": {"from": 14}, "points": -5},
    ...          {"name": "b", "attribute": "lead_age_days", "range": {"from": 35}, "points": -9}]
    >>> for rule in disjoint(rules):
    ...     print(rule["name"], rule["range"], rule["points"])
    lead_age_days_14_to_35 {'from': 14, 'below': 35} -5
    lead_age_days_35_plus {'from': 35} -14
    """
    by_attribute: dict[str, list[dict]] = {}
    for rule in rules:
        by_attribute.setdefault(rule["attribute"], []).append(rule)
    out = []
    for attribute, group in by_attribute.items():
        if len(group) == 1 or "is" in group[0]:
            out += group
            continue
        rewritten = (_disjoint_values if "in" in group[0] else _disjoint_ranges)(attribute, group)
        out += rewritten if len(rewritten) <= len(group) else group
    return out


def _disjoint_values(attribute: str, group: list[dict]) -> list[dict]:
    totals: dict[str, int] = {}
    for rule in group:
        for value in rule["in"]:
            totals[value] = totals.get(value, 0) + rule["points"]
    by_total: dict[int, list[str]] = {}
    for value, total in totals.items():
        if total:
            by_total.setdefault(total, []).append(value)
    rules = []
    for total, values in sorted(by_total.items(), key=lambda kv: -kv[0]):
        name = rule_name(attribute, *sorted(values))
        if len(name) > 48:
            name = rule_name(attribute, f"{len(values)} values", "plus" if total > 0 else "minus",
                             str(abs(total)))  # fmt: skip
        name = unique_name(name, {r["name"] for r in rules})
        rules.append({"name": name, "attribute": attribute, "in": sorted(values), "points": total})
    return rules


def _disjoint_ranges(attribute: str, group: list[dict]) -> list[dict]:
    edges = sorted({e for r in group for e in (r["range"].get("from"), r["range"].get("below"))
                    if e is not None})  # fmt: skip
    stretches = list(zip([-np.inf, *edges], [*edges, np.inf], strict=True))

    def total(low: float, high: float) -> int:
        """The points of the rules whose range holds the whole stretch [low, high)."""
        held = (r for r in group if r["range"].get("from", -np.inf) <= low)
        return sum(r["points"] for r in held if high <= r["range"].get("below", np.inf))

    merged: list[list] = []  # [low, high, points], equal neighbours joined
    for low, high in stretches:
        points = total(low, high)
        if merged and merged[-1][2] == points:
            merged[-1][1] = high
        else:
            merged.append([low, high, points])
    rules = []
    for low, high, points in merged:
        if not points:
            continue
        bounds = {}
        if np.isfinite(low):
            bounds["from"] = low
        if np.isfinite(high):
            bounds["below"] = high
        if "from" in bounds and "below" in bounds:
            name = rule_name(attribute, short_number(low), "to", short_number(high))
        elif "from" in bounds:
            name = rule_name(attribute, short_number(low), "plus")
        else:
            name = rule_name(attribute, "under", short_number(high))
        rules.append({"name": name, "attribute": attribute, "range": bounds, "points": points})
    return rules


def grade_bands(fit: np.ndarray, engagement: np.ndarray) -> dict:
    """Fit letters A-D and engagement numbers 1-4 cut at the training window's quantiles (the
    top 5 %, the next 15 %, the next 30 % and the rest; engagement among the engaged)."""
    engaged = engagement[engagement > 0]
    return {
        "fit": _bands(fit, "ABCD"),
        "engagement": _bands(engaged if len(engaged) else engagement, "1234"),
    }


def _bands(values: np.ndarray, labels: str) -> dict:
    edges = sorted({int(np.ceil(q)) for q in np.quantile(values, [0.5, 0.8, 0.95])})
    if len(edges) and edges[0] <= np.min(values):
        edges = edges[1:]  # a band nobody is below
    bands = {}
    lows = [None, *edges]
    highs = [*edges, None]
    for label, low, high in zip(labels[: len(edges) + 1], lows[::-1], highs[::-1], strict=True):
        band = {}
        if low is not None:
            band["from"] = low
        if high is not None:
            band["below"] = high
        bands[label] = band
    return bands


def volume_threshold(table: pd.DataFrame, mqls: int) -> int:
    """The threshold of ``table`` (:func:`leadml.modeling.thresholds.threshold_table`: new MQLs
    by threshold) whose new MQLs come closest to ``mqls`` (of equals, the highest); above the
    highest threshold when ``mqls`` is 0 or the table is empty.

    New MQLs rather than snapshots above the threshold: leads cross in and out from one
    snapshot to the next, so matching the snapshots above it would not match what sales gets.

    Examples
    --------
    >>> t = pd.DataFrame({"mqls": [50, 31, 29, 12]}, index=[10, 20, 30, 40])
    >>> volume_threshold(t, 30), volume_threshold(t, 35), volume_threshold(t, 0)
    (30, 20, 41)
    """
    if mqls <= 0 or table.empty:
        return int(table.index.max()) + 1 if len(table) else 0
    gap = (table["mqls"] - mqls).abs().to_numpy()
    return int(table.index[np.flatnonzero(gap == gap.min())[-1]])
