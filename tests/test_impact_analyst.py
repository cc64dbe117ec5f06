"""Customer impact over a stated window, from per-request outcomes: a direct recount agrees."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl

from support_specialists import END, ONSET, bundle, context, request_logs
from warroom.agents.customer_impact import CustomerImpactAnalyst
from warroom.analysis.attrs import attr, attr_float
from warroom.analysis.impact import analyse_impact, request_outcomes, worst_window
from warroom.figures import Basis, Window
from warroom.sources.canonical import Telemetry

WINDOW = Window(start=ONSET, end=END, basis="test")


def test_counts_match_a_direct_recount() -> None:
    logs = request_logs("pool_leak")
    result = analyse_impact(Telemetry(logs=logs), None, WINDOW, revenue_per_minute=10000.0, entry_service="gateway")
    rows = logs.filter(pl.col("timestamp").is_between(ONSET, END) & (pl.col("service") == "gateway"))
    decoded = [json.loads(a) for a in rows["attributes"].to_list()]
    failed = [d for d in decoded if d["http.status_code"] >= 500]
    assert result.requests.value == len(decoded)
    assert result.failed_requests.value == len(failed) > 0
    assert result.failure_rate.value == len(failed) / len(decoded)
    assert result.failure_rate.window == WINDOW and "gateway" in result.failure_rate.method
    assert result.users_affected.value == len({d["user_id"] for d in failed})
    assert result.sessions_affected.value == len({d["session_id"] for d in failed})
    assert result.failed_transactions.value == len([d for d in failed if "cart_value" in d])
    # One revenue figure, measured where the logs carry cart values, and labelled so.
    assert result.revenue.basis == Basis.MEASURED
    assert result.revenue.value == round(sum(d["cart_value"] for d in failed), 2)
    assert result.baseline_failure_rate.value == 0.0
    assert result.by_path == {"/api/checkout": len(failed)}
    assert result.scope.startswith("a subset of users") or result.scope.startswith("all users")


def test_revenue_is_estimated_and_labelled_without_cart_values() -> None:
    logs = request_logs("pool_leak").with_columns(
        pl.col("attributes").str.replace_all(r',\s*"cart_value":\s*[0-9.]+', "")
    )
    result = analyse_impact(Telemetry(logs=logs), None, WINDOW, revenue_per_minute=1000.0, entry_service="gateway")
    assert result.revenue.basis == Basis.ESTIMATED
    assert "revenue_per_minute 1,000 USD" in result.revenue.method and "excess failure share" in result.revenue.method
    assert result.failure_rate.value is not None
    expected = 1000.0 * WINDOW.minutes * (result.failure_rate.value - (result.baseline_failure_rate.value or 0.0))
    assert abs((result.revenue.value or 0.0) - expected) < 0.01


def test_worst_window_is_sustained_not_a_single_sample() -> None:
    logs = request_logs("pool_leak")
    outcomes = request_outcomes(Telemetry(logs=logs), "gateway")
    assert outcomes is not None
    whole = analyse_impact(Telemetry(logs=logs), None, WINDOW, entry_service="gateway").failure_rate
    worst = worst_window(outcomes, WINDOW, 5.0)
    assert worst.window is not None and worst.window.end - worst.window.start == timedelta(minutes=5)
    assert whole.value is not None and worst.value is not None and worst.value >= whole.value
    # the worst window's rate is a real recount of the requests inside it
    rows = outcomes.between(worst.window.start, worst.window.end)
    inside = rows.filter(pl.col("t") > worst.window.start)
    assert abs(worst.value - inside["failed"].sum() / inside["requests"].sum()) < 0.02


def test_no_failures_no_impact_and_missing_logs_is_said() -> None:
    quiet = analyse_impact(Telemetry(logs=request_logs("none")), None, WINDOW, revenue_per_minute=100.0)
    assert quiet.failed_requests.value == 0 and quiet.users_affected.value == 0
    assert quiet.scope == "no user saw a failure"
    empty = analyse_impact(Telemetry(), None, WINDOW)
    assert empty.limitations and not empty.requests.known and empty.requests.text() == "not measured"


def test_attribute_extraction_handles_numbers_strings_and_absence() -> None:
    frame = pl.DataFrame({"attributes": ['{"a": "x\\"y", "n": 3.5}', '{"n": "7"}', None]})
    out = frame.select(attr("a").alias("a"), attr_float("n").alias("n"))
    assert out["a"].to_list() == ['x\\"y', None, None]
    assert out["n"].to_list() == [3.5, 7.0, None]


def test_agent_outputs_impact_over_the_user_facing_window() -> None:
    report = CustomerImpactAnalyst().run(context(bundle("pool_leak")))
    impact = report.outputs["impact"]
    assert impact["users_affected"]["value"] > 0 and impact["revenue"]["unit"] == "USD"
    assert impact["service"] == "gateway"
    assert impact["window"]["basis"].startswith("from the first user-facing onset at gateway: ")
    assert impact["window"]["basis"].endswith("; to the end of the incident window")
    assert report.findings[0].evidence and impact["evidence_ids"]


def test_without_a_user_facing_onset_the_impact_window_opens_at_the_alert_and_says_so() -> None:
    from datetime import UTC, datetime

    from warroom.analysis.onset import impact_start

    alert = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert impact_start([], "gateway", alert) == (alert, "from the alert (no user-facing signal left its baseline)")
