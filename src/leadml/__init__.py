"""leadml: predictive lead scoring with the rule score side by side.

The public API; modules are private to the package and may move.
"""

from leadml.config import Settings, load_settings
from leadml.data import LeadData, load_data
from leadml.errors import ConfigError, DataError, DataValidationError, LeadmlError
from leadml.reports import funnel_counts
from leadml.synth import SampleHistory, generate_history, write_history
from leadml.validation import Problem, ValidationReport, validate_data

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DataValidationError",
    "LeadData",
    "LeadmlError",
    "Problem",
    "SampleHistory",
    "Settings",
    "ValidationReport",
    "__version__",
    "funnel_counts",
    "generate_history",
    "load_data",
    "load_settings",
    "validate_data",
    "write_history",
]
