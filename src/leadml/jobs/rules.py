"""The rules' jobs: :func:`find_threshold`, the MQL threshold that meets a sales-acceptance rate
or a weekly capacity on the test window, next to the model's tier cut (written into the rules
file on request), and :func:`learn_rules`, a points table learned from a history's outcomes,
written as a rules file and compared with the hand rules on the test window. As every job
(:mod:`leadml.jobs`), they return what they did and raise leadml's errors; they never print.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadml.common.atomic import same_file
from leadml.common.steps import StepClock
from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.readers import Source
from leadml.errors import ConfigError, LeadmlError, ModelUnfit

log = logging.getLogger("leadml.jobs")

if TYPE_CHECKING:
    import pandas as pd

    from leadml.modeling.points import LearnedPoints
    from leadml.modeling.thresholds import Evidence, ThresholdChoice


def find_threshold(
    data: Source | LeadData,
    rules: str | Path | None = None,
    *,
    acceptance: float | None = None,
    per_week: float | None = None,
    model: Any = None,
    write: bool = False,
    min_mqls: int = 20,
    settings: Settings | None = None,
    now: pd.Timestamp | str | None = None,
    force: bool = False,
) -> ThresholdChoice:
    """The MQL threshold of the rules file ``rules`` (default: the shipped rules) that meets a
    sales-acceptance rate (``acceptance``, e.g. 0.8) or a weekly capacity (``per_week`` new
    MQLs) on the test window, with its figures next to the file's own threshold and to the
    model's tier cut; see :mod:`leadml.modeling.thresholds` for what is counted.

    ``model``: the model whose tiers are compared (see :func:`leadml.scoring.resolve_model`);
    ``None`` looks for the registry's champion and, without one, compares the rules alone
    (a note says so). With ``write``, the threshold is written into the rules file ``rules``
    (only its ``mql: threshold:`` value changes), but one at or below every score of the window
    (every open lead an MQL) only with ``force``; otherwise nothing is written.

    Raises
    ------
    ConfigError
        Neither or both targets, a target out of range, ``write`` without a rules file, or an
        invalid rules file.
    ColdStart
        The test window is missing or holds too few conversions to measure a threshold by.
    ThresholdUnreachable
        No threshold meets the target (exit 1); the message names the best one reachable.
    ThresholdRefused
        ``write`` of a threshold that makes every open lead an MQL, without ``force`` (exit 1).
    """
    import pandas as pd

    from leadml.modeling import thresholds as th
    from leadml.modeling.crossings import first_crossings
    from leadml.modeling.threshold_file import write_choice
    from leadml.rules import load_rules

    target = check_threshold_request(acceptance, per_week, rules, write, force)
    loaded = load_data(data, settings, now=now)
    checked = load_rules(rules, loaded.settings)
    clock = StepClock(log)
    evidence = th.gather_evidence(loaded, checked)
    table = th.threshold_table(evidence)
    threshold = th.choose_threshold(table, acceptance=acceptance, per_week=per_week,
                                    min_mqls=min_mqls)  # fmt: skip
    clock.lap("threshold", "%d for %s", threshold, target)
    rows = {"rules, chosen": {"cut": f"score >= {threshold}",
                              **th.rules_figures(evidence, threshold)}}  # fmt: skip
    ours = {"cut": f"score >= {checked.mql.threshold:g}",
            **th.rules_figures(evidence, checked.mql.threshold)}  # fmt: skip
    notes, later = [], {}
    try:
        name, cut, scores = _model_scores(loaded, evidence, model)
    except _NoChampion as exc:
        notes.append(f"no model to compare, the rules are shown alone: {exc}")
    else:
        new = first_crossings(evidence.rows, scores["mql"], scores["previous_mql"], 1)
        outcomes = evidence.rows["accepted"], evidence.rows["converted"]
        later[f"model {name}, tier cut"] = {
            "cut": cut,
            **th.mql_figures(new, *outcomes, evidence.weeks),
        }
        # The model held to the same target: like with like.
        cuts = th.probability_cuts(scores["probability"])
        cut_table = th.cut_table(evidence, scores["probability"], scores["previous_probability"],
                                 cuts)  # fmt: skip
        try:
            at = th.choose_threshold(cut_table, acceptance=acceptance, per_week=per_week,
                                     min_mqls=min_mqls)  # fmt: skip
            rows[f"model {name}, same target"] = {"cut": f"probability >= {at:.3g}",
                                                  **cut_table.loc[at].to_dict()}  # fmt: skip
        except th.ThresholdUnreachable as exc:
            notes.append(f"no probability cut of the model meets the target either: {exc}")
        clock.lap("model", "%s: %s", name, cut)
    rows = {**rows, "rules, the file's threshold": ours, **later}
    compared = pd.DataFrame.from_dict(rows, orient="index").rename_axis("scored_by")
    compared = compared.astype({"mqls": "int64", "accepted": "int64", "conversions": "int64"})
    choice = th.ThresholdChoice(threshold, target, evidence, table, compared, notes,
                                per_week=per_week)  # fmt: skip
    if write:
        write_choice(choice, rules, loaded.settings, force=force)
    return choice


def check_threshold_request(
    acceptance: float | None, per_week: float | None, rules: Any, write: bool, force: bool = False
) -> str:
    """The target in words, or a ConfigError (exit 2) before any data is read: exactly one
    target, in range, a rules file to write into with ``write``, and ``force`` only with it."""
    from leadml.modeling.thresholds import check_target

    target = check_target(acceptance, per_week)
    if write and (rules is None or not isinstance(rules, str | Path)):
        raise ConfigError(
            "writing the threshold needs the rules file to write it into (--rules FILE); the "
            "rules shipped with leadml are not edited"
        )
    if force and not write:
        raise ConfigError("--force applies with --write (it writes a threshold --write refuses)")
    return target


class _NoChampion(LeadmlError):
    """No model was given and the registry has no champion to compare with."""


def _model_scores(data: LeadData, evidence: Evidence, model: Any) -> tuple[str, str, pd.DataFrame]:
    """The model's name, its tier cut in words and, for each of ``evidence.rows``, its
    ``probability`` and ``mql`` (in an MQL tier) at the snapshot and at the one before
    (``previous_probability``, ``previous_mql``; -inf and False when the lead was not open)."""
    import numpy as np
    import pandas as pd

    from leadml.errors import ModelIntegrityError, TrackingError
    from leadml.modeling.thresholds import with_previous
    from leadml.scoring import resolve_model, snapshot_tiers, tier_cut

    try:
        resolved = resolve_model(model, data.settings)
    except ModelIntegrityError:
        raise
    except TrackingError as exc:
        if model is None:
            raise _NoChampion(str(exc)) from None
        raise
    spine = pd.concat([evidence.previous, evidence.rows[["lead_id", "as_of"]]], ignore_index=True)
    scored = snapshot_tiers(data, spine, resolved)[["lead_id", "as_of", "probability", "mql"]]
    found = with_previous(evidence.rows, scored, evidence.cadence_days)
    found = found.fillna({"previous_probability": -np.inf, "previous_mql": False})
    version = f" v{resolved.version}" if resolved.version else ""
    return (
        f"{resolved.name}{version}",
        tier_cut(data.settings),
        found.astype({"mql": bool, "previous_mql": bool}),
    )


def learn_rules(
    data: Source | LeadData,
    out: str | Path,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    max_rules: int = 15,
    now: pd.Timestamp | str | None = None,
    force: bool = False,
) -> LearnedPoints:
    """Learn a points table from ``data``'s outcomes (see :func:`leadml.learn_points`), write it
    to ``out`` as a rules file (atomically) and return it, with its comparison against the hand
    ``rules`` on the test window.

    Raises
    ------
    ConfigError
        (exit 2) Before any work, when ``out`` is the hand ``rules`` file (by any path or link).
    ModelUnfit
        (exit 10) When the table fails, on the test window, the fitness gate a model must pass
        to be registered (it ranks better than chance by a margin, and at least as well as the
        hand rules): nothing is written and a file at ``out`` stays as it was, unless ``force``.
    """
    from leadml.errors import OutputError
    from leadml.modeling.points import learn_points

    check_learned_out(out, rules)
    learned = learn_points(load_data(data, settings, now=now), rules=rules, max_rules=max_rules)
    if learned.unfit and not force:
        raise ModelUnfit(f"{learned.unfit}; {out} was not written (--force writes it anyway)")
    try:
        learned.write(out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}; nothing was written") from None
    return learned


def check_learned_out(out: str | Path, rules: Any) -> None:
    """Refuse (ConfigError, exit 2) an ``out`` that is the hand ``rules`` file (by any path or
    link; None: the shipped rules): the learned table would replace it."""
    from leadml.rules import DEFAULT_RULES

    hand = DEFAULT_RULES if rules is None else rules
    if isinstance(hand, str | Path) and same_file(out, hand):
        raise ConfigError(f"--out {out} is the hand rules file --rules {hand}: the "
                          "learned table would replace it; nothing was written")  # fmt: skip
