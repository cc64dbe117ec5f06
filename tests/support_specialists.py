"""In-memory incident bundles for the database, change, impact and security specialists' tests:
a small shop (gateway → checkout → database, catalog, auth) over two hours at 15 s, fault at ONSET."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from warroom.agents.base import AgentContext
from warroom.sources.canonical import Telemetry
from warroom.sources.contract import BundleSpec, Prerequisite, TelemetryRead
from warroom.sources.incident_telemetry import IncidentTelemetry, read_incident
from warroom.sources.manifest import Manifest

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ONSET = START + timedelta(minutes=80)
FIRED = ONSET + timedelta(minutes=6)
END = START + timedelta(minutes=120)
STEP = timedelta(seconds=15)


def _times() -> list[datetime]:
    return [START + STEP * i for i in range(int((END - START) / STEP))]


def metrics(fault: str, seed: int = 3) -> pl.DataFrame:
    """fault: pool_leak | missing_index | none."""
    rng = np.random.default_rng(seed)
    times = _times()
    n = len(times)
    after = np.array([t >= ONSET for t in times])
    ramp = np.clip(np.cumsum(after) / 40.0, 0, 1)  # ten minutes to drain the pool
    series: dict[tuple[str, str], np.ndarray] = {
        ("checkout", "db_pool_utilization"): 0.3 + 0.05 * rng.standard_normal(n),
        ("checkout", "db_pool_wait_ms"): 2 + rng.random(n),
        ("checkout", "db_pool_size"): np.full(n, 20.0),
        ("checkout", "db_query_time_ms"): 8 + rng.random(n),
        ("checkout", "error_rate"): 0.002 + 0.001 * rng.random(n),
        ("checkout", "latency_p99_ms"): 150 + 10 * rng.random(n),
        ("catalog", "db_pool_utilization"): 0.2 + 0.03 * rng.random(n),
        ("catalog", "latency_p99_ms"): 60 + 5 * rng.random(n),
        ("database", "db_cpu_utilization"): 0.25 + 0.03 * rng.random(n),
        ("database", "db_long_running_queries"): rng.poisson(0.2, n).astype(float),
        ("database", "db_connections"): 40 + rng.random(n),
    }
    if fault == "pool_leak":
        series[("checkout", "db_pool_utilization")] = np.where(
            after, 0.3 + 0.7 * ramp, series[("checkout", "db_pool_utilization")]
        )
        series[("checkout", "db_pool_wait_ms")] = np.where(
            after, 2 + 4000 * ramp, series[("checkout", "db_pool_wait_ms")]
        )
        series[("checkout", "error_rate")] = np.where(after, 0.002 + 0.2 * ramp, series[("checkout", "error_rate")])
    elif fault == "missing_index":
        series[("database", "db_cpu_utilization")] = np.where(
            after, 0.95 + 0.02 * rng.random(n), series[("database", "db_cpu_utilization")]
        )
        series[("database", "db_long_running_queries")] = np.where(
            after, 12 + rng.poisson(2, n), series[("database", "db_long_running_queries")]
        )
        series[("checkout", "db_query_time_ms")] = np.where(
            after, 4000 + 100 * rng.random(n), series[("checkout", "db_query_time_ms")]
        )
        series[("checkout", "db_pool_utilization")] = np.where(
            after, 0.3 + 0.7 * ramp, series[("checkout", "db_pool_utilization")]
        )
    frames = [
        pl.DataFrame({"timestamp": times, "service": service, "metric": metric, "value": values.astype(float)})
        for (service, metric), values in series.items()
    ]
    return pl.concat(frames).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))


def request_logs(fault: str, seed: int = 5, attack: bool = False) -> pl.DataFrame:
    """Gateway request logs (one per user request) and checkout pool errors."""
    rng = np.random.default_rng(seed)
    rows = []
    times = _times()
    for i, t in enumerate(times):
        for j in range(4):
            user = f"u{rng.integers(0, 300)}"
            session = f"s-{user}-{(i // 80)}"
            failing = t >= ONSET and fault != "none" and rng.random() < 0.4
            path = "/api/checkout" if j == 0 else "/api/catalog"
            status = 503 if failing and path == "/api/checkout" else 200
            attrs = {
                "user_id": user,
                "session_id": session,
                "http.status_code": status,
                "client.ip": f"10.1.{rng.integers(0, 4)}.{rng.integers(1, 20)}",
                "path": path,
            }
            if path == "/api/checkout":
                attrs["cart_value"] = round(float(rng.uniform(20, 200)), 2)
            rows.append(
                {
                    "timestamp": t + timedelta(milliseconds=int(j * 100)),
                    "service": "gateway",
                    "level": "ERROR" if status >= 500 else "INFO",
                    "message": f"{path} {status}",
                    "attributes": json.dumps(attrs),
                }
            )
        if fault == "pool_leak" and t >= ONSET + timedelta(minutes=3):
            rows.append(
                {
                    "timestamp": t,
                    "service": "checkout",
                    "level": "ERROR",
                    "message": "timeout acquiring connection from pool after 5000ms",
                    "attributes": None,
                }
            )
        if fault == "missing_index" and t >= ONSET:
            rows.append(
                {
                    "timestamp": t,
                    "service": "database",
                    "level": "WARN",
                    "message": "slow query duration=4123 ms: Seq Scan on orders (rows examined 2400000)",
                    "attributes": None,
                }
            )
        # A steady trickle of ordinary login failures from the usual clients.
        if i % 20 == 0:
            rows.append(_auth_row(t, f"10.1.0.{i % 7}", f"u{i % 50}"))
        if attack and t >= ONSET:
            for k in range(6):
                rows.append(_auth_row(t, f"203.0.{rng.integers(0, 255)}.{rng.integers(1, 255)}", f"victim{i * 6 + k}"))
    return pl.DataFrame(rows, schema_overrides={"attributes": pl.String}).with_columns(
        pl.col("timestamp").dt.cast_time_unit("us")
    )


def _auth_row(t: datetime, ip: str, user: str) -> dict[str, object]:
    attrs = {"user_id": user, "client.ip": ip, "auth.result": "failure", "http.status_code": 401, "path": "/login"}
    return {
        "timestamp": t,
        "service": "auth",
        "level": "WARN",
        "message": "login failed",
        "attributes": json.dumps(attrs),
    }


def changes(commit_good: str = "a" * 40, commit_bad: str = "b" * 40) -> pl.DataFrame:
    rows = [
        ("chg-1", START - timedelta(hours=5), "checkout", "deploy", "v1.4.0", commit_good, "release bot", "routine"),
        ("chg-2", ONSET - timedelta(minutes=14), "checkout", "deploy", "v1.5.0", commit_bad, "release bot", "coupons"),
        ("chg-3", ONSET - timedelta(minutes=4), "catalog", "deploy", "v3.1.0", "c" * 40, "release bot", "copy"),
        ("chg-4", ONSET - timedelta(hours=2), "gateway", "config", None, None, "ops", "raise rate limit"),
        ("chg-5", ONSET + timedelta(minutes=20), "checkout", "config", None, None, "ops", "pool size 40"),
    ]
    return pl.DataFrame(
        rows,
        schema=["id", "time", "service", "kind", "version", "commit", "author", "description"],
        orient="row",
    ).with_columns(pl.col("time").dt.cast_time_unit("us"))


def manifest() -> Manifest:
    return Manifest.model_validate(
        {
            "title": "Checkout latency and errors",
            "alert": {"name": "CheckoutErrors", "fired_at": FIRED.isoformat(), "service": "gateway"},
            "window": {"start": (ONSET - timedelta(minutes=10)).isoformat(), "end": END.isoformat()},
            "slo": {"latency_p99_ms": 500, "error_rate": 0.01},
            "business": {"revenue_per_minute": 10000, "currency": "USD"},
            "entry_service": "gateway",
        }
    )


def bundle(
    fault: str, *, repo: Path | None = None, attack: bool = False, change_frame: pl.DataFrame | None = None
) -> IncidentTelemetry:
    telemetry = Telemetry(
        metrics=metrics(fault),
        logs=request_logs(fault, attack=attack),
        changes=change_frame if change_frame is not None else changes(),
    )
    topology = {"gateway": ["checkout", "catalog", "auth"], "checkout": ["database"], "catalog": ["database"]}
    return read_incident(InMemorySource(manifest(), telemetry, topology, repo))


class InMemorySource:
    """A recorded incident held in memory (the specialists' tests build their telemetry in code)."""

    def __init__(
        self, manifest: Manifest, telemetry: Telemetry, topology: dict[str, list[str]], repo: Path | None
    ) -> None:
        self._manifest, self._telemetry, self._topology, self._repo = manifest, telemetry, topology, repo

    def spec(self) -> BundleSpec:
        return BundleSpec(path="/nonexistent")

    def describe(self) -> str:
        return f"in-memory incident {id(self)}"

    def prerequisites(self) -> list[Prerequisite]:
        return []

    def manifest(self) -> Manifest:
        return self._manifest

    def incident(self) -> TelemetryRead:
        return TelemetryRead(self._telemetry)

    def baseline(self) -> TelemetryRead | None:
        return None

    def after(self, action_kind: str, since: datetime) -> TelemetryRead | None:
        return None

    def recorded_actions(self) -> list[str]:
        return []

    def topology(self) -> dict[str, list[str]]:
        return self._topology

    def repository(self) -> Path | None:
        return self._repo


def context(b: IncidentTelemetry, **values: object) -> AgentContext:
    return AgentContext(telemetry=b, incident_id="INC-2026-001", context=dict(values))
