"""The Poisson tail z values the detectors rank surprises by equal scipy.stats' own."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, poisson

from warroom.analysis.surprise import burst_z, dearth_z


def test_both_tails_match_scipy_stats() -> None:
    rng = np.random.default_rng(7)
    expected = rng.uniform(0.05, 80.0, 200)
    count = rng.poisson(expected * rng.uniform(0.0, 3.0, 200)).astype(np.float64)
    upper = np.clip(norm.isf(np.clip(poisson.sf(count - 1, expected), 1e-300, 1.0)), 0.0, 40.0)
    lower = np.clip(norm.isf(np.clip(poisson.cdf(count, expected), 1e-300, 1.0)), 0.0, 40.0)
    np.testing.assert_allclose(burst_z(count, expected), upper, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dearth_z(count, expected), lower, rtol=1e-9, atol=1e-9)
