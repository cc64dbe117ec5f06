"""The recovery check's Mann–Whitney U equals scipy.stats' asymptotic one, ties and all."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from warroom.analysis.recovery import mann_whitney


@pytest.mark.parametrize("seed", range(6))
def test_u_and_both_one_sided_p_values_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(10.0, 3.0, 40 + seed), 0)  # rounded: many ties
    y = np.round(rng.normal(11.0, 3.0, 55), 0)
    u, p_less, p_greater = mann_whitney(x, y)
    less = mannwhitneyu(x, y, alternative="less", method="asymptotic")
    greater = mannwhitneyu(x, y, alternative="greater", method="asymptotic")
    assert u == pytest.approx(float(less.statistic))
    assert p_less == pytest.approx(float(less.pvalue), rel=1e-9)
    assert p_greater == pytest.approx(float(greater.pvalue), rel=1e-9)


def test_all_values_tied_supports_neither_side() -> None:
    _, p_less, p_greater = mann_whitney(np.ones(5), np.ones(7))
    assert (p_less, p_greater) == (1.0, 1.0)
    assert float(mannwhitneyu(np.ones(5), np.ones(7), alternative="less", method="asymptotic").pvalue) == 1.0
