"""Error propagation and confounders in the analysis library, on synthetic telemetry built here:
errors that name an unreachable dependency, a changed mix of callers, several requests to one
service inside one trace, a silent callee behind a loud caller, and a CPU-starved neighbour."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import cast

import polars as pl

from warroom.analysis import logs as logs_mod
from warroom.analysis import traces as traces_mod
from warroom.analysis.rca import diagnose
from warroom.bench.nezha import canonical_fault
from warroom.sources.canonical import Telemetry

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
ALERT = T0 + timedelta(hours=1)
SPAN_SCHEMA = ["trace_id", "span_id", "parent_span_id", "service", "operation", "start_time", "end_time"]
LOG_SCHEMA = ["timestamp", "service", "level", "message", "trace_id", "attributes"]


def _zmax(frame: pl.DataFrame) -> float:
    """The largest |z| in a shift table (0 if empty)."""
    value = frame.get_column("z").abs().max()
    return float(cast(float, value)) if value is not None else 0.0


def _attrs(span: str) -> str:
    return json.dumps({"span_id": span})


def _frames(spans: list[tuple], logs: list[tuple], status: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    s = pl.DataFrame(spans, schema=[*SPAN_SCHEMA, "status"] if status else SPAN_SCHEMA, orient="row").with_columns(
        pl.col("start_time").dt.cast_time_unit("us"), pl.col("end_time").dt.cast_time_unit("us")
    )
    lg = pl.DataFrame(logs, schema=LOG_SCHEMA, orient="row").with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    return s, lg


def _shop(start: datetime, n: int, faulty: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """front → mid → leaf, plus front → ts-other. With `faulty`, mid leaves its usual code path
    after its first statement in two requests of three (it stops calling leaf and logs nothing
    more, no error line), while front, for unrelated reasons, fails to reach ts-other in a third
    of its requests and logs a loud new exception naming it."""
    spans: list[tuple] = []
    logs: list[tuple] = []
    for i in range(n):
        ts = start + timedelta(seconds=6 * i)
        t = f"{'f' if faulty else 'b'}{i:031x}"
        f, c, m, lf, o = (f"{t[:8]}{k}{i:07x}" for k in "fcmlo")
        early = faulty and i % 3 != 0
        spans.append((t, f, None, "front", "GET /buy", ts, ts + timedelta(milliseconds=40)))
        spans.append((t, c, f, "front", "HTTP POST", ts, ts + timedelta(milliseconds=30)))
        spans.append((t, m, c, "mid", "/api/mid", ts + timedelta(milliseconds=1), ts + timedelta(milliseconds=29)))
        logs.append((ts + timedelta(milliseconds=2), "mid", "INFO", f"c.m.MidImpl#10 start order {i}", t, _attrs(m)))
        if not early:
            end = ts + timedelta(milliseconds=20)
            spans.append((t, lf, m, "leaf", "/api/leaf", ts + timedelta(milliseconds=5), end))
            logs.append((ts + timedelta(milliseconds=4), "mid", "INFO", f"c.m.MidImpl#12 priced {i}", t, _attrs(m)))
            logs.append(
                (ts + timedelta(milliseconds=6), "leaf", "INFO", f"c.l.LeafImpl#7 stock {i % 7}", t, _attrs(lf))
            )
            logs.append((ts + timedelta(milliseconds=25), "mid", "INFO", f"c.m.MidImpl#14 done {i}", t, _attrs(m)))
        if faulty and i % 3 == 1:
            msg = (
                "ERROR c.f.FrontImpl#40 request failed: java.lang.IllegalStateException: "
                "No instances available for ts-other"
            )
            logs.append((ts + timedelta(milliseconds=35), "front", "ERROR", msg, t, _attrs(f)))
        else:
            spans.append(
                (t, o, f, "ts-other", "/api/other", ts + timedelta(milliseconds=31), ts + timedelta(milliseconds=38))
            )
        logs.append((ts + timedelta(milliseconds=39), "front", "INFO", f"c.f.FrontImpl#50 served {i}", t, _attrs(f)))
    return _frames(spans, logs)


def test_silent_callee_outranks_a_caller_logging_an_unreachable_dependency() -> None:
    base_spans, base_logs = _shop(T0, 300, faulty=False)
    cur_spans, cur_logs = _shop(ALERT, 300, faulty=True)
    diagnosis = diagnose(
        Telemetry(logs=cur_logs, traces=cur_spans),
        Telemetry(logs=base_logs, traces=base_spans),
        alert_time=ALERT,
        window_start=ALERT,
        window_end=ALERT + timedelta(minutes=30),
    )
    top = diagnosis.candidates[0]
    assert top.service == "mid", diagnosis.candidates[:3]
    assert top.fault_type == "exception" and top.indicator == "request flow leaves the usual log path"
    # The loud caller's errors are kept out of its code-defect score and filed on the named service.
    features = {f["service"]: f for f in diagnosis.features}
    assert features["front"]["new_error"] == 0
    assert features["ts-other"]["named_in_errors"] == 100
    named = [e for e in diagnosis.evidence if e.values.get("named_service") == "ts-other"]
    assert named and named[0].values["caller"] == "front"
    # The code region: the statement after which the request now leaves the usual path.
    flow = [e for e in diagnosis.evidence if e.query.startswith("service=mid after")]
    assert flow and flow[0].values["code_region"].startswith("c.m.MidImpl#10")


def test_dependency_named_and_exception_classes_in_templates() -> None:
    frame = pl.DataFrame(
        {
            "service": ["ts-a", "ts-a", "ts-a", "ts-order-service"],
            "level": ["ERROR"] * 4,
            "message": [
                "Servlet.service() threw exception [nested exception is java.lang.IllegalStateException: "
                "No instances available for ts-order-other-service]",
                "Servlet.service() threw exception [nested exception is org.x.HttpServerErrorException: 500]",
                "connect to ts-a-proxy refused",  # not a service of the system
                "ts-order-service failed to save",  # its own name
            ],
        }
    )
    services = ["ts-a", "ts-order-service", "ts-order-other-service"]
    mined = logs_mod.mine_templates(frame).with_columns(logs_mod.dependency_named(services).alias("dep"))
    assert mined.get_column("dep").to_list() == ["ts-order-other-service", None, None, None]
    # Same framework wrapper, different failures: the exception classes keep them apart.
    templates = mined.get_column("template").to_list()
    assert templates[0] != templates[1]
    assert "IllegalStateException" in templates[0] and "HttpServerErrorException" in templates[1]


def _mix(start: datetime, from_a: int, from_b: int) -> pl.DataFrame:
    """Lines of service s for requests from caller a (branch X) and caller b (branch Y)."""
    rows = []
    for k in range(from_a + from_b):
        caller, branch = ("a", "X") if k < from_a else ("b", "Y")
        ts = start + timedelta(seconds=k)
        rows.append((ts, "s", "INFO", "S#1 request", f"t{k}", caller))
        rows.append(
            (
                ts + timedelta(milliseconds=1),
                "s",
                "INFO",
                f"S#{2 if branch == 'X' else 3} branch {branch}",
                f"t{k}",
                caller,
            )
        )
    frame = pl.DataFrame(rows, schema=["timestamp", "service", "level", "message", "trace_id", "caller"], orient="row")
    return logs_mod.mine_templates(frame)


def test_caller_stratified_comparison_ignores_a_change_of_caller_mix() -> None:
    before, after = _mix(T0, 150, 50), _mix(ALERT, 50, 150)
    plain = _zmax(logs_mod.template_shift(after, before))
    stratified = _zmax(logs_mod.template_shift(after, before, by="caller"))
    assert plain > 8 and stratified < 1  # the service does the same for each caller as before
    flow_plain = _zmax(logs_mod.transition_shift(after, before))
    flow_strat = _zmax(logs_mod.transition_shift(after, before, by="caller"))
    assert flow_plain > 8 and flow_strat < 1
    # A change inside every caller's requests still adds up across the strata.
    broken = after.with_columns(
        pl.when(pl.col("template").str.starts_with("S#2"))
        .then(pl.lit("S#9 gave up"))
        .otherwise(pl.col("template"))
        .alias("template")
    )
    assert _zmax(logs_mod.template_shift(broken, before, by="caller")) > 5


def test_flow_is_followed_per_span_not_across_requests_in_one_trace() -> None:
    def trace(start: datetime, second_request: bool) -> pl.DataFrame:
        rows = []
        for k in range(60):
            ts = start + timedelta(seconds=k)
            rows.append((ts, "s", "INFO", "S#1 get", f"t{k}", _attrs(f"a{k}")))
            rows.append((ts + timedelta(milliseconds=1), "s", "INFO", "S#2 got", f"t{k}", _attrs(f"a{k}")))
            if second_request:  # the same workflow now calls s a second time, in another span
                rows.append((ts + timedelta(milliseconds=2), "s", "INFO", "S#5 create", f"t{k}", _attrs(f"b{k}")))
        return logs_mod.with_span_id(logs_mod.mine_templates(pl.DataFrame(rows, schema=LOG_SCHEMA, orient="row")))

    before, after = trace(T0, False), trace(ALERT, True)
    per_span = logs_mod.transition_shift(after, before)
    assert _zmax(per_span.filter(pl.col("src").str.starts_with("S#2"))) < 1
    per_trace = logs_mod.transition_shift(after.drop("span_id"), before.drop("span_id"))
    assert _zmax(per_trace.filter(pl.col("src").str.starts_with("S#2"))) > 5


def test_entry_callers_walk_up_to_the_calling_service() -> None:
    spans, _ = _shop(T0, 3, faulty=False)
    callers = {r["span_id"]: r["caller"] for r in traces_mod.entry_callers(spans).iter_rows(named=True)}
    first = spans.filter(pl.col("trace_id") == spans.get_column("trace_id")[0])
    by_service = {r["service"]: r["span_id"] for r in first.iter_rows(named=True) if r["operation"] != "HTTP POST"}
    assert callers[by_service["front"]] == ""  # entered from outside
    assert callers[by_service["mid"]] == "front"
    assert callers[by_service["leaf"]] == "mid"
    assert len(callers) == spans.height


def _node_metrics() -> pl.DataFrame:
    rows = []
    for minute in range(90):
        ts = T0 + timedelta(minutes=minute)
        hot = ts >= ALERT
        wiggle = 0.01 * (minute % 3)
        for svc in ("victim", "bystander"):
            rows.append((ts, svc, "host_cpu_utilization", (0.92 if hot else 0.25) + wiggle))
            rows.append((ts, svc, "cpu_utilization", 0.2 + wiggle))
        rows.append((ts, "victim", "latency_p90_ms", (250.0 if hot else 40.0) + 10 * wiggle))
        rows.append((ts, "bystander", "latency_p90_ms", 40.0 + 10 * wiggle))
    return pl.DataFrame(rows, schema=["timestamp", "service", "metric", "value"], orient="row").with_columns(
        pl.col("timestamp").dt.cast_time_unit("us")
    )


def test_cpu_contention_from_a_noisy_neighbour() -> None:
    diagnosis = diagnose(
        Telemetry(metrics=_node_metrics()),
        None,
        alert_time=ALERT,
        window_start=ALERT,
        window_end=ALERT + timedelta(minutes=10),
    )
    top = diagnosis.candidates[0]
    assert (top.service, top.fault_type, top.indicator) == ("victim", "cpu_contention", "host_cpu_utilization")
    assert "bystander" not in [c.service for c in diagnosis.candidates]  # a hot node alone is not a fault
    assert any("no call graph" in text for text in diagnosis.limitations)


def test_bench_maps_the_datasets_fault_names() -> None:
    assert canonical_fault("cpu_consumed") == "cpu_consumption"
    assert canonical_fault("exception") == "exception"
    assert canonical_fault(None) is None


def _delayed(start: datetime, n: int, delay_ms: float) -> pl.DataFrame:
    """front → p → x and front → y; a delay at pod p slows the calls into p and the calls p makes."""
    rows: list[tuple] = []
    for i in range(n):
        ts = start + timedelta(seconds=5 * i)
        jitter = 0.1 * (i % 5)
        t = f"{i:032x}"

        def ms(v: float) -> timedelta:
            return timedelta(milliseconds=v)

        x_dur, y_dur = 3.0 + jitter, 4.0 + jitter
        c2 = x_dur + 1.0 + delay_ms  # p's client span around x: x's work plus the wire
        p_dur = c2 + 2.0
        c1 = p_dur + 1.0 + delay_ms
        rows += [
            (t, f"f{i}", None, "front", "GET /", ts, ts + ms(c1 + y_dur + 5)),
            (t, f"c1{i}", f"f{i}", "front", "call p", ts, ts + ms(c1)),
            (t, f"p{i}", f"c1{i}", "p", "/p", ts + ms(0.5 + delay_ms), ts + ms(0.5 + delay_ms + p_dur)),
            (t, f"c2{i}", f"p{i}", "p", "call x", ts + ms(1 + delay_ms), ts + ms(1 + delay_ms + c2)),
            (t, f"x{i}", f"c2{i}", "x", "/x", ts + ms(1.5 + 2 * delay_ms), ts + ms(1.5 + 2 * delay_ms + x_dur)),
            (t, f"c3{i}", f"f{i}", "front", "call y", ts + ms(c1), ts + ms(c1 + y_dur + 1)),
            (t, f"y{i}", f"c3{i}", "y", "/y", ts + ms(c1 + 0.5), ts + ms(c1 + 0.5 + y_dur)),
        ]
    return pl.DataFrame(rows, schema=SPAN_SCHEMA, orient="row").with_columns(
        pl.col("start_time").dt.cast_time_unit("us"), pl.col("end_time").dt.cast_time_unit("us")
    )


def test_network_delay_names_the_delayed_pod_not_its_callee() -> None:
    diagnosis = diagnose(
        Telemetry(traces=_delayed(ALERT, 120, 50.0)),
        Telemetry(traces=_delayed(T0, 120, 0.0)),
        alert_time=ALERT,
        window_start=ALERT,
        window_end=ALERT + timedelta(minutes=15),
    )
    ranked = [(c.service, c.fault_type) for c in diagnosis.candidates]
    assert ranked[0] == ("p", "network_delay"), ranked
    gaps = {f["service"]: f.get("gap_delta_ms", 0.0) for f in diagnosis.features}
    assert abs(gaps["p"] - 50.0) < 1.0 and abs(gaps["x"] - 50.0) < 1.0  # both edges slowed …
    assert "y" not in [s for s, _ in ranked]
    by = {c.service: c for c in diagnosis.candidates}
    assert "egress" in by["x"].reason  # … but x is reached only through the slow pod
    assert by["x"].confidence < by["p"].confidence / 1.5


def _rpc(start: datetime, n: int, faulty: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """front → ts-pricing; with `faulty`, ts-pricing answers half the calls with an error it does
    not log itself (its span status says so), and front logs the error it got back, naming it."""
    spans: list[tuple] = []
    logs: list[tuple] = []
    for i in range(n):
        ts = start + timedelta(seconds=4 * i)
        t = f"{'r' if faulty else 'q'}{i:031x}"
        f, c, p = f"f{t[-8:]}", f"c{t[-8:]}", f"p{t[-8:]}"
        spans.append((t, f, None, "front", "GET /cart", ts, ts + timedelta(milliseconds=20), "OK"))
        spans.append((t, c, f, "front", "grpc call", ts, ts + timedelta(milliseconds=10), "OK"))
        status = "ERROR" if faulty and i % 2 else "OK"
        begin, end = ts + timedelta(milliseconds=1), ts + timedelta(milliseconds=9)
        spans.append((t, p, c, "ts-pricing", "GetQuote", begin, end, status))
        logs.append((ts + timedelta(milliseconds=2), "ts-pricing", "INFO", f"quote for item {i}", t, _attrs(p)))
        if faulty and i % 2:
            msg = "failed to get quote: rpc error: code = Internal desc = ts-pricing: invalid currency"
            logs.append((ts + timedelta(milliseconds=12), "front", "ERROR", msg, t, _attrs(f)))
        else:
            logs.append((ts + timedelta(milliseconds=12), "front", "INFO", f"cart total {i % 9}", t, _attrs(f)))
    return _frames(spans, logs, status=True)


def test_callee_error_reported_by_its_caller_is_the_callees() -> None:
    base_spans, base_logs = _rpc(T0, 200, faulty=False)
    cur_spans, cur_logs = _rpc(ALERT, 200, faulty=True)
    diagnosis = diagnose(
        Telemetry(logs=cur_logs, traces=cur_spans),
        Telemetry(logs=base_logs, traces=base_spans),
        alert_time=ALERT,
        window_start=ALERT,
        window_end=ALERT + timedelta(minutes=20),
    )
    top = diagnosis.candidates[0]
    assert (top.service, top.fault_type) == ("ts-pricing", "return"), diagnosis.candidates[:3]
    features = {f["service"]: f for f in diagnosis.features}
    assert features["ts-pricing"]["new_error"] == 100 and features["front"]["new_error"] == 0
    assert features["ts-pricing"]["deepest"] == features["ts-pricing"]["erroring"] == 100
    assert "named_in_errors" not in features["ts-pricing"]  # it was reached: not an unreachable dependency


def test_memory_pressure_is_reported_as_memory() -> None:
    rows = []
    for minute in range(60):
        ts = T0 + timedelta(minutes=minute)
        hot = ts >= ALERT - timedelta(minutes=20)
        wiggle = 0.01 * (minute % 3)
        rows.append((ts, "leaky", "memory_utilization", (0.97 if hot else 0.45) + wiggle / 2))
        rows.append((ts, "leaky", "cpu_utilization", 0.3 + wiggle))
        rows.append((ts, "calm", "memory_utilization", 0.5 + wiggle))
    metrics = pl.DataFrame(rows, schema=["timestamp", "service", "metric", "value"], orient="row").with_columns(
        pl.col("timestamp").dt.cast_time_unit("us")
    )
    diagnosis = diagnose(
        Telemetry(metrics=metrics.filter(pl.col("timestamp") < ALERT)),
        None,
        alert_time=ALERT - timedelta(minutes=20),
        window_start=ALERT - timedelta(minutes=20),
        window_end=ALERT,
    )
    top = diagnosis.candidates[0]
    assert (top.service, top.fault_type, top.indicator) == ("leaky", "memory", "memory_utilization")
