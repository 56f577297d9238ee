"""Writing a chosen MQL threshold into a rules file: that one value in its text, and only a
threshold that is a real choice unless forced."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from leadml.errors import ConfigError, LeadmlError, OutputError
from leadml.rules import load_rules

if TYPE_CHECKING:
    from leadml.modeling.thresholds import ThresholdChoice


class ThresholdRefused(LeadmlError):
    """The threshold found would make every open lead an MQL (at or below every score of the
    test window): it was not written (``leadml rules threshold --write --force`` writes it)."""


def write_choice(choice: ThresholdChoice, path: str | Path, settings=None, force=False) -> None:
    """Write ``choice.threshold`` into the rules file ``path`` (:func:`set_threshold`) and note
    it on ``choice``. A threshold at or below every score of the window is refused unless
    ``force``: written, it would make every open lead an MQL, night after night.

    Raises
    ------
    ThresholdRefused
        The threshold makes every open lead an MQL and ``force`` is not set; nothing is written.
    """
    if choice.sends_every_lead and not force:
        raise ThresholdRefused(
            f"{'; '.join(choice.warnings)}; {path} was not written (--force writes it anyway)"
        )
    before = set_threshold(path, choice.threshold, settings)
    choice.written = Path(path)
    choice.notes.append(f"{path}: '{before.strip()}' -> 'threshold: {choice.threshold}'")


def set_threshold(path: str | Path, threshold: float, settings=None) -> str:
    """Write ``threshold`` into the rules file ``path`` as ``mql: threshold:``, changing only
    that value in the text: comments, order and layout stay as they are. The file is replaced
    atomically, and only after the edited text has been loaded back by the rules loader.
    Returns the line as it was before.

    Raises
    ------
    ConfigError
        The file has no block-style ``mql:`` section with a ``threshold:`` line to edit (the
        message says what to set by hand), or it is not a valid rules file.
    OutputError
        The file could not be written; it is unchanged.
    """
    from leadml.common.atomic import write_atomic

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    value = f"{threshold:g}" if float(threshold) != int(threshold) else str(int(threshold))
    lines = text.splitlines(keepends=True)
    at = _threshold_line(lines)
    if at is None:
        raise ConfigError(
            f"{path}: no 'mql:' section with a 'threshold:' line of its own to edit; set "
            f"mql.threshold to {value} by hand"
        )
    before = lines[at]
    lines[at] = _VALUE.sub(lambda m: m["key"] + value, before, count=1)
    edited = "".join(lines)
    old, new = yaml.safe_load(text), yaml.safe_load(edited)
    load_rules(new, settings)  # the result must load, or nothing is written
    old["mql"]["threshold"] = new["mql"]["threshold"]
    if old != new or new["mql"]["threshold"] != float(threshold):
        raise ConfigError(f"{path}: editing the threshold line would change more than it; "
                          f"set mql.threshold to {value} by hand")  # fmt: skip
    try:
        write_atomic(path, lambda staging: staging.write_text(edited, encoding="utf-8"))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}; it is unchanged") from None
    return before.rstrip("\n")


# `threshold: <value>` keeping the indentation, the spacing and any comment after the value.
_VALUE = re.compile(r"(?P<key>^\s+threshold:\s*)[^\s#]+")


def _threshold_line(lines: list[str]) -> int | None:
    """The index of the ``threshold:`` line inside the top-level ``mql:`` block, or None."""
    inside = False
    for i, line in enumerate(lines):
        if line[:1] not in (" ", "\t", "#", "\n", "\r", ""):  # a top-level key
            inside = re.match(r"mql:\s*(#.*)?$", line.rstrip("\r\n")) is not None
        elif inside and _VALUE.match(line):
            return i
    return None
