"""Shared by the generator's tests."""

from __future__ import annotations

import hashlib

import pandas as pd

from leadml.synth import SampleHistory


def digest(history: SampleHistory) -> str:
    """sha256 of every table of ``history`` (columns, dtypes and values): equal only for
    byte-for-byte identical histories."""
    sha = hashlib.sha256()
    for name, frame in {**history.tables(), "truth": history.truth}.items():
        sha.update(f"{name}:{list(frame.columns)}:{[str(t) for t in frame.dtypes]}".encode())
        sha.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return sha.hexdigest()
