"""Real components for the Prometheus tests: loopback HTTP services instrumented with
prometheus_client and with the OpenTelemetry SDK's Prometheus exporter, driven by a load thread,
and a real Prometheus (Debian's package) scraping them every second."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from warroom import parent_death

PROMETHEUS = shutil.which("prometheus")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def require_prometheus() -> str:
    if PROMETHEUS is None:
        pytest.skip("Prometheus is not installed (Debian package `prometheus`; `make test` installs it)")
    return PROMETHEUS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Shop:
    """A service answering /ok (200 after a short wait) and /fail (503), with its metrics."""

    name: str
    record: object  # callable(path, status, seconds)
    port: int
    metrics_port: int
    servers: list[object] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        started = time.perf_counter()
        status = 503 if self.path == "/fail" else 200
        time.sleep(0.002 if status == 200 else 0.02)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"unavailable")
        self.server.record(self.path, status, time.perf_counter() - started)  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        return


def _serve_http(record: object) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.record = record  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def _serve_metrics(registry: CollectorRegistry) -> tuple[object, int]:
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    return server, int(server.server_port)


def prometheus_client_service(name: str) -> Shop:
    """prometheus-fastapi-instrumentator's names: http_requests_total{handler,method,status},
    http_request_duration_seconds{handler,method}; and a pool gauge pair (OTel's current names)."""
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests", ["handler", "method", "status"], registry=registry)
    duration = Histogram(
        "http_request_duration_seconds", "Duration", ["handler", "method"], buckets=BUCKETS, registry=registry
    )
    used = Gauge("db_client_connection_count", "Pool", ["db_client_connection_state"], registry=registry)
    limit = Gauge("db_client_connection_max", "Pool size", registry=registry)
    limit.set(10)

    def record(path: str, status: int, seconds: float) -> None:
        requests.labels(path, "GET", str(status)).inc()
        duration.labels(path, "GET").observe(seconds)
        used.labels("used").set(3 + (status != 200))

    server, port = _serve_http(record)
    metrics, metrics_port = _serve_metrics(registry)
    return Shop(name, record, port, metrics_port, [server, metrics])


def opentelemetry_service(name: str) -> Shop:
    """The OpenTelemetry SDK recording http.server.request.duration (current conventions), read by
    its Prometheus exporter into a registry of its own."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    view = View(instrument_name="http.server.request.duration", aggregation=ExplicitBucketHistogramAggregation(BUCKETS))
    provider = MeterProvider(resource=Resource.create({"service.name": name}), metric_readers=[reader], views=[view])
    histogram = provider.get_meter("shop").create_histogram("http.server.request.duration", unit="s")

    def record(path: str, status: int, seconds: float) -> None:
        histogram.record(seconds, {"http.response.status_code": status, "http.route": path})

    server, port = _serve_http(record)
    metrics, metrics_port = _serve_metrics(registry)
    return Shop(name, record, port, metrics_port, [server, metrics, provider])


@dataclass
class Load:
    """What the load thread sent: requests per shop, and over how long."""

    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def rate(self, shop: str) -> float:
        return self.sent.get(shop, 0) / (time.monotonic() - self.started)

    def failing(self, shop: str) -> float:
        return self.failed.get(shop, 0) / max(self.sent.get(shop, 0), 1)


@contextmanager
def load(shops: list[Shop], failing: float, stop_after: float) -> Iterator[Load]:
    """Requests to every shop, one after the other (some tens per second), `failing` of them to /fail."""
    done = threading.Event()
    rng = random.Random(7)
    stats = Load()

    def run() -> None:
        with httpx.Client(timeout=2.0) as client:
            end = time.monotonic() + stop_after
            while not done.is_set() and time.monotonic() < end:
                for shop in shops:
                    path = "/fail" if rng.random() < failing else "/ok"
                    client.get(f"http://127.0.0.1:{shop.port}{path}")
                    stats.sent[shop.name] = stats.sent.get(shop.name, 0) + 1
                    stats.failed[shop.name] = stats.failed.get(shop.name, 0) + (path == "/fail")
                time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        done.set()
        thread.join(timeout=5)


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def prometheus(shops: list[Shop], folder: Path) -> Iterator[RunningPrometheus]:
    """A real Prometheus scraping every shop each second (job = the shop's name)."""
    binary = require_prometheus()
    port = free_port()
    jobs = "\n".join(
        f"  - job_name: {shop.name}\n    static_configs: [{{targets: ['127.0.0.1:{shop.metrics_port}']}}]"
        for shop in shops
    )
    config = folder / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n{jobs}\n")
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=log,
        preexec_fn=parent_death.arm,  # a killed test run leaves no Prometheus behind
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"Prometheus did not start: {(folder / 'prometheus.log').read_text()[-500:]}")
        while time.monotonic() < deadline:  # every target scraped once: the timeline starts now
            up = httpx.post(f"{url}/api/v1/query", data={"query": "up == 1"}).json()["data"]["result"]
            if len(up) == len(shops):
                break
            time.sleep(0.2)
        yield RunningPrometheus(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def stop(shops: list[Shop]) -> None:
    for shop in shops:
        for server in shop.servers:
            for method in ("shutdown", "server_close"):
                if hasattr(server, method):
                    getattr(server, method)()
