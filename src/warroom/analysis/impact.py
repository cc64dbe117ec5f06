"""Customer impact from request logs (attributes: user_id, session_id, http.status_code, path,
cart_value) and the manifest's business context: affected users and sessions, failed transactions,
abandoned carts, revenue impact. Columnar throughout."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.attrs import attr, attr_float, has_key
from warroom.incident import Evidence

TRANSACTION_PATH = r"(?i)(checkout|payment|/pay\b|order|purchase)"
BASELINE_ROWS = 200_000
REGION_KEYS = ("geo.country", "client.geo.country_iso_code", "region")


class ImpactAnalysis(BaseModel):
    start: datetime
    end: datetime
    source: str = "logs"
    scope_service: str | None = None
    requests: int = 0
    failed_requests: int = 0
    failure_ratio: float = 0.0
    baseline_failure_ratio: float | None = None
    excess_failed_requests: int = 0
    active_users: int = 0
    affected_users: int = 0
    active_sessions: int = 0
    affected_sessions: int = 0
    transactions: int = 0
    failed_transactions: int = 0
    abandoned_carts: int = 0
    abandoned_cart_value: float = 0.0
    failed_transaction_value: float = 0.0
    revenue_per_minute: float | None = None
    currency: str = "USD"
    duration_minutes: float = 0.0
    revenue_at_risk: float | None = None  # revenue per minute × duration
    estimated_revenue_loss: float | None = None  # at risk × excess transaction failure share
    by_region: dict[str, int] = Field(default_factory=dict)
    by_path: dict[str, int] = Field(default_factory=dict)
    scope: str = ""  # "all users" | "a subset of users"
    confidence: float = 0.0
    evidence: list[Evidence] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)

    def as_context(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"evidence"})


def _requests(frame: pl.LazyFrame, *, full: bool) -> pl.LazyFrame:
    """Request-log rows with the attribute columns an analysis needs; each key costs one regex pass,
    so the baseline (full=False) extracts only what the failure ratios need."""
    cols: list[pl.Expr] = [
        attr_float("http.status_code").alias("status"),
        attr("path").alias("path"),
        pl.when(has_key("cart_value")).then(attr_float("cart_value")).alias("cart_value"),
    ]
    if full:
        cols += [attr("user_id").alias("user"), attr("session_id").alias("session")]
    return frame.select("timestamp", "service", *cols)


def _failed() -> pl.Expr:
    return (pl.col("status") >= 500) | (pl.col("status") == 429)


def _txn() -> pl.Expr:
    return pl.col("cart_value").is_not_null() | pl.col("path").str.contains(TRANSACTION_PATH).fill_null(False)


def _choose_scope(requests: pl.LazyFrame, entry: str | None) -> str | None:
    """Count each user request once: at the entry service when known, else the service that logs the
    most requests (the front door), so a request logged by several hops is not counted twice."""
    services = requests.group_by("service").agg(pl.len().alias("n")).sort("n", descending=True).collect()
    if services.height == 0:
        return None
    names = set(services["service"].to_list())
    if entry and entry in names:
        return entry
    return str(services["service"][0])


def analyse_impact(
    logs: pl.DataFrame | None,
    baseline_logs: pl.DataFrame | None,
    start: datetime,
    end: datetime,
    *,
    revenue_per_minute: float | None = None,
    currency: str = "USD",
    entry_service: str | None = None,
) -> ImpactAnalysis:
    """Impact between `start` (the onset) and `end`."""
    result = ImpactAnalysis(start=start, end=end, revenue_per_minute=revenue_per_minute, currency=currency)
    result.duration_minutes = round(max((end - start).total_seconds(), 0.0) / 60.0, 2)
    if revenue_per_minute is not None:
        result.revenue_at_risk = round(revenue_per_minute * result.duration_minutes, 2)
    if logs is None or "attributes" not in logs.columns:
        result.limitations.append("no request logs with attributes: users, sessions and transactions not counted")
        return result
    raw = logs.lazy().filter(pl.col("timestamp").is_between(start, end) & has_key("http.status_code"))
    scope = _choose_scope(raw.select("service"), entry_service)
    if scope is None:
        result.limitations.append("no request logs (attributes with http.status_code) in the window")
        return result
    result.scope_service = scope
    scoped = raw.filter(pl.col("service") == scope)
    region_key = next(
        (k for k in REGION_KEYS if scoped.select(has_key(k).any()).collect().item()),
        None,
    )
    requests = (
        _requests(scoped, full=True)
        .with_columns((attr(region_key) if region_key else pl.lit(None, pl.String)).alias("region"))
        .collect()
    )
    requests = requests.with_columns(_failed().fill_null(False).alias("failed"), _txn().alias("txn"))
    totals = requests.select(
        pl.len().alias("requests"),
        pl.col("failed").sum().alias("failed"),
        pl.col("user").drop_nulls().n_unique().alias("users"),
        pl.col("user").filter(pl.col("failed")).drop_nulls().n_unique().alias("affected_users"),
        pl.col("session").drop_nulls().n_unique().alias("sessions"),
        pl.col("session").filter(pl.col("failed")).drop_nulls().n_unique().alias("affected_sessions"),
        pl.col("txn").sum().alias("txns"),
        (pl.col("txn") & pl.col("failed")).sum().alias("failed_txns"),
        pl.col("cart_value").filter(pl.col("txn") & pl.col("failed")).sum().alias("failed_value"),
    ).row(0, named=True)
    result.requests = int(totals["requests"])
    result.failed_requests = int(totals["failed"])
    result.failure_ratio = round(result.failed_requests / max(result.requests, 1), 4)
    result.active_users = int(totals["users"])
    result.affected_users = int(totals["affected_users"])
    result.active_sessions = int(totals["sessions"])
    result.affected_sessions = int(totals["affected_sessions"])
    result.transactions = int(totals["txns"])
    result.failed_transactions = int(totals["failed_txns"])
    result.failed_transaction_value = round(float(totals["failed_value"] or 0.0), 2)

    # A cart is abandoned when the session's last transaction attempt failed: the shopper gave up.
    sessions = (
        requests.filter(pl.col("txn") & pl.col("session").is_not_null())
        .sort("timestamp")
        .group_by("session")
        .agg(
            pl.col("failed").last().alias("last_failed"),
            pl.col("failed").any().alias("any_failed"),
            pl.col("cart_value").filter(pl.col("failed")).max().alias("value"),
        )
        .filter(pl.col("last_failed") & pl.col("any_failed"))
    )
    result.abandoned_carts = sessions.height
    result.abandoned_cart_value = round(float(sessions["value"].fill_null(0).sum()), 2)

    base_ratio: float | None = None
    base_txn_ratio: float | None = None
    base_src = (
        baseline_logs.lazy()
        if baseline_logs is not None and baseline_logs.height and "attributes" in baseline_logs.columns
        else logs.lazy().filter(pl.col("timestamp") < start)
    )
    # The most recent baseline requests estimate the normal failure ratio; more rows add cost, not accuracy.
    base_rows = base_src.filter((pl.col("service") == scope) & has_key("http.status_code")).tail(BASELINE_ROWS)
    base = _requests(base_rows, full=False)
    base_stats = (
        base.with_columns(_failed().fill_null(False).alias("failed"), _txn().alias("txn"))
        .select(
            pl.len().alias("n"),
            pl.col("failed").sum().alias("f"),
            pl.col("txn").sum().alias("t"),
            (pl.col("txn") & pl.col("failed")).sum().alias("tf"),
        )
        .collect()
        .row(0, named=True)
    )
    if base_stats["n"]:
        base_ratio = base_stats["f"] / base_stats["n"]
        result.baseline_failure_ratio = round(base_ratio, 4)
        base_txn_ratio = base_stats["tf"] / base_stats["t"] if base_stats["t"] else base_ratio
    else:
        result.limitations.append("no baseline request logs: failures not corrected for the normal error rate")
    result.excess_failed_requests = max(0, round(result.failed_requests - (base_ratio or 0.0) * result.requests))
    if revenue_per_minute is not None and result.transactions:
        txn_failure = result.failed_transactions / result.transactions
        excess_share = max(0.0, txn_failure - (base_txn_ratio or 0.0))
        result.estimated_revenue_loss = round(revenue_per_minute * result.duration_minutes * excess_share, 2)
    elif revenue_per_minute is None:
        result.limitations.append("no revenue_per_minute in the manifest: revenue impact from cart values only")

    region_counts = (
        requests.filter(pl.col("failed") & pl.col("region").is_not_null())
        .group_by("region")
        .len()
        .sort("len", descending=True)
    )
    result.by_region = {str(r): int(n) for r, n in region_counts.head(10).iter_rows()}
    path_counts = (
        requests.filter(pl.col("failed") & pl.col("path").is_not_null())
        .group_by("path")
        .len()
        .sort("len", descending=True)
    )
    result.by_path = {str(p): int(n) for p, n in path_counts.head(10).iter_rows()}
    share = result.affected_users / max(result.active_users, 1)
    result.scope = "all users" if share >= 0.8 else "a subset of users"
    # More observed requests and a clear excess over baseline make the numbers more trustworthy.
    result.confidence = round(
        min(0.95, 0.4 + 0.3 * min(result.requests / 1000.0, 1.0) + (0.25 if base_ratio is not None else 0.0)), 2
    )
    samples = requests.filter(pl.col("failed")).head(3)
    result.evidence.append(
        Evidence(
            source="logs",
            query=f"request logs (attributes.http.status_code) of {scope or 'all services'}; "
            "failed = status ≥ 500 or 429",
            start=start,
            end=end,
            values={
                "requests": result.requests,
                "failed_requests": result.failed_requests,
                "failure_ratio": result.failure_ratio,
                "baseline_failure_ratio": result.baseline_failure_ratio,
                "affected_users": result.affected_users,
                "affected_sessions": result.affected_sessions,
                "failed_transactions": result.failed_transactions,
                "abandoned_carts": result.abandoned_carts,
                "abandoned_cart_value": result.abandoned_cart_value,
            },
            samples=[
                f"{r['timestamp'].isoformat()} {r['service']} status={int(r['status'])} path={r['path']} "
                f"user={r['user']} session={r['session']}"
                for r in samples.to_dicts()
            ],
        )
    )
    if result.revenue_at_risk is not None:
        result.evidence.append(
            Evidence(
                source="incident",
                query="business.revenue_per_minute × incident duration × excess transaction failure share",
                start=start,
                end=end,
                values={
                    "revenue_per_minute": revenue_per_minute,
                    "duration_minutes": result.duration_minutes,
                    "revenue_at_risk": result.revenue_at_risk,
                    "estimated_revenue_loss": result.estimated_revenue_loss,
                    "currency": currency,
                },
            )
        )
    return result
