"""Per-series operations on the grid when a series is scraped more often than the grid's step
(several samples in one step: grouped per grid point) and when it is not (one sample a step)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from warroom.sources.mapping.rules import SeriesKind
from warroom.sources.mapping.samples import POINTS_SCHEMA
from warroom.sources.mapping.series_ops import Grid, per_series

STEP_US = 15_000_000
BASE = 1716800040  # a multiple of the 15 s step


def points(rows: list[tuple[int, int, float]]) -> pl.LazyFrame:
    """(sid, seconds after BASE, value) rows, sorted by sid and time as Samples keeps them."""
    return pl.DataFrame(
        {
            "sid": [r[0] for r in rows],
            "timestamp": [datetime.fromtimestamp(BASE + r[1], UTC) for r in rows],
            "value": [r[2] for r in rows],
        },
        schema=POINTS_SCHEMA,
    ).lazy()


def on_grid(frame: pl.LazyFrame, kind: SeriesKind) -> dict[tuple[int, int], float]:
    out = per_series(frame, kind, Grid(STEP_US, 4 * STEP_US)).collect()
    return {(sid, (g // 1_000_000) - BASE): value for sid, g, value in out.iter_rows()}


def test_a_counter_scraped_every_5_s_is_summed_per_step_with_its_reset() -> None:
    # sid 0 every 5 s, restarting from zero at +25 s; sid 1 every 15 s (one sample a step)
    fast = [(0, 5, 0.0), (0, 10, 1.0), (0, 15, 2.0), (0, 20, 3.0), (0, 25, 0.0), (0, 30, 1.0)]
    slow = [(1, 15, 10.0), (1, 30, 13.0), (1, 45, 16.0)]
    rates = on_grid(points(fast + slow), "rate")
    # step ending +15: rises 1 + 1 over 10 s; ending +30: 1 + reset (0) + 1 over 15 s more
    assert rates[(0, 15)] == pytest.approx(2 / 10)
    assert rates[(0, 30)] == pytest.approx(4 / 25)
    assert (1, 15) not in rates  # a first sample has no rate
    assert rates[(1, 30)] == pytest.approx(3 / 15)
    assert rates[(1, 45)] == pytest.approx(6 / 30)


def test_a_gauge_scraped_every_5_s_reads_its_last_sample_of_each_step() -> None:
    values = on_grid(points([(0, 5, 1.0), (0, 10, 2.0), (0, 15, 3.0), (0, 20, 4.0), (0, 30, 6.0)]), "value")
    assert values == {(0, 15): 3.0, (0, 30): 6.0}


def test_one_sample_a_step_gives_the_same_as_the_grouped_steps() -> None:
    regular = [(0, 15 * k, float(k * k)) for k in range(1, 8)]
    # the same samples with a second, earlier one in each step: the rate over a window is the same
    doubled = sorted(regular + [(0, 15 * k - 7, float(k * k) - 0.5) for k in range(2, 8)])
    assert on_grid(points(regular), "value") == on_grid(points(doubled), "value")
    one, two = on_grid(points(regular), "increase"), on_grid(points(doubled), "increase")
    assert one.keys() == two.keys()
    assert all(one[k] == pytest.approx(two[k]) for k in one)
