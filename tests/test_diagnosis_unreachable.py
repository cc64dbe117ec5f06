"""A callee that went down, seen from its callers' client spans.

When payment has no instance left, checkout's calls to it fail with a connection error and no span
of payment below them; the span reader hands each such call to payment. Those calls are evidence
that payment could not be reached (`span_unanswered.up`), which makes the diagnosis "payment is
down", not "payment's code throws". A database call is always handed to the database (it emits no
spans), so a failed statement says nothing of reachability; nor does a call answered with a 503.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from support_diagnosis import ranked_without_changes
from warroom.analysis.diagnosis.detectors import detect_all
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.diagnosis.periods import Periods
from warroom.analysis.faults import registry
from warroom.sources.canonical import TABLES, Telemetry

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
# the canonical span columns, in their order, with the status and attributes rows carry
COLUMNS = [*TABLES["traces"].required, "status", "attributes"]
CALL = {"peer.service": "payment", "span.kind": "client"}
REFUSED = {**CALL, "warroom.caller": "checkout", "error.type": "ConnectError"}
ANSWERED_503 = {"peer.service": "fx-rates", "warroom.caller": "checkout", "http.response.status_code": 503}
FAILED_STATEMENT = {
    "db.system": "postgresql",
    "db.query.text": "UPDATE orders SET paid = true",
    "warroom.caller": "checkout",
}


def _requests(start: datetime, count: int, *, payment_down: bool) -> list[tuple]:
    """One purchase every 2 s: checkout's handler, its call to payment and (when payment is up)
    payment's handler below the call; while payment is down, also a failing statement and an
    uninstrumented API that answers 503."""
    rows = []
    for i in range(count):
        at = start + timedelta(seconds=2 * i)
        trace = f"{'down' if payment_down else 'up'}{i}"
        rows.append((trace, "h", None, "checkout", "POST /checkout", at, at + timedelta(milliseconds=20), "OK", "{}"))
        if payment_down:
            end = at + timedelta(milliseconds=3)
            rows.append((trace, "c", "h", "payment", "POST", at, end, "ERROR", json.dumps(REFUSED)))
            rows.append((trace, "d", "h", "postgresql", "UPDATE", at, end, "ERROR", json.dumps(FAILED_STATEMENT)))
            rows.append((trace, "x", "h", "fx-rates", "GET", at, end, "ERROR", json.dumps(ANSWERED_503)))
        else:
            end = at + timedelta(milliseconds=15)
            rows.append((trace, "c", "h", "checkout", "POST", at, end, "OK", json.dumps(CALL)))
            rows.append((trace, "p", "c", "payment", "POST /payments", at, end, "OK", "{}"))
    return rows


def _observations() -> list[Observation]:
    rows = _requests(T0 - timedelta(minutes=10), 150, payment_down=False) + _requests(T0, 150, payment_down=True)
    spans = pl.DataFrame(rows, schema=COLUMNS, orient="row").with_columns(
        pl.col("start_time", "end_time").cast(pl.Datetime("us", "UTC")), pl.col("parent_span_id").cast(pl.String)
    )
    periods = Periods(Telemetry(traces=spans), Telemetry(), T0, T0 + timedelta(minutes=5))
    reg = registry()
    result, _ = detect_all(periods, reg.signals, reg.log_patterns)
    return result.observations


def test_calls_with_no_span_of_the_callee_say_it_could_not_be_reached() -> None:
    found = [o for o in _observations() if o.signal == "span_unanswered.up"]
    assert [(o.service, o.peer, o.value, o.baseline) for o in found] == [("payment", "checkout", 150.0, 0.0)]
    assert found[0].above_noise and found[0].onset == T0


def test_an_unreachable_callee_is_down_not_throwing() -> None:
    observations = _observations()
    ranked = ranked_without_changes(observations, {"checkout": ["payment", "postgresql"]})
    assert (ranked[0].service, ranked[0].fault_type) == ("payment", "dependency_down")
