"""The model commands: train (and register the challenger), promote (make it the champion)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer

from leadml.cli.shared import (
    ConfigOption,
    FlatOption,
    NowOption,
    OptionalDataOption,
    command,
    flat_only,
    one_input,
    record,
    say,
    terminal_progress,
)
from leadml.config import load_settings

AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-column",
        help="Keep this column although the leakage guard flags it: a knowing decision, recorded "
        "in the report (repeat for more).",
    ),
]


@command
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

    one_input(data, flat)
    flat_only(flat, target=target, id=id, time=time, exclude=exclude, positive=positive)
    if flat is not None and target is None:
        raise typer.BadParameter("--flat needs --target COLUMN (the converted flag)")
    with terminal_progress("training") as progress:
        job = train_and_log(data, load_settings(config), flat=flat, target=target, id=id,
                            time_column=time, exclude=exclude or [], positive=positive,
                            allow=allow_column or [], now=now, plots=plots, report=report,
                            force=force, progress=progress)  # fmt: skip
    if flat is not None:
        say(job.result.inputs.quality.format() + "\n")
        say(_roles_line(job.result.inputs.columns) + "\n")
    if job.result.leakage is not None:  # a cold start with one outcome has nothing to guard
        say(job.result.leakage.format() + "\n")
    record(**job.summary())
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

    say(result.windows.map(format_value).to_string() + "\n")
    where = f"run {tracked.run_id} in {tracked.tracking_uri} (experiment {tracked.experiment!r})"
    for note in result.notes:  # the history's warnings among them, cold start or not
        say(f"Note: {note}")
    if not result.trained:
        say(f"Cold start: {result.cold_start}.\n{where}; no model registered.")
        return
    table = comparison_table(result.evaluation.metrics, tracked.champion_metrics)
    if tracked.champion_version is not None:
        table = table.rename(columns={"champion": f"champion v{tracked.champion_version}"})
    title = (
        "Out of fold (every row predicted by a model that never saw it):"
        if result.validation == "cross-validation"
        else "Test window, same rows for all:"
    )
    say(f"{title}\n" + table.map(format_value).to_string() + "\n")
    if tracked.champion_note:
        say(f"Champion: {tracked.champion_note}\n")
    say("Fitness gate:\n" + result.fitness.format() + "\n")
    say(f"{where}")
    if tracked.model_version is None:
        say("not registered: the model failed the fitness gate")
        return
    forced = " although it failed the fitness gate (--force)" if tracked.forced else ""
    say(f"registered {tracked.model_name} version {tracked.model_version} as 'challenger'"
               f"{forced}; exported to {tracked.export_path}")  # fmt: skip
    step = "leadml promote --flat" if flat else "leadml promote"
    say(f"{total:.1f} s in all, of which MLflow {tracked.mlflow_seconds:.1f} s "
               f"({tracked.mlflow_seconds / total:.0%}); next: {step}")  # fmt: skip


@command
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
            say(shown.to_string(index=False))

    settings = load_settings(config)
    if flat:
        from leadml.flat import flat_settings

        settings = flat_settings(settings)
    try:
        decision = promote_model(settings, version)
    except PromotionRefused as refused:
        show(refused.promotion.checks)
        record(checks=refused.promotion.checks.to_dict("records"))
        raise
    show(decision.checks)
    record(model_name=decision.model_name, version=decision.version, promoted=decision.promoted,
           previous=decision.previous, reason=decision.reason, export_path=decision.export_path,
           checks=decision.checks.to_dict("records"))  # fmt: skip
    if decision.promoted:
        was = f"v{decision.previous}" if decision.previous is not None else "none"
        say(f"{decision.model_name} version {decision.version} is now the champion "
                   f"(was {was}): {decision.reason}")  # fmt: skip
        if decision.export_path is not None:
            say(f"export: {decision.export_path}")
    else:
        say(decision.reason)
