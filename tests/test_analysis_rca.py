"""The analysis library on small synthetic telemetry built in the test (no dataset needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from warroom.analysis import logs as logs_mod
from warroom.analysis import metrics as metrics_mod
from warroom.analysis import traces as traces_mod
from warroom.analysis.rca import diagnose
from warroom.sources.canonical import Telemetry

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
ALERT = T0 + timedelta(minutes=30)


def _metrics() -> pl.DataFrame:
    rows = []
    for minute in range(40):
        ts = T0 + timedelta(minutes=minute)
        after = ts >= ALERT
        # An idle series that wiggles between 0 and 0.001 must not outrank a real saturation.
        rows.append((ts, "idle", "cpu_utilization", 0.001 if minute % 2 else 0.0))
        rows.append((ts, "busy", "cpu_utilization", 0.95 if after else 0.10 + 0.01 * (minute % 3)))
        rows.append((ts, "steady", "cpu_utilization", 0.2 + 0.01 * (minute % 3)))
    return pl.DataFrame(rows, schema=["timestamp", "service", "metric", "value"], orient="row").with_columns(
        pl.col("timestamp").dt.cast_time_unit("us")
    )


def test_metric_scoring_ranks_saturation_over_idle_wiggle() -> None:
    scored = metrics_mod.score_series(_metrics(), None, ALERT, ALERT + timedelta(minutes=9))
    ranked = metrics_mod.rank_services(scored)
    assert ranked.get_column("service")[0] == "busy"
    busy = scored.filter(pl.col("service") == "busy").row(0, named=True)
    assert busy["onset"] == ALERT and busy["z"] > 10


def _logs() -> pl.DataFrame:
    rows = []
    for i in range(200):
        ts = T0 + timedelta(seconds=12 * i)
        after = ts >= ALERT
        trace = f"{i:032x}"
        rows.append((ts, "front", "INFO", f"handled request {i} in 12 ms", trace))
        rows.append((ts, "db", "INFO", f"query user id={i} ok", trace))
        if after:
            rows.append((ts + timedelta(milliseconds=1), "db", "ERROR", f"connection refused to 10.0.0.{i % 9}", trace))
            rows.append((ts + timedelta(milliseconds=2), "front", "ERROR", f"upstream db failed for {i}", trace))
        else:
            rows.append((ts + timedelta(milliseconds=1), "db", "INFO", f"returned {i % 5} rows", trace))
    return pl.DataFrame(rows, schema=["timestamp", "service", "level", "message", "trace_id"], orient="row")


def _spans() -> pl.DataFrame:
    rows = []
    for i in range(200):
        ts = T0 + timedelta(seconds=12 * i)
        after = ts >= ALERT
        trace = f"{i:032x}"
        rows.append((trace, f"a{i}", None, "front", "GET /", ts, ts + timedelta(milliseconds=30)))
        rows.append((trace, f"b{i}", f"a{i}", "front", "call db", ts, ts + timedelta(milliseconds=25)))
        rows.append(
            (trace, f"c{i}", f"b{i}", "db", "query", ts + timedelta(milliseconds=2), ts + timedelta(milliseconds=22))
        )
        if after:  # a second callee whose calls take 40 ms longer on the wire
            rows.append((trace, f"d{i}", f"a{i}", "front", "call cache", ts, ts + timedelta(milliseconds=45)))
        else:
            rows.append((trace, f"d{i}", f"a{i}", "front", "call cache", ts, ts + timedelta(milliseconds=5)))
        rows.append(
            (trace, f"e{i}", f"d{i}", "cache", "get", ts + timedelta(milliseconds=1), ts + timedelta(milliseconds=4))
        )
    return pl.DataFrame(
        rows,
        schema=["trace_id", "span_id", "parent_span_id", "service", "operation", "start_time", "end_time"],
        orient="row",
    ).with_columns(pl.col("start_time").dt.cast_time_unit("us"), pl.col("end_time").dt.cast_time_unit("us"))


def test_templates_mask_ids_and_keep_code_locations() -> None:
    frame = pl.DataFrame(
        {
            "message": [
                "c.s.Impl#31 id: 415d1665-fbb2-4ec9-83f5-5ebe51dc1825 took 12 ms",
                "c.s.Impl#31 id: 8c756d0c-b064-4dc6-b705-496a75343ddb took 7 ms",
                "c.s.Impl#34 found",
            ],
            "level": ["INFO", "INFO", "INFO"],
        }
    )
    out = logs_mod.mine_templates(frame).get_column("template").to_list()
    assert out[0] == out[1] != out[2]
    assert logs_mod.code_location(out[2]) == "c.s.Impl#34"


def test_new_error_template_and_deepest_erroring_service() -> None:
    logs = logs_mod.mine_templates(_logs())
    before, after = logs.filter(pl.col("timestamp") < ALERT), logs.filter(pl.col("timestamp") >= ALERT)
    shift = logs_mod.template_shift(after, before)
    new_errors = shift.filter(pl.col("new") & (pl.col("severity") >= 2))
    assert set(new_errors.get_column("service")) == {"db", "front"}
    keys = after.filter(pl.col("severity") >= 2).select("trace_id", "service")
    spans = traces_mod.prepare(_spans().filter(pl.col("start_time") >= ALERT))
    deep = {r["service"]: r for r in traces_mod.deepest_errors(spans, keys).iter_rows(named=True)}
    assert deep["db"]["deepest"] == deep["db"]["erroring"] > 0
    assert deep["front"]["deepest"] == 0  # the front door reports the error; it does not cause it


def test_self_time_and_network_gap() -> None:
    spans = _spans()
    cur = traces_mod.prepare(spans.filter(pl.col("start_time") >= ALERT))
    base = traces_mod.prepare(spans.filter(pl.col("start_time") < ALERT))
    gaps = {r["service"]: r for r in traces_mod.edge_gaps(cur, base).iter_rows(named=True)}
    assert abs(gaps["cache"]["gap_delta_ms"] - 40.0) < 1.0 and gaps["cache"]["gap_z"] > 10
    assert abs(gaps["db"]["gap_delta_ms"]) < 1.0
    assert traces_mod.call_graph(cur) == {"front": ["cache", "db"]}


def test_diagnose_without_baseline_uses_data_before_the_window() -> None:
    telemetry = Telemetry(metrics=None, logs=_logs(), traces=_spans())
    diagnosis = diagnose(
        telemetry, None, alert_time=ALERT, window_start=ALERT, window_end=ALERT + timedelta(minutes=10)
    )
    services = [c.service for c in diagnosis.candidates]
    assert services[0] in {"db", "cache"}
    assert "db" in services[:2] and "front" not in services[:1]
    assert any("metrics" in text for text in diagnosis.limitations)
    assert any("before the window" in text for text in diagnosis.limitations)
    by = {c.service: c for c in diagnosis.candidates}
    assert by["db"].fault_type == "return"
    assert by["cache"].fault_type == "network_delay"
