"""Write an incident bundle (format v1, docs/bundle-format.md) from generated frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from warroom.sources import conventions as cv

if TYPE_CHECKING:
    from warroom.scenarios.base import Plan, Scenario
    from warroom.scenarios.system import System

SLO_P99_MS = 500.0
SLO_ERROR_RATE = 0.01


def _iso(at_s: float) -> str:
    return datetime.fromtimestamp(round(at_s), tz=UTC).isoformat().replace("+00:00", "Z")


def write_table(path: Path, frame: pl.DataFrame) -> None:
    frame.write_parquet(path, compression="zstd")


def _alert_time(
    metrics: pl.LazyFrame, service: str, metric: str, threshold: float, after_s: float
) -> tuple[float, float]:
    """First time the series (worst instance) stayed above `threshold` for 3 minutes; its value."""
    series = (
        metrics.filter((pl.col("service") == service) & (pl.col("metric") == metric))
        .group_by("timestamp")
        .agg(pl.col("value").max())
        .sort("timestamp")
        .filter(pl.col("timestamp") >= datetime.fromtimestamp(after_s - 600, UTC))
        .collect()
    )
    times = series["timestamp"].to_list()
    values = series["value"].to_list()
    run_start: datetime | None = None
    for at, value in zip(times, values, strict=True):
        if value > threshold:
            run_start = run_start or at
            if (at - run_start).total_seconds() >= 180:
                return at.timestamp(), float(value)
        else:
            run_start = None
    return after_s + 240.0, float(values[-1]) if values else threshold


def _revenue_per_minute(baseline: Path, system: System) -> float:
    """Successful checkouts per minute on a normal day times their average basket, from the data."""
    gateway_rate = (
        pl.scan_parquet(baseline / "metrics.parquet")
        .filter((pl.col("service") == system.entry) & (pl.col("metric") == cv.REQUEST_RATE))
        .group_by("timestamp")
        .agg(pl.col("value").sum())
        .collect()["value"]
        .mean()
    )
    access = (
        pl.scan_parquet(baseline / "logs.parquet")
        .filter((pl.col("service") == system.entry) & pl.col("attributes").is_not_null())
        .select("attributes")
        .collect()
    )
    parsed = access.select(
        pl.col("attributes").str.json_path_match("$.path").alias("path"),
        pl.col("attributes").str.json_path_match("$['http.status_code']").cast(pl.Int64).alias("status"),
        pl.col("attributes").str.json_path_match("$.cart_value").cast(pl.Float64).alias("value"),
    ).drop_nulls("path")
    orders = parsed.filter((pl.col("path") == "/api/checkout") & (pl.col("status") < 400))
    if parsed.height == 0 or orders.height == 0 or not isinstance(gateway_rate, float):
        return 0.0
    share = orders.height / parsed.height
    basket = orders["value"].mean()
    if not isinstance(basket, float):
        return 0.0
    return round(float(gateway_rate) * share * 60.0 * basket, -2)


def write_manifest(
    out: Path,
    *,
    scenario: Scenario,
    plan: Plan,
    seed: int,
    system: System,
    shas: dict[str, str],
    window: tuple[float, float],
) -> None:
    """incident.yaml, topology.yaml and ground_truth.json, once the tables are on disk (the alert
    and the revenue per minute are read back from them)."""
    alert_service, alert_metric, threshold = plan.params.get("alert", (system.entry, cv.LATENCY_P99, SLO_P99_MS))
    fired_s, value = _alert_time(
        pl.scan_parquet(out / "metrics.parquet"), alert_service, alert_metric, threshold, plan.onset_s
    )
    unit = "ms" if alert_metric.endswith("_ms") else ""
    manifest: dict[str, Any] = {
        "version": 1,
        "title": plan.title,
        "system": "shop: e-commerce platform (gateway, checkout, payment, cart, catalog, inventory, auth)",
        "alert": {
            "name": plan.alert_name,
            "fired_at": _iso(fired_s),
            "service": alert_service,
            "summary": f"{alert_service} {alert_metric} {value:.4g}{unit} above {threshold:g}{unit} for 3 minutes",
            "labels": {"severity": "critical", "team": system.services[alert_service].team},
        },
        "symptoms": plan.symptoms,
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
        "slo": {"latency_p99_ms": SLO_P99_MS, "error_rate": SLO_ERROR_RATE, "availability": 0.999},
        "business": {
            "revenue_per_minute": _revenue_per_minute(out / "baseline", system),
            "currency": "USD",
            "critical_services": ["checkout", "payment", "auth"],
            "description": "Online shop; revenue is earned at checkout. Checkout failures are lost orders.",
        },
        "objectives": {"rto_minutes": 30, "rpo_minutes": 5},
        "comms": {"cadence_minutes": 15, "audiences": ["internal", "executive", "customer"]},
        "roles": {
            "incident_commander": "Sarah Chen",
            "technical_lead": "Mike Rodriguez",
            "communications_lead": "Lisa Wang",
            "scribe": "incident-documentation-specialist",
        },
        "entry_service": system.entry,
    }
    (out / "incident.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))

    topology = {
        "services": {
            name: {
                "depends_on": deps,
                "kind": system.services[name].kind,
                "language": system.services[name].language,
                "replicas": system.services[name].replicas,
                "team": system.services[name].team,
            }
            for name, deps in system.topology().items()
        }
    }
    (out / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))

    change_id = plan.change.id if plan.change is not None else None
    truth = {
        "scenario": scenario.name,
        "seed": seed,
        "service": plan.service,
        "fault_type": scenario.fault_type,
        "path": plan.params.get("path", scenario.path),
        # Where the symptom concentrates, when that is not the service at fault (e.g. the database
        # saturated by another service's new query).
        "bottleneck": plan.params.get("bottleneck", plan.service),
        "change_id": change_id,
        "code_location": (
            {"file": plan.code.file, "line": plan.code.line, "commit": shas["offending"]}
            if plan.code is not None and "offending" in shas
            else None
        ),
        "recovering_actions": scenario.recovering(plan),
        "security": scenario.security,
        "data_loss": scenario.data_loss,
        "onset": _iso(plan.onset_s),
        "fault_start": _iso(plan.fault_start_s),
        "variant": plan.variant,
        "action_effects": plan.actions,
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
