"""The ``leadml`` command line: a thin layer over the Python API.

Every command takes ``--config``; errors leadml raises on purpose become a message on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from leadml.config import load_settings
from leadml.data.validation import DataValidationError
from leadml.errors import LeadmlError

app = typer.Typer(
    help="Predictive lead scoring: point-in-time features, calibrated models and the rule score "
    "side by side.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings YAML (defaults: configs/default.yaml values).",
        exists=True,
        dir_okay=False,
    ),
]
_DATA = typer.Option(
    "--data",
    "-d",
    help="Folder with accounts, leads, events and stages (.parquet, .csv or .csv.gz).",
    exists=True,
    file_okay=False,
)
DataOption = Annotated[Path, _DATA]
OptionalDataOption = Annotated[Path | None, _DATA]  # commands that also take --flat FILE
RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        "-r",
        help="Rules YAML (default: configs/rules.yaml).",
        exists=True,
        dir_okay=False,
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option(help="Treat timestamps after this instant as 'in the future' (default: now)."),
]


def _command(func: Callable) -> Callable:
    """Register ``func`` as a command that reports leadml's errors instead of raising them."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LeadmlError as exc:
            typer.echo(f"leadml {func.__name__}: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return app.command(name=func.__name__.replace("_", "-"))(wrapper)


@_command
def validate(data: DataOption, config: ConfigOption = None, now: NowOption = None) -> None:
    """Check a data folder against the input contract and print every problem found.

    Exits with 3 when there are errors (warnings alone exit 0).
    """
    from leadml.data.readers import parse_instant
    from leadml.data.validation import validate_data

    instant = parse_instant(now, "--now") if now is not None else None
    report = validate_data(data, load_settings(config), now=instant)
    if not report.ok:
        raise DataValidationError(report)
    typer.echo(report.format())


@_command
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
        for name, path in paths.items():
            typer.echo(f"{name:<9} {path}")
    if flat is not None:
        frame = flat_export(history)
        path = write_flat(frame, flat)
        rate = frame["converted"].mean() if len(frame) else float("nan")
        typer.echo(f"{'flat':<9} {path} ({len(frame):,} leads, {rate:.1%} converted)")


@_command
def summary(data: DataOption, config: ConfigOption = None, now: NowOption = None) -> None:
    """Print row counts, the time span and the funnel (lead → MQL → SAL → SQL → … → won)."""
    from leadml.data import load_data
    from leadml.reports import funnel_counts

    loaded = load_data(data, load_settings(config), now=now)
    for name, n in loaded.row_counts().items():
        typer.echo(f"{name:<9} {n:>12,} rows")
    typer.echo(f"data ends {loaded.end():%Y-%m-%d %H:%M} UTC\n")
    table = funnel_counts(loaded)
    with pd.option_context("display.float_format", "{:.1%}".format):
        typer.echo(table.to_string())


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


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    """Write ``frame`` to ``out`` (checked by :func:`_check_out`) atomically: a kill or a full
    disk leaves the previous file or the new one, never half of it. CSV text a spreadsheet
    would run as a formula starts with ``'`` (leadml.common.safe_text); Parquet holds the values as
    they are."""
    from leadml.common.atomic import write_atomic
    from leadml.common.safe_text import to_csv
    from leadml.errors import OutputError

    def write(path: Path) -> None:
        if out.name.lower().endswith(".parquet"):
            frame.to_parquet(path, index=False)
        else:
            to_csv(frame, path, index=False, compression="infer")

    try:
        write_atomic(out, write)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}; nothing was written") from None


@_command
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
    from leadml.data import load_data
    from leadml.data.readers import parse_instant
    from leadml.features import features_as_of

    instant = parse_instant(as_of, "--as-of")
    now_instant = parse_instant(now, "--now") if now is not None else None
    _check_out(out)
    frame = features_as_of(load_data(data, load_settings(config), now=now_instant), instant)
    _write_table(frame, out)
    typer.echo(f"{len(frame):,} open leads x {frame.shape[1] - 2} features as of {as_of} -> {out}")


@_command
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
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Write a training set: open leads at every snapshot, their features and labels.

    Snapshots whose horizon runs past the end of the data are immature: left out and counted.
    """
    from leadml.data import load_data
    from leadml.data.readers import parse_instant
    from leadml.modeling.trainset import build_trainset

    first, last, now_instant = (
        parse_instant(value, option) if value is not None else None
        for value, option in ((start, "--start"), (end, "--end"), (now, "--now"))
    )
    _check_out(out)
    loaded = load_data(data, load_settings(config), now=now_instant)
    ts = build_trainset(loaded, start=first, end=last)
    _write_table(ts.frame, out)
    s = ts.summary()
    typer.echo(
        f"{s['rows']:,} rows from {s['snapshots']} snapshots, {s['positives']:,} positives "
        f"({s['positive_rate']:.1%}); left out {s['immature_pairs']:,} immature pairs from "
        f"{s['immature_snapshots']} snapshots -> {out}"
    )


@_command
def rules(
    data: DataOption,
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of",
            help="Score as of this instant (UTC; a date "
            "means its midnight). Only data strictly before it counts.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="File to write the scores to (.parquet, .csv or .csv.gz).", dir_okay=False
        ),
    ],
    rules: RulesOption = None,
    explain: Annotated[bool, typer.Option(help="Add one points column per rule and cap.")] = True,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Score the leads open at --as-of with the rules file: fit, engagement, total, grade, MQL.

    The rules file is checked first: on any problem, all are printed and nothing is scored (exit 2).
    """
    from leadml.data import load_data
    from leadml.data.readers import parse_instant
    from leadml.rules import load_rules, rule_scores_as_of

    settings = load_settings(config)
    checked = load_rules(rules, settings)
    instant = parse_instant(as_of, "--as-of")
    now_instant = parse_instant(now, "--now") if now is not None else None
    _check_out(out)
    scores = rule_scores_as_of(load_data(data, settings, now=now_instant), instant, checked,
                               explain=explain)  # fmt: skip
    _write_table(scores, out)
    n = len(scores)
    mql = int(scores["rule_mql"].sum())
    typer.echo(f"{n:,} open leads scored as of {instant:%Y-%m-%d %H:%M} UTC; {mql:,} "
               f"at or above the MQL threshold ({mql / max(n, 1):.1%}) -> {out}")  # fmt: skip
    if n:
        grades = scores["rule_grade"].value_counts().sort_index()
        typer.echo("grades: " + ", ".join(f"{g} {c:,}" for g, c in grades.items()))


FlatOption = Annotated[
    Path | None,
    typer.Option(
        "--flat",
        help="A flat CRM export (.csv, .csv.gz or .parquet): one row per lead, its attributes, "
        "activity columns and a converted flag. Instead of --data.",
        dir_okay=False,
    ),
]
AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-column",
        help="Keep this column although the leakage guard flags it: a knowing decision, recorded "
        "in the report (repeat for more).",
    ),
]


def _one_input(data: Path | None, flat: Path | None) -> None:
    if (data is None) == (flat is None):
        raise typer.BadParameter("give either --data DIR (event history) or --flat FILE")


def _flat_only(flat: Path | None, **given) -> None:
    used = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if flat is None and used:
        raise typer.BadParameter(f"{', '.join(used)} only apply with --flat FILE")


@_command
def train(
    data: OptionalDataOption = None,
    flat: FlatOption = None,
    target: Annotated[
        str | None,
        typer.Option(help="With --flat: the converted flag (1/0, yes/no, true/false)."),
    ] = None,
    id: Annotated[
        str | None,
        typer.Option("--id", help="With --flat: the lead's key column (never a feature)."),
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="With --flat: the lead's date (e.g. created); validation by time instead of "
            "stratified folds.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="With --flat: a column to leave out (repeat for more)."),
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option(help="With --flat: the target value meaning converted, if not yes/true/1."),
    ] = None,
    allow_column: AllowOption = None,
    config: ConfigOption = None,
    now: NowOption = None,
    plots: Annotated[
        bool,
        typer.Option(
            help="Draw and log the plots (a few seconds; the tables are logged either way)."
        ),
    ] = True,
    report: Annotated[
        bool,
        typer.Option(
            help="Log the funnel report of the test window (the model's MQLs against the "
            "rules') with the run, under report/ (a few seconds)."
        ),
    ] = True,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Register and export the model even if it failed the fitness gate (tagged "
            "'failed (forced)'; the promotion gate still refuses it), and replace an export "
            "(models/NAME/vN) that another tracking store wrote for the same version number.",
        ),
    ] = False,
) -> None:
    """Train, calibrate and test a model; log the run to MLflow, register the model as
    'challenger' and export it (tracking.export_dir).

    With --data (event history) the model is tested against the rule score on a later window;
    with --flat FILE --target COLUMN on a flat export, validated by time (--time) or by
    stratified cross-validation. The leakage guard runs first on both and its report is
    printed; flagged columns are left out unless given with --allow-column.

    Before anything is registered, the fitness gate checks that the model ranks the test window
    better than chance (the lower bound of a bootstrap 95 % interval of its ROC AUC above 0.5)
    and at least as well as the rule score (settings: model.fitness).

    Exit codes: 0 registered; 9 cold start (too little history: nothing trained or registered,
    the reason and the setting to change are printed); 10 the model failed the fitness gate
    (logged to MLflow with the reasons, not registered or exported; --force registers it
    anyway); 2 configuration, 3 input data, 5 tracking store.
    """
    from leadml.jobs import train_and_log

    _one_input(data, flat)
    _flat_only(flat, target=target, id=id, time=time, exclude=exclude, positive=positive)
    if flat is not None and target is None:
        raise typer.BadParameter("--flat needs --target COLUMN (the converted flag)")
    job = train_and_log(data, load_settings(config), flat=flat, target=target, id=id,
                        time_column=time, exclude=exclude or [], positive=positive,
                        allow=allow_column or [], now=now, plots=plots, report=report,
                        force=force)  # fmt: skip
    if flat is not None:
        typer.echo(job.result.inputs.quality.format() + "\n")
        typer.echo(_roles_line(job.result.inputs.columns) + "\n")
    typer.echo(job.result.leakage.format() + "\n")
    _report_training(job.result, job.tracked, job.seconds, flat=flat is not None)
    job.raise_for_outcome()


def _roles_line(columns: pd.DataFrame) -> str:
    used = columns[columns["used"]]["role"].value_counts()
    unused = columns[~columns["used"]]
    reasons = unused["leakage"].where(unused["leakage"] == "", "leakage guard")
    reasons = reasons.where(reasons != "", unused["role"]).value_counts()
    return (
        f"Columns: {int(columns['used'].sum())} used ("
        + ", ".join(f"{role} {n}" for role, n in used.items())
        + "); not used: "
        + ", ".join(f"{why} {n}" for why, n in reasons.items())
    )


def _report_training(result, tracked, total: float, flat: bool) -> None:
    from leadml.modeling.card import comparison_table, format_value

    typer.echo(result.windows.map(format_value).to_string() + "\n")
    where = f"run {tracked.run_id} in {tracked.tracking_uri} (experiment {tracked.experiment!r})"
    if not result.trained:
        typer.echo(f"Cold start: {result.cold_start}.\n{where}; no model registered.")
        return
    for note in result.notes:
        typer.echo(f"Note: {note}")
    table = comparison_table(result.evaluation.metrics, tracked.champion_metrics)
    if tracked.champion_version is not None:
        table = table.rename(columns={"champion": f"champion v{tracked.champion_version}"})
    title = (
        "Out of fold (every row predicted by a model that never saw it):"
        if result.validation == "cross-validation"
        else "Test window, same rows for all:"
    )
    typer.echo(f"{title}\n" + table.map(format_value).to_string() + "\n")
    if tracked.champion_note:
        typer.echo(f"Champion: {tracked.champion_note}\n")
    typer.echo("Fitness gate:\n" + result.fitness.format() + "\n")
    typer.echo(f"{where}")
    if tracked.model_version is None:
        typer.echo("not registered: the model failed the fitness gate")
        return
    forced = " although it failed the fitness gate (--force)" if tracked.forced else ""
    typer.echo(f"registered {tracked.model_name} version {tracked.model_version} as 'challenger'"
               f"{forced}; exported to {tracked.export_path}")  # fmt: skip
    step = "leadml promote --flat" if flat else "leadml promote"
    typer.echo(f"{total:.1f} s in all, of which MLflow {tracked.mlflow_seconds:.1f} s "
               f"({tracked.mlflow_seconds / total:.0%}); next: {step}")  # fmt: skip


@_command
def report(
    data: DataOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write the report into: index.html, its figures (PNG) next to it "
            "and tables/*.csv. Created if missing; an earlier report there is replaced.",
            file_okay=False,
        ),
    ],
    scores: Annotated[
        Path | None,
        typer.Option(
            help="Nightly scores folder (leadml score --out): adds the model's MQLs, compared "
            "with the rules' on the same nights.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    rules: RulesOption = None,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Write the funnel report: a static HTML page with its figures as PNG.

    The funnel as recorded (lead → MQL → SAL/SRL → SQL → opportunity → won, conversion rates,
    MQL acceptance, speed to lead), per week and per segment (report.segments); and the MQLs of
    the CRM, the rules and, with --scores, the model over the last report.period_days whose
    outcomes are known: what sales would have seen had it worked the model's MQLs instead.

    Exit codes: 0 written, 2 configuration or rules file, 3 input data or scores unreadable.
    """
    from leadml.jobs import write_funnel_report

    job = write_funnel_report(data, out, scores, load_settings(config), rules=rules, now=now)
    typer.echo(f"{job.report.comparison.headline()}\n\nreport: {job.page}")
    for note in job.report.comparison.notes:
        typer.echo(f"note: {note}", err=True)


@_command
def promote(
    version: Annotated[
        int | None,
        typer.Option(
            min=1, help="Make this version the champion without the gate (roll back or forward)."
        ),
    ] = None,
    flat: Annotated[
        bool, typer.Option("--flat", help="Promote the flat-export model (flat.model_name).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Make the challenger the champion if it passes the promotion gate (tracking.promotion),
    or --version N unconditionally. Every decision is recorded in MLflow.

    Exits 6 when the gate refuses, naming each failed check.
    """
    from leadml.errors import PromotionRefused
    from leadml.modeling.card import format_value
    from leadml.tracking import promote as promote_model

    def show(checks: pd.DataFrame) -> None:
        if len(checks):
            shown = checks.drop(columns=["passed", "reason"]).map(format_value)
            typer.echo(shown.to_string(index=False))

    settings = load_settings(config)
    if flat:
        from leadml.flat import flat_settings

        settings = flat_settings(settings)
    try:
        decision = promote_model(settings, version)
    except PromotionRefused as refused:
        show(refused.promotion.checks)
        raise
    show(decision.checks)
    if decision.promoted:
        was = f"v{decision.previous}" if decision.previous is not None else "none"
        typer.echo(f"{decision.model_name} version {decision.version} is now the champion "
                   f"(was {was}): {decision.reason}")  # fmt: skip
        if decision.export_path is not None:
            typer.echo(f"export: {decision.export_path}")
    else:
        typer.echo(decision.reason)


@_command
def score(
    out: Annotated[
        Path,
        typer.Option(
            help="With --data: output folder; the scores go to "
            "OUT/as_of=YYYY-MM-DD/part-0.parquet, replacing that date's partition "
            "atomically. With --flat: the scores file (.parquet, .csv or .csv.gz), "
            "replaced atomically.",
        ),
    ],
    data: OptionalDataOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="With --data: score the leads open at this instant "
            "(UTC; a date means its midnight). Only data strictly before it counts.",
        ),
    ] = None,
    flat: FlatOption = None,
    id: Annotated[
        str | None,
        typer.Option(
            "--id", help="With --flat: the column naming each row (default: the model's --id)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="models:/NAME@ALIAS, models:/NAME/VERSION or "
            "an export folder (models/NAME/vN). Default: the registry's champion, or "
            "the exported champion when the tracking store is unreachable."
        ),
    ] = None,
    csv: Annotated[
        bool, typer.Option("--csv", help="Also write _scores.csv in the partition.")
    ] = False,
    rules: RulesOption = None,
    track: Annotated[
        bool, typer.Option(help="Log the run summary to MLflow (tracking.scoring_experiment).")
    ] = True,
    top: Annotated[int, typer.Option(min=0, help="Leads of the comparison to print.")] = 10,
    report: Annotated[
        bool,
        typer.Option(
            help="With --track: log the funnel report of every night in --out (the model's "
            "MQLs against the rules') with the run, under report/."
        ),
    ] = True,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Nightly scoring: probability, tier and top reasons for every open lead, next to the rule
    score, with a run summary (tiers, agreement, expected conversions, drift) and a funnel report.
    With --flat FILE: probability, tier and rank for every row of a flat export, with the flat
    model (flat.model_name; the registry's champion by default).

    Exit codes: 0 done (drift and other warnings are logged), 2 configuration or rules file,
    3 input data invalid (nothing written), 4 model and features do not match, 5 no model to
    score with, 7 another run holds the partition's lock, 8 the output could not be written
    (the previous partition is untouched).
    """
    import logging
    import sys

    from leadml.jobs import score_night

    _one_input(data, flat)
    _flat_only(flat, id=id)
    if flat is not None:
        _score_flat(flat, out, model, load_settings(config), id, top)
        return
    if as_of is None:
        raise typer.BadParameter("--data needs --as-of DATE")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out {out} is a file; with --data it names a folder")

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    progress, bar = None, None
    if sys.stderr.isatty():
        bar = typer.progressbar(length=1, label="scoring", file=sys.stderr)

        def progress(step: str, done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        bar.__enter__()
    try:
        result = score_night(data, as_of, out, model, load_settings(config), rules=rules,
                             csv=csv, track=track, report=report, progress=progress,
                             now=now)  # fmt: skip
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    summary = result.summary
    typer.echo(f"{summary['open_leads']:,} open leads scored as of {result.as_of:%Y-%m-%d} with "
               f"{result.model.name} v{result.model.version}; expected conversions "
               f"{summary['expected_conversions']:,.1f} -> {result.path}")  # fmt: skip
    cells = ", ".join(f"{c['agreement']} {c['leads']:,}" for c in summary["agreement"])
    tiers = ", ".join(f"{t['tier']} {t['leads']:,}" for t in summary["tiers"])
    typer.echo(f"tiers: {tiers}\nmodel vs rules: {cells}")
    if top:
        head = result.scores.nsmallest(top, "model_rank")
        columns = ["lead_id", "mql_probability", "model_tier", "rule_score", "rule_grade",
                   "agreement", "top_reasons"]  # fmt: skip
        with pd.option_context("display.max_colwidth", 90, "display.width", 200):
            typer.echo("\n" + head[columns].to_string(index=False))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _score_flat(flat: Path, out: Path, model, settings, id: str | None, top: int) -> None:
    from leadml.flat import score_flat_to

    result = score_flat_to(flat, out, model, settings, id=id)
    scores = result.scores
    typer.echo(f"{len(scores):,} rows of {result.source} scored with {result.model.name} "
               f"v{result.model.version}; expected conversions "
               f"{scores['mql_probability'].sum():,.1f} -> {result.path}")  # fmt: skip
    tiers = scores["model_tier"].value_counts().sort_index()
    typer.echo("tiers: " + ", ".join(f"{t} {n:,}" for t, n in tiers.items()))
    if top:
        head = scores.nsmallest(top, "model_rank")
        columns = [scores.columns[0], "mql_probability", "model_tier", "model_rank"]
        typer.echo("\n" + head[columns].to_string(index=False))
    for finding in result.quality.findings:
        typer.echo(f"note: {finding.format()}", err=True)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
