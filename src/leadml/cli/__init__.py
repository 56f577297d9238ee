"""The ``leadml`` command line: a thin layer over the Python API.

Every command takes ``--config``; errors leadml raises on purpose become a message on stderr and a
non-zero exit code, never a traceback (:func:`leadml.cli.shared.command`). The commands live by
kind: :mod:`~leadml.cli.data` (validate, synth, summary, features, trainset, rules),
:mod:`~leadml.cli.model` (train, promote) and :mod:`~leadml.cli.nightly` (score, report). They
parse and print; the work is done by :mod:`leadml.jobs` and the library below it.
"""

from __future__ import annotations

import typer

from leadml.cli.data import features, rules, summary, synth, trainset, validate
from leadml.cli.model import promote, train
from leadml.cli.nightly import report, score

app = typer.Typer(
    help="Predictive lead scoring: point-in-time features, calibrated models and the rule score "
    "side by side.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# In the order ``leadml --help`` lists them.
for _func in (validate, synth, summary, features, trainset, rules, train, report, promote, score):
    app.command(name=_func.__name__.replace("_", "-"))(_func)
del _func

__all__ = ["app"]
