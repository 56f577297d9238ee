"""The data commands: validate a folder, generate a sample, summarise it, and write the features,
a training set or the rule scores of a history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from leadml.cli.shared import (
    ConfigOption,
    DataOption,
    Engine,
    EngineOption,
    MasterOption,
    NowOption,
    OptionalDataOption,
    RulesOption,
    ShardsOption,
    check_spark_options,
    command,
    load_checked,
    named,
    record,
    say,
)
from leadml.config import load_settings
from leadml.data.validation import DataValidationError
from leadml.errors import LeadmlError


@command
def validate(data: DataOption, config: ConfigOption = None, now: NowOption = None) -> None:
    """Check a data folder against the input contract and print every problem found.

    Exits with 3 when there are errors (warnings alone exit 0).
    """
    from leadml.data.readers import parse_instant
    from leadml.data.validation import validate_data

    instant = parse_instant(now, "--now") if now is not None else None
    report = validate_data(data, load_settings(config), now=instant)
    problems = [p.__dict__ for p in report.problems]
    record(errors=len(report.errors), warnings=len(report.warnings), problems=problems,
           row_counts=report.row_counts)  # fmt: skip
    if not report.ok:
        raise DataValidationError(report)
    say(report.format())


@command
def synth(
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write the four tables and truth into (optional with --flat)."),
    ] = None,
    leads: Annotated[int, typer.Option(min=1, help="Number of leads.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    end: Annotated[str, typer.Option(help="Last day of the history (UTC).")] = "2026-06-30",
    format: Annotated[str, typer.Option(help="parquet or csv.")] = "parquet",
    scenario: Annotated[
        str,
        typer.Option(
            help="default; drift: the market heats up, the base rate of conversion grows "
            "about tenfold from the first quarter to the last; sparse-crm: a real CRM's funnel "
            "(most accounts without firmographics, a third of leads without an account, a "
            "handful of events per lead, leads created in the first 70 % of the history, "
            "conversions up to a year later, non-converters never closed)."
        ),
    ] = "default",
    flat: Annotated[
        Path | None,
        typer.Option(
            "--flat",
            dir_okay=False,
            help="Write the history as a CRM's flat export to this file (.csv, .csv.gz or "
            ".parquet): one row per lead still open 30 days after its creation and whose outcome "
            "is known, with its attributes, its activity counts in those 30 days and `converted` "
            "(sql within the next 90 days). Only this file, unless --out is given too.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Generate a realistic sample history (the four tables) with its hidden truth."""
    from leadml.synth import FLAT_SUFFIXES, flat_export, generate_history, write_flat, write_history

    load_settings(config)
    if out is None and flat is None:
        raise typer.BadParameter("give --out DIR, --flat FILE, or both")
    if flat is not None and not flat.name.endswith(FLAT_SUFFIXES):
        raise typer.BadParameter(
            f"--flat must end in {', '.join(FLAT_SUFFIXES)}, not {flat.name!r}"
        )
    if format not in ("parquet", "csv"):
        raise LeadmlError(f"--format must be parquet or csv, not {format!r}")
    history = generate_history(n_leads=leads, seed=seed, end=end, scenario=scenario)
    if out is not None:
        paths = write_history(history, out, format=format)
        record(paths=paths)
        for name, path in paths.items():
            say(f"{name:<9} {path}")
    if flat is not None:
        frame = flat_export(history)
        path = write_flat(frame, flat)
        rate = frame["converted"].mean() if len(frame) else float("nan")
        record(flat=path, flat_rows=len(frame), flat_converted_rate=rate)
        say(f"{'flat':<9} {path} ({len(frame):,} leads, {rate:.1%} converted)")


@command
def summary(data: DataOption, config: ConfigOption = None, now: NowOption = None) -> None:
    """Print row counts, the time span and the funnel (lead → MQL → SAL → SQL → … → won)."""
    from leadml.reports import funnel_counts

    loaded = load_checked(data, load_settings(config), now=now)
    for name, n in loaded.row_counts().items():
        say(f"{name:<9} {n:>12,} rows")
    say(f"data ends {loaded.end():%Y-%m-%d %H:%M} UTC\n")
    table = funnel_counts(loaded)
    record(rows=loaded.row_counts(), data_ends=loaded.end(),
           funnel=table.reset_index().to_dict("records"))  # fmt: skip
    with pd.option_context("display.float_format", "{:.1%}".format):
        say(table.to_string())


OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="File to write: .parquet, .csv or .csv.gz.", dir_okay=False),
]


def _check_out(out: Path, suffixes: tuple[str, ...] = (".parquet", ".csv", ".csv.gz")) -> None:
    """Refuse an --out that cannot be written before any work is done."""
    from leadml.errors import OutputError

    if not out.name.lower().endswith(suffixes):
        allowed = f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
        raise OutputError(f"--out must end in {allowed}, not {out.name!r}; nothing was written")
    if not out.parent.is_dir():
        raise OutputError(
            f"--out {out}: the folder {out.parent} does not exist (create it first); nothing "
            "was written"
        )


@command
def features(
    data: DataOption,
    as_of: Annotated[
        str,
        typer.Option("--as-of", help="Instant T (UTC); features see only data strictly before it."),
    ],
    out: OutOption,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Write the point-in-time features of the leads open at --as-of (one row per lead)."""
    from leadml.data.readers import parse_instant
    from leadml.jobs import write_features

    instant = parse_instant(as_of, "--as-of")
    now_instant = parse_instant(now, "--now") if now is not None else None
    _check_out(out)
    frame = write_features(load_checked(data, load_settings(config), now_instant), instant, out)
    record(path=out, rows=len(frame), features=frame.shape[1] - 2, as_of=instant)
    say(f"{len(frame):,} open leads x {frame.shape[1] - 2} features as of {as_of} -> {out}")


@command
def trainset(
    data: DataOption,
    out: OutOption,
    start: Annotated[
        str | None,
        typer.Option(
            help="First snapshot no earlier than this (default: first lead + trainset.warmup_days)."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="Last snapshot no later than this (default: the end of the data)."),
    ] = None,
    engine: EngineOption = Engine.single,
    master: MasterOption = None,
    shards: ShardsOption = None,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Write a training set: open leads at every snapshot, their features and labels.

    Snapshots whose horizon runs past the end of the data are immature: left out and counted.
    With --engine spark, each Spark task builds its shard's rows; trainset.max_rows caps the
    rows that reach the driver (whole accounts sampled).
    """
    from leadml.data.readers import parse_instant
    from leadml.jobs import write_trainset

    first, last, now_instant = (
        parse_instant(value, option) if value is not None else None
        for value, option in ((start, "--start"), (end, "--end"), (now, "--now"))
    )
    _check_out(out)
    spark = None
    check_spark_options(engine, master, shards)
    if engine is Engine.spark:
        from leadml.spark import session

        spark = session(master or "local[*]")  # it ends with the process
    settings = load_settings(config)
    # On Spark each task loads (and validates) its own shard.
    source = data if spark is not None else load_checked(data, settings, now_instant)
    ts = write_trainset(source, out, settings, start=first, end=last, now=now_instant,
                        spark=spark, shards=shards)  # fmt: skip
    s = ts.summary()
    record(path=out, **s)
    say(
        f"{s['rows']:,} rows from {s['snapshots']} snapshots, {s['positives']:,} positives "
        f"({s['positive_rate']:.1%}); left out {s['immature_pairs']:,} immature pairs from "
        f"{s['immature_snapshots']} snapshots -> {out}"
    )


def _rules_options_given(ctx: typer.Context, **given) -> None:
    """Required when scoring (and only then: ``leadml rules learn`` takes its own)."""
    missing = [f"'--{name.replace('_', '-')}'" for name, value in given.items() if value is None]
    if missing:
        ctx.fail(f"Missing option {', '.join(missing)}.")


#: ``leadml rules``: scores with a rules file (the group's own options), and its subcommands.
rules_app = typer.Typer(
    help="Score the leads open at --as-of with a rules file (fit, engagement, total, grade, "
    "MQL), or run a subcommand: `learn` (a rules file learned from outcomes).",
    no_args_is_help=False,
)


@rules_app.callback(invoke_without_command=True)
def rules_group(
    ctx: typer.Context,
    data: OptionalDataOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Score as of this instant (UTC; a date "
            "means its midnight). Only data strictly before it counts.",
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

    The rules file is checked first: on any problem, all are printed and nothing is scored (exit
    2). Subcommands: `leadml rules learn` learns a rules file from the history's outcomes.
    """
    if ctx.invoked_subcommand is not None:
        return
    _rules_options_given(ctx, data=data, as_of=as_of, out=out)
    score_rules(data, as_of, out, rules, explain, config, now)


@command
def rules(
    data: str,
    as_of: str,
    out: Path,
    rules: Path | None,
    explain: bool,
    config: Path | None,
    now: str | None,
) -> None:
    from leadml.data.readers import parse_instant
    from leadml.jobs import write_rule_scores
    from leadml.rules import load_rules

    settings = load_settings(config)
    checked = load_rules(rules, settings)
    instant = parse_instant(as_of, "--as-of")
    now_instant = parse_instant(now, "--now") if now is not None else None
    _check_out(out)
    loaded = load_checked(data, settings, now_instant)
    scores = write_rule_scores(loaded, instant, out, rules=checked, explain=explain)
    n = len(scores)
    mql = int(scores["rule_mql"].sum())
    grades = scores["rule_grade"].astype(str).value_counts().sort_index()
    record(path=out, rows=n, mql=mql, as_of=instant, grades=grades.to_dict())
    say(f"{n:,} open leads scored as of {instant:%Y-%m-%d %H:%M} UTC; {mql:,} "
               f"at or above the MQL threshold ({mql / max(n, 1):.1%}) -> {out}")  # fmt: skip
    if n:
        say("grades: " + ", ".join(f"{g} {c:,}" for g, c in grades.items()))


score_rules = rules  # the group's callback runs it when no subcommand is given


@rules_app.command("learn")
@named("rules learn")
def learn(
    data: DataOption,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Rules file to write (.yaml or .yml).", dir_okay=False),
    ],
    max_rules: Annotated[
        int, typer.Option("--max-rules", min=1, help="At most this many rules.")
    ] = 15,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "-r",
            help="The hand rules to compare with and whose MQL volume the learned threshold "
            "matches (default: the rules shipped with leadml).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    config: ConfigOption = None,
    now: NowOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write the table even if it failed the fitness gate."),
    ] = False,
) -> None:
    """Learn a points table from the history's outcomes and write it as a rules file.

    Fitted on the training window `leadml train` uses (same snapshots, same time split): fit,
    engagement and negative rules with integer points, grade bands and an MQL threshold that
    sends as many new MQLs as the hand rules on the calibration window (the training window
    when there is none; a lead is sent once, when its score reaches the threshold). Each rule
    carries its evidence as a comment. Prints the hand rules against the learned ones on the
    test window (ROC AUC, conversions at the hand rules' MQL volume, new MQLs a week and their
    conversions at each table's own threshold). Run the file with `leadml rules --rules FILE`.

    The table is held to the model's fitness gate (settings: model.fitness): it must rank the
    test window better than chance by a margin and at least as well as the hand rules, or
    nothing is written and the exit status is 10 (--force writes it anyway).
    """
    from leadml.data.readers import parse_instant
    from leadml.jobs import check_learned_out, learn_rules
    from leadml.rules import load_rules

    settings = load_settings(config)
    load_rules(rules, settings)  # a bad rules file is refused before any work
    _check_out(out, (".yaml", ".yml"))
    now_instant = parse_instant(now, "--now") if now is not None else None
    check_learned_out(out, rules)  # before the data is read
    loaded = load_checked(data, settings, now_instant)
    learned = learn_rules(loaded, out, rules=rules, max_rules=max_rules, force=force)
    table = learned.comparison
    record(path=out, rules=len(learned.rules.all_rules()), candidates=learned.candidates,
           threshold=learned.rules.mql.threshold, metrics=learned.metrics,
           fitness=learned.fitness.passed,
           comparison=table.reset_index().to_dict("records"))  # fmt: skip
    say(f"{len(learned.rules.all_rules())} rules learned from {learned.candidates} candidates, "
        f"MQL threshold {learned.rules.mql.threshold:g} -> {out}")  # fmt: skip
    m = learned.metrics
    say(f"test window: {int(m['test_rows']):,} snapshots of open leads over "
        f"{m['test_weeks']:.1f} weeks, {int(m['test_positives']):,} conversions")  # fmt: skip
    say(f"{'':<9}{'rules':>6}{'ROC AUC':>9}{'conversions at hand MQL volume':>32}"
        f"{'new MQLs':>10}{'a week':>8}{'their conversions':>19}")  # fmt: skip
    for who, row in table.iterrows():
        say(f"{who:<9}{int(row['rules']):>6}{row['roc_auc']:>9.3f}"
            f"{int(row['conversions_at_hand_volume']):>32,}{int(row['new_mqls']):>10,}"
            f"{row['new_mqls_per_week']:>8.1f}{int(row['new_mql_conversions']):>19,}")  # fmt: skip
    say("new MQLs: a lead is sent once, when its score reaches the table's own threshold; its "
        "conversion: within the horizon after")  # fmt: skip
    say("Fitness gate:\n" + learned.fitness.format())
    if learned.unfit:
        say("written although it failed the fitness gate (--force)")
