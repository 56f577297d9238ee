"""Errors of the batch scorer, each with its own exit code (see ``leadml score --help``)."""

from __future__ import annotations

from leadml.errors import LeadmlError


class ModelMismatchError(LeadmlError):
    """The model needs features tonight's feature frame does not have (or cannot be explained)."""

    exit_code = 4


class OutputLockedError(LeadmlError):
    """Another run is writing the same as-of partition; nothing was written by this one."""

    exit_code = 7


class OutputError(LeadmlError):
    """The scores could not be written; the previous partition, if any, is untouched."""

    exit_code = 8
