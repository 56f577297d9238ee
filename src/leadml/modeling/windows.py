"""The train | calibration | test windows of a training set: snapshots placed in time order with
a horizon between windows (by calendar days or by their share of the conversions), what each
holds, and whether that is enough to train and test on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.config import Settings
from leadml.modeling.sufficiency import insufficiency

WINDOWS = ("train", "calibration", "test")


def assign_windows(
    as_of: pd.Series,
    label: pd.Series,
    settings: Settings,
    *,
    by: str = "days",
    calibration: bool = True,
) -> pd.Series:
    """Label each snapshot date train, calibration, test, or NA (inside a gap).

    Latest first. ``by="days"``: the test window is the last ``split.test_days`` of snapshots
    and the calibration window the ``split.calibration_days`` before it; ``by="conversions"``:
    the latest snapshots holding ``split.test_share`` of the mature conversions, then those
    holding ``split.calibration_share``. One horizon separates the windows; the training window
    takes the rest. Without ``calibration``: train | gap | test (calibration is then
    cross-fitted inside the training window).

    Examples
    --------
    >>> dates = pd.Series(pd.date_range("2025-01-06", periods=80, freq="7D", tz="UTC"))
    >>> windows = assign_windows(dates, pd.Series([1] * 80), Settings(), by="conversions")
    >>> windows.value_counts(sort=False).to_dict()  # one conversion a week; two 90-day gaps
    {'train': 20, 'calibration': 16, 'test': 20}
    """
    horizon = pd.Timedelta(days=settings.target.horizon_days)
    split = settings.split
    per_date = pd.Series(np.asarray(label), index=as_of.to_numpy()).groupby(level=0).sum()
    total = max(float(per_date.sum()), 1.0)

    def start(end: pd.Timestamp, days: int, share: float) -> pd.Timestamp:
        """The first snapshot of the window ending at ``end``: ``days`` long, or the latest
        snapshots holding ``share`` of the conversions (at least one)."""
        before = per_date[per_date.index <= end]
        if by == "days":
            return end - pd.Timedelta(days=days) + pd.Timedelta(microseconds=1)
        held = before[::-1].cumsum() / total
        enough = held[held >= share]
        return enough.index[0] if len(enough) else before.index[0]

    window = pd.Series(pd.NA, index=as_of.index, dtype="string")
    test_start = start(per_date.index[-1], split.test_days, split.test_share)
    window[as_of >= test_start] = "test"
    train_end = test_start - horizon
    if calibration and (per_date.index <= train_end).any():
        calibration_start = start(train_end, split.calibration_days, split.calibration_share)
        window[(as_of >= calibration_start) & (as_of <= train_end)] = "calibration"
        train_end = calibration_start - horizon
    window[as_of <= train_end] = "train"
    return window


def place_windows(frame: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, str | None]:
    """The snapshots with their window (:func:`assign_windows`), and a note when they are not
    the calendar windows. In order, the first that holds the evidence (``split.placement``
    ``auto``): the calendar windows; windows sized by conversions; train | test with
    calibration cross-fitted inside the training window. When none does, the last is returned
    and training is a cold start."""
    placement, needed = settings.split.placement, settings.split.min_window_positives
    order = {"auto": ["days", "conversions"], "days": ["days"]}.get(placement, ["conversions"])
    plans = [(by, True) for by in order] + [(order[-1], False)]
    for by, calibration in plans:
        placed = frame.assign(
            window=assign_windows(
                frame["as_of"], frame["label"], settings, by=by, calibration=calibration
            )
        )
        windows = describe_windows(placed)
        held = windows.loc["calibration", ["positives", "rows"]]
        enough = min(held["positives"], held["rows"] - held["positives"]) >= needed
        if (enough or not calibration) and not too_little(windows, settings):
            break
    if by == "days" and calibration:
        return placed, None
    how = {
        "days": "the calendar windows",
        "conversions": "windows sized by their share of the conversions",
    }[by]
    why = (
        f"the calendar windows ({settings.split.calibration_days} + "
        f"{settings.split.test_days} days) hold too few conversions"
        if placement == "auto"
        else f"split.placement is {placement}"
    )
    if calibration:
        return placed, f"{why}: {how} are used"
    return placed, (
        f"{why}, and no calibration window of its own holds split.min_window_positives "
        f"({needed}) conversions: {how}, train | test, with calibration cross-fitted inside the "
        "training window"
    )


def too_little(windows: pd.DataFrame, settings: Settings) -> str | None:
    """Why the windows are too small to train and test on, naming the setting, or None."""
    if windows["rows"].sum() and not windows["positives"].sum():  # windows sized by conversions
        target = settings.target
        return (
            f"no conversion in the history's {int(windows['snapshots'].sum()):,} mature "
            f"snapshots ({int(windows['rows'].sum()):,} open leads at them): "
            f"no lead reached {target.stage!r} or a later stage within "
            f"{target.horizon_days} days of one. Check target.stage against the stages table"
        )
    short = insufficiency(
        int(windows.loc["train", "rows"]),
        int(windows.loc["train", "positives"]),
        settings.model,
        "the training window",
    )
    test, needed = windows.loc["test"], settings.split.min_window_positives
    if short is None and min(test["positives"], test["rows"] - test["positives"]) < needed:
        short = (
            f"only {int(test['positives']):,} conversions and "
            f"{int(test['rows'] - test['positives']):,} non-conversions in the test window "
            f"({int(test['rows']):,} rows), need {needed} of each: lengthen the history, or "
            "lower split.min_window_positives"
        )
    return short


def describe_windows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per window of ``frame`` (:func:`place_windows`): snapshots, rows, positives, base rate."""
    rows = {}
    for window in WINDOWS:
        part = frame[frame["window"] == window]
        rows[window] = {
            "first_snapshot": part["as_of"].min(),
            "last_snapshot": part["as_of"].max(),
            "snapshots": part["as_of"].nunique(),
            "rows": len(part),
            "positives": int(part["label"].sum()),
        }
    return with_base_rates(pd.DataFrame.from_dict(rows, orient="index").rename_axis("window"))


def with_base_rates(windows: pd.DataFrame) -> pd.DataFrame:
    """``windows`` with each window's conversion rate and its ratio to the training window's."""
    rate = windows["positives"] / windows["rows"].where(windows["rows"] > 0)
    return windows.assign(base_rate=rate, rate_vs_train=rate / rate.get("train", np.nan))
