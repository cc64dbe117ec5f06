"""A four-service system's own exports, read as they are and run end to end.

frontend → checkout → payment, frontend → inventory, checkout → PostgreSQL. At ONSET checkout's
deploy v2.5.0 (deployed nine minutes before) starts leaking database connections: its pool
fills, requests wait and time out, the frontend's checkout calls fail. The folder holds what each
part writes — OTLP/JSON spans as a receiver spools them, JSON logs in four loggers' own shapes
(pino, structlog, python-json-logger, zap), PostgreSQL's jsonlog, a deploy log, the code as a
git bundle, metrics as a canonical v1 table (until the metrics readers land) — and the alert is
Alertmanager's webhook payload beside it. No incident.yaml, no conversion.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support_events import write_lines
from warroom.sources.bundle import load_bundle, validate_bundle

FIRED = datetime(2024, 5, 27, 15, 30, tzinfo=UTC)
ONSET = FIRED - timedelta(minutes=6)
START = FIRED - timedelta(minutes=50)
TICK = timedelta(seconds=30)
SERVICES = ("frontend", "checkout", "payment", "inventory")


def _ns(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1e9))


def _ticks() -> list[datetime]:
    return [START + TICK * i for i in range((FIRED + timedelta(minutes=4) - START) // TICK)]


def _attrs(**values: object) -> list[dict]:
    def value(v: object) -> dict:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}

    return [{"key": k.replace("_", "."), "value": value(v)} for k, v in values.items()]


class _Trace:
    """One request's spans, grouped by the service that emitted them."""

    def __init__(self, rng: random.Random, at: datetime) -> None:
        self.rng, self.at, self.trace_id = rng, at, f"{rng.getrandbits(128):032x}"
        self.by_service: dict[str, list[dict]] = {}

    def span(
        self, service: str, name: str, kind: int, parent: dict | None, start_ms: float, ms: float, **extra: object
    ) -> dict:
        error = bool(extra.pop("error", False))
        span = {
            "traceId": self.trace_id,
            "spanId": f"{self.rng.getrandbits(64):016x}",
            "parentSpanId": parent["spanId"] if parent else "",
            "name": name,
            "kind": kind,
            "startTimeUnixNano": _ns(self.at + timedelta(milliseconds=start_ms)),
            "endTimeUnixNano": _ns(self.at + timedelta(milliseconds=start_ms + ms)),
            "attributes": _attrs(**extra),
            "status": {"code": 2, "message": "pool exhausted"} if error else {"code": 0},
        }
        if error and service == "checkout" and kind == 2:
            span["events"] = [
                {
                    "timeUnixNano": span["endTimeUnixNano"],
                    "name": "exception",
                    "attributes": _attrs(exception_type="TimeoutError", exception_message="pool exhausted"),
                }
            ]
        self.by_service.setdefault(service, []).append(span)
        return span


def _request(rng: random.Random, at: datetime) -> _Trace:
    broken = at >= ONSET
    trace = _Trace(rng, at)
    wait = rng.uniform(1800, 2600) if broken else rng.uniform(20, 60)
    status = 500 if broken else 200
    root = trace.span("frontend", "GET /checkout", 2, None, 0, wait + 40, http_response_status_code=status,
                      http_route="/checkout", error=broken)  # fmt: skip
    call = trace.span("frontend", "POST", 3, root, 5, wait + 30, server_address="checkout", server_port=8080,
                      http_response_status_code=status, error=broken)  # fmt: skip
    server = trace.span("checkout", "POST /orders", 2, call, 6, wait + 28, http_response_status_code=status,
                        http_route="/orders", error=broken)  # fmt: skip
    if not broken:
        query = "SELECT id FROM orders WHERE user_id = $1"
        trace.span("checkout", "SELECT shop", 3, server, 8, 4, db_system="postgresql", db_namespace="shop",
                   db_query_text=query, server_address="db", server_port=5432)  # fmt: skip
        pay = trace.span("checkout", "POST", 3, server, 14, 20, server_address="payment", server_port=8080)
        trace.span("payment", "POST /charge", 2, pay, 15, 18, http_response_status_code=200, http_route="/charge")
    stock = trace.span("frontend", "GET", 3, root, 2, 8, server_address="inventory", server_port=8080)
    trace.span("inventory", "GET /stock", 2, stock, 3, 6, http_response_status_code=200, http_route="/stock")
    return trace


def _otlp_lines(traces: list[_Trace]) -> list[dict]:
    """One export request per batch of ten requests, as warroom's receiver spools them."""
    requests = []
    for first in range(0, len(traces), 10):
        batch: dict[str, list[dict]] = {}
        for trace in traces[first : first + 10]:
            for service, spans in trace.by_service.items():
                batch.setdefault(service, []).extend(spans)
        requests.append(
            {
                "resourceSpans": [
                    {
                        "resource": {"attributes": _attrs(service_name=s, service_instance_id=f"{s}-0")},
                        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation"}, "spans": spans}],
                    }
                    for s, spans in batch.items()
                ]
            }
        )
    return requests


def _logs(traces: list[_Trace]) -> dict[str, list[dict]]:
    """Each service's log lines in its logger's own shape."""
    lines: dict[str, list[dict]] = {name: [] for name in SERVICES}
    for trace in traces:
        at, broken, tid = trace.at, trace.at >= ONSET, trace.trace_id
        ms = int(at.timestamp() * 1000)
        lines["frontend"].append(  # pino
            {"level": 50 if broken else 30, "time": ms + 45, "pid": 7, "hostname": "frontend-0",
             "msg": "upstream checkout failed: 500" if broken else "GET /checkout 200", "trace_id": tid,
             "req": {"method": "GET", "url": "/checkout"}, "responseTime": 2400 if broken else 40}
        )  # fmt: skip
        checkout = {"timestamp": (at + timedelta(milliseconds=30)).isoformat().replace("+00:00", "Z"),
                    "level": "error" if broken else "info", "trace_id": tid, "logger": "checkout.orders"}  # fmt: skip
        if broken:
            checkout |= {"event": "timeout acquiring connection from pool",
                         "exception": "Traceback (most recent call last):\n  File \"orders.py\", line 88, in place\n"
                                      "TimeoutError: QueuePool limit of size 10 overflow 0 reached"}  # fmt: skip
        else:
            checkout |= {"event": "order placed", "order_id": f"o-{ms % 100000}"}
        lines["checkout"].append(checkout)  # structlog
        if not broken:
            lines["payment"].append(  # python-json-logger
                {"asctime": (at + timedelta(milliseconds=32)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3],
                 "levelname": "INFO", "name": "payment.api", "message": "charge accepted", "otelTraceID": tid,
                 "amount_cents": 4200}
            )  # fmt: skip
        lines["inventory"].append(  # zap
            {"level": "info", "ts": at.timestamp() + 0.004, "caller": "stock/handler.go:41", "msg": "stock read",
             "trace_id": tid, "sku": "sku-1"}
        )  # fmt: skip
    return lines


def _postgresql(ticks: list[datetime]) -> list[dict]:
    """PostgreSQL's jsonlog: slow statements of the leaking transactions, then refused connections."""
    lines = []
    for i, at in enumerate(ticks):
        stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        base = {"timestamp": stamp, "user": "app", "dbname": "shop", "pid": 4000 + i, "remote_host": "10.0.0.7",
                "backend_type": "client backend", "application_name": "checkout"}  # fmt: skip
        if at >= ONSET:
            refused = "remaining connection slots are reserved for roles with the SUPERUSER attribute"
            lines.append({**base, "error_severity": "FATAL", "state_code": "53300", "message": refused})
        elif i % 10 == 0:
            lines.append({**base, "error_severity": "LOG", "message": "checkpoint complete: wrote 12 buffers"})
    return lines


def _repo(root: Path, work: Path) -> str:
    """The services' code as a git bundle; the leaking commit's sha."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}  # fmt: skip

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=work, env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    work.mkdir()
    git("init", "-q", "-b", "main")
    orders = work / "checkout" / "orders.py"
    orders.parent.mkdir()
    orders.write_text(
        "def place(pool, order):\n    with pool.connect() as conn:\n        conn.execute(INSERT, order)\n"
    )
    git("add", ".")
    git("commit", "-qm", "checkout: place orders")
    orders.write_text(
        "def place(pool, order):\n    conn = pool.connect()\n    conn.execute(INSERT, order)\n"
        "    if order.discount:\n        return apply_discount(conn, order)\n    conn.close()\n"
    )
    git("commit", "-qam", "checkout: discount codes at checkout")
    sha = git("rev-parse", "HEAD")
    git("bundle", "create", str(root / "repo.bundle"), "--all")
    return sha


def _alert() -> dict:
    labels = {"alertname": "CheckoutLatencyHigh", "service": "checkout", "severity": "critical"}
    return {
        "version": "4", "groupKey": '{}:{alertname="CheckoutLatencyHigh"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "warroom", "groupLabels": {"alertname": "CheckoutLatencyHigh"},
        "commonLabels": labels, "commonAnnotations": {"summary": "checkout p99 above 2 s"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "checkout p99 above 2 s"},
                    "startsAt": FIRED.isoformat().replace("+00:00", "Z"), "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph", "fingerprint": "5e1f0c2a9b7d3e41"}],
    }  # fmt: skip


def _metrics(rng: random.Random, ticks: list[datetime]) -> str:
    rows = ["timestamp,service,metric,value"]
    for at in ticks:
        broken = at >= ONSET
        for service, metric, normal, faulty in (
            ("frontend", "latency_p99_ms", 90.0, 2600.0),
            ("frontend", "error_rate", 0.002, 0.4),
            ("frontend", "request_rate", 40.0, 38.0),
            ("checkout", "latency_p99_ms", 70.0, 2500.0),
            ("checkout", "error_rate", 0.001, 0.45),
            ("checkout", "request_rate", 20.0, 19.0),
            ("checkout", "db_pool_utilization", 0.3, 1.0),
            ("checkout", "cpu_utilization", 0.25, 0.22),
            ("payment", "latency_p99_ms", 40.0, 40.0),
            ("payment", "error_rate", 0.001, 0.001),
            ("inventory", "latency_p99_ms", 15.0, 15.0),
            ("inventory", "error_rate", 0.0, 0.0),
        ):
            value = (faulty if broken else normal) * (1 + rng.gauss(0, 0.04))
            rows.append(f"{at.isoformat()},{service},{metric},{max(value, 0.0):.5f}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("system")
    root, rng = tmp / "exports", random.Random(11)
    root.mkdir()
    ticks = _ticks()
    traces = [_request(rng, at) for at in ticks]
    write_lines(root / "traces-20240527T144000Z.jsonl", _otlp_lines(traces))
    for service, lines in _logs(traces).items():
        write_lines(root / f"{service}.jsonl", lines)
    write_lines(root / "postgresql.json", _postgresql(ticks))
    sha = _repo(root, tmp / "work")
    deployed = ONSET - timedelta(minutes=9)
    write_lines(
        root / "deploys.jsonl",
        [
            {"deployed_at": (FIRED - timedelta(hours=20)).isoformat(), "app": "inventory", "version": "3.1.0",
             "sha": "77aa01", "deployer": "ci", "message": "release 3.1.0"},
            {"deployed_at": deployed.isoformat(), "app": "checkout", "version": "2.5.0", "previous_version": "2.4.3",
             "sha": sha, "commits": [sha], "deployer": "ci", "message": "release 2.5.0: discount codes"},
        ],
    )  # fmt: skip
    (root / "metrics.csv").write_text(_metrics(rng, ticks), encoding="utf-8")
    alert = tmp / "alert.json"
    alert.write_text(json.dumps(_alert()), encoding="utf-8")
    return root, alert, sha


def test_every_export_is_read_as_what_it_is(exports: tuple[Path, Path, str]) -> None:
    root, alert, sha = exports
    read_as = {entry["file"]: entry["read_as"] for entry in validate_bundle(root, alert=alert)["files"]}
    assert read_as["traces-20240527T144000Z.jsonl"].startswith("OTLP/JSON traces")
    assert {read_as[f"{s}.jsonl"] for s in SERVICES} == {"JSON log lines"}
    assert read_as["postgresql.json"].startswith("PostgreSQL")
    assert read_as["deploys.jsonl"].startswith("deploy log")
    telemetry = load_bundle(root, alert=alert)
    assert telemetry.manifest.alert.service == "checkout" and telemetry.manifest.alert.fired_at == FIRED
    assert telemetry.logs is not None and telemetry.traces is not None and telemetry.changes is not None
    assert set(telemetry.logs.get_column("service").cast(str).unique()) == {*SERVICES, "postgresql"}
    # the database has no spans of its own: checkout's client spans are its calls into it
    assert "postgresql" in set(telemetry.traces.get_column("service").cast(str).unique())
    release = telemetry.changes.filter(telemetry.changes.get_column("version") == "2.5.0").to_dicts()
    assert release and release[0]["service"] == "checkout" and release[0]["commit"] == sha


def test_respond_on_the_exports_names_checkout(exports: tuple[Path, Path, str], tmp_path: Path) -> None:
    root, alert, _ = exports
    out = tmp_path / "out"
    env = {**os.environ, "WARROOM_DB": f"sqlite:///{tmp_path / 'store.db'}", "XDG_CACHE_HOME": str(tmp_path / "c")}
    done = subprocess.run(
        [sys.executable, "-m", "warroom", "respond", str(root), "--alert", str(alert), "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    candidates = diagnosis["candidates"] if isinstance(diagnosis, dict) else diagnosis
    assert candidates[0]["service"] == "checkout", candidates[:3]
