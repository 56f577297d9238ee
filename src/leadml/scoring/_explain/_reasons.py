"""What an explanation gives: a chunk's probabilities and effects, and each lead's top reasons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Explained:
    """One chunk: probabilities and the effects of the explained features on them."""

    probability: np.ndarray  # (n,) float64
    effects: np.ndarray  # (n, k) float32, in probability points
    features: list[str]
    moved: np.ndarray | None = None  # (n, k) float32: the log-odds moved, where known exactly

    def log_odds(self) -> np.ndarray:
        """How much each effect moved the log-odds, ``logit(p) - logit(p - effect)``: as the
        method knows it (a sigmoid calibration's log-odds are linear in the model's), else from
        the probabilities."""
        if self.moved is not None:
            return self.moved
        eps = 1e-9
        now = np.clip(self.probability, eps, 1 - eps)[:, None]
        without = np.clip(now - self.effects, eps, 1 - eps)
        return (np.log(now / (1 - now)) - np.log(without / (1 - without))).astype("float32")


def top_reasons(
    effects: np.ndarray, count: int, min_effect: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``count`` largest effects by size (ties: the earlier feature; a missing
    effect counts as 0), at least ``min_effect`` in size: (indices, effects), index -1 and effect
    0 where none is left."""
    from leadml.scoring._compiled import top

    n, k = effects.shape
    count = min(count, k)
    if not count:
        return np.full((n, 0), -1, "int32"), np.zeros((n, 0), "float32")
    index = np.empty((n, count), dtype="int32")
    top(np.ascontiguousarray(effects), count, index)
    effect = np.take_along_axis(effects, index, axis=1).astype("float32")
    weak = ~(np.abs(effect) >= max(min_effect, 1e-12))  # missing ones too
    index[weak] = -1
    effect[weak] = 0.0
    return index, effect
