"""The rule engine: fit and engagement points for any spine of (lead_id, as_of) pairs, in SQL.

Fit points read :func:`leadml.data.attributes.lead_attributes`, engagement points read
:func:`leadml.data.asof.visible`, so a rule sees exactly what a feature sees: rows strictly before
as_of. Events are first reduced to one row per (pair, event type) holding, for each distinct
(window, decay) "kernel" the rules use, the sum of the events' decay weights; rules are then
sums over that small table (an ``inactive_days`` rule reads the age of the youngest event
instead). 50 M events are never materialised. A spine of one instant (the nightly run) sums the
same weights in a compiled pass instead (:mod:`leadml.rules._instant`).

A fit rule on an attribute the input cannot supply (``industry`` without an accounts table, see
:func:`leadml.config.contract.missing_inputs`) is skipped (:func:`usable_rules`): it has no points
column and no share of its group's cap. Scoring it 0 would read "checked, and not a fit" where the
truth is "not known"; validation says once which attributes are missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

from leadml.common.sql import sql_str
from leadml.config import Settings
from leadml.data import LeadData
from leadml.data.asof import as_spine, in_window, open_leads, registered, visible
from leadml.data.attributes import lead_attributes
from leadml.rules._loading import load_rules
from leadml.rules._schema import Decay, EngagementRule, FitRule, Rules

SCORE_COLUMNS = (
    "rule_fit_score",
    "rule_engagement_score",
    "rule_score",
    "rule_grade",
    "rule_mql",
)

RulesLike = Rules | str | Path | dict | None


def rule_scores(
    data: LeadData, spine: pd.DataFrame, rules: RulesLike = None, *, explain: bool = True
) -> pd.DataFrame:
    """Rule scores of each (lead_id, as_of) pair, seeing only data strictly before as_of.

    Parameters
    ----------
    data
        Loaded data (:func:`leadml.load_data`).
    spine
        Pairs ``lead_id``, ``as_of``. Pairs whose lead did not exist yet at as_of are dropped.
    rules
        A :class:`Rules`, a rules file, a mapping, or ``None`` for the default rules file; it is
        validated against ``data.settings``.
    explain
        Add one column per rule, ``points__<rule>`` (its points after its own cap), and one per
        cap, ``cap__<group>`` / ``cap__fit`` / ``cap__engagement`` (the points a cap took away,
        or gave back to a negative group). Per pair, the fit columns add up to
        ``rule_fit_score`` and the engagement columns to ``rule_engagement_score``. Fit rules
        on attributes the input lacks are skipped (see :func:`usable_rules`): no column.

    Returns
    -------
    pandas.DataFrame
        ``lead_id``, ``as_of``, ``rule_fit_score``, ``rule_engagement_score``, ``rule_score``
        (their sum), ``rule_grade`` (fit letter + engagement number, e.g. ``"B2"``), ``rule_mql``
        (``rule_score >= mql.threshold``), then the explanation columns; sorted by as_of, lead_id.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadml import load_data
    >>> t = lambda *v: pd.to_datetime(list(v), utc=True)
    >>> data = load_data({
    ...     "accounts": pd.DataFrame({"account_id": ["A"], "industry": ["software"],
    ...         "employee_count": [300], "annual_revenue": [5e7], "country": ["US"]}),
    ...     "leads": pd.DataFrame({"lead_id": ["L1"], "created_at": t("2025-01-01"),
    ...         "lead_source": ["web"], "account_id": ["A"], "job_title": ["VP Sales"]}),
    ...     "events": pd.DataFrame({"lead_id": ["L1", "L1"], "event_type": ["demo_request"] * 2,
    ...         "occurred_at": t("2025-01-05", "2025-03-01")}),
    ...     "stages": pd.DataFrame({"lead_id": ["L1"], "stage": ["lead"],
    ...         "entered_at": t("2025-01-01")})})
    >>> rules = {
    ...     "fit": {"rules": [{"name": "vp", "attribute": "seniority", "in": "vp", "points": 20}]},
    ...     "engagement": {"rules": [{"name": "demo", "event_type": "demo_request",
    ...                               "points": 30, "decay": {"half_life_days": 7}}]},
    ...     "grades": {"fit": {"A": {"from": 20}, "B": {"below": 20}},
    ...                "engagement": {"1": {"from": 10}, "2": {"below": 10}}},
    ...     "mql": {"threshold": 30}}
    >>> spine = pd.DataFrame({"lead_id": "L1", "as_of": t("2025-01-12", "2025-01-19")})
    >>> rule_scores(data, spine, rules)[["rule_score", "rule_grade", "rule_mql", "points__demo"]]
       rule_score rule_grade  rule_mql  points__demo
    0        35.0         A1      True          15.0
    1        27.5         A2     False           7.5
    """
    return rule_scores_of_checked_spine(
        data, as_spine(spine), load_rules(rules, data.settings), explain=explain
    )


def rule_scores_of_checked_spine(
    data: LeadData,
    spine: pd.DataFrame,
    rules: Rules,
    *,
    explain: bool = True,
    attributes: str | None = None,
) -> pd.DataFrame:
    """:func:`rule_scores` of a spine already checked by :func:`~leadml.data.asof.as_spine`, with
    validated rules; ``attributes``: the spine's table from
    :func:`~leadml.data.attributes.attributes_table`, if the caller holds one."""
    instants = spine["as_of"].unique()
    with registered(data, spine, checked=True) as name:
        if len(instants) == 1 and rules.engagement.rules:  # the nightly run: a compiled pass
            from leadml.rules._instant import engagement_points  # numba: imported when used

            points = engagement_points(data, name, spine, rules, instants[0])
            engaged = data.registered("engagement", points)
        else:
            engaged = nullcontext()
        with engaged as engagement:
            sql = score_sql(
                data, name, rules, explain=explain, engagement=engagement, attributes=attributes
            )
            frame = data.con.execute(sql).df()
    frame["rule_grade"] = frame["rule_grade"].astype("str")
    frame["rule_mql"] = frame["rule_mql"].astype(bool)
    return frame


def rule_scores_as_of(
    data: LeadData, as_of: pd.Timestamp | str, rules: RulesLike = None, *, explain: bool = True
) -> pd.DataFrame:
    """Rule scores of every lead open at ``as_of`` (the nightly run)."""
    return rule_scores(data, open_leads(data, as_of), rules, explain=explain)


def fired_rules(scores: pd.DataFrame, rules: RulesLike = None, *, settings=None) -> pd.DataFrame:
    """The explanation columns of :func:`rule_scores` as one row per non-zero contribution.

    Columns ``lead_id``, ``as_of``, ``kind`` (fit or engagement), ``rule`` (a rule name, or
    ``cap:<group>``) and ``points``; largest contributions (by size) first within each pair.
    """
    rules = load_rules(rules, settings)
    columns = [c for c in scores.columns if c.startswith(("points__", "cap__"))]
    if not columns:
        raise ValueError("scores have no explanation columns: use rule_scores(..., explain=True)")
    long = scores.melt(["lead_id", "as_of"], columns, var_name="rule", value_name="points")
    long = long[long["points"] != 0]
    prefix, _, name = (long["rule"].str.partition("__")[i] for i in range(3))
    long["kind"] = name.map(rules.kind_of)
    long["rule"] = name.where(prefix == "points", "cap:" + name)
    long["size"] = long["points"].abs()
    long = long.sort_values(
        ["as_of", "lead_id", "size"], ascending=[True, True, False], kind="stable"
    )
    return long[["lead_id", "as_of", "kind", "rule", "points"]].reset_index(drop=True)


def usable_rules(rules: Rules, data: LeadData) -> Rules:
    """``rules`` without the fit rules on attributes ``data``'s input cannot supply.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadml import load_data
    >>> data = load_data({
    ...     "leads": pd.DataFrame({"lead_id": ["L1"], "created_at": ["2025-01-01"]}),
    ...     "events": pd.DataFrame({"lead_id": ["L1"], "event_type": ["demo_request"],
    ...                             "occurred_at": ["2025-01-05"]}),
    ...     "stages": pd.DataFrame({"lead_id": ["L1"], "stage": ["lead"],
    ...                             "entered_at": ["2025-01-01"]})})
    >>> rules = load_rules(None, data.settings)
    >>> [r.name for r in usable_rules(rules, data).fit.rules]
    ['student', 'competitor', 'free_mail']
    """
    unavailable = data.unavailable
    kept = tuple(r for r in rules.fit.rules if r.attribute not in unavailable)
    if len(kept) == len(rules.fit.rules):
        return rules
    return rules.model_copy(update={"fit": rules.fit.model_copy(update={"rules": kept})})


# --- SQL ----------------------------------------------------------------------------------------


def score_sql(
    data: LeadData,
    spine: str,
    rules: Rules,
    *,
    explain: bool = True,
    engagement: str | None = None,
    attributes: str | None = None,
) -> str:
    """SQL for :func:`rule_scores` over a registered spine (see
    :func:`leadml.data.asof.registered`).

    ``engagement``: a table of the engagement rules' points per pair already computed (see
    :mod:`leadml.rules._instant`), instead of summing the events in SQL; ``attributes``: the
    spine's :func:`~leadml.data.attributes.attributes_table`, instead of computing them. Fit rules
    on attributes the input lacks are skipped (:func:`usable_rules`)."""
    rules = usable_rules(rules, data)
    fit_cols = [(f"points__{r.name}", _fit_points(r)) for r in rules.fit.rules]
    eng_cols = [f"points__{r.name}" for r in rules.engagement.rules]
    fit_select = "".join(f", {expr} AS {col}" for col, expr in fit_cols)
    eng_join, eng_select = "", ""
    if rules.engagement.rules:
        if engagement is None:
            engagement = f"({_engagement_sql(spine, rules, data.settings)})"
        eng_join = f"LEFT JOIN {engagement} e USING (lead_id, as_of)"
        eng_select = "".join(f", coalesce(e.{c}, 0.0) AS {c}" for c in eng_cols)
    # Caps: a group's adjustment is its clipped total minus its total; a section's applies after.
    fit_caps = _caps(rules, "fit", [c for c, _ in fit_cols])
    eng_caps = _caps(rules, "engagement", eng_cols)
    caps = [*fit_caps, *eng_caps]
    cap_select = "".join(f", {expr} AS {col}" for col, expr in caps)
    fit_all = " + ".join(["0.0", *[c for c, _ in fit_cols], *[c for c, _ in fit_caps]])
    eng_all = " + ".join(["0.0", *eng_cols, *[c for c, _ in eng_caps]])
    explain_cols = (
        "".join(f", {c}" for c in [*[c for c, _ in fit_cols], *eng_cols, *[c for c, _ in caps]])
        if explain
        else ""
    )
    return f"""
        WITH base AS (
            SELECT a.lead_id, a.as_of{fit_select}{eng_select}
            FROM {attributes or f"({lead_attributes(data, spine)})"} a {eng_join}
        ), capped AS (
            SELECT *{cap_select} FROM base
        ), scored AS (
            -- Rounded to 1e-6 points: a capped sum is exact in decimal but not in floating point,
            -- and a score sitting at a cap and the threshold must not flicker across it.
            SELECT *, round({fit_all}, 6) AS rule_fit_score,
                round({eng_all}, 6) AS rule_engagement_score
            FROM capped
        )
        SELECT lead_id, as_of, rule_fit_score, rule_engagement_score,
            round(rule_fit_score + rule_engagement_score, 6) AS rule_score,
            {_grade_sql(rules, "fit", "rule_fit_score")}
                || {_grade_sql(rules, "engagement", "rule_engagement_score")} AS rule_grade,
            round(rule_fit_score + rule_engagement_score, 6) >= {rules.mql.threshold!r} AS rule_mql
            {explain_cols}
        FROM scored
        ORDER BY as_of, lead_id
    """


def _fit_points(rule: FitRule) -> str:
    column = f"a.{rule.attribute}"
    if rule.in_ is not None:
        values = ", ".join(sql_str(v.strip().lower()) for v in rule.in_)
        condition = f"lower({column}) IN ({values})"
    elif rule.range is not None:
        parts = []
        if rule.range.from_ is not None:
            parts.append(f"{column} >= {rule.range.from_!r}")
        if rule.range.below is not None:
            parts.append(f"{column} < {rule.range.below!r}")
        condition = " AND ".join(parts)
    else:
        condition = f"{column} = {'true' if rule.is_ else 'false'}"
    return f"CASE WHEN {condition} THEN {rule.points!r} ELSE 0.0 END"


Kernel = tuple[float | None, float | None, float | None]  # window, half-life, lifespan


def kernel_of(rules: Rules, rule: EngagementRule) -> Kernel:
    decay: Decay = rules.decay_of(rule)
    window = rule.window_days
    if decay.lifespan_days is not None:
        # Past its lifespan an event is worth nothing: the lifespan is a window too.
        window = decay.lifespan_days if window is None else min(window, decay.lifespan_days)
    return (window, decay.half_life_days, decay.lifespan_days)


def widest_window(kernels: Iterable[Kernel]) -> float | None:
    """The widest window of the kernels: the events any rule may count (``None``: all)."""
    windows = [k[0] for k in kernels]
    return None if any(w is None for w in windows) else max(windows)  # type: ignore[type-var]


def _kernels(rules: Rules) -> dict[Kernel, str]:
    kernels: dict[Kernel, str] = {}
    for rule in rules.engagement.rules:
        kernels.setdefault(kernel_of(rules, rule), f"k{len(kernels)}")
    return kernels


def _kernel_sum(kernel: Kernel) -> str:
    # The same weights as the nightly compiled pass, rules._instant._add_weights.
    window, half_life, lifespan = kernel
    if half_life is not None:
        weight = f"pow(0.5, age_days / {half_life!r})"
    elif lifespan is not None:
        weight = f"greatest(0.0, 1.0 - age_days / {lifespan!r})"
    else:
        weight = "1.0"
    if window is None:
        return f"sum({weight})"
    # age_days <= window matches asof.visible: an event exactly window_days old is inside.
    return f"sum(CASE WHEN age_days <= {window!r} THEN {weight} ELSE 0.0 END)"


def event_types_of(rule: EngagementRule, settings: Settings) -> tuple[str, ...]:
    """The canonical event types a rule counts; a buying stage stands for all its types."""
    if rule.event_type is not None:
        return rule.event_type
    stage_of = settings.data.buying_stage_lookup()
    stages = set(rule.buying_stage or ())
    # Raw types mapped nowhere become 'other', whose buying stage is 'none'.
    return tuple(t for t, s in {**stage_of, "other": "none"}.items() if s in stages)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})" if values else "false"


def _engagement_sql(spine: str, rules: Rules, settings: Settings) -> str:
    counting, quiet = split_inactivity(rules)
    parts = []
    if counting.engagement.rules:
        parts.append(_counting_sql(spine, counting, settings))
    if quiet:
        parts.append(inactivity_sql(visible("events", spine), quiet, settings, "lead_id, as_of"))
    if len(parts) == 1:
        return parts[0]
    return f"SELECT * FROM ({parts[0]}) FULL JOIN ({parts[1]}) USING (lead_id, as_of)"


def _counting_sql(spine: str, rules: Rules, settings: Settings) -> str:
    kernels = _kernels(rules)
    widest = widest_window(kernels)
    types = {r.name: event_types_of(r, settings) for r in rules.engagement.rules}
    sums = ", ".join(f"{_kernel_sum(k)} AS {name}" for k, name in kernels.items())
    per_rule = []
    for rule in rules.engagement.rules:
        kernel = kernels[kernel_of(rules, rule)]
        counted = _in("event_type", types[rule.name])
        raw = f"{rule.points!r} * sum(CASE WHEN {counted} THEN {kernel} ELSE 0.0 END)"
        if rule.cap is not None:
            raw = _clip(raw, rule.cap)
        per_rule.append(f"{raw} AS points__{rule.name}")
    per_type = (
        f"SELECT lead_id, as_of, event_type, {sums} "
        f"FROM ({visible('events', spine, window_days=widest)}) "
        f"WHERE {counted_events(rules, types)} GROUP BY ALL"
    )
    return f"""
        SELECT lead_id, as_of, {", ".join(per_rule)}
        FROM ({per_type})
        GROUP BY lead_id, as_of
    """


def split_inactivity(rules: Rules) -> tuple[Rules, tuple[EngagementRule, ...]]:
    """``rules`` with only the engagement rules that count events, and the ``inactive_days``
    rules apart: they read the age of the latest event of their types, however old, so they
    neither widen the counting rules' window nor join their sums."""
    quiet = tuple(r for r in rules.engagement.rules if r.inactive_days is not None)
    if not quiet:
        return rules, ()
    counting = tuple(r for r in rules.engagement.rules if r.inactive_days is None)
    section = rules.engagement.model_copy(update={"rules": counting})
    return rules.model_copy(update={"engagement": section}), quiet


def inactivity_sql(
    events: str, quiet: Sequence[EngagementRule], settings: Settings, keys: str
) -> str:
    """SQL: each inactivity rule's points, ``points__<rule>``, per ``keys`` of ``events`` (the
    visible events, with ``age_days``): its points when the latest event of its types is older
    than ``inactive_days`` days. Older, because an event exactly N days old is inside an N-day
    window (:func:`~leadml.data.asof.in_window`). Keys without such events have no row."""
    types = {r.name: event_types_of(r, settings) for r in quiet}
    every = sorted({t for ts in types.values() for t in ts})
    columns = ", ".join(
        f"CASE WHEN min(age_days) FILTER (WHERE {_in('event_type', types[r.name])}) > "
        f"{r.inactive_days!r} THEN {r.points!r} ELSE 0.0 END AS points__{r.name}"
        for r in quiet
    )
    return (
        f"SELECT {keys}, {columns} FROM ({events}) WHERE {_in('event_type', every)} GROUP BY {keys}"
    )


def counted_events(rules: Rules, types: dict[str, tuple[str, ...]]) -> str:
    """SQL condition: some rule counts the event (its type, inside that rule's window).

    Rules rarely count every event: page views and e-mail opens, the commonest types, only
    within a month, say. Skipping the rest before grouping is exact and saves most of the work.
    """
    window_of: dict[float | None, set[str]] = {}
    for rule in rules.engagement.rules:
        window = kernel_of(rules, rule)[0]
        window_of.setdefault(window, set()).update(types[rule.name])
    tests = []
    for window, counted in window_of.items():
        test = _in("event_type", sorted(counted))
        tests.append(test if window is None else f"({test} AND {in_window(window)})")
    return "(" + " OR ".join(tests) + ")"


def _clip(expr: str, cap: float) -> str:
    return f"least(greatest({expr}, {-cap!r}), {cap!r})"


def _caps(rules: Rules, kind: str, columns: Sequence[str]) -> list[tuple[str, str]]:
    """The adjustment columns of the groups of one score and of the score itself."""
    section = getattr(rules, kind)
    members: dict[str, list[str]] = {}
    for rule in section.rules:
        if rule.group is not None:
            members.setdefault(rule.group, []).append(f"points__{rule.name}")
    caps: list[tuple[str, str]] = []
    for group, cols in members.items():
        total = "(" + " + ".join(cols) + ")"
        caps.append((f"cap__{group}", f"{_clip(total, rules.groups[group].cap)} - {total}"))
    total = "(" + " + ".join(["0.0", *columns, *[f"({expr})" for _, expr in caps]]) + ")"
    if section.cap is not None:
        caps.append((f"cap__{kind}", f"{_clip(total, section.cap)} - {total}"))
    return caps


def _grade_sql(rules: Rules, which: str, column: str) -> str:
    bands = getattr(rules.grades, which)
    cases = []
    for label, band in bands.items():
        tests = []
        if band.from_ is not None:
            tests.append(f"{column} >= {band.from_!r}")
        if band.below is not None:
            tests.append(f"{column} < {band.below!r}")
        cases.append(f"WHEN {' AND '.join(tests) or 'true'} THEN {sql_str(label)}")
    return f"(CASE {' '.join(cases)} END)"
