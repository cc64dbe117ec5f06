"""A quantile derived from histogram buckets carries its resolution: the width of the bucket its
value falls in, from the bounds the histogram's series have (in the samples offline, in a series
discovery answer when a live read is replayed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from warroom.sources.mapping.resolution import bucket_widths
from warroom.sources.raw.folder import read_period
from warroom.sources.raw.reader import ReadOptions

FIXTURE = Path(__file__).parent / "fixtures" / "raw" / "metrics" / "query_range.json"
# prometheus_client's default buckets (seconds), without +Inf
DEFAULT_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def test_a_value_is_known_to_the_width_of_the_bucket_it_falls_in() -> None:
    values = np.array([0.003, 0.049, 0.05, 0.061, 0.2, 12.0])
    widths = bucket_widths(values, DEFAULT_BOUNDS)
    # (0, 5 ms], (25, 50 ms] twice (a bound belongs to the bucket below it), (50, 75 ms],
    # (100, 250 ms]; above the highest finite bound the +Inf bucket has no width
    assert widths[:5] == pytest.approx([0.005, 0.025, 0.025, 0.025, 0.15])
    assert np.isnan(widths[5])


def _metrics(folder: Path, alert_at: datetime | None = None) -> pl.DataFrame:
    frame = read_period(folder, ReadOptions()).validated(alert_at or datetime.now(UTC)).telemetry.metrics
    assert frame is not None
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


def test_a_derived_quantile_carries_its_bucket_width_in_its_unit(tmp_path: Path) -> None:
    (tmp_path / "export.json").write_bytes(FIXTURE.read_bytes())
    frame = _metrics(tmp_path)
    bounds_ms = tuple(1000 * b for b in (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))  # the fixture's le labels
    for metric in ("latency_p50_ms", "latency_p99_ms"):
        rows = frame.filter(pl.col("metric") == metric)
        assert rows.height
        expected = bucket_widths(rows.get_column("value").to_numpy(), bounds_ms)
        assert rows.get_column("resolution").to_numpy() == pytest.approx(expected, nan_ok=True)
    # a rate or a ratio is not a bucket estimate: no resolution said
    assert (
        frame.filter(pl.col("metric").is_in(["request_rate", "error_rate"])).get_column("resolution").null_count() > 0
    )
    assert frame.filter(pl.col("metric") == "request_rate").get_column("resolution").is_null().all()


def test_a_replayed_live_read_takes_the_bounds_from_its_series_discovery_answer(tmp_path: Path) -> None:
    """A live read's snapshot holds the server's derived p99 (no buckets) and the series discovery
    answer: the bounds come from the discovery, as they did live."""
    answer = json.loads(FIXTURE.read_text())
    buckets = [r["metric"] for r in answer["data"]["result"] if r["metric"]["__name__"].endswith("_bucket")]
    (tmp_path / "000-series.json").write_text(json.dumps({"status": "success", "data": buckets}))
    derived = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "latency_p99_ms", "service": "checkout", "instance": "127.0.0.1:39715"},
                    "values": [[1716800000 + 15 * i, str(v)] for i, v in enumerate((49.0, 61.0, 300.0, 2000.0))],
                }
            ],
        },
    }
    (tmp_path / "001-latency_p99_ms.json").write_text(json.dumps(derived))
    alert_at = datetime.fromtimestamp(1716800000 + 60, UTC)
    p99 = _metrics(tmp_path, alert_at).filter(pl.col("metric") == "latency_p99_ms").sort("timestamp")
    # (25, 50], (50, 100], (250, 500] ms; 2 s is beyond the fixture's highest finite bound (1 s)
    assert p99.get_column("resolution").to_list() == [25.0, 50.0, 250.0, None]
