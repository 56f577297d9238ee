"""Exceptions a user can act on; the CLI turns them into a message and an exit code."""


class LeadmlError(Exception):
    """Base class for every error leadml raises on purpose."""

    exit_code = 1


class ConfigError(LeadmlError):
    """A configuration or rules file is missing, malformed or has unknown or mistyped keys."""

    exit_code = 2


class DataError(LeadmlError):
    """Input data cannot be read or violates the input contract."""

    exit_code = 3


class TrackingError(LeadmlError):
    """The tracking store or model registry cannot do what was asked (no challenger, unknown
    version, unreachable server, a model file that is not safe to load)."""

    exit_code = 5


class ModelIntegrityError(TrackingError):
    """A model file failed its checks before loading: its SHA-256 differs from the one recorded
    at export or registration, its path leaves the export folder, it is not a skops file, or it
    references types leadml does not trust. Nothing was loaded or run."""

    exit_code = 11


class PromotionRefused(TrackingError):
    """The challenger did not pass the promotion gate; ``promotion`` holds every check."""

    exit_code = 6

    def __init__(self, message: str, promotion=None):
        self.promotion = promotion
        super().__init__(message)


# Training's own outcomes that are not successes (see ``leadml train --help``).


class ColdStart(LeadmlError):
    """Too little history to train a model worth trusting; nothing was registered or exported.
    The message names the numbers and the setting to change."""

    exit_code = 9


class ModelUnfit(LeadmlError):
    """The trained model failed the fitness gate (it does not rank the test window better than
    chance by a margin, or not better than the rule score); it was logged with the reasons but
    not registered under an alias or exported. ``leadml train --force`` registers it anyway.
    Also a learned points table that failed the same gate: nothing was written (``leadml rules
    learn --force`` writes it)."""

    exit_code = 10


# The batch scorer's own failures (see ``leadml score --help``).


class ModelMismatchError(LeadmlError):
    """The model needs features tonight's feature frame does not have (or cannot be explained)."""

    exit_code = 4


class OutputLockedError(LeadmlError):
    """Another run is writing the same as-of partition; nothing was written by this one."""

    exit_code = 7


class OutputError(LeadmlError):
    """The scores could not be written; the previous partition, if any, is untouched."""

    exit_code = 8
