"""The ``leadml`` command line: a thin layer over the Python API.

Every command takes ``--config``; errors leadml raises on purpose become a message on stderr and a
non-zero exit code, never a traceback (:func:`leadml.cli.shared.command`). The commands live by
kind: :mod:`~leadml.cli.data` (validate, synth, summary, features, trainset, rules and rules
learn), :mod:`~leadml.cli.rules` (rules threshold), :mod:`~leadml.cli.model` (train, promote)
and :mod:`~leadml.cli.nightly` (score, report). They parse and print; the work is done by
:mod:`leadml.jobs` and the library below it.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from leadml.cli import rules as _rules  # noqa: F401 (adds `leadml rules threshold` to the group)
from leadml.cli.data import features, rules_app, summary, synth, trainset, validate
from leadml.cli.model import promote, train
from leadml.cli.nightly import report, score
from leadml.cli.shared import OUTPUT

app = typer.Typer(
    help="Predictive lead scoring: point-in-time features, calibrated models and the rule score "
    "side by side. Each command logs its steps with their time on stderr and exits with a code "
    "that says what happened: 0 done, 2 configuration or usage, 3 input data, 4 model and data "
    "do not match, 5 tracking store, 6 promotion refused, 7 output locked by another run, "
    "8 output not written, 9 cold start, 10 model failed the fitness gate, 11 model file failed "
    "its integrity check.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from leadml import __version__

        typer.echo(f"leadml {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as one JSON object on stdout (paths, counts, model version, "
            "metrics; on failure ok=false, exit_code and error); text and logs go to stderr.",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and warnings.")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="More log lines on stderr (-vv: the libraries' too).",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Options every command shares: how it reports (text, --json, --quiet) and how much it
    logs."""
    OUTPUT.json, OUTPUT.quiet = json, quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("leadml")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    if verbose > 1:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True)


# In the order ``leadml --help`` lists them; ``rules`` is a group (``leadml rules learn``).
for _func in (validate, synth, summary, features, trainset, rules_app, train, report, promote,
              score):  # fmt: skip
    if isinstance(_func, typer.Typer):
        app.add_typer(_func, name="rules")
    else:
        app.command(name=_func.__name__.replace("_", "-"))(_func)
del _func

__all__ = ["app"]
