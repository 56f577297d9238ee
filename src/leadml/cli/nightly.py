"""The nightly commands: score the open leads (or a flat export), write the funnel report."""

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
    FlatOption,
    MasterOption,
    NowOption,
    OptionalDataOption,
    RulesOption,
    ShardsOption,
    check_spark_options,
    command,
    flat_only,
    load_checked,
    one_input,
    record,
    say,
    terminal_progress,
    warn,
)
from leadml.config import load_settings


@command
def score(
    out: Annotated[
        str,
        typer.Option(
            help="With --data: output folder; the scores go to "
            "OUT/as_of=YYYY-MM-DD/part-0.parquet, replacing that date's partition "
            "atomically. Or a database table (postgresql://.../schema.table, "
            "sqlite:///FILE/table, duckdb:///FILE/schema.table): that night's rows are "
            "replaced in one transaction. With --flat: the scores file (.parquet, .csv or "
            ".csv.gz), replaced atomically.",
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
            help="models:/NAME@ALIAS, models:/NAME/VERSION (any name a leadml model is "
            "registered under), runs:/RUN_ID/model or an export folder (models/NAME/vN). "
            "Default: the registry's champion, or the exported champion when the tracking "
            "store is unreachable."
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
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="With --data: score only shard I of N (from 0; a lead's shard follows its "
            "account), into OUT/.as_of=YYYY-MM-DD.shards/; once all N are in, --finish writes "
            "the night.",
        ),
    ] = None,
    finish: Annotated[
        bool,
        typer.Option(
            "--finish",
            help="Join the shards of --as-of in --out into its partition, with the tiers, ranks "
            "and run summary of the whole night (no --data).",
        ),
    ] = False,
    engine: EngineOption = Engine.single,
    master: MasterOption = None,
    shards: ShardsOption = None,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Nightly scoring: probability, tier and top reasons for every open lead, next to the rule
    score, with a run summary (tiers, agreement, expected conversions, drift) and a funnel report.
    With --flat FILE: probability, tier and rank for every row of a flat export, with the flat
    model (flat.model_name; the registry's champion by default). With --shard I/N, then
    --finish: the same night in N processes (docs/scale.md).

    Exit codes: 0 done (drift and other warnings are logged), 2 configuration or rules file,
    3 input data invalid (nothing written), 4 model and features do not match, 5 no model to
    score with, 7 another run holds the partition's lock, 8 the output could not be written
    (the previous partition is untouched), or --finish found a shard missing.
    """

    from leadml.common.databases import database
    from leadml.errors import OutputError
    from leadml.jobs import score_night

    flat_only(flat, id=id)
    if "://" in out and database(out) is None:  # s3://… and the like: not a place scores go
        raise OutputError(
            f"--out {out}: scores go to a local folder or file, or to a database table "
            "(postgresql://…/schema.table, sqlite:///file.db/table, duckdb:///file.duckdb/table); "
            "nothing was written"
        )
    if finish:
        given = [o for o, v in (("--data", data), ("--flat", flat), ("--shard", shard),
                                ("--model", model), ("--rules", rules), ("--csv", csv),
                                ("--now", now), ("--engine spark", engine is Engine.spark))
                 if v]  # fmt: skip
        if given or as_of is None:
            raise typer.BadParameter(f"--finish takes --out, --as-of and the shards' --config, "
                                     f"not {', '.join(given) or 'no --as-of'}: the shards hold "
                                     "the rest")  # fmt: skip
        _finish(Path(out), as_of, load_settings(config), track)
        return
    one_input(data, flat)
    if flat is not None:
        _score_flat(flat, Path(out), model, load_settings(config), id, top)
        return
    if as_of is None:
        raise typer.BadParameter("--data needs --as-of DATE")
    if database(out) is None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise typer.BadParameter(f"--out {out} is a file; with --data it names a folder")
    check_spark_options(engine, master, shards)
    if shard is not None or engine is Engine.spark:
        if not isinstance(out, Path) or csv or (shard is not None and engine is Engine.spark):
            raise typer.BadParameter("--shard and --engine spark write into an output folder, "
                                     "without --csv; not both")  # fmt: skip
        if shard is not None:
            _score_shard(data, as_of, out, shard, model, load_settings(config), rules, now)
        else:
            _score_on_spark(data, as_of, out, model, load_settings(config), rules, now,
                            master=master, shards=shards, track=track)  # fmt: skip
        return

    with terminal_progress("scoring") as progress:
        result = score_night(data, as_of, out, model, load_settings(config), rules=rules,
                             csv=csv, track=track, report=report, progress=progress,
                             now=now)  # fmt: skip
    summary = result.summary
    record(path=result.path, as_of=result.as_of, model_name=result.model.name,
           model_version=result.model.version, open_leads=summary["open_leads"],
           expected_conversions=summary["expected_conversions"], tiers=summary["tiers"],
           agreement=summary["agreement"], tracking_run_id=result.tracking_run_id,
           warnings=result.warnings)  # fmt: skip
    say(f"{summary['open_leads']:,} open leads scored as of {result.as_of:%Y-%m-%d} with "
               f"{result.model.name} v{result.model.version}; expected conversions "
               f"{summary['expected_conversions']:,.1f} -> {result.path}")  # fmt: skip
    cells = ", ".join(f"{c['agreement']} {c['leads']:,}" for c in summary["agreement"])
    tiers = ", ".join(f"{t['tier']} {t['leads']:,}" for t in summary["tiers"])
    say(f"tiers: {tiers}\nmodel vs rules: {cells}")
    if top:
        head = result.scores.nsmallest(top, "model_rank")
        columns = ["lead_id", "mql_probability", "model_tier", "rule_score", "rule_grade",
                   "agreement", "top_reasons"]  # fmt: skip
        with pd.option_context("display.max_colwidth", 90, "display.width", 200):
            say("\n" + head[columns].to_string(index=False))
    for warning in result.warnings:
        warn(f"warning: {warning}")


def _score_shard(data, as_of, out: Path, shard, model, settings, rules, now) -> None:
    from leadml.scoring import score_shard

    result = score_shard(data, as_of, out, shard, model, settings, rules=rules, now=now)
    record(shard=str(result.shard), as_of=result.as_of, open_leads=result.rows,
           path=result.path, warnings=result.warnings)  # fmt: skip
    say(f"shard {result.shard}: {result.rows:,} open leads scored as of {result.as_of:%Y-%m-%d} "
        f"-> {result.path.parent}")  # fmt: skip
    for warning in result.warnings:
        warn(f"warning: {warning}")


def _score_on_spark(data, as_of, out: Path, model, settings, rules, now, *, master, shards,
                    track) -> None:  # fmt: skip
    from leadml.spark import score_night, session

    # The session ends with the process (and one already running in it is reused).
    spark = session(master or "local[*]")
    night = score_night(spark, data, as_of, out, model, settings, rules=rules,
                        shards=shards, track=track, now=now)  # fmt: skip
    _print_night(night)


def _finish(out: Path, as_of: str, settings, track: bool) -> None:
    from leadml.scoring import finish_night

    _print_night(finish_night(out, as_of, settings, track=track))


def _print_night(night) -> None:
    summary = night.summary
    record(path=night.path, as_of=night.as_of, shards=night.shards,
           open_leads=summary["open_leads"], expected_conversions=summary["expected_conversions"],
           tiers=summary["tiers"], agreement=summary["agreement"],
           tracking_run_id=night.tracking_run_id, warnings=night.warnings)  # fmt: skip
    say(f"{night.shards} shards joined: {summary['open_leads']:,} open leads as of "
        f"{night.as_of:%Y-%m-%d}; expected conversions {summary['expected_conversions']:,.1f} "
        f"-> {night.path}")  # fmt: skip
    for warning in night.warnings:
        warn(f"warning: {warning}")


def _score_flat(flat: Path, out: Path, model, settings, id: str | None, top: int) -> None:
    from leadml.flat import score_flat_to

    result = score_flat_to(flat, out, model, settings, id=id)
    scores = result.scores
    record(path=result.path, rows=len(scores), model_name=result.model.name,
           model_version=result.model.version,
           expected_conversions=float(scores["mql_probability"].sum()),
           tiers=scores["model_tier"].astype(str).value_counts().sort_index().to_dict(),
           warnings=result.warnings)  # fmt: skip
    say(f"{len(scores):,} rows of {result.source} scored with {result.model.name} "
               f"v{result.model.version}; expected conversions "
               f"{scores['mql_probability'].sum():,.1f} -> {result.path}")  # fmt: skip
    tiers = scores["model_tier"].value_counts().sort_index()
    say("tiers: " + ", ".join(f"{t} {n:,}" for t, n in tiers.items()))
    if top:
        head = scores.nsmallest(top, "model_rank")
        columns = [scores.columns[0], "mql_probability", "model_tier", "model_rank"]
        say("\n" + head[columns].to_string(index=False))
    for finding in result.quality.findings:
        warn(f"note: {finding.format()}")
    for warning in result.warnings:
        warn(f"warning: {warning}")


@command
def report(
    data: DataOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write the report into: index.html (its figures inside), the "
            "figures as PNG and tables/*.csv. Created if missing; an earlier report there is "
            "replaced.",
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
    learned_rules: Annotated[
        Path | None,
        typer.Option(
            "--learned-rules",
            help="A second rules file (e.g. leadml rules learn's), scored by the same engine on "
            "the same leads and nights: a learned-rules column next to the rules and the model.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    config: ConfigOption = None,
    now: NowOption = None,
) -> None:
    """Write the funnel report: one self-contained static HTML page, its figures inside.

    The funnel as recorded (lead → MQL → SAL/SRL → SQL → opportunity → won, conversion rates,
    MQL acceptance, speed to lead), per week and per segment (report.segments); and the new MQLs
    of the CRM, the rules, with --learned-rules the learned rules and, with --scores, the model
    over the last report.period_days whose outcomes are known: first the conversions at the
    rules' own MQL volume (like with like), then each one's rates; with --scores, the model's
    reliability diagram, gains chart, tiers and feature importance on those nights.

    Exit codes: 0 written, 2 configuration or rules file, 3 input data or scores unreadable.
    """
    from leadml.jobs import write_funnel_report

    loaded = load_checked(data, load_settings(config), now)
    job = write_funnel_report(loaded, out, scores, rules=rules, learned_rules=learned_rules)
    record(page=job.page, headline=job.report.comparison.headline(),
           notes=job.report.comparison.notes)  # fmt: skip
    say(f"{job.report.comparison.headline()}\n\nreport: {job.page}")
    for note in job.report.comparison.notes:
        warn(f"note: {note}")
