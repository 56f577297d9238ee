"""A realistic sample history (accounts, leads, events, stages) with an exact hidden ground truth.

Every lead follows a hidden buying journey: a Markov chain in daily steps over

    dormant -> considering -> deciding -> converted (absorbing)
                      \\            \\
                       +------------+---> cold (absorbing)

with back-steps (considering -> dormant, deciding -> considering). Its daily transition
probabilities are the lead's own: they depend on fit (seniority, department, company size,
industry, country, tech stack, e-mail kind), on the lead source, on a hidden per-lead interest and,
while the lead's account is *in market*, on a known account-level window that lifts every lead of
that account. Students, competitors and leads with a bad e-mail address can never convert.

What the CRM and the marketing tools see is emitted from that chain:

* engagement **events** whose rates and types depend on the hidden state (decision-stage actions
  such as demo requests come almost only from ``deciding``), with sessions of several page views,
  business hours by country, fewer actions on weekends, a fading burst after sign-up, an
  unsubscribe when interest dies, bounces for bad addresses;
* lifecycle **stages**: ``mql`` when a points score crosses a threshold (a hand-raise always does),
  ``sal``/``srl`` after a sales review, and ``sql`` *exactly* when the chain reaches ``converted``
  (hand-raisers are fast-tracked through ``sal``); then ``opportunity`` and ``customer``/``lost``.

Because the chain is known, ``p_true(lead, T)`` -- the probability of reaching ``sql`` in
``(T, T + horizon]`` given the hidden state at ``T`` and the lead's parameters -- is computed
exactly by multiplying daily transition matrices. Everything observable before ``T`` depends only
on the path before ``T`` (plus independent noise), so ``p_true`` is the best any model can do and is
calibrated against the realised labels by construction. See ``docs/sample-history.md``.

The ``"drift"`` scenario makes the market heat up over the history (journeys speed up, more
accounts in market), so that the base rate of conversion grows about tenfold. The
``"sparse-crm"`` scenario records what a real CRM holds: few firmographics, many leads without an
account, a handful of events per lead, slow journeys whose outcomes arrive up to a year later,
leads created only in the first part of the history and no sales review, so that leads that never
convert never close. ``flat_export`` turns any history into a CRM's flat export (one row per lead,
activity counts, ``converted``).

Examples
--------
>>> from leadml.synth import generate_history
>>> h = generate_history(n_leads=300, seed=1)
>>> sorted(h.tables())
['accounts', 'events', 'leads', 'stages']
>>> bool(h.truth["p_true"].between(0, 1).all())
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadml.common.atomic import write_atomic
from leadml.common.safe_text import to_csv
from leadml.config import LIFECYCLE_STAGES
from leadml.errors import LeadmlError

__all__ = [
    "FLAT_ACTIVITY",
    "SCENARIOS",
    "SampleHistory",
    "Scenario",
    "flat_export",
    "generate_history",
    "write_flat",
    "write_history",
]


class SynthError(LeadmlError, ValueError):
    """An argument of the sample generator is out of range."""


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

DAY_US = 86_400_000_000
CHUNK_LEADS = 50_000  # fixed, so the output depends only on (n_leads, seed), not on memory
_NEVER = np.iinfo(np.int64).max // 4  # window day of accounts that are never in market


@dataclass(frozen=True)
class Scenario:
    """How a sample history departs from the default one (the defaults change nothing).

    Attributes
    ----------
    drift : (float, float)
        Drift level at the start and at the end of the history: buying windows open more often
        and journeys move faster as it rises (1 throughout: no drift).
    created_share : float
        Leads are created only in this first share of the history; the rest is outcomes arriving.
    pace : float
        Multiplies every daily rate of the hidden journeys: below 1, journeys last longer (the
        same chance to convert, later), so outcomes arrive up to a year after creation.
    activity : float
        Multiplies each lead's rates of web sessions, e-mail opens and paid or social touches.
    firmographics_share : float
        Share of accounts whose firmographics (industry, size, revenue, country, tech stack) the
        CRM holds; the others keep the columns, with nulls in them.
    account_share : float
        Share of the leads with a company whose account the CRM records (the hidden journey still
        depends on the company; only ``leads.account_id`` is left null).
    sales_review : bool
        Whether the CRM records the sales review (``sal``, ``srl``, a recycled ``mql`` and the
        early disqualification of unfit leads). Without it, leads go ``lead -> mql -> sql`` and a
        lead that never converts keeps its last stage for ever.
    """

    drift: tuple[float, float] = (1.0, 1.0)
    created_share: float = 1.0
    pace: float = 1.0
    activity: float = 1.0
    firmographics_share: float = 1.0
    account_share: float = 1.0
    sales_review: bool = True


SCENARIOS = {
    "default": Scenario(),
    # The market heats up: the base rate of conversion grows about tenfold over the history.
    "drift": Scenario(drift=(0.35, 5.0)),
    # A real CRM's funnel: thin records, slow deals, leads that never close.
    "sparse-crm": Scenario(
        created_share=0.7,
        pace=0.6,
        activity=0.1,
        firmographics_share=0.2,
        account_share=0.72,
        sales_review=False,
    ),
}
DRIFT_STEP_DAYS = 7  # the level changes once a week, so that journeys stay exactly simulable

# Hidden states of the buying journey.
DORMANT, CONSIDERING, DECIDING, CONVERTED, COLD = range(5)
HIDDEN_STATES = ("dormant", "considering", "deciding", "converted", "cold")
N_TRANSIENT = 3


def _columns(rows: list[tuple]) -> tuple:
    """Turn a table written row by row into (names, column array, column array, ...)."""
    names, *values = zip(*rows, strict=True)
    return (names, *(np.array(v, dtype=np.float64) for v in values))


# Canonical event types by buying stage (None: negative signals with no stage).
BUYING_STAGE: dict[str, str | None] = {
    **dict.fromkeys(
        ["page_view", "blog_view", "newsletter_signup", "email_open", "ad_click",
         "social_engagement"], "awareness"),
    **dict.fromkeys(
        ["email_click", "content_download", "case_study_view", "webinar_registration",
         "webinar_attended", "pricing_page_view", "product_page_view"], "consideration"),
    **dict.fromkeys(
        ["demo_request", "contact_request", "trial_signup", "consultation_request"], "decision"),
    **dict.fromkeys(["unsubscribe", "email_bounce"], None),
}  # fmt: skip
EVENT_TYPES = tuple(BUYING_STAGE)
_E = {name: i for i, name in enumerate(EVENT_TYPES)}
DECISION_EVENTS = np.array([_E[e] for e, stage in BUYING_STAGE.items() if stage == "decision"])

CHANNELS = ("web", "email", "ads", "social", "event", "sales")
_CHANNEL_OF = {"email_open": "email", "email_click": "email", "unsubscribe": "email",
               "email_bounce": "email", "ad_click": "ads", "social_engagement": "social",
               "webinar_attended": "event", "consultation_request": "sales"}  # fmt: skip
_EVENT_CHANNEL = np.array([CHANNELS.index(_CHANNEL_OF.get(e, "web")) for e in EVENT_TYPES])

_S = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}
ALLOWED_TRANSITIONS = {
    "lead": {"mql"},
    "mql": {"sal", "srl"},
    "sal": {"sql"},
    "srl": {"mql", "disqualified"},  # recycled when the lead raises a hand again
    "sql": {"opportunity", "disqualified"},
    "opportunity": {"customer", "lost"},
}
STAGE_REASONS = (
    "score_threshold",
    "hand_raise",
    "recycled",
    "not_a_fit",
    "no_budget",
    "bad_timing",
    "student",
    "competitor",
    "invalid_contact",
    "no_authority",
    "no_need",
    "price",
    "competitor_chosen",
    "no_decision",
)
_R = {name: i for i, name in enumerate(STAGE_REASONS)}

# Industry: share of accounts, fit multiplier, median revenue per employee (USD).
INDUSTRIES, INDUSTRY_P, INDUSTRY_FIT, REVENUE_PER_EMPLOYEE = _columns([
    ("software",              0.22, 1.35, 260e3),
    ("financial_services",    0.14, 1.20, 400e3),
    ("healthcare",            0.12, 1.00, 180e3),
    ("manufacturing",         0.12, 0.85, 220e3),
    ("retail",                0.10, 0.85, 150e3),
    ("professional_services", 0.09, 1.10, 170e3),
    ("education",             0.06, 0.45,  90e3),
    ("government",            0.04, 0.50, 120e3),
    ("media",                 0.04, 0.90, 200e3),
    ("telecommunications",    0.04, 1.00, 330e3),
    ("energy",                0.03, 0.80, 600e3),
])  # fmt: skip

# Country: share, fit multiplier, peak of local business hours as a fraction of the UTC day.
COUNTRIES, COUNTRY_P, COUNTRY_FIT, COUNTRY_PEAK = _columns([
    ("US", 0.42, 1.15, 0.68), ("GB", 0.10, 1.10, 0.48), ("DE", 0.08, 1.05, 0.44),
    ("IN", 0.08, 0.55, 0.30), ("CA", 0.05, 1.10, 0.68), ("FR", 0.05, 0.90, 0.44),
    ("AU", 0.04, 1.05, 0.08), ("NL", 0.03, 1.00, 0.44), ("BR", 0.03, 0.60, 0.62),
    ("JP", 0.02, 0.70, 0.12), ("SG", 0.02, 0.95, 0.16), ("ES", 0.02, 0.80, 0.44),
    ("SE", 0.02, 1.00, 0.44), ("IE", 0.02, 1.00, 0.48), ("MX", 0.02, 0.60, 0.72),
])  # fmt: skip
COUNTRY_TLD = (
    "com",
    "co.uk",
    "de",
    "in",
    "ca",
    "fr",
    "com.au",
    "nl",
    "com.br",
    "jp",
    "sg",
    "es",
    "se",
    "ie",
    "mx",
)

TECH_STACKS, TECH_FIT = _columns([
    ("salesforce", 1.2), ("hubspot", 1.3), ("microsoft_dynamics", 1.0), ("zoho", 0.9),
    ("none", 0.7),
])  # fmt: skip

# Lead source: share, interest multiplier, share arriving considering / deciding (the rest
# arrive dormant), share with an address that bounces.
(LEAD_SOURCES, SOURCE_P, SOURCE_INTEREST, SOURCE_P_CONSIDERING, SOURCE_P_DECIDING,
 SOURCE_BAD_EMAIL) = _columns([
    ("organic_search",      0.22, 1.00, 0.25, 0.03,  0.01),
    ("paid_search",         0.15, 0.90, 0.25, 0.04,  0.015),
    ("paid_social",         0.12, 0.55, 0.12, 0.01,  0.03),
    ("referral",            0.05, 1.70, 0.35, 0.08,  0.0),
    ("partner",             0.05, 1.40, 0.30, 0.05,  0.01),
    ("webinar",             0.09, 1.10, 0.35, 0.01,  0.01),
    ("trade_show",          0.06, 0.90, 0.30, 0.02,  0.03),
    ("content_syndication", 0.10, 0.55, 0.15, 0.005, 0.04),
    ("purchased_list",      0.08, 0.30, 0.03, 0.0,   0.12),
    ("direct",              0.08, 1.50, 0.30, 0.15,  0.01),
])  # fmt: skip

# Kinds of person behind a lead: what the e-mail domain reveals.
CORPORATE, FREE_MAIL, STUDENT, COMPETITOR = range(4)
KIND_P = np.array([0.825, 0.125, 0.035, 0.015])

# Seniority: share (students come from the kind), fit multiplier, MQL score points.
SENIORITIES, SENIORITY_P, SENIORITY_FIT, SENIORITY_POINTS = _columns([
    ("c_level",                0.04, 1.20,  20),
    ("vp",                     0.07, 1.55,  20),
    ("director",               0.14, 1.50,  15),
    ("manager",                0.26, 1.15,   8),
    ("individual_contributor", 0.49, 0.55,   0),
    ("student",                0.00, 0.00, -50),
])  # fmt: skip
SENIORITY_P = SENIORITY_P[:5]
# Department: share below c-level, share among c-levels, fit multiplier.
DEPARTMENTS, DEPARTMENT_P, C_LEVEL_DEPARTMENT_P, DEPARTMENT_FIT = _columns([
    ("marketing",   0.32, 0.12, 1.45),
    ("sales",       0.16, 0.08, 1.25),
    ("engineering", 0.14, 0.10, 0.65),
    ("it",          0.11, 0.06, 0.85),
    ("finance",     0.08, 0.08, 0.60),
    ("operations",  0.12, 0.06, 0.80),
    ("hr",          0.07, 0.00, 0.45),
    ("executive",   0.00, 0.50, 1.20),
    ("education",   0.00, 0.00, 0.30),  # students
])  # fmt: skip
DEPARTMENT_P, C_LEVEL_DEPARTMENT_P = DEPARTMENT_P[:7], C_LEVEL_DEPARTMENT_P[:8]
_DEPT_WORD = ("Marketing", "Sales", "Engineering", "IT", "Finance", "Operations", "People")

FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com")
STUDENT_DOMAINS = ("lakeside.edu", "stateu.edu", "northfield.edu", "kingsbridge.ac.uk",
                   "westmoor.ac.uk", "harbourview.edu.au")  # fmt: skip
COMPETITORS = (("Rivalytics", "rivalytics.com"), ("LeadForge", "leadforge.io"),
               ("PipeWise", "pipewise.com"))  # fmt: skip
FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Wei",
    "Priya",
    "Arjun",
    "Aisha",
    "Carlos",
    "Sofia",
    "Lukas",
    "Emma",
    "Hannah",
    "Yuki",
    "Olivia",
    "Noah",
    "Liam",
    "Mateo",
    "Chloe",
    "Fatima",
    "Ravi",
    "Anna",
    "Sven",
    "Isabel",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lee",
    "Patel",
    "Kumar",
    "Singh",
    "Chen",
    "Wang",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Dubois",
    "Martin",
    "Rossi",
    "Tanaka",
    "Sato",
    "Silva",
    "Santos",
    "Nielsen",
    "Andersson",
    "O'Brien",
    "Murphy",
    "Walker",
    "Clark",
    "Novak",
)
_DOMAIN_A = (
    "north",
    "blue",
    "bright",
    "stone",
    "silver",
    "green",
    "red",
    "iron",
    "cloud",
    "summit",
    "harbor",
    "pioneer",
    "atlas",
    "vertex",
    "nova",
    "clear",
    "swift",
    "prime",
    "orbit",
    "maple",
    "cedar",
    "quantum",
    "lumen",
    "apex",
    "delta",
    "crest",
)
_DOMAIN_B = (
    "wind",
    "field",
    "bridge",
    "works",
    "labs",
    "data",
    "systems",
    "logic",
    "point",
    "path",
    "soft",
    "health",
    "bank",
    "foods",
    "motors",
    "energy",
    "media",
    "retail",
    "group",
    "partners",
    "tech",
    "dynamics",
    "line",
    "stack",
)


def _job_titles() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All job titles with the (seniority, department) codes a keyword rule should recover."""
    titles: list[tuple[str, int, int]] = []
    chiefs = {
        0: ["CMO", "Chief Marketing Officer"],
        1: ["CRO", "Chief Revenue Officer"],
        2: ["CTO", "Chief Technology Officer"],
        3: ["CIO", "Chief Information Officer"],
        4: ["CFO", "Chief Financial Officer"],
        5: ["COO", "Chief Operating Officer"],
        7: ["CEO", "Chief Executive Officer", "Founder & CEO", "Co-Founder & CEO"],
    }
    ic = {
        0: [
            "Marketing Specialist",
            "Marketing Coordinator",
            "Content Marketer",
            "SEO Specialist",
            "Marketing Analyst",
        ],
        1: [
            "Account Executive",
            "Sales Development Representative",
            "Sales Representative",
            "Business Development Representative",
        ],
        2: [
            "Software Engineer",
            "Senior Software Engineer",
            "Data Scientist",
            "Data Engineer",
            "DevOps Engineer",
        ],
        3: ["Systems Administrator", "IT Analyst", "IT Support Specialist"],
        4: ["Financial Analyst", "Accountant", "Senior Accountant"],
        5: ["Operations Analyst", "Project Coordinator", "Buyer", "Procurement Specialist"],
        6: ["Recruiter", "HR Generalist", "Talent Acquisition Specialist"],
    }
    managers = {
        0: [
            "Demand Generation Manager",
            "Digital Marketing Manager",
            "Marketing Operations Manager",
        ],
        1: ["Sales Manager", "Inside Sales Manager"],
        2: ["Engineering Manager"],
        3: ["IT Manager"],
        4: ["Finance Manager"],
        5: ["Operations Manager", "Procurement Manager"],
        6: ["HR Manager"],
    }
    for dept, names in chiefs.items():
        titles += [(t, 0, dept) for t in names]
    for dept, word in enumerate(_DEPT_WORD):
        titles += [
            (t, 1, dept) for t in (f"VP of {word}", f"Vice President, {word}", f"SVP {word}")
        ]
        titles += [
            (t, 2, dept)
            for t in (
                f"Director of {word}",
                f"{word} Director",
                f"Head of {word}",
                f"Senior Director, {word}",
            )
        ]
        titles += [
            (t, 3, dept)
            for t in (
                f"{word} Manager",
                f"Senior {word} Manager",
                f"{word} Team Lead",
                *managers[dept],
            )
        ]
        titles += [(t, 4, dept) for t in ic[dept]]
    titles += [("Head of Procurement", 2, 5), ("VP Procurement", 1, 5)]
    titles += [(t, 5, 8) for t in ("Student", "Graduate Student", "PhD Student", "MBA Candidate")]
    titles += [
        ("Marketing Intern", 5, 0),
        ("Software Engineering Intern", 5, 2),
        ("Sales Intern", 5, 1),
        ("Finance Intern", 5, 4),
    ]
    names, sen, dept = zip(*titles, strict=True)
    return list(names), np.array(sen), np.array(dept)


JOB_TITLES, TITLE_SENIORITY, TITLE_DEPARTMENT = _job_titles()
# What a CRM's enrichment reads from a title (either spelling the leads table uses).
_TITLE_SENIORITY = {
    spelling: SENIORITIES[s]
    for title, s in zip(JOB_TITLES, TITLE_SENIORITY, strict=True)
    for spelling in (title, title.lower())
}
_TITLE_DEPARTMENT = {
    spelling: DEPARTMENTS[d]
    for title, d in zip(JOB_TITLES, TITLE_DEPARTMENT, strict=True)
    for spelling in (title, title.lower())
}

# Points of the marketing-automation score that promotes a lead to MQL (no decay, as most
# tools); a hand-raise reaches the threshold on its own.
MQL_THRESHOLD = 180.0
_POINTS = {"newsletter_signup": 3, "email_click": 3, "content_download": 6, "case_study_view": 5,
           "webinar_registration": 5, "webinar_attended": 10, "pricing_page_view": 5,
           "product_page_view": 2, "demo_request": 180, "contact_request": 180,
           "trial_signup": 150, "consultation_request": 180, "unsubscribe": -30,
           "email_bounce": -20}  # fmt: skip
EVENT_POINTS = np.array([_POINTS.get(e, 1) for e in EVENT_TYPES], dtype=np.float64)

# Emission rates per day (activity 1) by hidden state: dormant, considering, deciding, converted,
# cold. Web sessions hold several actions; e-mail opens may be followed by a click.
WEB_SESSIONS = np.array([0.02, 0.165, 0.37, 0.06, 0.004])
SESSION_LENGTH = np.array([1.8, 2.8, 3.4, 2.2, 1.4])  # mean actions per web session
EMAIL_OPENS = np.array([0.06, 0.13, 0.17, 0.06, 0.008])
EMAIL_CLICK_P = np.array([0.08, 0.25, 0.3, 0.15, 0.03])
TOUCHES = np.array([0.012, 0.03, 0.03, 0.006, 0.002])  # ad clicks and social engagement
ACCOUNT_WINDOW_ACTIVITY = 1.6  # every lead of an in-market account is more active
WEEKDAY_WEB = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.3, 0.25])  # Monday first
WEEKDAY_EMAIL = np.array([0.8, 1.6, 1.0, 1.5, 0.7, 0.2, 0.2])  # sends go out on Tue/Thu

# Web action mix by hidden state: dormant, considering, deciding, converted, cold.
_WEB_TYPES, *_mix = _columns([
    ("page_view",            0.52,  0.30,   0.25,  0.40, 0.60),
    ("blog_view",            0.36,  0.15,   0.08,  0.15, 0.38),
    ("newsletter_signup",    0.02,  0.01,   0.0,   0.0,  0.0),
    ("content_download",     0.03,  0.09,   0.06,  0.04, 0.01),
    ("case_study_view",      0.02,  0.08,   0.10,  0.05, 0.0),
    ("webinar_registration", 0.005, 0.03,   0.02,  0.01, 0.0),
    ("webinar_attended",     0.0,   0.02,   0.03,  0.01, 0.0),
    ("pricing_page_view",    0.01,  0.11,   0.18,  0.04, 0.01),
    ("product_page_view",    0.035, 0.207,  0.24,  0.30, 0.0),
    ("demo_request",         0.0,   0.001,  0.012, 0.0,  0.0),
    ("contact_request",      0.0,   0.001,  0.008, 0.0,  0.0),
    ("trial_signup",         0.0,   0.0005, 0.008, 0.0,  0.0),
    ("consultation_request", 0.0,   0.0005, 0.003, 0.0,  0.0),
])  # fmt: skip
_WEB_TYPES = np.array([_E[e] for e in _WEB_TYPES])
_WEB_MIX = np.stack(_mix)
_WEB_MIX /= _WEB_MIX.sum(axis=1, keepdims=True)

# Content catalogue: blog posts, downloadable assets, case studies (popularity is Zipf-like).
_CONTENT_KINDS = {
    "blog_view": (1, 150),
    "content_download": (151, 230),
    "case_study_view": (231, 270),
}
_N_CONTENT = 270
_PAGES = {
    "page_view": (
        "/",
        "/about",
        "/integrations",
        "/solutions/marketing",
        "/solutions/sales",
        "/solutions/revops",
        "/customers",
        "/resources",
        "/security",
        "/partners",
        "/careers",
        "/blog",
    ),
    "product_page_view": (
        "/product",
        "/product/scoring",
        "/product/analytics",
        "/product/integrations",
        "/product/workflows",
    ),
    "pricing_page_view": ("/pricing",),
    "demo_request": ("/demo",),
    "contact_request": ("/contact",),
    "trial_signup": ("/trial/signup",),
    "consultation_request": ("/consultation",),
    "newsletter_signup": ("/newsletter",),
    "webinar_registration": ("/webinars/register",),
    "ad_click": ("/lp/lead-scoring", "/lp/revops-guide", "/lp/free-trial"),
    "email_click": ("/resources", "/webinars", "/product", "/pricing"),
}
_PAGE_WEIGHTS = {"page_view": np.array([30, 6, 6, 8, 6, 4, 8, 6, 3, 2, 2, 10.0])}
_CAMPAIGN_THEMES = {
    "ad_click": ("search-brand", "search-generic", "social-retargeting", "social-lookalike"),
    "social_engagement": ("social-organic", "social-thought-leadership"),
    "content_download": (
        "content-state-of-revops",
        "content-scoring-playbook",
        "syndication-q-partner",
    ),
}


def _catalogue() -> tuple[list[str], list[str], dict[str, np.ndarray], np.ndarray]:
    """Content ids, the URL dictionary, page codes per event type and the URL code per content."""
    content_ids = [f"C{i:04d}" for i in range(1, _N_CONTENT + 1)]
    urls: list[str] = []
    page_codes: dict[str, np.ndarray] = {}
    for etype, pages in _PAGES.items():
        page_codes[etype] = np.arange(len(urls), len(urls) + len(pages))
        urls += pages
    content_url = np.empty(_N_CONTENT, dtype=np.int64)
    topics = [
        "lead-scoring",
        "revops",
        "attribution",
        "abm",
        "pipeline",
        "forecasting",
        "crm-hygiene",
        "intent",
    ]
    prefix = {
        "blog_view": "/blog",
        "content_download": "/resources",
        "case_study_view": "/customers",
    }
    for etype, (lo, hi) in _CONTENT_KINDS.items():
        for i in range(lo, hi + 1):
            content_url[i - 1] = len(urls)
            urls.append(f"{prefix[etype]}/{topics[i % len(topics)]}-{i:04d}")
    return content_ids, urls, page_codes, content_url


CONTENT_IDS, URLS, _PAGE_CODES, _CONTENT_URL = _catalogue()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleHistory:
    """A generated history: the four contract tables, the hidden truth and its time frame.

    Attributes
    ----------
    accounts, leads, events, stages : pandas.DataFrame
        The input-contract tables (timestamps ``datetime64[us, UTC]``, ids as ``str``).
    truth : pandas.DataFrame
        One row per (lead open at ``as_of``, ``as_of``): ``lead_id``, ``as_of``, ``p_true`` (exact
        probability of reaching ``sql`` in ``(as_of, as_of + horizon]``), ``converted`` (whether it
        did) and ``hidden_state`` (the hidden buying state at ``as_of``). Not an input table.
    start, end : pandas.Timestamp
        The history covers ``[start, end)``; nothing happens at or after ``end``.
    horizon_days : int
        The horizon of ``truth``.
    seed : int
        The seed that generated it.
    scenario : str
        The scenario that generated it (see :func:`generate_history`).
    """

    accounts: pd.DataFrame
    leads: pd.DataFrame
    events: pd.DataFrame
    stages: pd.DataFrame
    truth: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    horizon_days: int
    seed: int
    scenario: str = "default"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The four input-contract tables by name (``truth`` is not one of them)."""
        return {
            "accounts": self.accounts,
            "leads": self.leads,
            "events": self.events,
            "stages": self.stages,
        }


def generate_history(
    n_leads: int = 5_000,
    seed: int = 0,
    *,
    end: str | pd.Timestamp = "2026-06-30",
    history_days: int = 730,
    horizon_days: int = 90,
    truth_as_of: Sequence[str | pd.Timestamp] | None = None,
    scenario: str = "default",
) -> SampleHistory:
    """Generate a realistic lead history whose conversion probabilities are known exactly.

    Parameters
    ----------
    n_leads : int
        Number of leads; accounts are about a third of that. About 50 events per lead.
    seed : int
        Seed of ``numpy.random.default_rng``; the same ``(n_leads, seed)`` gives identical frames.
    end : str or pandas.Timestamp
        Midnight UTC at which the history stops (exclusive); naive values are taken as UTC.
    history_days : int
        Length of the history before ``end``; leads are created over all of it (with growth).
    horizon_days : int
        Horizon of ``truth``: ``p_true`` is the probability of reaching ``sql`` within it.
    truth_as_of : sequence of timestamps, optional
        As-of instants of ``truth``, each at midnight UTC, inside the history and with its horizon
        ending on or before ``end``. Default: the first of each month over the last 12 months whose
        horizon ends by ``end`` (so every truth row is mature).
    scenario : {"default", "drift", "sparse-crm"}
        The :class:`Scenario` of that name in ``SCENARIOS``. ``"drift"``: the market heats up
        over the history. A drift level rises log-linearly in weekly steps from 0.35 to 5; the
        daily rates of every journey's forward moves are multiplied by it and those of going cold
        divided by it, and accounts' buying windows open in proportion to it (more accounts in
        market later). The base rate of conversion of the weekly open-lead snapshots grows about
        tenfold from the first quarter to the last; events, stages and ``truth`` come from these
        journeys as usual. ``"sparse-crm"``: a real CRM's records. Leads are created in the first
        70 % of the history only; their journeys run at 0.6 times the default pace (outcomes up
        to a year after creation) with a tenth of the default activity (a median of about five
        events per lead); 80 % of accounts have no firmographics (null columns) and 28 % of the
        leads with a company have no ``account_id``; no sales review is recorded, so leads go
        ``lead -> mql -> sql -> opportunity -> customer | lost`` and those that never convert
        stay open. ``truth`` stays exact: it follows the slower journeys, and recording less
        changes what is seen, not the journeys.

    Returns
    -------
    SampleHistory

    Raises
    ------
    SynthError
        If an argument is out of range (e.g. an as-of date whose horizon runs past ``end``).

    Examples
    --------
    >>> h = generate_history(n_leads=200, seed=3, history_days=400)
    >>> h.leads["lead_id"].iloc[0], str(h.events["occurred_at"].dtype)
    ('L0000001', 'datetime64[us, UTC]')
    """
    if n_leads < 1:
        raise SynthError(f"n_leads must be at least 1, got {n_leads}")
    if scenario not in SCENARIOS:
        raise SynthError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if horizon_days < 1 or history_days <= horizon_days:
        raise SynthError(
            f"need 1 <= horizon_days < history_days, got horizon_days={horizon_days}, "
            f"history_days={history_days}"
        )
    end_ts = _utc(end, "end")
    start_ts = end_ts - pd.Timedelta(days=history_days)
    as_of = _truth_days(truth_as_of, start_ts, end_ts, horizon_days)

    # Independent streams: one for accounts and lead attributes, one per fixed-size chunk.
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    first = pd.Timestamp(year=start_ts.year, month=start_ts.month, day=1, tz="UTC")
    months = pd.date_range(first, end_ts, freq="MS")
    world = _World(
        history_days,
        start_ts.day_of_week,
        horizon_days,
        as_of,
        np.array([(m - start_ts).days for m in months], dtype=np.float64),
        tuple(f"{m:%Y-%m}" for m in months),
        SCENARIOS[scenario].drift,
    )
    spec = SCENARIOS[scenario]
    accounts = _make_accounts(rng, max(10, -(-n_leads // 3)), world, spec)
    leads = _make_leads(rng, n_leads, accounts, world, spec)

    parts = []
    for i, lo in enumerate(range(0, n_leads, CHUNK_LEADS)):
        chunk_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, i)))
        parts.append(
            _simulate_chunk(chunk_rng, leads, slice(lo, lo + CHUNK_LEADS), world, spec.sales_review)
        )
    merged = {key: np.concatenate([p.pop(key) for p in parts]) for key in list(parts[0])}
    del parts

    origin_us = start_ts.value // 1000
    return SampleHistory(
        accounts=_accounts_frame(accounts),
        leads=_leads_frame(leads, accounts, origin_us),
        events=_events_frame(merged, n_leads, world, origin_us),  # frees the event arrays
        stages=_stages_frame(merged, n_leads, world, origin_us),
        truth=_truth_frame(merged, n_leads, origin_us),
        start=start_ts,
        end=end_ts,
        horizon_days=horizon_days,
        seed=seed,
        scenario=scenario,
    )


def write_history(
    history: SampleHistory,
    out_dir: str | os.PathLike[str],
    *,
    format: Literal["parquet", "csv"] = "parquet",
) -> dict[str, Path]:
    """Write ``accounts``, ``leads``, ``events``, ``stages`` and, apart from them, ``truth``.

    Each file is written to a temporary name in ``out_dir`` and renamed when complete, so a crash
    never leaves a half-written table behind.

    Parameters
    ----------
    history : SampleHistory
    out_dir : path
        Created if missing.
    format : {"parquet", "csv"}

    Returns
    -------
    dict of str to Path
        Table name -> written file, in the order accounts, leads, events, stages, truth.
    """
    if format not in ("parquet", "csv"):
        raise SynthError(f"format must be 'parquet' or 'csv', got {format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in {**history.tables(), "truth": history.truth}.items():
        written[name] = _write_whole(frame, out / f"{name}.{format}")
    return written


# --------------------------------------------------------------------------------------------
# The history as a flat CRM export
# --------------------------------------------------------------------------------------------

#: Days after its creation during which a lead's activity is counted in ``flat_export``.
FLAT_ACTIVITY_DAYS = 30
#: Activity columns of ``flat_export``: column -> the canonical event type it counts.
FLAT_ACTIVITY = {
    ("webinars_attended" if e == "webinar_attended" else f"{e}s"): e for e in EVENT_TYPES
}
FLAT_SUFFIXES = (".csv", ".csv.gz", ".parquet")  # what ``write_flat`` writes, by file name
_FLAT_REACHED = ("sql", "opportunity", "customer")  # sql, or a stage after it
_FLAT_CLOSING = (*_FLAT_REACHED, "lost", "disqualified")


def flat_export(
    history: SampleHistory,
    *,
    activity_days: int = FLAT_ACTIVITY_DAYS,
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """The history as a CRM's flat export: one row per lead, its attributes, its activity counts
    and whether it converted, the way ``leadml train --flat`` takes it.

    Each lead is described ``activity_days`` after its creation (the instant ``seen``): its
    activity columns count its events in ``[created_at, seen)``, and ``converted`` says whether it
    reached ``sql`` (or a later stage) in ``(seen, seen + horizon_days]``. Nothing in a row is
    observed after ``seen``, so no column leaks the outcome. Leads no longer open at ``seen``
    (already ``sql``, or lost or disqualified) and leads whose outcome is not known yet
    (``seen + horizon_days`` after the end of the history) have no row. No PII (e-mail address,
    names) is exported.

    Parameters
    ----------
    history : SampleHistory
    activity_days : int
        Length of the activity window after creation (default 30).
    horizon_days : int, optional
        Horizon of ``converted`` (default: the history's, 90 days unless generated otherwise).

    Returns
    -------
    pandas.DataFrame
        ``lead_id``, ``created_at``, ``lead_source``, ``job_title``, ``seniority`` and
        ``department`` (read from the title, as CRM enrichment does), ``country``, the company's
        ``industry``, ``employee_count``, ``annual_revenue`` and ``tech_stack`` (missing for
        leads without one), one count per ``FLAT_ACTIVITY`` column, and ``converted`` (bool);
        sorted by ``lead_id``.

    Examples
    --------
    >>> h = generate_history(n_leads=300, seed=1)
    >>> flat = flat_export(h)
    >>> flat["lead_id"].is_unique, "email" in flat, flat["converted"].dtype.name
    (True, False, 'bool')
    """
    horizon = history.horizon_days if horizon_days is None else horizon_days
    if activity_days < 1 or horizon < 1:
        raise SynthError(
            f"activity_days and horizon_days must be at least 1, got {activity_days}, {horizon}"
        )
    leads, stages = history.leads, history.stages
    seen = leads.set_index("lead_id")["created_at"] + pd.Timedelta(days=activity_days)
    until = seen + pd.Timedelta(days=horizon)
    first = stages.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    first = first.reindex(index=seen.index, columns=list(_FLAT_CLOSING))
    reached, closed = first[list(_FLAT_REACHED)].min(axis=1), first.min(axis=1)
    keep = (until <= history.end) & ~(closed < seen)  # open at `seen` (NaT compares False)
    converted = (reached > seen) & (reached <= until)

    # Activity in the window, counted per (lead, event type).
    events = history.events
    lead_code = seen.index.get_indexer(events["lead_id"])
    in_window = np.asarray(events["occurred_at"].array < seen.array.take(lead_code))
    type_code = pd.Index(EVENT_TYPES).get_indexer(events["event_type"])
    counts = np.zeros((len(leads), len(EVENT_TYPES)), dtype=np.int64)
    np.add.at(counts, (lead_code[in_window], type_code[in_window]), 1)

    accounts = history.accounts.set_index("account_id")
    company = accounts.reindex(leads["account_id"])
    title = leads["job_title"]
    frame = pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "created_at": leads["created_at"],
            "lead_source": leads["lead_source"],
            "job_title": title,
            "seniority": title.map(_TITLE_SENIORITY),
            "department": title.map(_TITLE_DEPARTMENT),
            "country": leads["country"],
            "industry": company["industry"].to_numpy(),
            "employee_count": company["employee_count"].to_numpy(),
            "annual_revenue": company["annual_revenue"].to_numpy(),
            "tech_stack": company["tech_stack"].to_numpy(),
        }
    )
    for column, etype in FLAT_ACTIVITY.items():
        frame[column] = counts[:, EVENT_TYPES.index(etype)]
    frame["converted"] = converted.to_numpy()
    return frame[keep.to_numpy()].reset_index(drop=True)


def write_flat(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a flat export as CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``) by suffix,
    to a temporary name renamed when complete. Returns the path written.

    Raises
    ------
    SynthError
        If the suffix is none of those.
    """
    path = Path(path)
    if not path.name.endswith(FLAT_SUFFIXES):
        raise SynthError(f"a flat export must end in .csv, .csv.gz or .parquet, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_whole(frame, path)


def _write_whole(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (Parquet, or CSV by suffix) atomically, text cells made safe for
    spreadsheets (:mod:`leadml.common.atomic`, :mod:`leadml.common.safe_text`)."""
    if path.suffix == ".parquet":
        return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    compression = "gzip" if path.name.endswith(".gz") else None
    return write_atomic(
        path,
        lambda tmp: to_csv(
            frame, tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ", compression=compression
        ),
    )


# --------------------------------------------------------------------------------------------
# Time frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _World:
    days: int  # number of simulated days; day d covers [start + d, start + d + 1)
    weekday0: int  # weekday of day 0 (Monday = 0)
    horizon: int
    as_of: np.ndarray  # day indices of the truth as-of instants
    month_edges: np.ndarray  # first day of each calendar month (the first may be negative)
    month_labels: tuple[str, ...]  # "YYYY-MM" of each month
    drift: tuple[float, float] = (1.0, 1.0)  # drift level at the start and at the end

    def weekday(self, day: np.ndarray) -> np.ndarray:
        return (self.weekday0 + day) % 7

    def level(self, day: np.ndarray) -> np.ndarray:
        """Drift level on integer days: log-linear in time, constant within each week."""
        middle = (np.floor_divide(day, DRIFT_STEP_DAYS) + 0.5) * DRIFT_STEP_DAYS
        first, last = self.drift
        return first * (last / first) ** np.clip(middle / self.days, 0.0, 1.0)

    @property
    def steady(self) -> bool:
        """Whether there is no drift (the default scenario)."""
        return self.drift == (1.0, 1.0)

    def next_change(self, day: np.ndarray) -> np.ndarray:
        """The first day after ``day`` whose drift level differs (``days`` without drift)."""
        if self.steady:
            return np.full_like(day, self.days)
        return (np.floor_divide(day, DRIFT_STEP_DAYS) + 1) * DRIFT_STEP_DAYS


def _utc(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.normalize():
        raise SynthError(f"{name} must be a midnight UTC, got {ts.isoformat()}")
    return ts.as_unit("us")


def _truth_days(
    truth_as_of: Sequence[str | pd.Timestamp] | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon: int,
) -> np.ndarray:
    last = end - pd.Timedelta(days=horizon)
    if truth_as_of is None:
        firsts = pd.date_range(end=last, periods=12, freq="MS")
        stamps = [t for t in firsts if t > start]
    else:
        stamps = [_utc(t, "truth_as_of") for t in truth_as_of]
        bad = [t for t in stamps if not start < t <= last]
        if bad:
            raise SynthError(
                f"truth_as_of must lie in ({start:%Y-%m-%d}, {last:%Y-%m-%d}] so that the horizon "
                f"of {horizon} days ends by {end:%Y-%m-%d}; got {bad[0]:%Y-%m-%d}"
            )
    return np.unique([(t - start).days for t in stamps]).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Accounts and leads (attributes, hidden parameters)
# --------------------------------------------------------------------------------------------


def _make_accounts(
    rng: np.random.Generator, n: int, world: _World, spec: Scenario
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
    tech = _categorical(rng, tech_p / tech_p.sum(1, keepdims=True))
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
    domain = _domains(rng, country, comp_rows)
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


def _domains(rng: np.random.Generator, country: np.ndarray, comp_rows: np.ndarray) -> np.ndarray:
    n = len(country)
    a = rng.integers(0, len(_DOMAIN_A), n)
    b = rng.integers(0, len(_DOMAIN_B), n)
    base = pd.Series(np.char.add(np.array(_DOMAIN_A)[a], np.array(_DOMAIN_B)[b]))
    # Number repeated names so that a domain identifies one company.
    dup = base.groupby(base).cumcount().to_numpy()
    names = np.where(
        dup > 0, np.char.add(base.to_numpy(dtype=str), dup.astype(str)), base.to_numpy(dtype=str)
    )
    domains = np.char.add(np.char.add(names, "."), np.array(COUNTRY_TLD)[country]).astype(object)
    domains[comp_rows] = [d for _, d in COMPETITORS]
    return domains


def _make_leads(
    rng: np.random.Generator, n: int, acc: dict[str, np.ndarray], world: _World, spec: Scenario
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
    title = _pick_titles(rng, seniority, department)
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
    created = day + _time_of_day(rng, peak)
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
    start_state = _categorical(
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
    leads["rates"] = _rates(leads) * spec.pace
    # Sales accepts most MQLs; it rejects poor fits, and almost always students and competitors.
    accept = (
        np.array([0.95, 0.93, 0.9, 0.84, 0.7, 0.1])[leads["seniority"]]
        * np.array([1.0, 0.75, 0.1, 0.1])[leads["kind"]]
        * np.where(leads["bad_email"], 0.1, 1.0)
    )
    leads["p_accept"] = accept
    return leads


def _pick_titles(rng: np.random.Generator, seniority: np.ndarray, dept: np.ndarray) -> np.ndarray:
    """A random title per (seniority, department); interns and students pick any of theirs."""
    key_title = np.where(TITLE_SENIORITY == 5, 5 * 16, TITLE_SENIORITY * 16 + TITLE_DEPARTMENT)
    order = np.argsort(key_title, kind="stable")
    keys, offsets, counts = np.unique(key_title[order], return_index=True, return_counts=True)
    key = np.where(seniority == 5, 5 * 16, seniority * 16 + dept)
    pos = np.searchsorted(keys, key)
    if not np.array_equal(keys[np.minimum(pos, len(keys) - 1)], key):
        raise AssertionError("a (seniority, department) pair has no job title")
    pick = offsets[pos] + (rng.random(len(key)) * counts[pos]).astype(np.int64)
    return order[pick]


# Moves of the hidden chain with a daily rate: how much an account's buying window multiplies
# each, and the power of the drift level that scales it (forward moves speed up, going cold slows).
_MOVES = (
    (DORMANT, CONSIDERING),
    (DORMANT, COLD),
    (CONSIDERING, DECIDING),
    (CONSIDERING, DORMANT),
    (CONSIDERING, COLD),
    (DECIDING, CONVERTED),
    (DECIDING, CONSIDERING),
    (DECIDING, COLD),
)
_WINDOW_LIFT = np.array([4.0, 0.5, 2.5, 1.0, 0.5, 1.5, 1.0, 0.5])
_DRIFT_POWER = np.array([1.0, -1.0, 1.0, 0.0, -1.0, 1.0, 0.0, -1.0])


def _rates(leads: dict[str, np.ndarray]) -> np.ndarray:
    """Daily rates of the moves in ``_MOVES`` per lead, outside any window and without drift."""
    fit, engage, interest = leads["fit"], leads["engage"], leads["interest"]
    no_buy = fit == 0
    return np.stack(
        [
            0.011 * engage,
            0.0065 / np.sqrt(interest),
            # Students and competitors still research (and request demos), they just never buy.
            np.where(no_buy, 0.005 * interest, 0.014 * np.sqrt(fit) * interest),
            np.full(len(fit), 0.02),
            0.005 / np.sqrt(interest),
            0.017 * fit,
            np.full(len(fit), 0.035),
            0.012 / np.sqrt(interest),
        ],
        axis=1,
    )


def _matrices(rates: np.ndarray, inside: np.ndarray | bool, level: np.ndarray) -> np.ndarray:
    """Daily transition probabilities from each transient state, ``(n, 3, 5)``.

    Row ``i`` is the distribution of tomorrow's state given today's state ``i`` (dormant,
    considering, deciding), for leads with these ``rates`` whose account is (``inside``) or is not
    in market, at drift ``level`` (1: no drift).
    """
    lift = np.where(np.asarray(inside)[..., None], _WINDOW_LIFT, 1.0)
    scaled = rates * lift * np.asarray(level)[..., None] ** _DRIFT_POWER
    P = np.zeros((len(rates), N_TRANSIENT, 5))
    for k, (i, j) in enumerate(_MOVES):
        P[:, i, j] = np.minimum(scaled[:, k], 0.5)
    leave = P.sum(axis=2)
    P *= np.minimum(1.0, 0.9 / np.maximum(leave, 1e-12))[:, :, None]
    for i in range(N_TRANSIENT):
        P[:, i, i] = 1.0 - P[:, i].sum(axis=1)
    return P


# --------------------------------------------------------------------------------------------
# One chunk of leads: hidden journeys, events, stages, truth
# --------------------------------------------------------------------------------------------


def _simulate_chunk(
    rng: np.random.Generator,
    leads: dict[str, np.ndarray],
    rows: slice,
    world: _World,
    sales_review: bool,
) -> dict[str, np.ndarray]:
    lead = {k: v[rows] for k, v in leads.items()}
    offset = rows.start
    trans = _simulate_journeys(rng, lead, world)
    events = _emit_events(rng, lead, trans, world)
    stages = _lifecycle(rng, lead, trans, events, world, sales_review)
    truth = _truth(lead, trans, stages, world)
    return {
        "ev_lead": events["lead"] + offset,
        "ev_us": events["us"],
        "ev_type": events["type"],
        "ev_campaign": events["campaign"],
        "ev_content": events["content"],
        "ev_url": events["url"],
        "st_lead": stages["lead"] + offset,
        "st_t": stages["t"],
        "st_stage": stages["stage"],
        "st_reason": stages["reason"],
        "tr_lead": truth["lead"] + offset,
        "tr_day": truth["day"],
        "tr_p": truth["p"],
        "tr_y": truth["y"],
        "tr_state": truth["state"],
    }


def _simulate_journeys(
    rng: np.random.Generator, lead: dict[str, np.ndarray], world: _World
) -> dict[str, np.ndarray]:
    """Jump-chain simulation of the daily Markov chain, exact and vectorised over leads.

    In a regime with constant daily probabilities the days spent in a state are geometric and
    the next state is drawn in proportion to the off-diagonal row. When the account window opens
    or closes, or the drift level changes, before the jump, the draw is discarded and restarted
    at the boundary, which is exact because the geometric distribution is memoryless.
    """
    n = len(lead["created"])
    state = lead["start_state"].copy()
    day = np.floor(lead["created"]).astype(np.int64)
    ws, we = lead["w_start"], lead["w_end"]
    rows = np.arange(n)
    out_lead, out_day, out_to = [], [], []
    active = rows
    while active.size:
        s, d = state[active], day[active]
        w0, w1 = ws[active], we[active]
        inside = (w0 <= d) & (d < w1)
        boundary = np.minimum(np.where(d < w0, w0, np.where(d < w1, w1, world.days)), world.days)
        boundary = np.minimum(boundary, world.next_change(d))
        P = _matrices(lead["rates"][active], inside, world.level(d))[np.arange(active.size), s]
        stay = P[np.arange(active.size), s]
        jump_day = d + rng.geometric(1.0 - stay) - 1
        jumps = jump_day < boundary
        # Next state among the off-diagonal entries.
        P[np.arange(active.size), s] = 0.0
        cum = np.cumsum(P, axis=1)
        u = rng.random(active.size) * cum[:, -1]
        to = (cum < u[:, None]).sum(axis=1)
        moved = active[jumps]
        out_lead.append(moved)
        out_day.append(jump_day[jumps])
        out_to.append(to[jumps])
        state[moved] = to[jumps]
        day[moved] = jump_day[jumps] + 1
        day[active[~jumps]] = boundary[~jumps]
        active = active[(state[active] < N_TRANSIENT) & (day[active] < world.days)]
    t_lead = np.concatenate(out_lead)
    t_day = np.concatenate(out_day)
    t_to = np.concatenate(out_to).astype(np.int8)
    order = np.lexsort((t_day, t_lead))
    t_lead, t_day, t_to = t_lead[order], t_day[order], t_to[order]
    # A transition happens during its day, after the lead was created.
    lo = np.maximum(t_day, lead["created"][t_lead])
    t_time = lo + (t_day + 1 - lo) * rng.uniform(0.05, 0.95, len(t_day))
    return {"lead": t_lead, "day": t_day, "to": t_to, "t": t_time}


def _segments(lead: dict[str, np.ndarray], trans: dict[str, np.ndarray], days: int):
    """Spans of constant hidden state per lead: (lead, state, t0, t1, previous state)."""
    n = len(lead["created"])
    seg_lead = np.concatenate([np.arange(n), trans["lead"]])
    seg_state = np.concatenate([lead["start_state"], trans["to"]]).astype(np.int8)
    seg_t0 = np.concatenate([lead["created"], trans["t"]])
    order = np.lexsort((seg_t0, seg_lead))
    seg_lead, seg_state, seg_t0 = seg_lead[order], seg_state[order], seg_t0[order]
    last = np.r_[seg_lead[1:] != seg_lead[:-1], True]
    seg_t1 = np.where(last, float(days), np.r_[seg_t0[1:], 0.0])
    return seg_lead, seg_state, seg_t0, seg_t1


def _time_of_day(rng: np.random.Generator, peak: np.ndarray) -> np.ndarray:
    """Fraction of the UTC day: around local business hours, a few at any time."""
    t = peak + rng.normal(0.0, 0.11, len(peak))
    t = np.where(rng.random(len(peak)) < 0.08, rng.random(len(peak)), t)
    return np.clip(np.mod(t, 1.0), 0.001, 0.999)


def _emit_events(
    rng: np.random.Generator,
    lead: dict[str, np.ndarray],
    trans: dict[str, np.ndarray],
    world: _World,
) -> dict[str, np.ndarray]:
    """Observable actions emitted from the hidden journeys (sorted by lead, then time)."""
    seg_lead, seg_state, t0, t1 = _segments(lead, trans, world.days)
    act = lead["activity"]
    seg_act = act[seg_lead]
    # After going cold, some leads unsubscribe (right away); they get no more e-mail.
    went_cold = (seg_state == COLD) & (t0 > lead["created"][seg_lead])
    unsub = went_cold & (rng.random(len(seg_state)) < 0.35) & ~lead["bad_email"][seg_lead]
    no_mail = lead["bad_email"][seg_lead] | unsub

    parts: list[dict[str, np.ndarray]] = []
    # Web sessions: bursts of several actions within minutes.
    s_seg, s_t = _thinned_times(
        rng,
        lead,
        seg_lead,
        seg_state,
        t0,
        t1,
        WEB_SESSIONS[seg_state] * seg_act,
        WEEKDAY_WEB,
        world,
    )
    n_act = rng.geometric(1.0 / SESSION_LENGTH[seg_state[s_seg]])
    ev_seg = np.repeat(s_seg, n_act)
    first = np.repeat(np.cumsum(n_act) - n_act, n_act)
    gaps = rng.exponential(2.5 / 1440, len(ev_seg))
    csum = np.cumsum(gaps)
    ev_t = np.repeat(s_t, n_act) + csum - csum[first]  # the first action starts the session
    ev_type = _web_types(rng, seg_state[ev_seg])
    parts.append({"seg": ev_seg, "t": ev_t, "type": ev_type})

    # E-mail: opens of newsletters and nurture mails, some followed by a click.
    mail_rate = np.where(no_mail, 0.0, EMAIL_OPENS[seg_state] * np.sqrt(seg_act))
    o_seg, o_t = _thinned_times(
        rng, lead, seg_lead, seg_state, t0, t1, mail_rate, WEEKDAY_EMAIL, world
    )
    click = rng.random(len(o_seg)) < EMAIL_CLICK_P[seg_state[o_seg]]
    parts.append({"seg": o_seg, "t": o_t, "type": np.full(len(o_seg), _E["email_open"])})
    parts.append(
        {
            "seg": o_seg[click],
            "t": o_t[click] + rng.exponential(3 / 1440, click.sum()),
            "type": np.full(int(click.sum()), _E["email_click"]),
        }
    )

    # Paid and social touches.
    a_seg, a_t = _thinned_times(
        rng, lead, seg_lead, seg_state, t0, t1, TOUCHES[seg_state] * seg_act, WEEKDAY_WEB, world
    )
    a_type = np.where(rng.random(len(a_seg)) < 0.6, _E["ad_click"], _E["social_engagement"])
    parts.append({"seg": a_seg, "t": a_t, "type": a_type})

    # The unsubscribe itself, minutes to hours after interest died (same day).
    u_seg = np.flatnonzero(unsub)
    u_t = t0[u_seg] + (np.floor(t0[u_seg]) + 1 - t0[u_seg]) * rng.uniform(0.01, 0.9, len(u_seg))
    parts.append({"seg": u_seg, "t": u_t, "type": np.full(len(u_seg), _E["unsubscribe"])})

    # Bounces: the first sends to a bad address, then the list drops it.
    first_seg = np.r_[True, seg_lead[1:] != seg_lead[:-1]]
    b_lead_seg = np.flatnonzero(first_seg & lead["bad_email"][seg_lead])
    n_b = rng.integers(1, 4, len(b_lead_seg))
    b_seg = np.repeat(b_lead_seg, n_b)
    b_k = np.arange(len(b_seg)) - np.repeat(np.cumsum(n_b) - n_b, n_b)
    b_t = t0[b_seg] + rng.uniform(0.1, 3, len(b_seg)) + 7 * b_k
    parts.append({"seg": b_seg, "t": b_t, "type": np.full(len(b_seg), _E["email_bounce"])})

    # The action that created the lead (form fill), at the creation instant.
    c_seg = np.flatnonzero(first_seg)
    c_type = _creation_types(rng, lead["source"][seg_lead[c_seg]], seg_state[c_seg])
    keep = c_type >= 0
    parts.append({"seg": c_seg[keep], "t": t0[c_seg[keep]], "type": c_type[keep]})

    # The hand-raise that precedes every conversion, earlier the same day.
    h_seg = np.flatnonzero(seg_state == CONVERTED)
    h_lo = np.maximum(np.floor(t0[h_seg]), lead["created"][seg_lead[h_seg]])
    h_t = h_lo + (t0[h_seg] - h_lo) * rng.uniform(0.05, 0.7, len(h_seg))
    h_type = DECISION_EVENTS[_categorical(rng, np.tile([0.45, 0.3, 0.15, 0.1], (len(h_seg), 1)))]
    parts.append({"seg": h_seg, "t": h_t, "type": h_type})

    seg = np.concatenate([p["seg"] for p in parts])
    t = np.concatenate([p["t"] for p in parts])
    etype = np.concatenate([p["type"] for p in parts]).astype(np.int8)
    ev_lead = seg_lead[seg]
    # Bursts and bounce schedules may spill past the end of their span: keep them in time order
    # and inside the history, but never after the hidden step that ends the span (except the
    # hand-raise, which belongs to the converted span but happens before it).
    ok = (t < world.days) & (t >= lead["created"][ev_lead])
    is_hand = np.zeros(len(seg), dtype=bool)
    is_hand[len(seg) - len(h_seg) :] = True
    ok &= is_hand | (t < t1[seg])
    t, etype, ev_lead = t[ok], etype[ok], ev_lead[ok]
    span = world.days * DAY_US
    us = np.minimum(np.round(t * DAY_US).astype(np.int64), span - 1)
    if len(lead["created"]) < np.iinfo(np.int64).max // span:  # one int64 key: fast sort
        order = np.argsort(ev_lead.astype(np.int64) * span + us, kind="stable")
    else:
        order = np.lexsort((us, ev_lead))
    t, us, etype, ev_lead = t[order], us[order], etype[order], ev_lead[order]
    campaign, content, url = _event_details(rng, etype, t, lead["source"][ev_lead], world)
    hand_t = np.full(len(lead["created"]), np.inf)
    hand_t[seg_lead[h_seg]] = h_t
    return {
        "lead": ev_lead.astype(np.int64),
        "t": t,
        "us": us,
        "type": etype,
        "campaign": campaign,
        "content": content,
        "url": url,
        "hand_t": hand_t,
    }


def _thinned_times(
    rng: np.random.Generator,
    lead: dict[str, np.ndarray],
    seg_lead: np.ndarray,
    seg_state: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    rate: np.ndarray,
    weekday_factor: np.ndarray,
    world: _World,
) -> tuple[np.ndarray, np.ndarray]:
    """Times of a Poisson process per span by thinning: weekdays, account window, fading.

    Candidates are drawn at the maximal rate on whole days and kept with probability
    (weekday factor x window lift x fading) / maximum, at a business-hours time of day.
    """
    d0 = np.floor(t0)
    n_days = np.ceil(t1) - d0
    top = weekday_factor.max() * ACCOUNT_WINDOW_ACTIVITY
    count = rng.poisson(rate * top * n_days)
    cand = np.repeat(np.arange(len(t0)), count)
    day = d0[cand] + np.floor(rng.random(len(cand)) * n_days[cand])
    cl = seg_lead[cand]
    t = day + _time_of_day(rng, lead["peak"][cl])
    age = t - t0[cand]
    st = seg_state[cand]
    # Interest right after sign-up fades over weeks; after going cold, over days.
    fade = np.where(
        st == DORMANT,
        0.35 + 0.65 * np.exp(-age / 21.0),
        np.where(st == COLD, 0.1 + 0.9 * np.exp(-age / 7.0), 1.0),
    )
    di = day.astype(np.int64)
    lift = np.where(
        (lead["w_start"][cl] <= di) & (di < lead["w_end"][cl]), ACCOUNT_WINDOW_ACTIVITY, 1.0
    )
    keep_p = weekday_factor[world.weekday(di)] * lift * fade / top
    keep = (rng.random(len(cand)) < keep_p) & (t >= t0[cand]) & (t < t1[cand])
    return cand[keep], t[keep]


def _web_types(rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(_WEB_MIX, axis=1)
    u = rng.random(len(state))
    idx = np.empty(len(state), dtype=np.int64)
    for s in range(len(HIDDEN_STATES)):
        sel = state == s
        idx[sel] = np.searchsorted(cdf[s], u[sel], side="right")
    return _WEB_TYPES[np.minimum(idx, len(_WEB_TYPES) - 1)]


def _creation_types(rng: np.random.Generator, source: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The form that created the lead (-1 when it came from a list, a partner or a booth)."""
    by_source = np.array(
        [
            _E["content_download"],
            _E["content_download"],
            _E["content_download"],
            _E["contact_request"],
            -1,
            _E["webinar_registration"],
            -1,
            _E["content_download"],
            -1,
            _E["newsletter_signup"],
        ]
    )
    out = by_source[source]
    out = np.where((source == 0) & (rng.random(len(source)) < 0.4), _E["newsletter_signup"], out)
    hand = DECISION_EVENTS[rng.choice(4, len(source), p=[0.5, 0.3, 0.15, 0.05])]
    return np.where((state == DECIDING) & (rng.random(len(source)) < 0.5), hand, out)


def _event_details(
    rng: np.random.Generator, etype: np.ndarray, t: np.ndarray, source: np.ndarray, world: _World
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Campaign, content and URL codes (-1 = null) of each event."""
    n = len(etype)
    month = _month_index(t, world)
    n_months = len(world.month_edges)
    campaign = np.full(n, -1, dtype=np.int16)
    content = np.full(n, -1, dtype=np.int16)
    url = np.full(n, -1, dtype=np.int16)
    # Campaign codes: [newsletter per month][webinar per month][themes...].
    themes = [t for v in _CAMPAIGN_THEMES.values() for t in v]
    theme0 = {
        k: 2 * n_months + sum(len(v) for v in list(_CAMPAIGN_THEMES.values())[:i])
        for i, k in enumerate(_CAMPAIGN_THEMES)
    }
    mail = np.isin(
        etype, [_E[e] for e in ("email_open", "email_click", "unsubscribe", "email_bounce")]
    )
    nurture = rng.random(n) < 0.4
    campaign[mail] = np.where(
        nurture[mail], 2 * n_months + len(themes) + (month[mail] % 3), month[mail]
    )
    webinar = np.isin(etype, [_E["webinar_registration"], _E["webinar_attended"]])
    campaign[webinar] = n_months + month[webinar]
    for name in ("ad_click", "social_engagement"):
        sel = etype == _E[name]
        k = len(_CAMPAIGN_THEMES[name])
        campaign[sel] = theme0[name] + rng.integers(0, k, sel.sum())
    dl = (etype == _E["content_download"]) & (rng.random(n) < 0.5)
    syndicated = dl & (source == LEAD_SOURCES.index("content_syndication"))
    campaign[dl] = theme0["content_download"] + rng.integers(0, 2, dl.sum())
    campaign[syndicated] = theme0["content_download"] + 2

    for name, (lo, hi) in _CONTENT_KINDS.items():
        sel = np.flatnonzero(etype == _E[name])
        rank = _zipf_index(rng, hi - lo + 1, len(sel))
        content[sel] = lo - 1 + rank
        url[sel] = _CONTENT_URL[lo - 1 + rank]
    for name, codes in _PAGE_CODES.items():
        sel = np.flatnonzero(etype == _E[name])
        w = _PAGE_WEIGHTS.get(name, np.ones(len(codes)))
        url[sel] = codes[rng.choice(len(codes), len(sel), p=w / w.sum())]
    return campaign, content, url


def _month_index(t: np.ndarray, world: _World) -> np.ndarray:
    """Calendar month of a time in days, counted from the month that contains day 0."""
    return np.searchsorted(world.month_edges, t, side="right") - 1


def _zipf_index(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** 1.1
    return rng.choice(k, size, p=w / w.sum())


def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One draw per row of a probability matrix."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), p.shape[1] - 1)


# --------------------------------------------------------------------------------------------
# Lifecycle stages and the truth
# --------------------------------------------------------------------------------------------


def _lifecycle(
    rng: np.random.Generator,
    lead: dict[str, np.ndarray],
    trans: dict[str, np.ndarray],
    events: dict[str, np.ndarray],
    world: _World,
    sales_review: bool = True,
) -> dict[str, np.ndarray]:
    """CRM stage history: score-based MQL, sales review, SQL exactly at conversion, then deals.

    Without ``sales_review`` the CRM records no review: no ``sal`` or ``srl``, no recycled
    ``mql``, no early disqualification (the random draws stay the same).
    """
    n = len(lead["created"])
    created, days = lead["created"], float(world.days)
    tau = np.full(n, np.inf)  # conversion = SQL
    conv = trans["to"] == CONVERTED
    tau[trans["lead"][conv]] = trans["t"][conv]
    hand = events["hand_t"]

    # MQL: first time the points score (fit points + cumulative action points) reaches the bar.
    ev_lead, ev_t, ev_type = events["lead"], events["t"], events["type"]
    cs = np.cumsum(EVENT_POINTS[ev_type])
    first = np.searchsorted(ev_lead, np.arange(n))
    before = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0.0)
    score = cs - before[ev_lead] + lead["fit_points"][ev_lead]
    hits = np.flatnonzero(score >= MQL_THRESHOLD)
    hit_leads, pos = np.unique(ev_lead[hits], return_index=True)
    mql = np.full(n, np.inf)
    mql[hit_leads] = ev_t[hits[pos]]
    mql_by_hand = np.zeros(n, dtype=bool)
    mql_by_hand[hit_leads] = np.isin(ev_type[hits[pos]], DECISION_EVENTS)

    review = mql + 0.02 + rng.exponential(1.2, n)  # speed to lead: hours to a few days
    accept = rng.random(n) < lead["p_accept"]
    u = rng.uniform(0.2, 0.8, (3, n))
    converts = np.isfinite(tau)
    scored = mql < tau
    a = converts & scored & (review < tau) & accept  # reviewed and accepted before converting
    b = converts & scored & (review < tau) & ~accept  # rejected, then recycled by the hand-raise
    c = converts & scored & (review >= tau)  # hand-raise fast-tracked before the review
    d = converts & ~scored  # the hand-raise itself makes the MQL
    never = ~converts

    # Times of the conversion path; only read where the lead converts (finite tau and hand).
    tau_c, hand_c = np.where(converts, tau, days), np.where(converts, hand, days)
    review_c = np.minimum(review, tau_c)
    recycle = np.where(hand_c > review_c, hand_c, review_c + (tau_c - review_c) * 0.5 * u[0])
    fast_lo = np.where(c, np.maximum(np.minimum(mql, tau_c), hand_c), hand_c)
    zero_fit = lead["fit"] == 0
    kind_reason = np.select(
        [lead["kind"] == STUDENT, lead["kind"] == COMPETITOR, lead["bad_email"]],
        [_R["student"], _R["competitor"], _R["invalid_contact"]],
        rng.choice([_R["not_a_fit"], _R["no_budget"], _R["bad_timing"]], n),
    )
    disq = review + 1.0 + rng.exponential(10.0, n)
    early_disq = never & ~accept & zero_fit & (disq < days) & sales_review

    # Deals after SQL.
    opp_t = tau + 0.5 + rng.exponential(6.0, n)
    opp = converts & (rng.random(n) < 0.65)
    drop = converts & ~opp & (rng.random(n) < 0.5)
    drop_t = tau + 2.0 + rng.exponential(14.0, n)
    p_win = 0.12 + 0.18 * np.minimum(lead["fit"], 1.5) / 1.5
    won = rng.random(n) < p_win
    close_t = opp_t + 10.0 + rng.gamma(2.0, 25.0, n)
    lost_reason = rng.choice(
        [_R["price"], _R["competitor_chosen"], _R["no_decision"], _R["bad_timing"]],
        n,
        p=[0.3, 0.3, 0.25, 0.15],
    )
    deal_reason = rng.choice([_R["no_budget"], _R["no_authority"], _R["no_need"]], n)

    everyone = np.ones(n, dtype=bool)
    mql_reason = np.where(mql_by_hand, _R["hand_raise"], _R["score_threshold"])
    # (mask, time, stage, reason, rank): rank orders rows that share a timestamp.
    pieces = [
        (everyone, created, "lead", -1, 0),
        (scored & (mql < days), mql, "mql", mql_reason, 1),
        (d, hand, "mql", _R["hand_raise"], 1),
        ((a | (never & accept)) & (review < days) & sales_review, review, "sal", -1, 2),
        ((b | (never & ~accept)) & (review < days) & sales_review, review, "srl", kind_reason, 2),
        (b & sales_review, recycle, "mql", _R["recycled"], 3),
        (b & sales_review, recycle + (tau_c - recycle) * u[1], "sal", -1, 4),
        ((c | d) & sales_review, fast_lo + (tau_c - fast_lo) * u[2], "sal", -1, 4),
        (converts, tau, "sql", -1, 5),
        (early_disq, disq, "disqualified", kind_reason, 6),
        (opp & (opp_t < days), opp_t, "opportunity", -1, 6),
        (drop & (drop_t < days), drop_t, "disqualified", deal_reason, 6),
        (opp & won & (close_t < days), close_t, "customer", -1, 7),
        (opp & ~won & (close_t < days), close_t, "lost", lost_reason, 7),
    ]
    leads_, times, stages, reasons, ranks = [], [], [], [], []
    for mask, t, stage, reason, rank in pieces:
        idx = np.flatnonzero(mask)
        leads_.append(idx)
        times.append(np.broadcast_to(t, (n,))[idx])
        stages.append(np.full(len(idx), _S[stage], dtype=np.int8))
        reasons.append(np.broadcast_to(np.asarray(reason, dtype=np.int16), (n,))[idx])
        ranks.append(np.full(len(idx), rank, dtype=np.int8))
    st_lead, st_t = np.concatenate(leads_), np.concatenate(times)
    st_rank = np.concatenate(ranks)
    order = np.lexsort((st_rank, st_t, st_lead))
    # Open until SQL or a terminal stage (only never-converting leads are disqualified early).
    closed = np.where(converts, tau, np.where(early_disq, disq, np.inf))
    return {
        "lead": st_lead[order],
        "t": st_t[order],
        "stage": np.concatenate(stages)[order],
        "reason": np.concatenate(reasons)[order],
        "tau": tau,
        "closed": closed,
    }


def _truth(
    lead: dict[str, np.ndarray],
    trans: dict[str, np.ndarray],
    stages: dict[str, np.ndarray],
    world: _World,
) -> dict[str, np.ndarray]:
    """Exact P(SQL within the horizon | hidden state at T) for every lead open at T.

    The state distribution is pushed through the lead's daily transition matrices, day by day,
    switching to the in-window matrix on the days the account is in market and rebuilding both
    when the drift level changes; the converted state is absorbing, so its mass after ``horizon``
    steps is the answer.
    """
    created, closed, tau = lead["created"], stages["closed"], stages["tau"]
    rows_lead, rows_day = [], []
    for k in world.as_of:
        open_ = np.flatnonzero((created < k) & (closed >= k))
        rows_lead.append(open_)
        rows_day.append(np.full(len(open_), k, dtype=np.int64))
    li, day = np.concatenate(rows_lead), np.concatenate(rows_day)

    # Hidden state at the start of `day`: after the last transition on an earlier day.
    stride = world.days + 1
    keys = trans["lead"] * stride + trans["day"]
    state = lead["start_state"][li]
    if len(keys):
        pos = np.searchsorted(keys, li * stride + day, side="left") - 1
        safe = np.maximum(pos, 0)
        state = np.where((pos >= 0) & (trans["lead"][safe] == li), trans["to"][safe], state)

    p = np.zeros(len(li))
    live = np.flatnonzero(state < N_TRANSIENT)
    lv, dv = li[live], day[live]
    v = np.zeros((len(live), N_TRANSIENT))
    v[np.arange(len(live)), state[live]] = 1.0
    rates, level = lead["rates"][lv], world.level(dv)
    P_out, P_in = _matrices(rates, False, level), _matrices(rates, True, level)
    ws, we = lead["w_start"][lv], lead["w_end"][lv]
    touches = np.flatnonzero((ws < dv + world.horizon) & (we > dv))
    reached = np.zeros(len(live))
    for j in range(world.horizon):
        if not world.steady:
            now = world.level(dv + j)
            moved = np.flatnonzero(now != level)
            P_out[moved] = _matrices(rates[moved], False, now[moved])
            P_in[moved] = _matrices(rates[moved], True, now[moved])
            level = now
        nxt = np.einsum("mi,mij->mj", v, P_out)
        d = dv[touches] + j
        inside = touches[(ws[touches] <= d) & (d < we[touches])]
        if inside.size:
            nxt[inside] = np.einsum("mi,mij->mj", v[inside], P_in[inside])
        reached += nxt[:, CONVERTED]
        v = nxt[:, :N_TRANSIENT]
    p[live] = reached
    y = (tau[li] >= day) & (tau[li] < day + world.horizon)
    return {
        "lead": li,
        "day": day,
        "p": np.clip(p, 0.0, 1.0),
        "y": y,
        "state": state.astype(np.int8),
    }


# --------------------------------------------------------------------------------------------
# DataFrames (strings via Arrow dictionaries: fast, compact, pandas ``str`` dtype)
# --------------------------------------------------------------------------------------------


def _strings(codes: np.ndarray, dictionary: Sequence[str] | pa.Array) -> pd.Series:
    """``dictionary[codes]`` as a pandas ``str`` Series; negative codes become missing."""
    values = (
        dictionary if isinstance(dictionary, pa.Array) else pa.array(dictionary, pa.large_string())
    )
    codes = np.asarray(codes)
    index = (
        pa.array(codes.astype(np.int64), mask=codes < 0)
        if (codes < 0).any()
        else pa.array(codes.astype(np.int64))
    )
    return pd.Series(values.take(index), dtype="str")


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.large_string()), width, "0")
    sep = pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(pa.scalar(prefix, pa.large_string()), digits, sep)


def _timestamps(t: np.ndarray, origin_us: int, days: int | None = None) -> pd.Series:
    """Times in days since the start of the history as UTC timestamps (microseconds)."""
    us = origin_us + np.round(np.asarray(t) * DAY_US).astype(np.int64)
    if days is not None:  # rounding must not push anything onto `end`
        us = np.minimum(us, origin_us + days * DAY_US - 1)
    return _timestamps_us(us)


def _timestamps_us(us: np.ndarray) -> pd.Series:
    return pd.Series(us.view("datetime64[us]")).dt.tz_localize("UTC")


def _account_ids(n: int) -> pa.Array:
    return _ids("A", n, max(6, len(str(n))))


def _lead_ids(n: int) -> pa.Array:
    return _ids("L", n, max(7, len(str(n))))


def _accounts_frame(acc: dict[str, np.ndarray]) -> pd.DataFrame:
    n, known = len(acc["industry"]), acc["recorded"]
    employees = acc["employees"]
    if not known.all():  # the CRM lacks some firmographics: nulls (a float column, as read)
        employees = np.where(known, employees, np.nan)

    def code(values: np.ndarray) -> np.ndarray:
        return np.where(known, values, -1)

    return pd.DataFrame(
        {
            "account_id": pd.Series(_account_ids(n), dtype="str"),
            "industry": _strings(code(acc["industry"]), INDUSTRIES),
            "employee_count": employees,
            "annual_revenue": np.where(known, acc["revenue"], np.nan),
            "country": _strings(code(acc["country"]), COUNTRIES),
            "tech_stack": _strings(code(acc["tech"]), TECH_STACKS),
        }
    )


def _leads_frame(lead: dict[str, np.ndarray], acc: dict[str, np.ndarray], origin_us: int):
    n = len(lead["created"])
    titles = pa.array(JOB_TITLES + [t.lower() for t in JOB_TITLES], pa.large_string())
    title = np.where(lead["title"] < 0, -1, lead["title"] + len(JOB_TITLES) * lead["title_lower"])
    first = _strings(lead["first"], FIRST_NAMES)
    last = _strings(lead["last"], LAST_NAMES)
    local = (
        _strings(lead["first"], [f.lower() for f in FIRST_NAMES])
        + "."
        + _strings(lead["last"], [x.lower().replace("'", "") for x in LAST_NAMES])
    )
    kind, pick, account = lead["kind"], lead["mail_pick"], lead["account"]
    # Personal addresses often carry a number.
    numbered = (kind != CORPORATE) & (kind != COMPETITOR) & (pick < 0.5)
    local = local.where(~numbered, local + pd.Series(lead["mail_digit"].astype(str), dtype="str"))
    n_free, n_student = len(FREE_MAIL_DOMAINS), len(STUDENT_DOMAINS)
    domain_names = list(FREE_MAIL_DOMAINS) + list(STUDENT_DOMAINS) + list(acc["domain"])
    code = np.select(
        [kind == FREE_MAIL, (kind == STUDENT) & (pick < 0.75), kind == STUDENT],
        [(pick * n_free).astype(np.int64), n_free + (pick / 0.75 * n_student).astype(np.int64), 0],
        n_free + n_student + np.maximum(account, 0),
    )
    email = local + "@" + _strings(code, domain_names)
    return pd.DataFrame(
        {
            "lead_id": pd.Series(_lead_ids(n), dtype="str"),
            "created_at": _timestamps(lead["created"], origin_us),
            "lead_source": _strings(lead["source"], LEAD_SOURCES),
            "account_id": _strings(lead["crm_account"], _account_ids(len(acc["industry"]))),
            "job_title": _strings(title, titles),
            "country": _strings(lead["country"], COUNTRIES),
            "email": email,
            "first_name": first,
            "last_name": last,
        }
    )


def _campaign_names(world: _World) -> list[str]:
    """Campaign dictionary, in the code order used by ``_event_details``."""
    themes = [t for v in _CAMPAIGN_THEMES.values() for t in v]
    return (
        [f"newsletter-{m}" for m in world.month_labels]
        + [f"webinar-{m}" for m in world.month_labels]
        + themes
        + ["nurture-welcome", "nurture-education", "nurture-reengagement"]
    )


def _events_frame(m: dict[str, np.ndarray], n_leads: int, world: _World, origin_us: int):
    """Events table; pops the event arrays from ``m`` as it goes to keep the peak memory low."""
    etype = m.pop("ev_type")
    columns = {
        "lead_id": _strings(m.pop("ev_lead"), _lead_ids(n_leads)),
        "occurred_at": _timestamps_us(origin_us + m.pop("ev_us")),
        "event_type": _strings(etype, EVENT_TYPES),
        "channel": _strings(_EVENT_CHANNEL[etype], CHANNELS),
    }
    del etype
    columns["campaign"] = _strings(m.pop("ev_campaign"), _campaign_names(world))
    columns["content_id"] = _strings(m.pop("ev_content"), CONTENT_IDS)
    columns["url"] = _strings(m.pop("ev_url"), URLS)
    return pd.DataFrame(columns)


def _stages_frame(m: dict[str, np.ndarray], n_leads: int, world: _World, origin_us: int):
    return pd.DataFrame(
        {
            "lead_id": _strings(m["st_lead"], _lead_ids(n_leads)),
            "stage": _strings(m["st_stage"], LIFECYCLE_STAGES),
            "entered_at": _timestamps(m["st_t"], origin_us, world.days),
            "reason": _strings(m["st_reason"], STAGE_REASONS),
        }
    )


def _truth_frame(m: dict[str, np.ndarray], n_leads: int, origin_us: int) -> pd.DataFrame:
    order = np.lexsort((m["tr_lead"], m["tr_day"]))
    return pd.DataFrame(
        {
            "lead_id": _strings(m["tr_lead"][order], _lead_ids(n_leads)),
            "as_of": _timestamps(m["tr_day"][order].astype(np.float64), origin_us),
            "p_true": m["tr_p"][order],
            "converted": m["tr_y"][order],
            "hidden_state": _strings(m["tr_state"][order], HIDDEN_STATES),
        }
    )
