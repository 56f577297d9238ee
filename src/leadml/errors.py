"""Exceptions a user can act on. The CLI turns them into a message and an exit code, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadml.validation import ValidationReport


class LeadmlError(Exception):
    """Base class for every error leadml raises on purpose."""

    exit_code = 1


class ConfigError(LeadmlError):
    """A configuration or rules file is missing, malformed or has unknown or mistyped keys."""

    exit_code = 2


class DataError(LeadmlError):
    """Input data cannot be read or violates the input contract."""

    exit_code = 3


class DataValidationError(DataError):
    """Validation found errors; ``report`` holds all of them, not just the first."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.format())
