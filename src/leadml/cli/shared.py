"""What every command shares: the option types, the output (text for people, or one JSON object
for orchestrators), and the wrapper that turns leadml's errors into a message on stderr and an
exit code, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from leadml.errors import LeadmlError


@dataclass
class Output:
    """How this invocation reports: ``json`` (one object on stdout at the end, text to stderr),
    ``quiet`` (no text, only errors and warnings); the JSON object's fields as recorded."""

    json: bool = False
    quiet: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


OUTPUT = Output()


def say(text: str = "") -> None:
    """Text for people: stdout, or stderr under ``--json`` (stdout holds the object), or
    nothing under ``--quiet``."""
    if not OUTPUT.quiet:
        typer.echo(text, err=OUTPUT.json)


def warn(text: str) -> None:
    """A warning or a note: always on stderr, even under ``--quiet``."""
    typer.echo(text, err=True)


@contextlib.contextmanager
def terminal_progress(label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (and not under ``--quiet`` or ``--json``):
    yields the ``progress(step, done, total)`` callback a job takes, or None."""
    if OUTPUT.quiet or OUTPUT.json or not sys.stderr.isatty():
        yield None
        return
    with typer.progressbar(length=1, label=label, file=sys.stderr) as bar:

        def progress(step: str, done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        yield progress


def record(**fields: Any) -> None:
    """Fields of the command's result, printed as one JSON object under ``--json``."""
    OUTPUT.fields.update(fields)


def _finish(name: str, exit_code: int, error: str | None = None) -> None:
    if OUTPUT.json:
        result = {"command": name, "ok": exit_code == 0, "exit_code": exit_code,
                  **({"error": error} if error else {}), **OUTPUT.fields}  # fmt: skip
        typer.echo(json.dumps(_plain(result), default=str))


def _plain(value: Any) -> Any:
    """JSON-ready: paths and timestamps as text, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _plain(value.item())
    if hasattr(value, "isoformat"):  # instants
        return value.isoformat()
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


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


def _data_source(value: str | None) -> str | Path | None:
    """A database or object-store URI as it is; anything else a folder that must exist."""
    from leadml.common.databases import database, is_object_store

    if value is None or database(value) is not None or is_object_store(value):
        return value
    path = Path(value)
    if not path.exists():
        raise typer.BadParameter(f"Directory '{value}' does not exist.")
    if not path.is_dir():
        raise typer.BadParameter(f"Directory '{value}' is a file.")
    return path


_DATA = typer.Option(
    "--data",
    "-d",
    help="Folder with accounts, leads, events and stages (.parquet, .csv or .csv.gz), or a "
    "database URI (postgresql://..., sqlite:///FILE, duckdb:///FILE) holding the tables named "
    "in the settings' data.tables, or an object-store prefix (s3://BUCKET/PREFIX/, gs://...) "
    "with the Parquet files laid out as in a folder, or a web prefix (https://HOST/PATH/) "
    "serving TABLE.parquet files.",
    callback=_data_source,
)
DataOption = Annotated[str, _DATA]
OptionalDataOption = Annotated[str | None, _DATA]  # commands that also take --flat FILE
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


def load_checked(data, settings, now=None):
    """``data`` loaded (:func:`leadml.load_data`), and validation's warnings printed on stderr
    as `leadml validate` prints them (under ``--json`` also ``data_warnings``): a command that
    reads a history says what it found wrong with it (event types it does not know, attributes
    it lacks), rather than work around it in silence."""
    from leadml.data import load_data

    loaded = load_data(data, settings, now=now)
    warnings = [p.format() for p in loaded.report.warnings]
    for line in warnings:
        warn(line)
    record(data_warnings=warnings)
    return loaded


def named(name: str) -> Callable[[Callable], Callable]:
    """:func:`command` under ``name`` (a subcommand: "rules learn"): its errors read
    ``leadml NAME: ...`` and its JSON object names it."""

    def wrap(func: Callable) -> Callable:
        return command(func, name)

    return wrap


def command(func: Callable, name: str | None = None) -> Callable:
    """Wrap the command ``func`` so that it reports leadml's errors instead of raising them: a
    message on stderr and the error's exit code; under ``--json`` also the result object, with
    ``ok``, ``exit_code`` and ``error``."""
    name = name or func.__name__.replace("_", "-")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        OUTPUT.fields = {}
        try:
            func(*args, **kwargs)
        except LeadmlError as exc:
            typer.echo(f"leadml {name}: {exc}", err=True)
            _finish(name, exc.exit_code, str(exc))
            raise typer.Exit(exc.exit_code) from None
        except typer.BadParameter as exc:  # a usage error found by the command itself
            _finish(name, exc.exit_code, exc.format_message())
            raise
        _finish(name, 0)

    return wrapper


def one_input(data: Path | None, flat: Path | None) -> None:
    if (data is None) == (flat is None):
        raise typer.BadParameter("give either --data DIR (event history) or --flat FILE")


def flat_only(flat: Path | None, **given) -> None:
    used = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if flat is None and used:
        raise typer.BadParameter(f"{', '.join(used)} only apply with --flat FILE")


class Engine(StrEnum):
    """Where a command with --data runs."""

    single = "single"  # this process
    spark = "spark"  # a Spark session, one task per shard of the leads


EngineOption = Annotated[
    Engine,
    typer.Option(
        help="'spark' runs on Spark (pip install leadml[spark]), one task per shard of the "
        "leads, with the same result as 'single' (this process); see docs/scale.md."
    ),
]
MasterOption = Annotated[
    str | None,
    typer.Option(help="With --engine spark: the Spark master (default: local[*], every core)."),
]
ShardsOption = Annotated[
    int | None,
    typer.Option(
        min=1, help="With --engine spark: shards (tasks); default: Spark's default parallelism."
    ),
]


def check_spark_options(engine: Engine, master: str | None, shards: int | None) -> None:
    """--master and --shards mean nothing without --engine spark: say so rather than ignore them."""
    if engine is not Engine.spark and (master is not None or shards is not None):
        raise typer.BadParameter("--master and --shards apply with --engine spark")
