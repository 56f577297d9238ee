"""Every kind of bad rules file is rejected with a message naming the key path; all at once."""

# The expected messages read best whole, one per line.
# ruff: noqa: E501

from __future__ import annotations

import copy

import pytest
from typer.testing import CliRunner

from leadml import ConfigError, Settings, load_rules
from leadml.cli import app
from leadml.config import DataSettings, EventType
from leadml.rules import DEFAULT_RULES, rule_problems
from rules_helpers import make_rules

GOOD = make_rules(
    fit=[{"name": "vp", "attribute": "seniority", "in": ["vp"], "points": 20}],
    engagement=[{"name": "views", "event_type": "page_view", "points": 1, "group": "web"}],
    groups={"web": {"cap": 10}},
)


def problems_of(**changes) -> list[str]:
    """Problems of GOOD after applying ``changes``: dotted paths (list items by index) -> value."""
    raw = copy.deepcopy(GOOD)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return rule_problems(raw)


def test_the_good_file_and_the_default_file_are_valid():
    assert rule_problems(GOOD) == []
    assert load_rules(DEFAULT_RULES).mql.threshold == 100


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # unknown keys, with a suggestion
        ({"mql__treshold": 5}, "mql.treshold: unknown key (did you mean 'threshold'?)"),
        ({"fit__rules__0__pionts": 5}, "fit.rules[0].pionts (rule vp): unknown key (did you mean 'points'?)"),
        ({"engagement__rules__0__windw_days": 5}, "engagement.rules[0].windw_days (rule views): unknown key (did you mean 'window_days'?)"),
        ({"engagement__decay": {"half_life": 3}}, "engagement.decay.half_life: unknown key (did you mean 'half_life_days'?)"),
        ({"scoring": {}}, "scoring: unknown key"),
        # unknown event types, buying stages, attributes and attribute values
        ({"engagement__rules__0__event_type": ["page_view", "demo_requst"]},
         "engagement.rules[0].event_type (rule views): unknown event type 'demo_requst' (did you mean 'demo_request'?)"),
        ({"engagement__rules__0": {"name": "d", "buying_stage": "decison", "points": 1}},
         "engagement.rules[0].buying_stage (rule d): unknown buying stage 'decison' (did you mean 'decision'?)"),
        ({"fit__rules__0__attribute": "senority"},
         "fit.rules[0].attribute (rule vp): unknown attribute 'senority' (did you mean 'seniority'?)"),
        ({"fit__rules__0__attribute": "email"}, "fit.rules[0].attribute (rule vp): unknown attribute 'email'"),
        ({"fit__rules__0__in": ["clevel"]},
         "fit.rules[0].in (rule vp): 'clevel' is not a seniority value (did you mean 'c_level'?)"),
        ({"fit__rules__0": {"name": "b", "attribute": "revenue_band", "in": ["10M-60M"], "points": 1}},
         "fit.rules[0].in (rule b): '10M-60M' is not a revenue_band value"),
        ({"fit__rules__0": {"name": "c", "attribute": "country", "in": ["USA"], "points": 1}},
         "fit.rules[0].in (rule c): 'USA' is not an ISO-3166 alpha-2 country code"),
        # conditions that do not fit the attribute, or are missing
        ({"fit__rules__0": {"name": "s", "attribute": "is_student", "in": ["yes"], "points": 1}},
         "fit.rules[0].in (rule s): 'in' needs a text attribute; is_student is yes/no: use 'is'"),
        ({"fit__rules__0": {"name": "e", "attribute": "industry", "range": {"from": 1}, "points": 1}},
         "fit.rules[0].range (rule e): 'range' needs a numeric attribute; industry is text: use 'in'"),
        ({"fit__rules__0": {"name": "e", "attribute": "industry", "points": 1}},
         "fit.rules[0] (rule e): a fit rule needs exactly one condition of 'in', 'range' and 'is'"),
        ({"engagement__rules__0": {"name": "x", "points": 1}},
         "engagement.rules[0] (rule x): an engagement rule needs exactly one of 'event_type' and 'buying_stage'"),
        ({"engagement__rules__0": {"name": "q", "buying_stage": "awareness", "inactive_days": 90, "cap": 5, "points": -5}},
         "engagement.rules[0] (rule q): an 'inactive_days' rule counts no events, it gives its points once: leave out cap"),
        ({"engagement__rules__0__inactive_days": 0}, "engagement.rules[0].inactive_days (rule views): Input should be greater than 0 (got 0)"),
        # bad ranges and numbers
        ({"fit__rules__0": {"name": "r", "attribute": "employee_count", "range": {"from": 500, "below": 200}, "points": 1}},
         "fit.rules[0].range (rule r): 'from' (500) must be less than 'below' (200)"),
        ({"fit__rules__0": {"name": "r", "attribute": "employee_count", "range": {}, "points": 1}},
         "fit.rules[0].range (rule r): a range needs 'from', 'below' or both"),
        ({"engagement__rules__0__window_days": -7}, "engagement.rules[0].window_days (rule views): Input should be greater than 0 (got -7)"),
        ({"engagement__rules__0__cap": 0}, "engagement.rules[0].cap (rule views): Input should be greater than 0 (got 0)"),
        ({"groups__web__cap": -1}, "groups.web.cap: Input should be greater than 0 (got -1)"),
        ({"engagement__rules__0__decay": {"half_life_days": 7, "lifespan_days": 30}},
         "engagement.rules[0].decay (rule views): choose one of 'half_life_days' and 'lifespan_days', not both"),
        ({"engagement__rules__0__decay": {"half_life_days": 0}},
         "engagement.rules[0].decay.half_life_days (rule views): Input should be greater than 0 (got 0)"),
        ({"engagement__decay": "fast"}, "engagement.decay: 'fast': write 'none', {half_life_days: N} or {lifespan_days: N}"),
        # type errors
        ({"fit__rules__0__points": "ten"}, "fit.rules[0].points (rule vp): Input should be a valid number (got 'ten')"),
        ({"fit__rules__0__points": True}, "fit.rules[0].points (rule vp): Input should be a valid number (got True)"),
        ({"fit__rules__0": {"name": "n", "attribute": "country", "in": ["SE", False], "points": 1}},
         "fit.rules[0].in[1] (rule n): Input should be a valid string (got False); YAML reads yes/no/on/off (and the country NO) as true/false: quote it"),
        ({"fit__rules": {"name": "x"}}, "fit.rules: Input should be a valid tuple"),
        ({"mql": 100}, "mql: Input should be a valid dictionary (got 100)"),
        ({"fit__rules__0__name": "VP Rule"}, "fit.rules[0].name (rule VP Rule): 'VP Rule' is not a valid name"),
        # overlapping bands, gaps, open ends
        ({"grades__fit": {"A": {"from": 50}, "B": {"from": 40, "below": 60}, "C": {"below": 40}}},
         "grades.fit: bands B [40, 60) and A [50, inf) overlap"),
        ({"grades__engagement": {1: {"from": 50}, 2: {"below": 40}}},
         "grades.engagement: scores in [40, 50) fall in no band (between 2 and 1)"),
        ({"grades__fit": {"A": {"from": 50}, "B": {"from": 0, "below": 50}}},
         "grades.fit: scores below 0 fall in no band (give band B no 'from')"),
        ({"grades__fit": {"A": {"from": 50, "below": 100}, "B": {"below": 50}}},
         "grades.fit: scores of 100 and more fall in no band (give band A no 'below')"),
        ({"grades__fit": {}}, "grades.fit: needs at least one band"),
        ({"grades__fit": {"A": {"from": 5, "below": 1}}}, "grades.fit: band A [5, 1): 'from' must be less than 'below'"),
        # names and groups across the file
        ({"engagement__rules__0__name": "vp"}, "engagement.rules[0].name (rule vp): 'vp' is already the name of fit.rules[0]"),
        ({"engagement__rules__0__group": "webb"}, "engagement.rules[0].group (rule views): unknown group 'webb' (did you mean 'web'?)"),
        ({"fit__rules__0__group": "web"}, "groups.web: has both fit and engagement rules"),
        ({"groups__fit": {"cap": 3}}, "groups.fit: 'fit' is reserved for the fit score's own cap"),
        # missing sections
        ({"mql": {}}, "mql.threshold: missing"),
    ],
)  # fmt: skip
def test_each_kind_of_problem_is_reported_with_its_key_path(changes, expected):
    problems = problems_of(**changes)
    assert any(p.startswith(expected) for p in problems), problems


def test_all_problems_are_reported_at_once_in_file_order():
    problems = problems_of(
        mql__treshold=5,
        fit__rules__0__attribute="senority",
        engagement__rules__0__event_type="demo_requst",
        engagement__rules__0__window_days="a week",
        grades__fit={"A": {"from": 50}, "B": {"below": 60}},
        groups__web__cap=0,
    )
    assert [p.split(":")[0] for p in problems] == [
        "fit.rules[0].attribute (rule vp)",
        "engagement.rules[0].event_type (rule views)",
        "engagement.rules[0].window_days (rule views)",
        "groups.web.cap",
        "grades.fit",
        "mql.treshold",
    ]


def test_load_rules_raises_one_config_error_listing_everything(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("mql: {threshold: 50, treshold: 5}\ngrades: {fit: {A: {}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert str(caught.value) == (
        f"{path}: 2 problems\n  grades.engagement: missing\n"
        "  mql.treshold: unknown key (did you mean 'threshold'?)"
    )
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mql: [threshold: 5", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping at the top level"),
    ],
)
def test_unreadable_files(tmp_path, text, expected):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_rules(path)
    with pytest.raises(ConfigError, match="rules file not found"):
        load_rules(tmp_path / "missing.yaml")


def test_event_types_come_from_the_settings():
    custom = make_rules(engagement=[{"name": "g2", "event_type": "review_site_visit", "points": 5}])
    assert "unknown event type 'review_site_visit'" in rule_problems(custom)[0]
    types = {**DataSettings().event_types, "review_site_visit": EventType(stage="consideration")}
    settings = Settings(data=DataSettings(event_types=types))
    assert rule_problems(custom, settings) == []


def test_cli_exits_2_without_scoring_on_a_bad_rules_file(tmp_path, tiny_tables):
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in tiny_tables.items():
        frame.to_parquet(data / f"{name}.parquet")
    bad = tmp_path / "rules.yaml"
    bad.write_text("fit:\n  rules:\n    - {name: vp, attribute: seniority, in: [clevel], points: 5}\n"
                   "mql: {threshold: 10}\n")  # fmt: skip
    out = tmp_path / "scores.csv"
    args = ["rules", "--data", str(data), "--as-of", "2025-03-01", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--rules", str(bad)])
    assert result.exit_code == 2
    assert "fit.rules[0].in (rule vp): 'clevel' is not a seniority value" in result.output
    assert "grades: missing" in result.output
    assert not out.exists()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 open leads scored" in result.output
    assert (
        out.read_text()
        .splitlines()[0]
        .startswith(
            "lead_id,as_of,rule_fit_score,rule_engagement_score,rule_score,rule_grade,rule_mql"
        )
    )
