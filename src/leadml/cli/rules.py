"""``leadml rules threshold``: the MQL threshold set by evidence, a subcommand of the ``rules``
group (:mod:`leadml.cli.data`)."""

from __future__ import annotations

from typing import Annotated

import typer

from leadml.cli.data import rules_app
from leadml.cli.shared import (
    OUTPUT,
    ConfigOption,
    DataOption,
    NowOption,
    RulesOption,
    load_checked,
    named,
    record,
    say,
    warn,
)
from leadml.config import load_settings


@rules_app.command("threshold")
@named("rules threshold")
def threshold(
    data: DataOption,
    rules: RulesOption = None,
    acceptance: Annotated[
        float | None,
        typer.Option(
            help="Target share of MQLs sales accepts (SAL or a later stage when the data records "
            "sales reviews, else the target stage), e.g. 0.8.",
        ),
    ] = None,
    per_week: Annotated[
        float | None,
        typer.Option("--per-week", help="Sales capacity: new MQLs sales can take a week."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model compared, held to the same target and at its tier cut: "
            "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH or an export folder "
            "(default: the registry's champion, if any; without one, the rules alone)."
        ),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Write the threshold into the --rules file (only its mql: threshold: value "
            "changes; comments and layout stay). Without it nothing is written.",
        ),
    ] = False,
    min_mqls: Annotated[
        int,
        typer.Option(min=1, help="Fewest MQLs in the test window for an acceptance rate to count."),
    ] = 20,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With --write: write the threshold even if it is at or below every score of "
            "the test window (every open lead an MQL).",
        ),
    ] = False,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """The MQL threshold that meets a sales-acceptance rate (--acceptance 0.8) or a weekly
    capacity (--per-week 100) on the test window `leadml train` tests on.

    An MQL counts at the snapshot its score first reaches the threshold and is followed for one
    horizon. Prints, for the chosen threshold, the rules file's own, the model held to the same
    target and the model's tier cut: new MQLs a week, the share sales accepted and the
    conversions (the target stage within the horizon). Of the thresholds that meet the target,
    the one that finds the most conversions is chosen. A warning says when the target does not
    limit the MQLs (a capacity above what any threshold sends; a threshold at or below every
    score, so every open lead an MQL), and --write then refuses such a threshold unless --force.
    Exit 1 when no threshold meets it (the best reachable is named) or --write refuses, 2 for a
    bad target or rules file, 9 (cold start) when the test window is missing or holds too few
    conversions to measure by (split.min_window_positives).
    """
    from leadml.data.readers import parse_instant
    from leadml.jobs import check_threshold_request, find_threshold

    settings = load_settings(config)
    instant = parse_instant(now, "--now") if now is not None else None
    check_threshold_request(acceptance, per_week, rules, write, force)  # before reading data
    choice = find_threshold(load_checked(data, settings, instant), rules, acceptance=acceptance,
                            per_week=per_week, model=model, write=write, min_mqls=min_mqls,
                            force=force)  # fmt: skip
    record(**choice.summary())
    say(choice.format())
    if OUTPUT.quiet:  # the printed choice holds them otherwise
        for text in choice.warnings:
            warn(f"warning: {text}")
    if choice.written is not None:
        warn(f"threshold {choice.threshold} written into {choice.written}")
