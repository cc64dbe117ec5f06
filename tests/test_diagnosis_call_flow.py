"""The call-flow detector on spans: a handler that stops before its usual call is evidence about
itself; one that calls another service instead of the usual one at its start (another request mix)
is evidence of nothing; one that does something else after a call speaks of that callee only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from warroom.analysis.diagnosis.detectors import traces
from warroom.analysis.diagnosis.periods import Periods
from warroom.sources.canonical import Telemetry

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
KNOWN = {"trace_flow.change", "trace_flow.callers"}


def _spans(start: datetime, traces_n: int, calls: list[list[str]]) -> pl.DataFrame:
    """`traces_n` requests gateway → seat; seat's handler then calls calls[i % len(calls)] in order."""
    rows: list[tuple[str, str, str | None, str, str, datetime, datetime]] = []
    for i in range(traces_n):
        t = start + timedelta(seconds=2 * i)
        trace = f"{start:%H%M}-{i}"
        made = calls[i % len(calls)]
        rows.append((trace, "g", None, "gateway", "/api", t, t + timedelta(milliseconds=40)))
        rows.append((trace, "s", "g", "seat", "/seats", t + timedelta(milliseconds=1), t + timedelta(milliseconds=30)))
        for k, callee in enumerate(made):
            at = t + timedelta(milliseconds=2 + 5 * k)
            rows.append((trace, f"c{k}", "s", callee, "/q", at, at + timedelta(milliseconds=3)))
    cols = ["trace_id", "span_id", "parent_span_id", "service", "operation", "start_time", "end_time"]
    return pl.DataFrame(rows, schema=cols, orient="row")


def _flow(calls_now: list[list[str]]) -> list[dict[str, str]]:
    reference = _spans(T0 - timedelta(minutes=30), 80, [["order", "config"]])
    window = _spans(T0, 80, calls_now)
    periods = Periods(Telemetry(traces=window), Telemetry(traces=reference), T0, T0 + timedelta(minutes=5))
    result, _ = traces.detect(periods, KNOWN, None)
    return [o.roles for o in result.observations if o.signal == "trace_flow" and o.above_noise]


def test_a_handler_that_stops_is_evidence_about_itself() -> None:
    roles = _flow([["order", "config"], []])  # half the requests end before any call
    assert {"trace_flow.change": "seat"} in roles


def test_another_branch_at_the_start_is_no_evidence() -> None:
    assert _flow([["order-other", "config"]]) == []  # the other order service, then the same


def test_another_branch_after_a_call_speaks_of_that_callee_only() -> None:
    roles = _flow([["order", "config"], ["order", "notify"]])
    assert roles and all(r == {"trace_flow.callers": "order"} for r in roles)
