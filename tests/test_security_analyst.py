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


def test_a_customer_the_reference_saw_only_browsing_is_not_blocked() -> None:
    """The known clients are every address the reference's logs hold, not only those that logged in:
    a customer who only browsed before and mistypes a password during the attack stays unblocked."""
    import json
    from datetime import UTC, datetime

    from warroom.analysis.security import failed_logins

    start = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def row(minutes: float, ip: str, status: int) -> dict[str, object]:
        attrs = {"client.ip": ip, "http.status_code": status, "path": "/login" if status == 401 else "/products"}
        return {
            "timestamp": start + timedelta(minutes=minutes),
            "service": "auth" if status == 401 else "catalog",
            "message": "login failed" if status == 401 else "GET /products 200",
            "attributes": json.dumps(attrs),
        }

    browsing = [row(-30 + i * 0.1, f"198.18.0.{i % 50}", 200) for i in range(200)]
    attack = [row(i * 0.01, f"100.64.{i // 250}.{i % 250}", 401) for i in range(400)]
    typos = [row(1.0 + k, "198.18.0.7", 401) for k in range(6)]
    logs = pl.DataFrame(browsing + attack + typos).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    found = failed_logins(logs, None, start, start + timedelta(minutes=10))
    assert found is not None and found.networks is not None
    assert found.networks.networks == ["100.64.0.0/23"]


def test_the_attacked_service_is_the_one_judging_logins_not_the_edge_refusing_them_after_a_block() -> None:
    """Past a block, the edge refuses the same attackers with 403s (its own lines, no login checked),
    more of them than the logins that reached the authenticating service before: the attack is
    still on the service that judged the credentials ('login failed'), not on the edge."""
    import json
    from datetime import UTC, datetime

    from warroom.analysis.security import failed_logins

    start = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def row(minutes: float, ip: str, service: str, message: str, status: int) -> dict[str, object]:
        attrs = {"client.ip": ip, "http.status_code": status}
        return {
            "timestamp": start + timedelta(minutes=minutes),
            "service": service,
            "message": message,
            "attributes": json.dumps(attrs),
        }

    before = [row(i * 0.01, f"100.64.0.{i % 250}", "auth", "login failed", 401) for i in range(300)]
    refused = [row(3 + i * 0.005, f"100.64.0.{i % 250}", "gateway", "POST /api/login 403", 403) for i in range(900)]
    logs = pl.DataFrame(before + refused).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    found = failed_logins(logs, None, start, start + timedelta(minutes=10))
    assert found is not None and found.service == "auth"
    assert found.failures == 1200  # the refusals still count: the attack goes on
    # without any line that judges a login, the loudest service is all there is to go on
    edge_only = pl.DataFrame(refused).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    found = failed_logins(edge_only, None, start, start + timedelta(minutes=10))
    assert found is not None and found.service == "gateway"
