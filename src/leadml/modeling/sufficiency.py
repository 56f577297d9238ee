"""Data sufficiency: is there enough to train a model worth registering?

Shared by the event history (:func:`leadml.modeling.training.train`) and flat exports
(:func:`leadml.flat.train_flat`): with too few rows, or too few conversions or non-conversions,
a model's validation figures are noise, so none is trained or registered and the caller says
why in plain words (a *cold start*).
"""

from __future__ import annotations

from leadml.config import ModelSettings


def insufficiency(rows: int, positives: int, settings: ModelSettings, where: str) -> str | None:
    """Why ``rows`` with ``positives`` conversions are too little to train on, or None.

    ``where`` names the rows in the message ("the training window", "Leads.csv").

    Examples
    --------
    >>> from leadml.config import ModelSettings
    >>> insufficiency(20_000, 40, ModelSettings(), "the training window").split(":")[0]
    'only 40 conversions in the training window, need 100 to train a model worth trusting'
    >>> insufficiency(20_000, 4_000, ModelSettings(), "the training window") is None
    True
    """
    needed_rows, needed = settings.min_training_rows, settings.min_training_positives
    if rows < needed_rows:
        return (
            f"only {rows:,} rows in {where}, need {needed_rows:,} to train a model worth "
            "trusting: lengthen the history, or lower model.min_training_rows"
        )
    if positives < needed:
        return (
            f"only {positives:,} conversions in {where}, need {needed:,} to train a model worth "
            "trusting: lengthen the history, or lower model.min_training_positives"
        )
    if rows - positives < needed:
        return (
            f"only {rows - positives:,} leads that did not convert in {where}, need {needed:,} "
            "to train a model worth trusting: lengthen the history, or lower "
            "model.min_training_positives"
        )
    return None
