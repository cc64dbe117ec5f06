"""The reference before the window stops a guard before it: the window opens at the measured onset,
and a fault that began seconds earlier must not lend its first calls to the reference (a new slow
statement seen there first read as an old one, and a lab capture's missing index went unseen)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from warroom.analysis.diagnosis.detectors import traces
from warroom.analysis.diagnosis.periods import REFERENCE_GUARD, Periods
from warroom.sources.canonical import Telemetry

FAULT = datetime(2026, 1, 1, 12, tzinfo=UTC)  # the deploy that brings the new statement
ONSET = FAULT + timedelta(seconds=10)  # the metrics said so a little later
NEW = "SELECT * FROM products WHERE brand = $1"
OLD = "SELECT * FROM products WHERE id = $1"


def _spans() -> pl.DataFrame:
    """catalog → postgresql, a request every second for 20 minutes before the fault and 5 after; the
    new statement (100 ms, against 1 ms) runs from the fault on."""
    rows = []
    for i in range(-1200, 300):
        t = FAULT + timedelta(seconds=i)
        statement, ms = (NEW, 100) if i >= 0 else (OLD, 1)
        trace = f"t{i + 1200}"
        rows.append((trace, "h", None, "catalog", "GET /products/{id}", t, t + timedelta(milliseconds=ms + 2), None))
        attributes = json.dumps({"db.statement": statement, "db.system": "postgresql"})
        rows.append((trace, "q", "h", "postgresql", "SELECT", t, t + timedelta(milliseconds=ms), attributes))
    cols = ["trace_id", "span_id", "parent_span_id", "service", "operation", "start_time", "end_time", "attributes"]
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_the_reference_ends_a_guard_before_the_window() -> None:
    periods = Periods(Telemetry(traces=_spans()), Telemetry(), ONSET, ONSET + timedelta(minutes=4))
    split = periods.split("traces")
    assert split.kind == "before-window" and split.reference is not None
    assert split.reference.get_column("start_time").max() < ONSET - REFERENCE_GUARD


def test_a_new_slow_statement_that_began_before_the_measured_onset_is_still_new() -> None:
    periods = Periods(Telemetry(traces=_spans()), Telemetry(), ONSET, ONSET + timedelta(minutes=4))
    result, _ = traces.detect(periods, set(), None)
    slow = [o for o in result.observations if o.signal == "db_statement.slow"]
    assert [o.service for o in slow] == ["catalog"] and slow[0].above_noise
    assert slow[0].data["new_statement"] is True and slow[0].samples == [NEW]
