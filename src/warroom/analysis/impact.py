"""Customer impact at the entry service, computed once over a stated window by a stated method.

Requests and their outcomes come from the best modality that has them: request logs with an HTTP
status (one row per request), else the entry spans of traces, else the `error_rate` metric
(weighted by `request_rate` where it is reported). The same per-request outcomes give the failure
rate over the impact window, the baseline failure rate and, for the severity rule, the worst
sustained window (`worst_window`). Users, sessions and transactions need request logs; revenue
impact is one figure, by one method: the measured value of failed transactions where the logs carry
cart values, else an estimate (revenue per minute × impact duration × excess failure share of
transactions), labelled as which. Pure and columnar throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.attrs import attr, attr_float, has_key
from warroom.figures import Basis, Figure, Window
from warroom.incident import Evidence
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry

TRANSACTION_PATH = r"(?i)(checkout|payment|/pay\b|order|purchase)"
BASELINE_ROWS = 200_000
REGION_KEYS = ("geo.country", "client.geo.country_iso_code", "region")
ERROR_STATUSES = ("ERROR", "STATUS_CODE_ERROR", "2")
# "All users" when at least this share of the active users saw a failure.
ALL_USERS_SHARE = 0.8
FAILED_RULE = "failed = HTTP status ≥ 500 or 429"
TXN_RULE = "a cart value, or a checkout, payment or order path"


@dataclass(frozen=True)
class Outcomes:
    """Per-request outcomes at one service: columns t, requests (weight), failed (weight)."""

    service: str
    source: str  # logs | traces | metrics
    method: str  # how a request and a failure were told apart
    counted: bool  # whether `requests` counts real requests (metrics give rates only)
    frame: pl.DataFrame

    def between(self, start: datetime, end: datetime) -> pl.DataFrame:
        return self.frame.filter((pl.col("t") >= start) & (pl.col("t") <= end))


def _status_rows(logs: pl.LazyFrame) -> pl.LazyFrame:
    return logs.filter(has_key("http.status_code"))


def _failed() -> pl.Expr:
    return (pl.col("status") >= 500) | (pl.col("status") == 429)


def _front_door(names: pl.DataFrame, entry: str | None) -> str | None:
    """Count each user request once: at the entry service when it is present, else at the service
    that handles the most requests (the front door), never summed over hops."""
    if names.height == 0:
        return None
    present = set(names["service"].to_list())
    if entry and entry in present:
        return entry
    return str(names.sort("n", descending=True)["service"][0])


def _from_logs(logs: pl.DataFrame, entry: str | None) -> Outcomes | None:
    rows = _status_rows(logs.lazy())
    names = rows.group_by("service").agg(pl.len().alias("n")).collect()
    service = _front_door(names, entry)
    if service is None:
        return None
    frame = (
        rows.filter(pl.col("service") == service)
        .select(pl.col("timestamp").alias("t"), attr_float("http.status_code").alias("status"))
        .select("t", pl.lit(1.0).alias("requests"), _failed().fill_null(False).cast(pl.Float64).alias("failed"))
        .sort("t")
        .collect()
    )
    method = f"requests logged by {service} with an HTTP status; {FAILED_RULE}"
    return Outcomes(service, "logs", method, True, frame)


def _from_traces(traces: pl.DataFrame, entry: str | None) -> Outcomes | None:
    parents = traces.lazy().select(pl.col("span_id").alias("parent_span_id"), pl.col("service").alias("caller"))
    entries = (
        traces.lazy()
        .join(parents.unique("parent_span_id"), on="parent_span_id", how="left")
        .filter(pl.col("caller").is_null() | (pl.col("caller") != pl.col("service")))
    )
    names = entries.group_by("service").agg(pl.len().alias("n")).collect()
    service = _front_door(names, entry)
    if service is None:
        return None
    status = (
        pl.col("status").cast(pl.String).str.to_uppercase().is_in(list(ERROR_STATUSES)).fill_null(False)
        if "status" in traces.columns
        else pl.lit(False)
    )
    http = attr_float("http.status_code").ge(500).fill_null(False) if "attributes" in traces.columns else pl.lit(False)
    frame = (
        entries.filter(pl.col("service") == service)
        .select(
            pl.col("start_time").alias("t"),
            pl.lit(1.0).alias("requests"),
            (status | http).cast(pl.Float64).alias("failed"),
        )
        .sort("t")
        .collect()
    )
    method = f"entry spans of {service} (one per request it served); failed = span status error or HTTP ≥ 500"
    return Outcomes(service, "traces", method, True, frame)


def _from_metrics(metrics: pl.DataFrame, entry: str | None) -> Outcomes | None:
    rates = metrics.lazy().filter(pl.col("metric").is_in([cv.ERROR_RATE, cv.SUCCESS_RATE, cv.REQUEST_RATE]))
    per_time = (
        rates.group_by("service", "metric", "timestamp")
        .agg(pl.col("value").mean())
        .collect()
        .pivot(on="metric", index=["service", "timestamp"], values="value")
    )
    if cv.ERROR_RATE not in per_time.columns and cv.SUCCESS_RATE in per_time.columns:
        success = pl.col(cv.SUCCESS_RATE)
        per_time = per_time.with_columns(
            pl.when(success > 1.0).then(1.0 - success / 100.0).otherwise(1.0 - success).alias(cv.ERROR_RATE)
        )
    if cv.ERROR_RATE not in per_time.columns:
        return None
    with_errors = per_time.filter(pl.col(cv.ERROR_RATE).is_not_null())
    names = with_errors.group_by("service").agg(pl.len().alias("n"))
    service = _front_door(names, entry)
    if service is None:
        return None
    mine = with_errors.filter(pl.col("service") == service)
    weighted = cv.REQUEST_RATE in mine.columns and mine[cv.REQUEST_RATE].is_not_null().any()
    weight = pl.col(cv.REQUEST_RATE).fill_null(0.0) if weighted else pl.lit(1.0)
    frame = mine.select(
        pl.col("timestamp").alias("t"),
        weight.alias("requests"),
        (weight * pl.col(cv.ERROR_RATE).clip(0.0, 1.0)).alias("failed"),
    ).sort("t")
    method = (
        f"{service}'s error_rate samples weighted by its request_rate"
        if weighted
        else f"mean of {service}'s error_rate samples (no request_rate: every sample weighs the same)"
    )
    return Outcomes(service, "metrics", method, False, frame)


def request_outcomes(telemetry: Telemetry, entry: str | None) -> Outcomes | None:
    """Per-request outcomes at the entry service from the best modality that has them."""
    logs = telemetry.logs
    if logs is not None and "attributes" in logs.columns and logs.height:
        found = _from_logs(logs, entry)
        if found is not None and found.frame.height:
            return found
    if telemetry.traces is not None and telemetry.traces.height:
        found = _from_traces(telemetry.traces, entry)
        if found is not None and found.frame.height:
            return found
    if telemetry.metrics is not None and telemetry.metrics.height:
        found = _from_metrics(telemetry.metrics, entry)
        if found is not None and found.frame.height:
            return found
    return None


def failure_rate(outcomes: Outcomes, window: Window) -> Figure:
    """Failed ÷ all requests at the entry service over the window."""
    rows = outcomes.between(window.start, window.end)
    total = float(rows["requests"].sum()) if rows.height else 0.0
    failed = float(rows["failed"].sum()) if rows.height else 0.0
    value = failed / total if total > 0 else None
    return Figure(value=value, unit="ratio", method=f"failed ÷ all: {outcomes.method}", window=window)


def worst_window(outcomes: Outcomes, window: Window, minutes: float) -> Figure:
    """The highest failure rate over any `minutes`-long stretch inside the window (the whole window
    when it is shorter): a sustained level that one burst of failures cannot decide."""
    rows = outcomes.between(window.start, window.end)
    span = timedelta(minutes=minutes)
    if rows.height == 0:
        return Figure(value=None, unit="ratio", method=f"no requests at {outcomes.service} in the window")
    if window.end - window.start <= span:
        whole = failure_rate(outcomes, window)
        return whole.model_copy(update={"method": f"whole window (shorter than {minutes:g} min); {whole.method}"})
    period = f"{int(span.total_seconds())}s"
    rolled = (
        rows.sort("t")
        .rolling(index_column="t", period=period)
        .agg(pl.col("requests").sum(), pl.col("failed").sum())
        .filter((pl.col("t") >= window.start + span) & (pl.col("requests") > 0))
        .with_columns((pl.col("failed") / pl.col("requests")).alias("rate"))
    )
    if rolled.height == 0:
        return failure_rate(outcomes, window)
    best = rolled.sort(["rate", "t"], descending=[True, False]).row(0, named=True)
    worst = Window(start=best["t"] - span, end=best["t"], basis=f"the worst {minutes:g}-minute stretch")
    return Figure(
        value=float(best["rate"]),
        unit="ratio",
        method=f"failed ÷ all over the worst {minutes:g} minutes: {outcomes.method}",
        window=worst,
    )


class ImpactFacts(BaseModel):
    """The impact figures of one incident, each with its window and method."""

    service: str | None = None
    source: str = "none"
    window: Window
    requests: Figure
    failed_requests: Figure
    failure_rate: Figure
    baseline_failure_rate: Figure
    users_active: Figure
    users_affected: Figure
    sessions_affected: Figure
    transactions: Figure
    failed_transactions: Figure
    abandoned_carts: Figure
    revenue: Figure  # one method: measured value of failed transactions, else estimated
    scope: str = "not determined"
    by_path: dict[str, int] = Field(default_factory=dict)
    by_region: dict[str, int] = Field(default_factory=dict)
    confidence: float = 0.0
    evidence: list[Evidence] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)

    def as_context(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"evidence"})


def _unknown(unit: str, why: str, window: Window | None = None, noun: str = "") -> Figure:
    return Figure(value=None, unit=unit, method=why, window=window, noun=noun)


def _count(value: int, method: str, window: Window, noun: str) -> Figure:
    return Figure(value=float(value), unit="count", method=method, window=window, noun=noun)


PEOPLE = (
    "users_active",
    "users_affected",
    "sessions_affected",
    "transactions",
    "failed_transactions",
    "abandoned_carts",
)


@dataclass
class _People:
    """The figures only request logs give (ImpactFacts fields named in PEOPLE), and their detail."""

    figures: dict[str, Figure]
    failed_value: float | None
    by_path: dict[str, int]
    by_region: dict[str, int]
    samples: list[str]


def _people(logs: pl.DataFrame, service: str, window: Window) -> _People:
    """Users, sessions and transactions of the failed requests (request logs only)."""
    scoped = logs.lazy().filter(
        (pl.col("service") == service) & pl.col("timestamp").is_between(window.start, window.end)
    )
    scoped = _status_rows(scoped)
    region_key = next((k for k in REGION_KEYS if scoped.select(has_key(k).any()).collect().item()), None)
    rows = (
        scoped.select(
            "timestamp",
            attr_float("http.status_code").alias("status"),
            attr("path").alias("path"),
            pl.when(has_key("cart_value")).then(attr_float("cart_value")).alias("cart_value"),
            attr("user_id").alias("user"),
            attr("session_id").alias("session"),
            (attr(region_key) if region_key else pl.lit(None, pl.String)).alias("region"),
        )
        .with_columns(_failed().fill_null(False).alias("failed"))
        .with_columns(
            (pl.col("cart_value").is_not_null() | pl.col("path").str.contains(TRANSACTION_PATH).fill_null(False)).alias(
                "txn"
            )
        )
        .collect()
    )
    totals = rows.select(
        pl.col("user").drop_nulls().n_unique().alias("users"),
        pl.col("user").filter(pl.col("failed")).drop_nulls().n_unique().alias("affected_users"),
        pl.col("session").filter(pl.col("failed")).drop_nulls().n_unique().alias("affected_sessions"),
        pl.col("txn").sum().alias("txns"),
        (pl.col("txn") & pl.col("failed")).sum().alias("failed_txns"),
        pl.col("cart_value").filter(pl.col("txn") & pl.col("failed")).sum().alias("failed_value"),
        pl.col("cart_value").filter(pl.col("txn")).is_not_null().any().alias("has_values"),
    ).row(0, named=True)
    # A cart is abandoned when the session's last transaction attempt failed: the shopper gave up.
    abandoned = (
        rows.filter(pl.col("txn") & pl.col("session").is_not_null())
        .sort("timestamp")
        .group_by("session")
        .agg(pl.col("failed").last().alias("last_failed"))
        .filter(pl.col("last_failed"))
        .height
    )
    has_users = rows["user"].is_not_null().any()
    base = f"request logs of {service}"

    def counted(value: int, what: str, noun: str, ok: bool = True) -> Figure:
        if not ok:
            return _unknown("count", f"not counted: the {base} carry no {what}", window, noun)
        return _count(value, f"distinct {what} in the {base}", window, noun)

    by = rows.filter(pl.col("failed"))
    figures = dict(
        users_active=counted(int(totals["users"]), "user_id", "users", has_users),
        users_affected=counted(int(totals["affected_users"]), "user_id with a failed request", "users", has_users),
        sessions_affected=counted(
            int(totals["affected_sessions"]),
            "session_id with a failed request",
            "sessions",
            bool(rows["session"].is_not_null().any()),
        ),
        transactions=_count(
            int(totals["txns"]),
            f"transaction requests in the {base} ({TXN_RULE})",
            window,
            "transactions",
        ),
        failed_transactions=_count(
            int(totals["failed_txns"]),
            f"failed transaction requests in the {base}; {FAILED_RULE}",
            window,
            "transactions",
        ),
        abandoned_carts=_count(
            abandoned, f"sessions whose last transaction attempt failed, in the {base}", window, "carts"
        ),
    )
    return _People(
        figures=figures,
        failed_value=float(totals["failed_value"] or 0.0) if totals["has_values"] else None,
        by_path=_top(by, "path"),
        by_region=_top(by, "region"),
        samples=[
            f"{r['timestamp'].isoformat()} {service} status={int(r['status'])} path={r['path']} "
            f"user={r['user']} session={r['session']}"
            for r in by.head(3).to_dicts()
        ],
    )


def _top(rows: pl.DataFrame, column: str) -> dict[str, int]:
    counts = rows.filter(pl.col(column).is_not_null()).group_by(column).len().sort("len", descending=True).head(10)
    return {str(key): int(n) for key, n in counts.iter_rows()}


def _revenue(
    people: _People | None,
    window: Window,
    rate: Figure,
    baseline: Figure,
    revenue_per_minute: float | None,
    currency: str,
) -> Figure:
    """One revenue figure: measured where the logs carry transaction values, else estimated."""
    if people is not None and people.failed_value is not None:
        return Figure(
            value=round(people.failed_value, 2),
            unit=currency,
            method="sum of the cart values of failed transaction requests in the request logs",
            window=window,
            basis=Basis.MEASURED,
        )
    if revenue_per_minute is None:
        return _unknown(currency, "not estimated: no transaction values in the logs and no revenue_per_minute")
    if not rate.known:
        return _unknown(currency, "not estimated: the failure rate over the window is unknown")
    assert rate.value is not None
    excess = max(0.0, rate.value - (baseline.value or 0.0))
    minutes = window.minutes
    return Figure(
        value=round(revenue_per_minute * minutes * excess, 2),
        unit=currency,
        method=(
            f"estimate: revenue_per_minute {revenue_per_minute:,.0f} {currency} × {minutes:.3g} min × excess "
            f"failure share {excess * 100:.3g} % (failure rate {rate.value * 100:.3g} % − baseline "
            f"{(baseline.value or 0.0) * 100:.3g} %)"
        ),
        window=window,
        basis=Basis.ESTIMATED,
    )


def analyse_impact(
    telemetry: Telemetry,
    baseline: Telemetry | None,
    window: Window,
    *,
    entry_service: str | None = None,
    revenue_per_minute: float | None = None,
    currency: str = "USD",
) -> ImpactFacts:
    """The impact over `window` at the entry service (see the module doc for the methods)."""
    limitations: list[str] = []
    outcomes = request_outcomes(telemetry, entry_service)
    if outcomes is None:
        limitations.append("no request logs, entry spans or error_rate metric: requests and failures not counted")
    elif not outcomes.between(window.start, window.end).height:
        limitations.append(f"no requests at {outcomes.service} inside the impact window")
    base_outcomes = None
    if outcomes is not None:
        if baseline is not None:
            base_outcomes = request_outcomes(_tail(baseline), outcomes.service)
        if base_outcomes is None or base_outcomes.source != outcomes.source:
            before = outcomes.frame.filter(pl.col("t") < window.start)
            base_outcomes = Outcomes(outcomes.service, outcomes.source, outcomes.method, outcomes.counted, before)
    rate = failure_rate(outcomes, window) if outcomes else _unknown("ratio", "no request outcomes", window)
    if base_outcomes is not None and base_outcomes.frame.height:
        frame = base_outcomes.frame
        base_window = Window(start=frame["t"].min(), end=frame["t"].max(), basis="baseline")
        baseline_rate = failure_rate(base_outcomes, base_window)
    else:
        baseline_rate = _unknown("ratio", "no baseline requests")
        limitations.append("no baseline requests: failures not corrected for the normal error rate")
    rows = outcomes.between(window.start, window.end) if outcomes else pl.DataFrame()
    if outcomes is not None and outcomes.counted:
        requests = _count(int(rows["requests"].sum()), f"all {outcomes.method}", window, "requests")
        failed = _count(int(rows["failed"].sum()), outcomes.method, window, "requests")
    else:
        why = "not counted: the metrics give rates, not requests" if outcomes else "no request outcomes"
        requests = _unknown("count", why, window, "requests")
        failed = _unknown("count", why, window, "requests")
    people = None
    logs = telemetry.logs
    if outcomes is not None and outcomes.source == "logs" and logs is not None:
        people = _people(logs, outcomes.service, window)
    else:
        limitations.append("no request logs: users, sessions and transactions not counted")
    missing = "not counted: no request logs with user, session and transaction attributes"
    revenue = _revenue(people, window, rate, baseline_rate, revenue_per_minute, currency)
    scope = _scope(people)
    confidence = 0.0
    if outcomes is not None and rows.height:
        confidence = round(min(0.95, 0.4 + 0.3 * min(rows.height / 1000.0, 1.0) + 0.25 * baseline_rate.known), 2)
    facts = ImpactFacts(
        service=outcomes.service if outcomes else None,
        source=outcomes.source if outcomes else "none",
        window=window,
        requests=requests,
        failed_requests=failed,
        failure_rate=rate,
        baseline_failure_rate=baseline_rate,
        **(people.figures if people else {name: _unknown("count", missing, window) for name in PEOPLE}),
        revenue=revenue,
        scope=scope,
        by_path=people.by_path if people else {},
        by_region=people.by_region if people else {},
        confidence=confidence,
        limitations=limitations,
    )
    facts.evidence = _evidence(facts, people)
    return facts


def _tail(telemetry: Telemetry) -> Telemetry:
    """The most recent baseline rows: more rows add cost, not accuracy, to a normal error rate."""
    logs = telemetry.logs
    if logs is not None and logs.height > BASELINE_ROWS:
        logs = logs.sort("timestamp").tail(BASELINE_ROWS)
    return Telemetry(metrics=telemetry.metrics, logs=logs, traces=telemetry.traces)


def _scope(people: _People | None) -> str:
    """All users or a subset, from the share of active users who saw a failure."""
    if people is None:
        return "not determined (no request logs)"
    active_users, affected_users = people.figures["users_active"], people.figures["users_affected"]
    if not active_users.known or not affected_users.known:
        return "not determined (no user ids in the request logs)"
    active = int(active_users.value or 0)
    affected = int(affected_users.value or 0)
    if affected == 0:
        return "no user saw a failure"
    share = affected / max(active, 1)
    which = "all users" if share >= ALL_USERS_SHARE else "a subset of users"
    return f"{which}: {affected:,} of {active:,} active users saw a failure"


def _evidence(facts: ImpactFacts, people: _People | None) -> list[Evidence]:
    values: dict[str, object] = {
        "requests": facts.requests.value,
        "failed_requests": facts.failed_requests.value,
        "failure_rate": facts.failure_rate.value,
        "baseline_failure_rate": facts.baseline_failure_rate.value,
        "users_affected": facts.users_affected.value,
        "users_active": facts.users_active.value,
        "failed_transactions": facts.failed_transactions.value,
    }
    out = [
        Evidence(
            source=facts.source,
            query=facts.failure_rate.method,
            start=facts.window.start,
            end=facts.window.end,
            values={k: v for k, v in values.items() if v is not None},
            samples=people.samples if people else [],
        )
    ]
    if facts.revenue.known:
        out.append(
            Evidence(
                source="logs" if facts.revenue.basis == Basis.MEASURED else "incident",
                query=f"revenue impact ({facts.revenue.basis.value}): {facts.revenue.method}",
                start=facts.window.start,
                end=facts.window.end,
                values={"revenue": facts.revenue.value, "currency": facts.revenue.unit},
            )
        )
    return out
