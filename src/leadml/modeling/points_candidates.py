"""Candidate rules for a learned points table, in the rules file's own form, and their firings.

Each candidate gives 1 point: a fit rule when its condition holds (a value, a run of the best or
worst converting values, a range cut at a quantile, a flag), an engagement rule per event of its
type, buying stage or any action (all stages but 'none') within one of the feature windows
(``features.windows_days``: 7, 30 and 90 days), counted once or up to 3 times, without decay, and
inactivity rules (no action, an event of a buying stage, not an unsubscribe, a bounce or an
unmapped type, in the last 7 to 180 days: the model's ``days_since_last_action``): so every
candidate is also a function of the model's features, and a learned table can compete as a
model (:class:`leadml.modeling.points_model.PointsClassifier`).
Counts ever and fading counts were tried and added nothing on the sample histories.
:func:`firing_matrix` scores them all with leadml's rule engine (:func:`leadml.rules.rule_scores`),
so a learned weight multiplies exactly what the engine computes: ``points * min(weighted count,
cap)`` scales with the points when the cap does.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leadml.config import Settings
from leadml.data import LeadData
from leadml.data.asof import as_spine
from leadml.data.attributes import ATTRIBUTES, attributes_table
from leadml.rules import load_rules, rule_problems, rule_scores

KEYS = ["lead_id", "as_of"]
#: How many events a candidate engagement rule counts at most.
COUNTS = (1, 3)
#: Days without any action after which a candidate inactivity rule takes points away.
INACTIVE_DAYS = (7, 14, 30, 60, 90, 180)
#: Quantiles of a numeric attribute that become ``from``/``below`` edges.
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
#: A value (or a range) must hold for this share of the training window's leads (and at least
#: MIN_LEADS of them) to become a candidate: rarer ones are noise.
MIN_SUPPORT = 0.02
MIN_LEADS = 30
#: Text attributes with more values than this keep only the most frequent ones, and get no
#: candidate groups of values (country: a group of eight countries is a fit to noise).
MAX_VALUES = 12
MAX_GROUPED = 8
#: Rows the engine scores at once (bounds the memory of ~250 candidate columns).
CHUNK_ROWS = 40_000


def candidate_rules(data: LeadData, train: pd.DataFrame) -> dict[str, dict]:
    """Candidate rules, by name, in the rules file's form with 1 point each: fit rules on the
    values, groups of values and ranges the training window holds often enough, engagement rules
    per event type and buying stage, window and count. Every one is valid for ``data``'s
    settings."""
    settings = data.settings
    spine = as_spine(train[KEYS])
    with attributes_table(data, spine) as name:
        attrs = data.con.execute(f"SELECT * FROM {name} ORDER BY as_of, lead_id").df()
    attrs = spine.merge(attrs, on=KEYS, how="left").assign(label=train["label"].to_numpy())
    found: dict[str, dict] = {}
    for attribute in ATTRIBUTES:
        if attribute in data.unavailable or attribute not in attrs:
            continue
        for rule in _fit_candidates(attrs, attribute):
            rule["name"] = unique_name(rule["name"], found)
            found[rule["name"]] = rule
    stage_of = settings.data.buying_stage_lookup()
    stages = sorted({s for s in stage_of.values() if s != "none"})
    selectors = [(t, "event_type", [t]) for t in stage_of]
    selectors += [(s, "buying_stage", [s]) for s in stages]
    selectors.append(("activity", "buying_stage", stages))  # anything but a bounce or opt-out
    for label, key, values in selectors:
        negative = key == "event_type" and stage_of[label] == "none"
        for window in settings.features.windows_days:
            for count in (1,) if negative else COUNTS:
                # An event type may read like a buying stage ("activity"): unique_name.
                name = unique_name(rule_name(label, _count_word(count), f"{window}d"), found)
                found[name] = {"name": name, key: values, "points": 1, "cap": count,
                               "window_days": window, "decay": "none"}  # fmt: skip
    for days in INACTIVE_DAYS:
        # Quiet means no action: a bounce or an unsubscribe must not end the spell and so give
        # back the points it took (the feature days_since_last_action counts the same events).
        name = unique_name(rule_name("inactive", f"{days}d"), found)
        found[name] = {"name": name, "buying_stage": stages, "points": 1,
                       "inactive_days": days}  # fmt: skip
    return {n: r for n, r in found.items() if _valid(r, settings)}


def _fit_candidates(attrs: pd.DataFrame, attribute: str) -> list[dict]:
    values, y, leads = attrs[attribute], attrs["label"], attrs["lead_id"]
    minimum = max(MIN_SUPPORT * leads.nunique(), MIN_LEADS)

    def support(mask) -> int:
        return leads[mask].nunique()

    if pd.api.types.is_bool_dtype(values):
        return [{"name": attribute, "attribute": attribute, "is": True, "points": 1}]
    if pd.api.types.is_numeric_dtype(values):
        known = values.dropna()
        if known.nunique() < 3:
            return []
        edges = sorted({_round(q) for q in known.quantile(list(QUANTILES)) if q > 0})
        rules = []
        for edge in edges:
            if support(values >= edge) >= minimum:
                name = rule_name(attribute, short_number(edge), "plus")
                rules.append({"name": name, "attribute": attribute, "range": {"from": edge}})
            if support(values < edge) >= minimum:
                name = rule_name(attribute, "under", short_number(edge))
                rules.append({"name": name, "attribute": attribute, "range": {"below": edge}})
        return [rule | {"points": 1} for rule in rules]
    text = values.astype("str").str.strip().str.lower().where(values.notna())
    rate = (
        pd.DataFrame({"y": y, "lead": leads})
        .groupby(text)
        .agg(leads=("lead", "nunique"), rate=("y", "mean"))
    )
    rate = rate[rate["leads"] >= minimum].nlargest(MAX_VALUES, "leads")
    rate = rate.sort_values("rate", kind="stable")  # equal rates: the more leads first
    ordered = list(rate.index[::-1])  # best converting first
    groups = [[v] for v in ordered]
    if len(ordered) <= MAX_GROUPED:
        # Runs of the best and of the worst values: "c_level or vp", one rule instead of two.
        groups += [ordered[:k] for k in range(2, len(ordered) - 1)]
        groups += [ordered[-k:] for k in range(2, len(ordered) - 1)]
    rules = []
    for group in groups:
        name = rule_name(attribute, *group)
        if len(name) > 48:
            best = group == ordered[: len(group)]
            name = rule_name(attribute, "top" if best else "bottom", str(len(group)))
        rules.append({"name": name, "attribute": attribute, "in": sorted(group), "points": 1})
    return rules


def _valid(rule: dict, settings: Settings) -> bool:
    kind = "fit" if "attribute" in rule else "engagement"
    raw = {kind: {"rules": [rule]}, "grades": {"fit": {"a": {}}, "engagement": {"1": {}}},
           "mql": {"threshold": 0}}  # fmt: skip
    return not rule_problems(raw, settings)


def _count_word(count: int) -> str:
    return "any" if count == 1 else f"up_to_{count}"


def rule_name(*parts: str) -> str:
    """A valid rule name from its parts: accents dropped (télécom: telecom), anything else but
    letters and digits an underscore, and a part with nothing left named by a digest of it
    (ソフトウェア: v and 6 hex digits). Values can still read alike ("a-b", "a b"; "IT サービス",
    "IT ソフト"): :func:`unique_name` keeps their rules apart."""
    words = []
    for part in map(str, parts):
        folded = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode().lower()
        word = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")
        if not word and part.strip():
            word = "v" + hashlib.sha1(part.encode()).hexdigest()[:6]
        words.append(word)
    text = re.sub(r"_+", "_", "_".join(words)).strip("_") or "rule"
    return text if re.match(r"^[a-z]", text) else f"r_{text}"


def unique_name(name: str, taken: Collection[str]) -> str:
    """``name``, else ``name_2``, ``name_3``... the first not ``taken``: values that read alike
    once made a name ("a-b" and "a b") stay two rules."""
    number = 1
    while (found := name if number == 1 else f"{name}_{number}") in taken:
        number += 1
    return found


def _round(value: float) -> float:
    """Two significant figures: 237 -> 240, 48_512_000 -> 49_000_000."""
    if value <= 0:
        return float(value)
    digits = 1 - int(np.floor(np.log10(value)))
    return float(round(value, digits))


def short_number(value: float) -> str:
    for size, suffix in ((1e9, "b"), (1e6, "m"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}".replace(".", "_")
    return f"{value:g}".replace(".", "_")


def rule_sign(rule: dict, settings: Settings) -> int:
    """+1: the rule may only add points (more engagement never loses any), -1: only take them
    away (unsubscribes, bounces: buying stage 'none'; going quiet), 0: either (fit rules)."""
    if "attribute" in rule:
        return 0
    if "inactive_days" in rule:
        return -1
    stage_of = settings.data.buying_stage_lookup()
    stages = rule.get("buying_stage") or [stage_of.get(t, "none") for t in rule["event_type"]]
    return -1 if all(s == "none" for s in stages) else 1


def firing_matrix(
    data: LeadData, pairs: pd.DataFrame, candidates: dict[str, dict]
) -> tuple[sp.csr_matrix, list[str]]:
    """Each candidate's points (1 per firing or event, up to its cap) on each pair, computed by
    the rule engine in chunks of snapshots; rows in ``pairs``' order."""
    fit = [r for r in candidates.values() if "attribute" in r]
    engagement = [r for r in candidates.values() if "attribute" not in r]
    rules = load_rules(
        {"fit": {"rules": fit}, "engagement": {"rules": engagement},
         "grades": {"fit": {"a": {}}, "engagement": {"1": {}}}, "mql": {"threshold": 0}},
        data.settings,
    )  # fmt: skip
    names = list(candidates)
    spine = pairs[KEYS].assign(row=np.arange(len(pairs)))
    blocks, rows = [], []
    dates = spine["as_of"].drop_duplicates().sort_values()
    per_date = spine.groupby("as_of").size().reindex(dates).to_numpy()
    start = 0
    while start < len(dates):
        stop = start + max(int(np.searchsorted(np.cumsum(per_date[start:]), CHUNK_ROWS)), 1)
        chunk = spine[spine["as_of"].isin(dates.iloc[start:stop])]
        scored = rule_scores(data, chunk[KEYS], rules).merge(chunk, on=KEYS)
        columns = [f"points__{n}" for n in names]
        # A fit rule on an attribute the input lacks has no column: it never fires.
        frame = scored.reindex(columns=columns, fill_value=0.0)
        blocks.append(sp.csr_matrix(frame.to_numpy(dtype="float32")))
        rows.append(scored["row"].to_numpy())
        start = stop
    X = sp.vstack(blocks).tocsr()
    order = np.argsort(np.concatenate(rows))
    return X[order], names
