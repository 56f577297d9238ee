"""The world's accounts and leads: firmographics, buying windows, who each lead is, when it
arrives, and the hidden parameters of its journey."""

from __future__ import annotations

import numpy as np

from leadml.synth.draws import categorical, time_of_day
from leadml.synth.journeys import daily_rates
from leadml.synth.people import (
    COMPETITORS,
    FIRST_NAMES,
    LAST_NAMES,
    TITLE_DEPARTMENT,
    company_domains,
    pick_titles,
)
from leadml.synth.scenarios import Scenario
from leadml.synth.vocabulary import (
    C_LEVEL_DEPARTMENT_P,
    COMPETITOR,
    COUNTRIES,
    COUNTRY_FIT,
    COUNTRY_P,
    COUNTRY_PEAK,
    DEPARTMENT_FIT,
    DEPARTMENT_P,
    FREE_MAIL,
    INDUSTRIES,
    INDUSTRY_FIT,
    INDUSTRY_P,
    KIND_P,
    LEAD_SOURCES,
    REVENUE_PER_EMPLOYEE,
    SENIORITY_FIT,
    SENIORITY_P,
    SENIORITY_POINTS,
    SOURCE_BAD_EMAIL,
    SOURCE_INTEREST,
    SOURCE_P,
    SOURCE_P_CONSIDERING,
    SOURCE_P_DECIDING,
    STUDENT,
    TECH_FIT,
)
from leadml.synth.world import World

_NEVER = np.iinfo(np.int64).max // 4  # window day of accounts that are never in market


def make_accounts(
    rng: np.random.Generator, n: int, world: World, spec: Scenario
) -> dict[str, np.ndarray]:
    """Firmographics, an e-mail domain and an optional in-market window per account."""
    industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_P)
    employees = np.clip(np.exp(rng.normal(4.3, 1.7, n)), 1, 400_000).round().astype(np.int64)
    revenue = employees * REVENUE_PER_EMPLOYEE[industry] * np.exp(rng.normal(0, 0.5, n))
    revenue = np.round(revenue, -3)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_P)
    # Bigger companies run Salesforce more often, small ones HubSpot or nothing.
    big = np.log10(employees) / 5.0
    tech_p = np.stack(
        [0.15 + 0.45 * big, 0.35 - 0.15 * big, 0.1 + 0.1 * big, np.full(n, 0.08), 0.32 - 0.4 * big],
        axis=1,
    ).clip(0.02)
    tech = categorical(rng, tech_p / tech_p.sum(1, keepdims=True))
    competitor = np.zeros(n, dtype=bool)
    comp_rows = rng.choice(n, len(COMPETITORS), replace=False)
    competitor[comp_rows] = True
    industry[comp_rows] = 0
    employees[comp_rows] = [850, 320, 1400]
    revenue[comp_rows] = [1.2e8, 4.1e7, 2.3e8]
    country[comp_rows] = [0, 1, 0]

    # In market: a buying window during which every lead of the account moves faster.
    size_lift = np.clip(np.log10(employees) / 4, 0, 1)
    in_market = rng.random(n) < 0.25 + 0.2 * size_lift
    if world.steady:
        w_start = rng.integers(-60, world.days, n)
    else:  # windows open in proportion to the drift level: more accounts in market later
        k, span = np.log(world.drift[1] / world.drift[0]) / world.days, world.days + 60
        w_start = (np.log1p(rng.random(n) * np.expm1(k * span)) / k - 60).astype(np.int64)
    w_len = 30 + rng.gamma(2.0, 30.0, n).astype(np.int64)
    w_start = np.where(in_market & ~competitor, w_start, _NEVER)
    w_end = np.where(in_market & ~competitor, w_start + w_len, w_start)

    fit = (
        INDUSTRY_FIT[industry]
        * COUNTRY_FIT[country]
        * TECH_FIT[tech]
        * (0.35 + 1.05 / (1 + np.exp(-(np.log10(employees) - 2.0) / 0.45)))
    )
    # Buying committees: larger companies bring more leads, with a heavy tail.
    weight = employees**0.35 * np.exp(rng.normal(0, 1.0, n))
    weight[competitor] = 0.0
    domain = company_domains(rng, country, comp_rows)
    # Drawn last, and only when some are missing, so that the other scenarios keep their draws.
    recorded = np.ones(n, dtype=bool)
    if spec.firmographics_share < 1.0:
        recorded = rng.random(n) < spec.firmographics_share
    return {
        "industry": industry,
        "employees": employees,
        "revenue": revenue,
        "country": country,
        "tech": tech,
        "competitor": competitor,
        "w_start": w_start,
        "w_end": w_end,
        "fit": fit,
        "weight": weight / weight.sum(),
        "domain": domain,
        "recorded": recorded,
    }


def make_leads(
    rng: np.random.Generator, n: int, acc: dict[str, np.ndarray], world: World, spec: Scenario
) -> dict[str, np.ndarray]:
    """Who the leads are, when they arrive, and the hidden parameters of their journeys."""
    source = rng.choice(len(LEAD_SOURCES), n, p=SOURCE_P)
    kind = rng.choice(4, n, p=KIND_P)
    bad_email = (rng.random(n) < SOURCE_BAD_EMAIL[source]) & (kind != COMPETITOR)

    # Company: corporate leads always have one; free-mail leads often (enrichment), students never.
    n_acc = len(acc["industry"])
    account = rng.choice(n_acc, n, p=acc["weight"])
    comp_accounts = np.flatnonzero(acc["competitor"])
    account = np.where(kind == COMPETITOR, comp_accounts[rng.integers(0, 3, n)], account)
    no_account = (kind == STUDENT) | ((kind == FREE_MAIL) & (rng.random(n) < 0.35))
    account = np.where(no_account, -1, account)
    has_acc = account >= 0
    acc_idx = np.where(has_acc, account, 0)

    # Seniority and department, then a job title that a keyword rule can read back.
    seniority = np.where(kind == STUDENT, 5, rng.choice(5, n, p=SENIORITY_P))
    department = np.where(
        seniority == 0, rng.choice(8, n, p=C_LEVEL_DEPARTMENT_P), rng.choice(7, n, p=DEPARTMENT_P)
    )
    title = pick_titles(rng, seniority, department)
    department = np.where(seniority == 5, TITLE_DEPARTMENT[title], department)
    title = np.where(rng.random(n) < 0.04, -1, title)  # some CRMs leave the title empty

    country = np.where(
        has_acc & (rng.random(n) < 0.85),
        acc["country"][acc_idx],
        rng.choice(len(COUNTRIES), n, p=COUNTRY_P),
    )

    # Creation time: spread over the history (or its first part) with growth, fewer on
    # weekends; leads of an in-market account often arrive inside the account's window.
    span = world.days if spec.created_share == 1.0 else round(world.days * spec.created_share)
    growth = np.log(1.5) / 365
    u = rng.random(n)
    day = np.log1p(u * np.expm1(growth * span)) / growth
    ws, we = acc["w_start"][acc_idx], acc["w_end"][acc_idx]
    lo, hi = np.maximum(ws, 0), np.minimum(we, span)
    in_window = has_acc & (hi > lo) & (rng.random(n) < 0.4)
    day = np.where(in_window, lo + rng.random(n) * (hi - lo), day).astype(np.int64)
    wd = world.weekday(day)
    move = rng.random(n) < 0.65
    day = np.where(move & (wd == 5), day - 1, np.where(move & (wd == 6), day + 1, day))
    day = np.clip(day, 0, span - 1)
    peak = COUNTRY_PEAK[country]
    created = day + time_of_day(rng, peak)
    order = np.argsort(created, kind="stable")  # lead ids follow creation order

    # Hidden parameters.
    interest = np.exp(rng.normal(0.0, 0.55, n))
    kind_fit = np.array([1.0, 0.45, 0.0, 0.0])[kind] * ~bad_email
    fit = (
        SENIORITY_FIT[seniority]
        * DEPARTMENT_FIT[department]
        * kind_fit
        * np.where(has_acc, acc["fit"][acc_idx], 0.55)
    )
    engage = SOURCE_INTEREST[source] * interest * np.array([1.0, 0.85, 1.3, 1.0])[kind]
    activity = np.exp(rng.normal(0.0, 0.75, n)) * (0.6 + 0.4 * interest) * spec.activity
    start_state = categorical(
        rng,
        np.stack(
            [
                1 - SOURCE_P_CONSIDERING[source] - SOURCE_P_DECIDING[source],
                SOURCE_P_CONSIDERING[source],
                SOURCE_P_DECIDING[source],
            ],
            axis=1,
        ),
    )
    fit_points = (
        SENIORITY_POINTS[seniority]
        - 15.0 * (kind == FREE_MAIL)
        - 100.0 * (kind == COMPETITOR)
        - 20.0 * bad_email
    )
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    mail_pick = rng.random(n)
    title_lower = rng.random(n) < 0.08  # the draws keep the order of the default
    mail_digit = rng.integers(1, 99, n)
    # Drawn last, and only when some are missing, so that the other scenarios keep their draws.
    crm_account = account
    if spec.account_share < 1.0:
        crm_account = np.where(rng.random(n) < spec.account_share, account, -1)
    leads = {
        "source": source,
        "kind": kind,
        "bad_email": bad_email,
        "account": account,
        "seniority": seniority,
        "department": department,
        "title": title,
        "title_lower": title_lower,
        "country": country,
        "created": created,
        "peak": peak,
        "interest": interest,
        "fit": fit,
        "engage": engage,
        "activity": activity,
        "start_state": start_state,
        "fit_points": fit_points,
        "first": first,
        "last": last,
        "mail_pick": mail_pick,
        "mail_digit": mail_digit,
        "crm_account": crm_account,
        "w_start": np.where(has_acc, ws, _NEVER),
        "w_end": np.where(has_acc, we, _NEVER),
    }
    leads = {k: v[order] for k, v in leads.items()}
    leads["rates"] = daily_rates(leads) * spec.pace
    # Sales accepts most MQLs; it rejects poor fits, and almost always students and competitors.
    accept = (
        np.array([0.95, 0.93, 0.9, 0.84, 0.7, 0.1])[leads["seniority"]]
        * np.array([1.0, 0.75, 0.1, 0.1])[leads["kind"]]
        * np.where(leads["bad_email"], 0.1, 1.0)
    )
    leads["p_accept"] = accept
    return leads
