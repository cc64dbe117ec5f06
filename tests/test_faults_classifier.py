"""The symptom-based fault classifier on small synthetic frames: each fault's signals name the right
service and fault type, and a healthy system names none."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from warroom.analysis.code import _text_findings
from warroom.analysis.code_patterns import analyse_source
from warroom.analysis.fault_rules import FaultAnalysis, classify_faults
from warroom.sources.bundle import Telemetry

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)
N = 60  # 30 minutes per period
ONSET = T0 + 20 * STEP  # the fault starts a third into the window
GRAPH = {"gateway": {"checkout"}, "checkout": {"payment", "database"}, "payment": {"provider"}}

Shape = Callable[[int], float]


def flat(value: float) -> Shape:
    return lambda i: value


def after_onset(before: float, after: float) -> Shape:
    return lambda i: before if i < 20 else after


def series(start: datetime, spec: dict[tuple[str, str], Shape], instances: int = 2) -> pl.DataFrame:
    rows = []
    for (service, metric), shape in spec.items():
        for i in range(N):
            for k in range(instances):
                rows.append(
                    {
                        "timestamp": start + i * STEP,
                        "service": service,
                        "instance": f"{service}-{k}",
                        "metric": metric,
                        "value": float(shape(i)),
                    }
                )
    return pl.DataFrame(rows, schema_overrides={"timestamp": pl.Datetime("us", "UTC")})


def healthy() -> dict[tuple[str, str], Shape]:
    spec: dict[tuple[str, str], Shape] = {}
    for service in ("gateway", "checkout", "payment"):
        spec[(service, "cpu_utilization")] = flat(0.2)
        spec[(service, "memory_utilization")] = flat(0.45)
        spec[(service, "restarts")] = flat(0.0)
        spec[(service, "latency_p99_ms")] = flat(80.0)
        spec[(service, "error_rate")] = flat(0.001)
    spec[("provider", "latency_p99_ms")] = flat(150.0)
    spec[("provider", "error_rate")] = flat(0.0)
    spec[("auth", "auth_failures")] = flat(0.5)
    spec[("payment", "tls_cert_expiry_seconds")] = flat(3e6)
    return spec


def run(
    faulty: dict[tuple[str, str], Shape],
    *,
    changes: pl.DataFrame | None = None,
    traces: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    logs: pl.DataFrame | None = None,
) -> FaultAnalysis:
    base_start = T0 - timedelta(days=1)
    current = Telemetry(
        metrics=series(T0, {**healthy(), **faulty}),
        changes=changes,
        traces=traces[0] if traces else None,
        logs=logs,
    )
    baseline = Telemetry(metrics=series(base_start, healthy()), traces=traces[1] if traces else None)
    return classify_faults(current, baseline, T0, T0 + N * STEP, ONSET, GRAPH)


def top(result: FaultAnalysis) -> tuple[str, str]:
    best = result.top()
    assert best is not None, "no hypothesis"
    assert best.evidence, "a hypothesis without evidence"
    return best.service, best.fault_type


def test_healthy_system_names_no_fault() -> None:
    assert run({}).hypotheses == []


def test_memory_climbing_to_the_limit_with_restarts_is_a_memory_leak() -> None:
    result = run(
        {
            ("checkout", "memory_utilization"): lambda i: min(1.0, 0.45 + max(0, i - 10) * 0.02),
            ("checkout", "restarts"): lambda i: 1.0 if i in (45, 50) else 0.0,
            ("checkout", "latency_p99_ms"): after_onset(80, 900),
        }
    )
    assert top(result) == ("checkout", "memory_leak")


def test_one_service_cpu_at_its_limit_and_slow_is_cpu_saturation() -> None:
    result = run(
        {
            ("payment", "cpu_utilization"): after_onset(0.2, 0.99),
            ("payment", "latency_p99_ms"): after_onset(80, 4000),
            ("checkout", "cpu_utilization"): after_onset(0.2, 0.6),  # busier, but serving well
        }
    )
    assert top(result) == ("payment", "cpu_saturation")


def test_busy_cpu_that_still_serves_well_is_not_a_fault() -> None:
    assert run({("payment", "cpu_utilization"): after_onset(0.2, 0.97)}).hypotheses == []


def test_negative_certificate_lifetime_is_certificate_expiry() -> None:
    result = run(
        {
            ("payment", "tls_cert_expiry_seconds"): lambda i: 600.0 - i * 30.0,
            ("checkout", "error_rate"): after_onset(0.001, 0.5),
        }
    )
    assert top(result) == ("payment", "certificate_expiry")


def test_auth_failure_surge_is_credential_stuffing() -> None:
    result = run({("auth", "auth_failures"): after_onset(0.5, 40.0)})
    assert top(result) == ("auth", "credential_stuffing")


def test_external_leaf_that_answers_slowly_is_a_slow_dependency() -> None:
    result = run(
        {
            ("provider", "latency_p99_ms"): after_onset(150, 4000),
            ("payment", "latency_p99_ms"): after_onset(80, 4100),
            ("checkout", "latency_p99_ms"): after_onset(80, 4200),
        }
    )
    assert top(result) == ("provider", "slow_dependency")


def spans(start: datetime, delay_ms: Callable[[int], float], count: int = 40) -> pl.DataFrame:
    """checkout handles a request, calls payment then database; `delay_ms` is added on each side of
    the payment call (request and response transit)."""
    rows = []
    for i in range(count):
        t = start + i * STEP
        d = timedelta(milliseconds=delay_ms(i))
        pay_start = t + timedelta(milliseconds=2) + d
        pay_end = pay_start + timedelta(milliseconds=20)
        db_start = pay_end + d + timedelta(milliseconds=1)
        db_end = db_start + timedelta(milliseconds=3)
        for span, parent, service, s, e in (
            (f"r{i}", None, "checkout", t, db_end + timedelta(milliseconds=1)),
            (f"p{i}", f"r{i}", "payment", pay_start, pay_end),
            (f"d{i}", f"r{i}", "database", db_start, db_end),
        ):
            rows.append(
                {
                    "trace_id": f"t{i}",
                    "span_id": span,
                    "parent_span_id": parent,
                    "service": service,
                    "operation": "op",
                    "start_time": s,
                    "end_time": e,
                }
            )
    return pl.DataFrame(
        rows, schema_overrides={"start_time": pl.Datetime("us", "UTC"), "end_time": pl.Datetime("us", "UTC")}
    )


def test_extra_transit_on_one_edge_is_network_delay_of_the_callee() -> None:
    current = spans(T0, lambda i: 0.5 if i * STEP < ONSET - T0 else 300.0, count=N)
    reference = spans(T0 - timedelta(days=1), lambda i: 0.5, count=N)
    result = run({("checkout", "latency_p99_ms"): after_onset(80, 700)}, traces=(current, reference))
    assert top(result) == ("payment", "network_delay")


def change_log(*rows: tuple[str, datetime, str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"id": i, "time": t, "service": s, "kind": k, "description": d} for i, t, s, k, d in rows],
        schema_overrides={"time": pl.Datetime("us", "UTC")},
    )


def test_config_change_then_errors_of_that_service_is_bad_config() -> None:
    changes = change_log(
        ("CHG-1", ONSET - timedelta(hours=5), "payment", "deploy", "unrelated"),
        ("CHG-2", ONSET - timedelta(minutes=2), "checkout", "config", "timeout_ms: 2000 -> 2"),
    )
    result = run({("checkout", "error_rate"): after_onset(0.001, 0.4)}, changes=changes)
    assert top(result) == ("checkout", "bad_config")
    assert result.top().change_id == "CHG-2"  # type: ignore[union-attr]


def test_config_change_to_a_victim_of_its_callee_is_not_bad_config() -> None:
    changes = change_log(("CHG-2", ONSET - timedelta(minutes=2), "checkout", "feature_flag", "flag on"))
    result = run(
        {("checkout", "error_rate"): after_onset(0.001, 0.4), ("payment", "error_rate"): after_onset(0.001, 0.5)},
        changes=changes,
    )
    assert all(h.fault_type != "bad_config" for h in result.hypotheses)


def test_migration_then_rows_dropping_is_data_loss() -> None:
    changes = change_log(("CHG-9", ONSET - timedelta(minutes=1), "database", "migration", "drop old rows"))
    rows = series(T0, {("database", "db_table_rows"): after_onset(1_000_000, 10)}, instances=1)
    base_rows = series(T0 - timedelta(days=1), {("database", "db_table_rows"): flat(1_000_000)}, instances=1)
    current = Telemetry(metrics=pl.concat([series(T0, healthy()), rows]), changes=changes)
    baseline = Telemetry(metrics=pl.concat([series(T0 - timedelta(days=1), healthy()), base_rows]))
    result = classify_faults(current, baseline, T0, T0 + N * STEP, ONSET, GRAPH)
    assert top(result) == ("database", "data_loss_migration")
    assert result.top().change_id == "CHG-9"  # type: ignore[union-attr]


def test_failed_logins_from_many_addresses_in_logs_count_as_credential_stuffing() -> None:
    lines = [
        {
            "timestamp": ONSET + timedelta(seconds=i),
            "service": "auth",
            "level": "WARN",
            "message": "Login: invalid credentials",
            "attributes": json.dumps({"client.ip": f"10.0.{i // 250}.{i % 250}", "http.status_code": 401}),
        }
        for i in range(300)
    ]
    logs = pl.DataFrame(lines, schema_overrides={"timestamp": pl.Datetime("us", "UTC")})
    result = run({}, logs=logs)
    assert top(result) == ("auth", "credential_stuffing")


@pytest.mark.parametrize(
    ("language", "source", "line"),
    [
        (
            "python",
            "_CACHE = {}\n\n\ndef handler(request):\n    _CACHE[request.path] = request.body\n    return 1\n",
            5,
        ),
        (
            "go",
            "package h\n\nvar cache = map[string][]byte{}\n\nfunc remember(k string, v []byte) {\n\tcache[k] = v\n}\n",
            6,
        ),
    ],
)
def test_process_wide_cache_that_only_grows_is_found(language: str, source: str, line: int) -> None:
    hits = [h for h in analyse_source(source.encode(), language) if h.kind == "unbounded_cache"]
    assert [h.line for h in hits] == [line]


def test_cache_with_eviction_is_not_a_leak() -> None:
    source = (
        "_CACHE = {}\n\n\ndef handler(request):\n    if len(_CACHE) > 100:\n        _CACHE.clear()\n"
        "    _CACHE[request.path] = request.body\n"
    )
    assert [h for h in analyse_source(source.encode(), "python") if h.kind == "unbounded_cache"] == []


def test_destructive_migration_statement_is_located() -> None:
    sql = "-- drop a column\nBEGIN;\nALTER TABLE payments DROP COLUMN provider_ref;\n"
    sql += "DELETE FROM old WHERE id < 5;\nCOMMIT;\n"
    found = _text_findings("db/migrations/0022.sql", sql, None)
    assert [(f.kind, f.line) for f in found] == [("destructive_migration", 3)]


def test_changed_setting_of_a_config_file_is_located() -> None:
    text = "timeouts_ms:\n  payment: 2000\nfeature_flags:\n  # reviewed\n  async_reservation: true\n"
    found = _text_findings("deploy/checkout.yaml", text, [(4, 5)])
    assert [(f.kind, f.line) for f in found] == [("config_change", 5)]
