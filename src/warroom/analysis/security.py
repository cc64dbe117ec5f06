"""Security and data-integrity checks: authentication-failure spikes, unusual sources (many distinct
or never-seen client IPs), privilege changes, data-integrity signals (row counts dropping, corruption
or destructive-migration log lines). Verdict "cleared" or "escalate", each check with its evidence."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.attrs import attr, attr_float, has_key
from warroom.analysis.networks import AttackNetworks, attack_networks, listed
from warroom.incident import Evidence
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry

AUTH_FAILED = r"(?i)^(fail|failed|failure|denied|invalid|rejected|locked|error|unauthori[sz]ed)"
AUTH_LOG = (
    r"(?i)(authentication failed|login failed|invalid (password|credentials)|unauthori[sz]ed|"
    r"auth(entication)? failure)"
)
PRIVILEGE = (
    r"(?i)(\bgrant(ed)?\b|\brevoke\b|role (changed|granted|assigned|added)|privilege|escalat|"
    r"added to (group|role|admins?)|superuser|sudoers|permission(s)? (granted|changed|added)|"
    r"\biam\b|policy (change|attach))"
)
INTEGRITY = (
    r"(?i)(corrupt|checksum (mismatch|failed)|integrity (check|violation|error)|constraint violat|"
    r"foreign key violat|drop table|truncate|data loss|rows? (deleted|lost|missing)|missing rows|"
    r"invalid (byte|data)|null value in column|relation .* does not exist)"
)
DESTRUCTIVE_CHANGE = r"(?i)(drop|truncate|delete from|remove column|alter column .* type|backfill|rewrite)"
SPIKE_RATIO = 5.0
ROW_DROP = 0.1  # a table losing a tenth of its rows is not growth noise


class Check(BaseModel):
    name: str
    status: str  # "ok" | "alert" | "no data"
    detail: str
    evidence: Evidence | None = None


class SecurityAnalysis(BaseModel):
    verdict: str = "cleared"  # "cleared" | "escalate"
    categories: list[str] = Field(default_factory=list)  # credential_attack, privilege_change, data_integrity
    checks: list[Check] = Field(default_factory=list)
    confidence: float = 0.0
    auth_failure_ratio: float | None = None  # failures per minute in the window / baseline
    sources: dict[str, float] = Field(default_factory=dict)
    # The addresses behind the failures, most failures first: what a block or rate limit would name.
    top_sources: list[str] = Field(default_factory=list)
    # The blocks that hold the failing sources and no source the reference knew: what a block names.
    attack_networks: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)

    def as_context(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "categories": self.categories,
            "confidence": self.confidence,
            "auth_failure_ratio": self.auth_failure_ratio,
            "sources": self.sources,
            "top_sources": self.top_sources,
            "attack_networks": self.attack_networks,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks],
        }


TOP_SOURCES = 50  # enough for a block list an operator reviews; the counts say how many more there are


def _minutes(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() / 60.0, 1e-9)


def _auth_rows(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Authentication attempts in logs (auth.result present, a 401/403 status, or an auth-failure message),
    flagged failed or not. A cheap literal pre-filter keeps the regex passes to the few candidate rows."""
    candidate = (
        has_key("auth.result")
        | pl.col("attributes").str.contains(r"\b40[13]\b").fill_null(False)
        | pl.col("message").str.contains(AUTH_LOG).fill_null(False)
    )
    result = attr("auth.result")
    status = attr_float("http.status_code")
    # the service judged the credentials itself (it says so), not only passed a 401/403 on or
    # refused the client for another reason (a gateway's block list answers 403 without a login)
    judged = has_key("auth.result") | pl.col("message").str.contains(AUTH_LOG).fill_null(False)
    failed = (
        result.str.contains(AUTH_FAILED).fill_null(False)
        | status.is_in([401.0, 403.0]).fill_null(False)
        | pl.col("message").str.contains(AUTH_LOG).fill_null(False)
    )
    return frame.filter(candidate).select(
        "timestamp",
        "service",
        "message",
        failed.alias("failed"),
        judged.alias("judged"),
        attr("client.ip").alias("ip"),
        attr("user_id").alias("user"),
    )


def _client_addresses(frame: pl.DataFrame) -> set[str]:
    if "attributes" not in frame.columns:
        return set()
    seen = frame.lazy().filter(has_key("client.ip")).select(attr("client.ip").alias("ip")).drop_nulls().unique()
    return set(seen.collect()["ip"].to_list())


class FailedLogins(BaseModel):
    """Failed authentications in the window and in the reference, and where they came from."""

    failures: int
    reference_failures: int
    minutes: float
    reference_minutes: float | None  # None: no reference period
    distinct_ips: int
    reference_distinct_ips: int
    new_ip_share: float  # failures from addresses the reference never saw
    top_ip_share: float
    targeted_users: int
    service: str | None  # the service that judged most of them (else that logged most of them)
    top_sources: list[str] = Field(default_factory=list)  # addresses behind the failures, most first
    networks: AttackNetworks | None = None  # the blocks that hold them and no address the reference saw
    samples: list[str] = Field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.failures / max(self.minutes, 1e-9)

    @property
    def reference_rate(self) -> float | None:
        return self.reference_failures / self.reference_minutes if self.reference_minutes else None

    @property
    def ratio(self) -> float | None:
        base = self.reference_rate
        if base is None or self.reference_minutes is None:
            return None
        return self.rate / max(base, 1.0 / self.reference_minutes)


def failed_logins(
    logs: pl.DataFrame | None, baseline_logs: pl.DataFrame | None, start: datetime, end: datetime
) -> FailedLogins | None:
    """Failed logins (auth.result failed, HTTP 401/403, or an auth-failure message) in [start, end] and
    in the reference (`baseline_logs`, else the lines before `start`); None without request logs."""
    if logs is None or "attributes" not in logs.columns:
        return None
    window = _auth_rows(logs.lazy().filter(pl.col("timestamp").is_between(start, end))).collect()
    if baseline_logs is not None and baseline_logs.height and "attributes" in baseline_logs.columns:
        base_frame = baseline_logs
    else:
        base_frame = logs.filter(pl.col("timestamp") < start)
    base = _auth_rows(base_frame.lazy()).collect() if "attributes" in base_frame.columns else window.clear()
    base_span = (
        _minutes(base_frame["timestamp"].min(), base_frame["timestamp"].max())  # type: ignore[arg-type]
        if base_frame.height > 1
        else None
    )
    fails = window.filter(pl.col("failed"))
    base_fails = base.filter(pl.col("failed"))
    ips_now = fails["ip"].drop_nulls()
    ips_base = set(base["ip"].drop_nulls().unique().to_list())
    new_share = float(ips_now.filter(~ips_now.is_in(list(ips_base))).len() / ips_now.len()) if ips_now.len() else 0.0
    per_ip = fails.drop_nulls("ip").group_by("ip").len()
    counts = per_ip["len"].cast(pl.Float64)
    top_share = float(counts.max() or 0.0) / max(float(counts.sum()), 1.0) if per_ip.height else 0.0  # type: ignore[arg-type]
    # The service that authenticates: the one whose lines judge the credentials, when any does (past
    # a block, the edge's refusals of the same attackers outnumber the logins that still reach it).
    judging = fails.filter(pl.col("judged"))
    loudest = (
        (judging if judging.height else fails)
        .group_by("service")
        .len()
        .sort(["len", "service"], descending=[True, False])
    )
    ranked = per_ip.sort(["len", "ip"], descending=[True, False])
    return FailedLogins(
        failures=fails.height,
        reference_failures=base_fails.height,
        minutes=_minutes(start, end),
        reference_minutes=base_span,
        distinct_ips=ips_now.n_unique(),
        reference_distinct_ips=base_fails["ip"].drop_nulls().n_unique(),
        new_ip_share=round(new_share, 3),
        top_ip_share=round(top_share, 3),
        targeted_users=fails["user"].drop_nulls().n_unique(),
        service=str(loudest.item(0, "service")) if loudest.height else None,
        top_sources=[str(ip) for ip in ranked["ip"].head(TOP_SOURCES).to_list()],
        # against every client the reference's logs saw, not only those that logged in
        networks=attack_networks(
            dict(zip(per_ip["ip"].to_list(), per_ip["len"].to_list(), strict=True)), _client_addresses(base_frame)
        )
        if per_ip.height
        else None,
        samples=[
            f"{r['timestamp'].isoformat()} {r['service']} ip={r['ip']} user={r['user']} {str(r['message'])[:120]}"
            for r in fails.head(3).to_dicts()
        ],
    )


def _auth_check(
    logs: pl.DataFrame | None,
    baseline_logs: pl.DataFrame | None,
    start: datetime,
    end: datetime,
    result: SecurityAnalysis,
) -> tuple[bool, bool]:
    """(auth failures spiked, the sources look like an attack)."""
    found = failed_logins(logs, baseline_logs, start, end)
    if found is None:
        result.checks.append(Check(name="auth_failures", status="no data", detail="no request logs with attributes"))
        return False, False
    ratio = found.ratio
    result.auth_failure_ratio = None if ratio is None else round(ratio, 2)
    result.top_sources = found.top_sources
    result.attack_networks = found.networks.networks if found.networks else []
    spike = found.failures >= 20 and (ratio is None or ratio >= SPIKE_RATIO)
    distinct, base_distinct, new_share = found.distinct_ips, found.reference_distinct_ips, found.new_ip_share
    result.sources = {
        "failing_requests": float(found.failures),
        "distinct_ips": float(distinct),
        "baseline_distinct_ips": float(base_distinct),
        "new_ip_share": new_share,
        "top_ip_share": found.top_ip_share,
        "targeted_users": float(found.targeted_users),
    }
    # Credential stuffing: failures from many sources never seen before; brute force: one source dominates.
    stuffing = distinct >= 20 and new_share >= 0.5 and distinct >= 3 * max(base_distinct, 1)
    brute = distinct > 0 and found.top_ip_share >= 0.5 and found.failures >= 50 and new_share >= 0.5
    attack = spike and (stuffing or brute)
    base_rate = found.reference_rate
    values = {
        "failures_in_window": found.failures,
        "failures_per_min": round(found.rate, 2),
        "baseline_failures_per_min": None if base_rate is None else round(base_rate, 3),
        "ratio": result.auth_failure_ratio,
        "attack_networks": result.attack_networks,
        **result.sources,
    }
    evidence = Evidence(
        source="logs",
        query="request logs with attributes auth.result failed or http.status_code 401/403",
        start=start,
        end=end,
        values=values,
        samples=found.samples,
    )
    if attack:
        kind = "many new sources (credential stuffing)" if stuffing else "one dominant new source (brute force)"
        detail = f"auth failures ×{result.auth_failure_ratio or 'n/a'} vs baseline from {distinct} IPs: {kind}"
        if found.networks and found.networks.blocks:
            held = found.networks.covered / max(found.networks.failures, 1)
            shown = listed(found.networks.networks, 3)
            blocks = len(found.networks.blocks)
            detail += f"; {held:.0%} of the failures from {blocks} network(s) no known client uses ({shown})"
    elif spike:
        detail = (
            f"auth failures ×{result.auth_failure_ratio or 'n/a'} vs baseline, but from known sources "
            f"({new_share:.0%} new IPs): consistent with a service fault, not an attack"
        )
    else:
        detail = f"{found.failures} auth failures in the window, within the baseline rate"
    result.checks.append(
        Check(name="auth_failures", status="alert" if attack else "ok", detail=detail, evidence=evidence)
    )
    return spike, attack


def _auth_metric_check(
    metrics: pl.DataFrame | None, baseline: pl.DataFrame | None, start: datetime, end: datetime
) -> Check | None:
    if metrics is None:
        return None
    now = metrics.filter((pl.col("metric") == cv.AUTH_FAILURES) & pl.col("timestamp").is_between(start, end))
    if now.height == 0:
        return None
    src = baseline if baseline is not None and baseline.height else metrics.filter(pl.col("timestamp") < start)
    before = src.filter(pl.col("metric") == cv.AUTH_FAILURES)
    peak_raw = now.group_by("timestamp").agg(pl.col("value").sum())["value"].max()
    peak = float(peak_raw) if isinstance(peak_raw, int | float) else 0.0
    base_raw = before.group_by("timestamp").agg(pl.col("value").sum())["value"].median() if before.height else None
    base = float(base_raw) if isinstance(base_raw, int | float) else None
    ratio = peak / max(base, 1e-3) if base is not None else None
    return Check(
        name="auth_failure_metric",
        status="ok",
        detail=f"{cv.AUTH_FAILURES} peak {peak:.2f}/s vs baseline median {base if base is not None else 'n/a'}",
        evidence=Evidence(
            source="metrics",
            query=cv.AUTH_FAILURES,
            start=start,
            end=end,
            values={"peak_per_s": round(peak, 3), "baseline_median_per_s": base, "ratio": ratio},
        ),
    )


def _certificate_check(metrics: pl.DataFrame | None, start: datetime, end: datetime) -> Check | None:
    if metrics is None:
        return None
    certs = metrics.filter(
        (pl.col("metric") == cv.TLS_CERT_EXPIRY_SECONDS) & pl.col("timestamp").is_between(start, end)
    )
    if certs.height == 0:
        return None
    expired = certs.filter(pl.col("value") <= 0).group_by("service").agg(pl.col("timestamp").min().alias("at"))
    if expired.height == 0:
        return Check(name="certificates", status="ok", detail="no serving certificate expired in the window")
    services = ", ".join(sorted(expired["service"].to_list()))
    return Check(
        name="certificates",
        status="ok",
        detail=f"certificate expired on {services}: TLS/auth failures have an operational cause",
        evidence=Evidence(
            source="metrics",
            query=f"{cv.TLS_CERT_EXPIRY_SECONDS} <= 0",
            start=start,
            end=end,
            values={r["service"]: r["at"].isoformat() for r in expired.to_dicts()},
        ),
    )


def _privilege_check(current: Telemetry, start: datetime, end: datetime) -> Check:
    lookback = start - timedelta(hours=24)
    hits: list[str] = []
    values: dict[str, object] = {}
    if current.changes is not None:
        text = pl.concat_str(
            [
                pl.col("kind"),
                pl.col("description").fill_null("") if "description" in current.changes.columns else pl.lit(""),
            ],
            separator=" ",
        )
        found = current.changes.filter(pl.col("time").is_between(lookback, end) & text.str.contains(PRIVILEGE))
        values["privilege_changes"] = found.height
        hits += [
            f"{r['time'].isoformat()} change {r['id']} {r['service']} {r['kind']}" for r in found.head(3).to_dicts()
        ]
    if current.logs is not None:
        found_logs = current.logs.filter(
            pl.col("timestamp").is_between(start, end) & pl.col("message").str.contains(PRIVILEGE)
        )
        values["privilege_log_lines"] = found_logs.height
        hits += [
            f"{r['timestamp'].isoformat()} {r['service']} {r['message'][:160]}" for r in found_logs.head(3).to_dicts()
        ]
    if not values:
        return Check(name="privilege_changes", status="no data", detail="no changes or logs to inspect")
    alert = bool(hits)
    return Check(
        name="privilege_changes",
        status="alert" if alert else "ok",
        detail=f"{len(hits)} privilege-related change(s) or log line(s)" if alert else "no privilege change seen",
        evidence=Evidence(
            source="changes+logs",
            query=f"text ~ /{PRIVILEGE[:60]}…/",
            start=lookback,
            end=end,
            values=values,
            samples=hits[:5],
        ),
    )


def _integrity_check(current: Telemetry, baseline: Telemetry | None, start: datetime, end: datetime) -> Check:
    values: dict[str, object] = {}
    samples: list[str] = []
    alert = False
    metrics = current.metrics
    if metrics is not None:
        rows = metrics.filter(pl.col("metric") == cv.DB_TABLE_ROWS)
        if rows.height:
            key = "instance" if "instance" in rows.columns else "service"
            before_src = (
                baseline.metrics.filter(pl.col("metric") == cv.DB_TABLE_ROWS)
                if baseline is not None and baseline.metrics is not None
                else rows.filter(pl.col("timestamp") < start)
            )
            base = before_src.group_by(key).agg(pl.col("value").max().alias("before"))
            now = (
                rows.filter(pl.col("timestamp").is_between(start, end))
                .group_by(key)
                .agg(pl.col("value").min().alias("low"))
            )
            drops = (
                now.join(base, on=key)
                .with_columns(((pl.col("before") - pl.col("low")) / pl.col("before").clip(1.0)).alias("drop"))
                .filter(pl.col("drop") >= ROW_DROP)
            )
            values["tables_checked"] = now.height
            values["tables_losing_rows"] = {
                str(r[key]): {"before": r["before"], "low": r["low"], "drop": round(r["drop"], 3)}
                for r in drops.to_dicts()
            }
            alert = alert or drops.height > 0
    if current.logs is not None:
        lines = current.logs.filter(
            pl.col("timestamp").is_between(start, end) & pl.col("message").str.contains(INTEGRITY)
        )
        values["integrity_log_lines"] = lines.height
        samples += [
            f"{r['timestamp'].isoformat()} {r['service']} {r['message'][:160]}" for r in lines.head(3).to_dicts()
        ]
        alert = alert or lines.height >= 3
    if current.changes is not None and "description" in current.changes.columns:
        destructive = current.changes.filter(
            pl.col("time").is_between(start - timedelta(hours=6), end)
            & pl.col("kind").str.contains(r"(?i)migration|schema")
            & pl.col("description").fill_null("").str.contains(DESTRUCTIVE_CHANGE)
        )
        values["destructive_migrations"] = destructive["id"].to_list()
        samples += [
            f"change {r['id']} {r['service']}: {r['description'][:120]}" for r in destructive.head(2).to_dicts()
        ]
    if not values:
        return Check(name="data_integrity", status="no data", detail="no row counts, logs or migrations to inspect")
    tables = values.get("tables_losing_rows") or {}
    detail = (
        f"data-integrity signals: {len(tables)} table(s) losing rows, "  # type: ignore[arg-type]
        f"{values.get('integrity_log_lines', 0)} integrity log line(s)"
        if alert
        else "row counts steady and no integrity errors in the logs"
    )
    return Check(
        name="data_integrity",
        status="alert" if alert else "ok",
        detail=detail,
        evidence=Evidence(
            source="metrics+logs+changes",
            query=f"{cv.DB_TABLE_ROWS}; message ~ integrity pattern",
            start=start,
            end=end,
            values=values,
            samples=samples[:5],
        ),
    )


def analyse_security(
    current: Telemetry, baseline: Telemetry | None, start: datetime, end: datetime
) -> SecurityAnalysis:
    result = SecurityAnalysis()
    base = baseline or Telemetry()
    spike, attack = _auth_check(current.logs, base.logs, start, end, result)
    for extra in (
        _auth_metric_check(current.metrics, base.metrics, start, end),
        _certificate_check(current.metrics, start, end),
    ):
        if extra is not None:
            result.checks.append(extra)
    privilege = _privilege_check(current, start, end)
    integrity = _integrity_check(current, baseline, start, end)
    result.checks += [privilege, integrity]
    if attack:
        result.categories.append("credential_attack")
    if privilege.status == "alert":
        result.categories.append("privilege_change")
    if integrity.status == "alert":
        result.categories.append("data_integrity")
    looked = [c for c in result.checks if c.status != "no data"]
    result.limitations = [f"{c.name}: {c.detail}" for c in result.checks if c.status == "no data"]
    if result.categories:
        result.verdict = "escalate"
        result.confidence = round(min(0.95, 0.6 + 0.15 * len(result.categories)), 2)
    else:
        result.verdict = "cleared"
        # Clearing is only as strong as what could be checked.
        result.confidence = round(0.3 + 0.6 * len(looked) / max(len(result.checks), 1), 2)
    if spike and not attack:
        result.sources["spike_without_attack_pattern"] = 1.0
    return result
