"""Customer impact from request logs: users, sessions, failed transactions, abandoned carts, revenue."""

from __future__ import annotations

import polars as pl

from support_specialists import END, ONSET, bundle, context, request_logs
from warroom.agents.customer_impact import CustomerImpactAnalyst
from warroom.analysis.attrs import attr, attr_float
from warroom.analysis.impact import analyse_impact


def test_counts_match_a_direct_recount() -> None:
    logs = request_logs("pool_leak")
    result = analyse_impact(logs, None, ONSET, END, revenue_per_minute=10000.0, entry_service="gateway")
    rows = logs.filter(pl.col("timestamp").is_between(ONSET, END) & (pl.col("service") == "gateway"))
    decoded = [__import__("json").loads(a) for a in rows["attributes"].to_list()]
    failed = [d for d in decoded if d["http.status_code"] >= 500]
    assert result.requests == len(decoded)
    assert result.failed_requests == len(failed) > 0
    assert result.affected_users == len({d["user_id"] for d in failed})
    assert result.affected_sessions == len({d["session_id"] for d in failed})
    assert result.failed_transactions == len([d for d in failed if "cart_value" in d])
    assert round(result.failed_transaction_value, 2) == round(sum(d["cart_value"] for d in failed), 2)
    assert 0 < result.abandoned_carts <= result.affected_sessions
    assert result.baseline_failure_ratio == 0.0
    assert result.revenue_at_risk == 10000.0 * result.duration_minutes
    assert result.estimated_revenue_loss is not None and 0 < result.estimated_revenue_loss < result.revenue_at_risk
    assert result.by_path == {"/api/checkout": len(failed)}


def test_no_failures_no_impact_and_missing_logs_is_said() -> None:
    quiet = analyse_impact(request_logs("none"), None, ONSET, END, revenue_per_minute=100.0)
    assert quiet.failed_requests == 0 and quiet.affected_users == 0 and quiet.estimated_revenue_loss == 0.0
    empty = analyse_impact(None, None, ONSET, END)
    assert empty.limitations and empty.requests == 0


def test_attribute_extraction_handles_numbers_strings_and_absence() -> None:
    frame = pl.DataFrame({"attributes": ['{"a": "x\\"y", "n": 3.5}', '{"n": "7"}', None]})
    out = frame.select(attr("a").alias("a"), attr_float("n").alias("n"))
    assert out["a"].to_list() == ['x\\"y', None, None]
    assert out["n"].to_list() == [3.5, 7.0, None]


def test_agent_outputs_impact() -> None:
    report = CustomerImpactAnalyst().run(context(bundle("pool_leak")))
    impact = report.outputs["impact"]
    assert impact["affected_users"] > 0 and impact["currency"] == "USD"
    assert impact["scope_service"] == "gateway"
    assert report.findings[0].evidence
