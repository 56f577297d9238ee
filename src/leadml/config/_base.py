"""The base of every settings section."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A section that rejects unknown keys (a typo fails loudly with its path) and is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
