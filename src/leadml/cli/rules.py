"""``leadml rules``: score the leads open at an instant with a rules file (as before, the group's
own command), and its subcommands: ``threshold`` sets the MQL threshold by evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadml.cli import data as data_commands
from leadml.cli.shared import (
    ConfigOption,
    DataOption,
    NowOption,
    OptionalDataOption,
    RulesOption,
    command,
    record,
    say,
    warn,
)
from leadml.config import load_settings

group = typer.Typer(
    help="Score the leads open at --as-of with a rules file (--data, --as-of, --out), or run a "
    "subcommand: threshold.",
    no_args_is_help=False,
)


@group.callback(invoke_without_command=True)
def rules(
    ctx: typer.Context,
    data: OptionalDataOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Score as of this instant (UTC; a date means its midnight). Only data strictly "
            "before it counts.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="File to write the scores to (.parquet, .csv or .csv.gz).", dir_okay=False
        ),
    ] = None,
    rules: RulesOption = None,
    explain: Annotated[bool, typer.Option(help="Add one points column per rule and cap.")] = True,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Score the leads open at --as-of with the rules file: fit, engagement, total, grade, MQL.

    The rules file is checked first: on any problem, all are printed and nothing is scored
    (exit 2). `leadml rules threshold --help` sets the MQL threshold by evidence.
    """
    given = dict(data=data, as_of=as_of, out=out, rules=rules, config=config, now=now)
    if ctx.invoked_subcommand is None:
        _score(**given, explain=explain)
    elif any(v is not None for v in given.values()):
        raise typer.BadParameter(
            f"options go after the subcommand: leadml rules {ctx.invoked_subcommand} --data ..."
        )


def _named(name: str):
    """:func:`~leadml.cli.shared.command` under ``name``: its errors read ``leadml NAME: ...``
    and its JSON object names it."""

    def wrap(func):
        func.__name__ = name
        return command(func)

    return wrap


@_named("rules")
def _score(data, as_of, out, rules, explain, config, now) -> None:
    missing = [f"--{k.replace('_', '-')}" for k, v in (("data", data), ("as_of", as_of),
                                                        ("out", out)) if v is None]  # fmt: skip
    if missing:
        raise typer.BadParameter(
            f"missing {', '.join(missing)}: `leadml rules` scores the leads open at --as-of "
            "into --out (or name a subcommand: threshold)"
        )
    data_commands.rules.__wrapped__(data=data, as_of=as_of, out=out, rules=rules,
                                    explain=explain, config=config, now=now)  # fmt: skip


@group.command("threshold")
@_named("rules threshold")
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
            help="Model whose tier cut is compared: models:/NAME@ALIAS, models:/NAME/VERSION, "
            "runs:/RUN_ID/PATH or an export folder (default: the registry's champion, if any)."
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
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """The MQL threshold that meets a sales-acceptance rate (--acceptance 0.8) or a weekly
    capacity (--per-week 100) on the test window `leadml train` tests on.

    Prints, for the chosen threshold, the rules file's own and the model's tier cut: new MQLs
    a week, the share sales accepted and the conversions (the target stage within the
    horizon). Of the thresholds that meet the target, the one that finds the most conversions
    is chosen. Exit 1 when no threshold meets it (the best reachable is named), 2 for a bad
    target or rules file.
    """
    from leadml.data.readers import parse_instant
    from leadml.jobs import find_threshold

    settings = load_settings(config)
    instant = parse_instant(now, "--now") if now is not None else None
    choice = find_threshold(data, rules, acceptance=acceptance, per_week=per_week, model=model,
                            write=write, min_mqls=min_mqls, settings=settings,
                            now=instant)  # fmt: skip
    record(**choice.summary())
    say(choice.format())
    if choice.written is not None:
        warn(f"threshold {choice.threshold} written into {choice.written}")
