"""Small synthetic flat exports with a known signal, every kind of mess and every kind of leak.

The honest columns carry the signal (visits, source, opt-in); the leaks are built from the
outcome itself, each the way real CRM exports carry them:

- ``Lead Status``: set by sales after the outcome ("Closed Won"/"Closed Lost"; a few "Open").
- ``Rep Verdict``: a neutral name, but "Hot" marks most converted leads (a pure value).
- ``Deal Amount``: filled in only for won leads.
- ``Call Duration``: weakly related, flagged by its name only.
- ``CRM Number``: an identifier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import Settings

#: Columns that leak, and the check that must flag each.
LEAKS = {
    "Lead Status": {"single_column", "name"},
    "Rep Verdict": {"single_column"},
    "Deal Amount": {"presence"},
    "Call Duration": {"name"},
    "CRM Number": {"identifier"},
}
HONEST = ["Lead Source", "Visits", "Revenue", "Opted In", "Webinar", "Country"]


def fast_settings(**flat) -> Settings:
    """Settings for tests: one quick model family, small folds, low sufficiency thresholds."""
    return Settings.model_validate(
        {
            "model": {
                "candidates": ["logistic"],
                "search_folds": 2,
                "calibration_methods": ["sigmoid"],
                "min_training_rows": 100,
                "min_training_positives": 20,
            },
            "flat": {"cv_folds": 3, **flat},
        }
    )


def export_frame(n: int = 600, seed: int = 0, leaks: bool = True) -> pd.DataFrame:
    """A messy export as a CRM writes it: every value text."""
    rng = np.random.default_rng(seed)
    source = rng.choice(["Google", "Direct", "Referral", "Webinar"], n, p=[0.4, 0.3, 0.2, 0.1])
    visits = rng.poisson(4, n) * rng.choice([1, 400], n, p=[0.85, 0.15])
    opted = rng.random(n) < 0.5
    logit = -2.0 + 0.25 * np.log1p(visits) + 1.2 * opted + 0.9 * (source == "Referral")
    converted = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365, n)), "D")
    frame = pd.DataFrame(
        {
            "Lead ID": [f"L{i:05d}" for i in range(n)],
            "Created": created.strftime("%d/%m/%Y"),
            # Case variants, a form placeholder and empty cells.
            "Lead Source": np.where(rng.random(n) < 0.05, "google", source),
            # Thousands separators, a few words among the numbers (mixed types).
            "Visits": [f"{v:,}" for v in visits],
            "Revenue": [f"${v:,.0f}" for v in rng.lognormal(9, 1, n)],
            "Opted In": np.where(opted, rng.choice(["Yes", "yes", "Y"], n), "No"),
            "Webinar": rng.choice(["true", "false"], n),
            "Country": rng.choice([" India", "USA ", "UK"], n),
            "Notes": [
                f"Spoke about course {i}: wants a call back next week, budget still unclear."
                for i in range(n)
            ],
            "Email": [f"person{i}@example.com" for i in range(n)],
            "Unused Field": "x",
            "Converted": converted.astype(str),
        }
    )
    frame.loc[rng.random(n) < 0.1, "Lead Source"] = "Select"
    frame.loc[rng.random(n) < 0.05, "Lead Source"] = ""
    frame.loc[rng.choice(n, 6, replace=False), "Visits"] = "about 5"
    if leaks:
        won = converted == 1
        frame["Lead Status"] = np.where(won, "Closed Won", "Closed Lost")
        frame.loc[rng.random(n) < 0.05, "Lead Status"] = "Open"
        hot = won & (rng.random(n) < 0.7)
        frame["Rep Verdict"] = np.where(hot, "Hot", rng.choice(["Warm", "Cold"], n))
        amount = [f"{v:,.0f}" for v in rng.lognormal(8, 0.5, n)]
        frame["Deal Amount"] = np.where(won & (rng.random(n) < 0.6), amount, "")
        frame["Call Duration"] = (rng.poisson(3, n) + won).astype(str)
        frame["CRM Number"] = (100_000 + rng.permutation(n)).astype(str)
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as a CRM would: CRLF line ends and a trailing comma on every line."""
    lines = [",".join(frame.columns) + ","]
    for row in frame.itertuples(index=False):
        lines.append(",".join(_cell(v) for v in row) + ",")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def _cell(value) -> str:
    text = str(value)
    return f'"{text}"' if ("," in text or '"' in text) else text
