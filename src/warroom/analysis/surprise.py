"""How surprising a count is against the count expected: Poisson tails as z values on the one
strength scale the diagnosis' observations share (detectors of logs, spans, metrics and security
rank surges and dearths with them).

scipy.special rather than scipy.stats: scipy.stats' import alone costs a second of every run.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammainc, gammaincc, ndtri


def burst_z(count: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """How surprising `count` occurrences are when `expected` are predicted (Poisson upper
    tail), as a z value in [0, 40]."""
    # P(X >= count) of a Poisson(expected) is the regularised lower incomplete gamma P(count,
    # expected); scipy.special rather than scipy.stats, whose import alone costs a second
    tail = np.where(count >= 1, gammainc(np.maximum(count, 1), expected), 1.0)
    z = -ndtri(np.clip(tail, 1e-300, 1.0))
    return np.asarray(np.clip(z, 0.0, 40.0), dtype=np.float64)


def dearth_z(count: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """How surprising as few as `count` occurrences are when `expected` are predicted (Poisson
    lower tail P(X <= count), the regularised upper incomplete gamma Q(count + 1, expected)), as
    a z value in [0, 40]."""
    tail = gammaincc(np.asarray(count, dtype=np.float64) + 1.0, expected)
    z = -ndtri(np.clip(tail, 1e-300, 1.0))
    return np.asarray(np.clip(z, 0.0, 40.0), dtype=np.float64)
