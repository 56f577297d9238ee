"""Reasons in words a salesperson reads: "3 pricing-page visits in the last 30 days (+)".

A phrase depends only on the feature and its value, so phrases are written once per distinct
(feature, shown value) pair -- a few thousand on a million leads -- and then looked up.
Values are rounded to what is shown first (whole counts and days, two significant digits of
money), which is what keeps the distinct pairs few.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from leadml.common.safe_text import shorten
from leadml.config import Settings

#: Canonical event type -> (singular, plural).
EVENT_NOUNS = {
    "page_view": ("page view", "page views"),
    "blog_view": ("blog-post view", "blog-post views"),
    "newsletter_signup": ("newsletter sign-up", "newsletter sign-ups"),
    "email_open": ("e-mail open", "e-mail opens"),
    "ad_click": ("ad click", "ad clicks"),
    "social_engagement": ("social-media interaction", "social-media interactions"),
    "email_click": ("e-mail click", "e-mail clicks"),
    "content_download": ("content download", "content downloads"),
    "case_study_view": ("case-study view", "case-study views"),
    "webinar_registration": ("webinar registration", "webinar registrations"),
    "webinar_attended": ("webinar attended", "webinars attended"),
    "pricing_page_view": ("pricing-page visit", "pricing-page visits"),
    "product_page_view": ("product-page visit", "product-page visits"),
    "demo_request": ("demo request", "demo requests"),
    "contact_request": ("contact request", "contact requests"),
    "trial_signup": ("trial sign-up", "trial sign-ups"),
    "consultation_request": ("consultation request", "consultation requests"),
    "unsubscribe": ("unsubscribe", "unsubscribes"),
    "email_bounce": ("bounced e-mail", "bounced e-mails"),
    "other": ("other activity", "other activities"),
}
STAGE_NOUNS = {
    "awareness": ("awareness-stage action (blog, newsletter...)",
                  "awareness-stage actions (blog, newsletter...)"),
    "consideration": ("consideration-stage action (webinar, pricing page...)",
                      "consideration-stage actions (webinar, pricing page...)"),
    "decision": ("hand-raise (demo, trial, contact request)",
                 "hand-raises (demo, trial, contact request)"),
    "negative": ("unsubscribe or bounce", "unsubscribes or bounces"),
}  # fmt: skip
LABELS = {
    "c_level": "C-level",
    "vp": "VP",
    "individual_contributor": "individual contributor",
    "it": "IT",
    "hr": "HR",
    "mql": "MQL",
    "sal": "sales accepted (SAL)",
    "srl": "sales rejected (SRL)",
    "sql": "SQL",
}
ACCOUNT_STAGES = {
    "mql": "already MQL or further",
    "sql": "already SQL or further",
    "opportunity": "already an opportunity or further",
    "customer": "already customers",
    "lost": "lost or disqualified",
}
FUNNEL = {0: "lead", 1: "MQL", 2: "SAL/SRL", 3: "SQL", 4: "opportunity", 5: "customer"}

Formatter = Callable[[object], str]


def _count(value: float, nouns: tuple[str, str]) -> str:
    n = round(float(value))
    if n == 0:
        return f"no {nouns[1]}"
    return f"{n:,} {nouns[0] if n == 1 else nouns[1]}"


def _days(value: float) -> str:
    n = round(float(value))
    return "today" if n == 0 else "1 day ago" if n == 1 else f"{n:,} days ago"


def _label(value: object) -> str:
    text = str(value)
    return LABELS.get(text, shorten(text).replace("_", " "))  # a reason is read, not a key


def _money(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"${value / size:.2g}{suffix}"
    return f"${value:,.0f}"


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


class Phrasebook:
    """Feature name -> how its values read, for one configuration of the features."""

    def __init__(self, settings: Settings, meanings: dict[str, str] | None = None):
        from leadml.features import identifier

        self.meanings = meanings or {}
        self.windows = "|".join(str(w) for w in settings.features.windows_days)
        self.account_windows = "|".join(str(w) for w in settings.features.account_windows_days)
        self.trend = settings.features.trend_days
        types = [*settings.data.buying_stage_lookup(), "other"]
        self.event_nouns = {
            identifier(t): EVENT_NOUNS.get(t, (t.replace("_", " "), t.replace("_", " ") + "s"))
            for t in types
        }
        self._formatters: dict[str, Formatter] = {}

    # -- rounding: what is shown decides which values share a phrase -------------------------

    def shown(self, feature: str, values: pd.Series) -> pd.Series:
        """``values`` rounded to what the phrase shows (text and flags as they are)."""
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            return values
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        if feature == "annual_revenue":
            with np.errstate(divide="ignore", invalid="ignore"):
                magnitude = 10 ** np.floor(np.log10(np.abs(x)))
            keep = np.isfinite(magnitude) & (x != 0)
            x = np.where(keep, np.round(x / np.where(keep, magnitude, 1), 1) * magnitude, x)
        elif feature.startswith(("trend_", "email_click_per", "unsubscribe_per")):
            x = np.round(x, 2)
        else:
            x = np.round(x)
        return pd.Series(x, index=values.index)

    # -- phrases ------------------------------------------------------------------------------

    def phrase(self, feature: str, value: object) -> str:
        """How ``feature`` = ``value`` reads (value as returned by :meth:`shown`)."""
        if _missing(value):
            return self._missing_phrase(feature)
        # A formatter is found by a dozen regular expressions: once per feature, not per value.
        if feature not in self._formatters:
            self._formatters[feature] = self._formatter(feature)
        return self._formatters[feature](value)

    def _missing_phrase(self, feature: str) -> str:
        if feature.startswith("days_since_last_decision"):
            return "never asked for a demo, trial or contact"
        if feature.startswith("days_since_last_negative"):
            return "never unsubscribed or bounced"
        if feature in ("days_since_last_event", "days_since_first_event", "days_since_last_action"):
            return "no activity yet"
        if feature == "days_since_mql":
            return "never an MQL"
        if feature.startswith(("email_click_per", "unsubscribe_per")):
            return "no e-mails opened recently"
        readable = {"industry": "industry", "country": "country", "region": "region",
                    "seniority": "seniority", "department": "department",
                    "company_size_band": "company size", "revenue_band": "revenue",
                    "employee_count": "company size", "annual_revenue": "revenue"}  # fmt: skip
        if feature in readable:
            return f"{readable[feature]} unknown"
        return f"{self.meanings.get(feature, feature)}: unknown"

    def _formatter(self, feature: str) -> Formatter:
        w, aw = self.windows, self.account_windows
        if m := re.fullmatch(rf"events_({w})d", feature):
            return lambda v, d=m[1]: f"{_count(v, ('activity', 'activities'))} in the last {d} days"
        if m := re.fullmatch(rf"(awareness|consideration|decision|negative)_actions_({w})d",
                             feature):  # fmt: skip
            return lambda v, s=m[1], d=m[2]: f"{_count(v, STAGE_NOUNS[s])} in the last {d} days"
        if m := re.fullmatch(rf"active_days_({w})d", feature):
            return lambda v, d=m[1]: (
                f"active on {_count(v, ('day', 'days'))} of the last {d}"
                if round(v) else f"not active in the last {d} days"
            )  # fmt: skip
        if m := re.fullmatch(rf"distinct_content_({w})d", feature):
            return lambda v, d=m[1]: (
                f"{_count(v, ('content piece', 'different content pieces'))} in the last {d} days"
            )
        if (m := re.fullmatch(rf"(.+)_({w})d", feature)) and m[1] in self.event_nouns:
            nouns = self.event_nouns[m[1]]
            return lambda v, d=m[2]: f"{_count(v, nouns)} in the last {d} days"
        if feature == "events_total":
            return lambda v: f"{_count(v, ('activity', 'activities'))} ever"
        if feature == "decision_actions_total":
            return lambda v: f"{_count(v, STAGE_NOUNS['decision'])} ever"
        if feature == "negative_actions_total":
            return lambda v: f"{_count(v, STAGE_NOUNS['negative'])} ever"
        if feature == "days_since_last_event":
            return lambda v: f"last activity {_days(v)}"
        if feature == "days_since_first_event":
            return lambda v: f"first activity {_days(v)}"
        if feature == "days_since_last_decision_action":
            return lambda v: f"last demo, trial or contact request {_days(v)}"
        if feature == "days_since_last_negative_action":
            return lambda v: f"unsubscribed or bounced {_days(v)}"
        if feature == "days_since_last_action":
            return lambda v: f"last action {_days(v)}"
        if feature == f"events_prev_{self.trend}d":
            t = self.trend
            return lambda v: (
                f"{_count(v, ('activity', 'activities'))} in the {t} days before the last {t}"
            )
        if feature == f"trend_{self.trend}d":
            t = self.trend
            return lambda v: (
                f"activity rising over the last {t} days" if v > 0.05
                else f"activity falling over the last {t} days" if v < -0.05
                else f"activity steady over the last {t} days"
            )  # fmt: skip
        if feature.startswith("email_click_per_open"):
            return lambda v: f"clicks in {v:.0%} of opened e-mails"
        if feature.startswith("unsubscribe_per_email_open"):
            return lambda v: f"{v:.0%} unsubscribes per opened e-mail"
        if feature == "lead_age_days":
            return lambda v: f"lead created {_days(v)}"
        if feature == "employee_count":
            return lambda v: f"{int(v):,} employees"
        if feature == "annual_revenue":
            return lambda v: f"annual revenue {_money(float(v))}"
        if feature == "company_size_band":
            return lambda v: f"company of {v} employees"
        if feature == "revenue_band":
            return lambda v: f"company revenue {v}"
        if feature == "lead_source":
            return lambda v: f"came from {_label(v)}"
        if feature in ("seniority", "department", "industry", "region"):
            return lambda v: f"{feature}: {_label(v)}"
        if feature == "country":
            return lambda v: f"based in {v}"
        flags = {
            "is_free_mail": ("free e-mail address (e.g. Gmail)", "business e-mail address"),
            "is_student": ("student e-mail address", "not a student address"),
            "is_competitor": ("e-mail at a competitor", "not at a competitor"),
            "has_account": ("company known (has an account)", "no known company account"),
            "sales_accepted": ("accepted by sales", "not yet accepted by sales"),
            "sales_rejected": ("rejected by sales before", "never rejected by sales"),
        }
        if feature in flags:
            yes, no = flags[feature]
            return lambda v: yes if _truthy(v) else no
        if feature == "current_stage":
            return lambda v: f"current stage: {_label(v)}"
        if feature == "funnel_rank":
            return lambda v: f"furthest stage reached: {FUNNEL.get(int(v), int(v))}"
        if feature == "days_in_current_stage":
            return lambda v: f"in the current stage since {_days(v)}"
        if feature == "days_since_mql":
            return lambda v: f"became MQL {_days(v)}"
        if feature == "stage_changes":
            return lambda v: f"{_count(v, ('stage change', 'stage changes'))} so far"
        if feature == "account_other_leads":
            return lambda v: f"{_count(v, ('colleague', 'colleagues'))} from the same company"
        if m := re.fullmatch(rf"account_events_({aw})d", feature):
            return lambda v, d=m[1]: (
                f"{_count(v, ('activity', 'activities'))} by colleagues in the last {d} days"
            )
        if m := re.fullmatch(rf"account_decision_actions_({aw})d", feature):
            return lambda v, d=m[1]: (
                f"{_count(v, STAGE_NOUNS['decision'])} by colleagues in the last {d} days"
            )
        if m := re.fullmatch(rf"account_active_leads_({aw})d", feature):
            return lambda v, d=m[1]: (
                f"{_count(v, ('active colleague', 'active colleagues'))} in the last {d} days"
            )
        if (m := re.fullmatch(r"account_leads_(\w+)", feature)) and m[1] in ACCOUNT_STAGES:
            text = ACCOUNT_STAGES[m[1]]
            return lambda v: f"{_count(v, ('colleague', 'colleagues'))} {text}"
        meaning = self.meanings.get(feature, feature.replace("_", " "))
        return lambda v: f"{meaning}: {_label(v) if isinstance(v, str) else _plain(v)}"


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _plain(value: object) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3g}" if isinstance(value, float | np.floating) else str(value)
