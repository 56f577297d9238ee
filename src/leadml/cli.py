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
from leadml.errors import DataValidationError, LeadmlError

app = typer.Typer(
    help="Predictive lead scoring: point-in-time features, calibrated models and the rule score "
    "side by side.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML (defaults: configs/default.yaml values).",
                 exists=True, dir_okay=False),
]
DataOption = Annotated[
    Path,
    typer.Option("--data", "-d", help="Folder with accounts, leads, events and stages "
                 "(.parquet, .csv or .csv.gz).", exists=True, file_okay=False),
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
    from leadml.validation import validate_data

    report = validate_data(data, load_settings(config), now=now)
    if not report.ok:
        raise DataValidationError(report)
    typer.echo(report.format())


@_command
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the four tables and truth into.")],
    leads: Annotated[int, typer.Option(min=1, help="Number of leads.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    end: Annotated[str, typer.Option(help="Last day of the history (UTC).")] = "2026-06-30",
    format: Annotated[str, typer.Option(help="parquet or csv.")] = "parquet",
    config: ConfigOption = None,
) -> None:
    """Generate a realistic sample history (accounts, leads, events, stages) with its hidden truth."""
    from leadml.synth import generate_history, write_history

    load_settings(config)
    if format not in ("parquet", "csv"):
        raise LeadmlError(f"--format must be parquet or csv, not {format!r}")
    history = generate_history(n_leads=leads, seed=seed, end=end)
    paths = write_history(history, out, format=format)
    for name, path in paths.items():
        typer.echo(f"{name:<9} {path}")


@_command
def summary(data: DataOption, config: ConfigOption = None, now: NowOption = None) -> None:
    """Print row counts, the time span and the funnel (lead → MQL → SAL → SQL → opportunity → won)."""
    from leadml.data import load_data
    from leadml.reports import funnel_counts

    loaded = load_data(data, load_settings(config), now=now)
    for name, n in loaded.row_counts().items():
        typer.echo(f"{name:<9} {n:>12,} rows")
    typer.echo(f"data ends {loaded.end():%Y-%m-%d %H:%M} UTC\n")
    table = funnel_counts(loaded)
    with pd.option_context("display.float_format", "{:.1%}".format):
        typer.echo(table.to_string())
