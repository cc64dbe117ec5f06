"""Security analyst: a service fault is cleared; credential stuffing and lost rows escalate."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from support_specialists import END, ONSET, START, bundle, context, metrics
from warroom.agents.security import SecurityIncidentAnalyst
from warroom.analysis.security import analyse_security


def test_service_fault_is_cleared() -> None:
    b = bundle("pool_leak")
    result = analyse_security(b.current, None, ONSET - timedelta(minutes=10), END)
    assert result.verdict == "cleared", result.checks
    assert result.categories == []
    auth = next(c for c in result.checks if c.name == "auth_failures")
    assert auth.status == "ok" and auth.evidence is not None


def test_credential_stuffing_escalates() -> None:
    b = bundle("none", attack=True)
    report = SecurityIncidentAnalyst().run(context(b))
    security = report.outputs["security"]
    assert security["verdict"] == "escalate"
    assert "credential_attack" in security["categories"]
    assert security["sources"]["distinct_ips"] >= 100
    assert security["sources"]["new_ip_share"] > 0.9
    # The attack's addresses are in 203.0.0.0/16, the usual clients in 10.1.0.0/24: one block.
    assert security["attack_networks"] == ["203.0.0.0/16"]
    block = next(a for a in report.actions if a.kind == "block_sources")
    assert "203.0.0.0/16" in block.rationale


def test_rows_lost_escalates_as_data_integrity() -> None:
    b = bundle("none")
    times = metrics("none").filter(pl.col("metric") == "db_pool_size")["timestamp"].unique().sort()
    rows = pl.DataFrame(
        {
            "timestamp": times,
            "service": "database",
            "metric": "db_table_rows",
            "value": [50000.0 if t < ONSET else 12000.0 for t in times],
            "instance": "orders",
        }
    )
    assert b.current.metrics is not None
    b.current.metrics = pl.concat([b.current.metrics.with_columns(pl.lit(None, pl.String).alias("instance")), rows])
    result = analyse_security(b.current, None, ONSET - timedelta(minutes=10), END)
    assert result.verdict == "escalate" and result.categories == ["data_integrity"]
    check = next(c for c in result.checks if c.name == "data_integrity")
    assert check.evidence is not None
    assert check.evidence.values["tables_losing_rows"]["orders"]["drop"] == 0.76
    assert START < ONSET
