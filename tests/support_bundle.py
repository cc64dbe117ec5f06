"""A small, valid incident bundle built in code: the checkout pool exhaustion in miniature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import yaml

FIRED = datetime(2026, 1, 15, 14, 23, tzinfo=UTC)
ONSET = FIRED - timedelta(minutes=6)


def write_bundle(root: Path, fmt: str = "parquet", *, with_logs: bool = True) -> Path:
    """Write a bundle: gateway → checkout → database; checkout's pool saturates at ONSET."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    times = [FIRED - timedelta(minutes=60) + timedelta(seconds=30 * i) for i in range(140)]
    rows = []
    for t in times:
        bad = t >= ONSET
        for service, metric, normal, broken in (
            ("gateway", "latency_p99_ms", 180.0, 2400.0),
            ("gateway", "error_rate", 0.002, 0.15),
            ("checkout", "latency_p99_ms", 120.0, 2200.0),
            ("checkout", "error_rate", 0.001, 0.2),
            ("checkout", "db_pool_utilization", 0.35, 1.0),
            ("checkout", "cpu_utilization", 0.3, 0.32),
            ("catalog", "latency_p99_ms", 60.0, 60.0),
            ("catalog", "error_rate", 0.001, 0.001),
        ):
            level = broken if bad else normal
            noise = 1 + rng.normal(0, 0.05)
            rows.append({"timestamp": t, "service": service, "metric": metric, "value": max(0.0, level * noise)})
    metrics = pl.DataFrame(rows)
    logs = pl.DataFrame(
        [
            {
                "timestamp": t,
                "service": "checkout",
                "level": "ERROR" if t >= ONSET else "INFO",
                "message": "timeout acquiring connection from pool" if t >= ONSET else "order placed",
                "trace_id": f"t{i}",
                "instance": f"checkout-{i % 3}",
            }
            for i, t in enumerate(times)
        ]
    )
    changes = pl.DataFrame(
        [
            {
                "id": "chg-1",
                "time": ONSET - timedelta(minutes=9),
                "service": "checkout",
                "kind": "deploy",
                "version": "v2.4.0",
                "commit": "abc123",
                "author": "dev-a",
                "description": "new discount handler",
            },
            {
                "id": "chg-0",
                "time": ONSET - timedelta(hours=3),
                "service": "catalog",
                "kind": "deploy",
                "version": "v1.9.1",
                "commit": "def456",
                "author": "dev-b",
                "description": "copy change",
            },
        ]
    )
    tables = {"metrics": metrics, "changes": changes}
    if with_logs:
        tables["logs"] = logs
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.write_parquet(root / f"{name}.parquet")
        elif fmt == "csv":
            frame.write_csv(root / f"{name}.csv")
        else:
            frame.write_ndjson(root / f"{name}.jsonl")
    manifest = {
        "version": 1,
        "title": "Checkout latency spike",
        "alert": {
            "name": "ApiLatencyHigh",
            "fired_at": FIRED.isoformat(),
            "service": "gateway",
            "summary": "API p99 latency > 2s (threshold: 500ms)",
        },
        "symptoms": ["API p99 latency > 2s", "checkout failures"],
        "window": {
            "start": (FIRED - timedelta(minutes=15)).isoformat(),
            "end": (FIRED + timedelta(minutes=10)).isoformat(),
        },
        "slo": {"latency_p99_ms": 500, "error_rate": 0.01},
        "business": {"revenue_per_minute": 10000, "critical_services": ["checkout"]},
        "objectives": {"rto_minutes": 30, "rpo_minutes": 5},
        "comms": {"cadence_minutes": 15},
    }
    (root / "incident.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root
