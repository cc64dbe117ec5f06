"""Decision signals: a recent change, lost rows, leaf services, expired certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from warroom.analysis.signals import certificate_expired, change_lead_minutes, leaf_services, row_count_drop

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_change_lead_counts_only_recent_changes_to_the_services() -> None:
    changes = pl.DataFrame(
        {"time": [T0 - timedelta(minutes=m) for m in (300, 25, 8)], "service": ["cart", "cart", "catalog"]}
    )
    assert change_lead_minutes(changes, ["cart"], T0) == 25.0
    assert change_lead_minutes(changes, ["auth"], T0) is None
    assert change_lead_minutes(None, ["cart"], T0) is None


def test_row_count_drop_against_the_level_before() -> None:
    times = [T0 + timedelta(minutes=i) for i in range(10)]
    values = [1000.0] * 5 + [10.0] * 5
    metrics = pl.DataFrame(
        {
            "timestamp": times,
            "service": ["database"] * 10,
            "metric": ["db_table_rows"] * 10,
            "value": values,
            "instance": ["payments"] * 10,
        }
    )
    assert row_count_drop(metrics, None, times[5], times[-1]) == 0.99
    assert row_count_drop(metrics.with_columns(pl.lit("x").alias("metric")), None, times[5], times[-1]) is None


def test_leaf_services_from_topology_or_spans() -> None:
    assert leaf_services({"gateway": ["checkout"], "checkout": ["database"]}, None) == {"database"}
    spans = pl.DataFrame(
        {"span_id": ["a", "b", "c"], "parent_span_id": [None, "a", "b"], "service": ["gateway", "checkout", "provider"]}
    )
    assert leaf_services({}, spans) == {"provider"}


def test_certificate_expired() -> None:
    frame = pl.DataFrame(
        {
            "timestamp": [T0, T0 + timedelta(minutes=1)],
            "service": ["payment"] * 2,
            "metric": ["tls_cert_expiry_seconds"] * 2,
            "value": [30.0, -1.0],
        }
    )
    assert certificate_expired(frame, T0, T0 + timedelta(minutes=5)) == 1.0
    assert certificate_expired(frame, T0, T0) == 0.0
    assert certificate_expired(frame.with_columns(pl.lit("other").alias("metric")), T0, T0) is None
