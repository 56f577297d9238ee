"""What the CRM and the marketing tools record, and how the sample world draws it.

Canonical event types with their buying stages and channels, the lifecycle transitions and the
reasons a stage carries, then the firmographic tables (industries, countries, tech stacks, lead
sources, kinds of person, seniorities, departments), each row with its share and fit multiplier.

Examples
--------
>>> BUYING_STAGE["demo_request"], EVENT_TYPES[EVENT_CODE["pricing_page_view"]]
('decision', 'pricing_page_view')
>>> INDUSTRIES[0], float(INDUSTRY_P.sum().round(6))
('software', 1.0)
"""

from __future__ import annotations

import numpy as np


def column_arrays(rows: list[tuple]) -> tuple:
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
EVENT_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
DECISION_EVENTS = np.array(
    [EVENT_CODE[e] for e, stage in BUYING_STAGE.items() if stage == "decision"]
)

CHANNELS = ("web", "email", "ads", "social", "event", "sales")
_CHANNEL_OF = {"email_open": "email", "email_click": "email", "unsubscribe": "email",
               "email_bounce": "email", "ad_click": "ads", "social_engagement": "social",
               "webinar_attended": "event", "consultation_request": "sales"}  # fmt: skip
EVENT_CHANNEL = np.array([CHANNELS.index(_CHANNEL_OF.get(e, "web")) for e in EVENT_TYPES])

# Lifecycle: the moves a stage history makes, and the reasons a stage row may carry.
ALLOWED_TRANSITIONS = {
    "lead": {"mql"},
    "mql": {"sal", "srl"},
    "sal": {"sql"},
    "srl": {"mql", "disqualified"},  # recycled when the lead raises a hand again
    "sql": {"opportunity", "disqualified"},
    "opportunity": {"customer", "lost"},
}
STAGE_REASONS = (
    "score_threshold", "hand_raise", "recycled", "not_a_fit", "no_budget", "bad_timing", "student",
    "competitor", "invalid_contact", "no_authority", "no_need", "price", "competitor_chosen",
    "no_decision",
)  # fmt: skip

# Industry: share of accounts, fit multiplier, median revenue per employee (USD).
INDUSTRIES, INDUSTRY_P, INDUSTRY_FIT, REVENUE_PER_EMPLOYEE = column_arrays([
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
COUNTRIES, COUNTRY_P, COUNTRY_FIT, COUNTRY_PEAK = column_arrays([
    ("US", 0.42, 1.15, 0.68), ("GB", 0.10, 1.10, 0.48), ("DE", 0.08, 1.05, 0.44),
    ("IN", 0.08, 0.55, 0.30), ("CA", 0.05, 1.10, 0.68), ("FR", 0.05, 0.90, 0.44),
    ("AU", 0.04, 1.05, 0.08), ("NL", 0.03, 1.00, 0.44), ("BR", 0.03, 0.60, 0.62),
    ("JP", 0.02, 0.70, 0.12), ("SG", 0.02, 0.95, 0.16), ("ES", 0.02, 0.80, 0.44),
    ("SE", 0.02, 1.00, 0.44), ("IE", 0.02, 1.00, 0.48), ("MX", 0.02, 0.60, 0.72),
])  # fmt: skip
COUNTRY_TLD = (  # in the order of COUNTRIES
    "com", "co.uk", "de", "in", "ca", "fr", "com.au", "nl", "com.br", "jp", "sg", "es", "se", "ie",
    "mx",
)  # fmt: skip

TECH_STACKS, TECH_FIT = column_arrays([
    ("salesforce", 1.2), ("hubspot", 1.3), ("microsoft_dynamics", 1.0), ("zoho", 0.9),
    ("none", 0.7),
])  # fmt: skip

# Lead source: share, interest multiplier, share arriving considering / deciding (the rest
# arrive dormant), share with an address that bounces.
(LEAD_SOURCES, SOURCE_P, SOURCE_INTEREST, SOURCE_P_CONSIDERING, SOURCE_P_DECIDING,
 SOURCE_BAD_EMAIL) = column_arrays([
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
SENIORITIES, SENIORITY_P, SENIORITY_FIT, SENIORITY_POINTS = column_arrays([
    ("c_level",                0.04, 1.20,  20),
    ("vp",                     0.07, 1.55,  20),
    ("director",               0.14, 1.50,  15),
    ("manager",                0.26, 1.15,   8),
    ("individual_contributor", 0.49, 0.55,   0),
    ("student",                0.00, 0.00, -50),
])  # fmt: skip
SENIORITY_P = SENIORITY_P[:5]
# Department: share below c-level, share among c-levels, fit multiplier.
DEPARTMENTS, DEPARTMENT_P, C_LEVEL_DEPARTMENT_P, DEPARTMENT_FIT = column_arrays([
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
