"""Decision signals beyond the golden signals: a change just before the onset, and lost rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from warroom.sources import conventions as c

CHANGE_HORIZON = timedelta(hours=2)  # a change older than this is not "the recent deploy"


def change_lead_minutes(changes: pl.DataFrame | None, services: list[str], onset: datetime | None) -> float | None:
    """Minutes from the latest change to one of `services` to the onset (None: no such change)."""
    if changes is None or onset is None or not services:
        return None
    before = changes.filter(
        pl.col("service").is_in(services) & (pl.col("time") <= onset) & (pl.col("time") >= onset - CHANGE_HORIZON)
    )
    if before.height == 0:
        return None
    latest = before.get_column("time").max()
    assert isinstance(latest, datetime)
    return round((onset - latest).total_seconds() / 60.0, 2)


def row_count_drop(
    metrics: pl.DataFrame | None, baseline: pl.DataFrame | None, window_start: datetime, window_end: datetime
) -> float | None:
    """The largest fractional fall of a table's row count in the window below its level before
    (row counts of a healthy table only grow); None when no row counts are reported."""
    if metrics is None:
        return None
    rows = metrics.filter(pl.col("metric") == c.DB_TABLE_ROWS)
    if rows.height == 0:
        return None
    key = ["service", "instance"] if "instance" in rows.columns else ["service"]
    before_source = baseline.filter(pl.col("metric") == c.DB_TABLE_ROWS) if baseline is not None else None
    if before_source is None or before_source.height == 0:
        before_source = rows.filter(pl.col("timestamp") < window_start)
    if before_source.height == 0:
        return None
    before = before_source.group_by(key).agg(pl.col("value").max().alias("before"))
    during = (
        rows.filter(pl.col("timestamp").is_between(window_start, window_end))
        .group_by(key)
        .agg(pl.col("value").min().alias("during"))
    )
    joined = before.join(during, on=key).filter(pl.col("before") > 0)
    if joined.height == 0:
        return None
    drop = joined.select(((pl.col("before") - pl.col("during")) / pl.col("before")).max()).item()
    return round(max(0.0, float(drop)), 4)


def leaf_services(topology: dict[str, list[str]], traces: pl.DataFrame | None) -> set[str]:
    """Services that call nobody: databases, caches and external dependencies. From the topology
    when it is given, else from the spans (a service no span of another service has as parent)."""
    if topology:
        known = set(topology) | {d for deps in topology.values() for d in deps}
        return {s for s in known if not topology.get(s)}
    if traces is None:
        return set()
    parents = traces.select(pl.col("span_id"), pl.col("service").alias("parent_service"))
    calls = (
        traces.join(parents, left_on="parent_span_id", right_on="span_id", how="inner")
        .filter(pl.col("service") != pl.col("parent_service"))
        .select("parent_service")
        .unique()
    )
    callers = set(calls.get_column("parent_service").to_list())
    return set(traces.get_column("service").unique().to_list()) - callers


def database_services(metrics: pl.DataFrame | None) -> set[str]:
    """Services that report database-server metrics (as opposed to a client's pool metrics)."""
    if metrics is None:
        return set()
    server = metrics.filter(pl.col("metric").is_in([c.DB_CPU_UTILIZATION, c.DB_CONNECTIONS]))
    return set(server.get_column("service").unique().to_list())


def certificate_expired(metrics: pl.DataFrame | None, window_start: datetime, window_end: datetime) -> float | None:
    """1.0 when a serving certificate had expired in the window, 0.0 when all were valid."""
    if metrics is None:
        return None
    left = metrics.filter(
        (pl.col("metric") == c.TLS_CERT_EXPIRY_SECONDS) & pl.col("timestamp").is_between(window_start, window_end)
    ).get_column("value")
    if left.len() == 0:
        return None
    lowest = left.min()
    assert isinstance(lowest, int | float)
    return 1.0 if lowest < 0 else 0.0
