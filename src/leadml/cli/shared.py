"""What every command shares: the option types, and the wrapper that turns leadml's errors into a
message on stderr and an exit code, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from leadml.errors import LeadmlError

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
        help="Rules YAML (default: the rules shipped with leadml, as in configs/rules.yaml).",
        exists=True,
        dir_okay=False,
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option(help="Treat timestamps after this instant as 'in the future' (default: now)."),
]


FlatOption = Annotated[
    Path | None,
    typer.Option(
        "--flat",
        help="A flat CRM export (.csv, .csv.gz or .parquet): one row per lead, its attributes, "
        "activity columns and a converted flag. Instead of --data.",
        dir_okay=False,
    ),
]


def command(func: Callable) -> Callable:
    """Wrap the command ``func`` so that it reports leadml's errors instead of raising them."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LeadmlError as exc:
            typer.echo(f"leadml {func.__name__}: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def one_input(data: Path | None, flat: Path | None) -> None:
    if (data is None) == (flat is None):
        raise typer.BadParameter("give either --data DIR (event history) or --flat FILE")


def flat_only(flat: Path | None, **given) -> None:
    used = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if flat is None and used:
        raise typer.BadParameter(f"{', '.join(used)} only apply with --flat FILE")
