"""The contract tables as DataFrames, from the simulated arrays (strings via Arrow
dictionaries: fast, compact, pandas ``str`` dtype)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadml.config import LIFECYCLE_STAGES
from leadml.synth.catalogue import CONTENT_IDS, URLS, campaign_names
from leadml.synth.journeys import HIDDEN_STATES
from leadml.synth.people import (
    FIRST_NAMES,
    FREE_MAIL_DOMAINS,
    JOB_TITLES,
    LAST_NAMES,
    STUDENT_DOMAINS,
)
from leadml.synth.vocabulary import (
    CHANNELS,
    COMPETITOR,
    CORPORATE,
    COUNTRIES,
    EVENT_CHANNEL,
    EVENT_TYPES,
    FREE_MAIL,
    INDUSTRIES,
    LEAD_SOURCES,
    STAGE_REASONS,
    STUDENT,
    TECH_STACKS,
)
from leadml.synth.world import DAY_US, World


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


def accounts_frame(acc: dict[str, np.ndarray]) -> pd.DataFrame:
    """The accounts table (firmographics the CRM lacks are nulls)."""
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


def leads_frame(
    lead: dict[str, np.ndarray], acc: dict[str, np.ndarray], origin_us: int
) -> pd.DataFrame:
    """The leads table, with the PII a CRM holds (e-mail address, names)."""
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


def events_frame(
    m: dict[str, np.ndarray], n_leads: int, world: World, origin_us: int
) -> pd.DataFrame:
    """Events table; pops the event arrays from ``m`` as it goes to keep the peak memory low."""
    etype = m.pop("ev_type")
    columns = {
        "lead_id": _strings(m.pop("ev_lead"), _lead_ids(n_leads)),
        "occurred_at": _timestamps_us(origin_us + m.pop("ev_us")),
        "event_type": _strings(etype, EVENT_TYPES),
        "channel": _strings(EVENT_CHANNEL[etype], CHANNELS),
    }
    del etype
    columns["campaign"] = _strings(m.pop("ev_campaign"), campaign_names(world))
    columns["content_id"] = _strings(m.pop("ev_content"), CONTENT_IDS)
    columns["url"] = _strings(m.pop("ev_url"), URLS)
    return pd.DataFrame(columns)


def stages_frame(
    m: dict[str, np.ndarray], n_leads: int, world: World, origin_us: int
) -> pd.DataFrame:
    """The stages table."""
    return pd.DataFrame(
        {
            "lead_id": _strings(m["st_lead"], _lead_ids(n_leads)),
            "stage": _strings(m["st_stage"], LIFECYCLE_STAGES),
            "entered_at": _timestamps(m["st_t"], origin_us, world.days),
            "reason": _strings(m["st_reason"], STAGE_REASONS),
        }
    )


def truth_frame(m: dict[str, np.ndarray], n_leads: int, origin_us: int) -> pd.DataFrame:
    """The hidden truth, sorted by as-of instant, then lead."""
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
