"""Recovery checks for the mitigation loop: the telemetry after an action, and live probes (HTTP, command).

A verifier answers "has the system recovered?" after an action. The telemetry verifier reads what
the system did after the action through the incident's source — a live source re-queries from the
moment the action took effect, a recorded incident reads what was recorded after it — and a
recovery analysis compares it with the SLO or the baseline. Probes add an outside check. The default analysis here is a
plain golden-signal comparison; the recovery-validation specialist can plug in its statistical test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import polars as pl

from warroom.actions.config import Patience
from warroom.actions.contract import Check
from warroom.actions.http import Probe, send
from warroom.actions.loop import Verifier
from warroom.actions.shell import child_env, run_argv
from warroom.incident import ActionOutcome, RecommendedAction
from warroom.sources import conventions as conv
from warroom.sources.canonical import Telemetry
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.values import parse_time


def http_probe(probe: Probe, env: dict[str, str] | None = None) -> Verifier:
    """Recovered when the endpoint answers with an expected status (and body)."""

    def check(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        result = send(probe, attempts=1, backoff_s=0, backoff_max_s=0, env=dict(env or os.environ))
        return Check(ok=result.ok, detail=f"probe {result.detail}", data={"probe": result.data})

    return check


def command_probe(argv: list[str], timeout_s: float = 30.0, env_allow: Sequence[str] = ()) -> Verifier:
    """Recovered when the command exits 0."""

    def check(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        result = run_argv(argv, timeout_s=timeout_s, env=child_env(os.environ, env_allow, {}))
        return Check(ok=result.ok, detail=f"probe {result.detail}", data={"probe": result.data})

    return check


def all_of(*verifiers: Verifier) -> Verifier:
    """Recovered when every criterion holds; unknown when none fails but one cannot tell."""

    def check(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        results = [verifier(action, outcomes) for verifier in verifiers]
        failed = [r for r in results if r.ok is False]
        unknown = [r for r in results if r.ok is None]
        ok: bool | None = False if failed else (None if unknown else True)
        detail = "; ".join(r.detail for r in results)
        return Check(ok=ok, detail=detail, data={"checks": [r.model_dump() for r in results]})

    return check


# The hook the recovery-validation specialist plugs into: (telemetry, action kind, after telemetry) → Check.
RecoveryAnalysis = Callable[[IncidentTelemetry, str, Telemetry], Check]


def _taken_at(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> datetime | None:
    """When the action took effect: the time its latest outcome recorded."""
    for outcome in reversed(outcomes):
        if outcome.action_id == action.id:
            at = parse_time(outcome.data.get("at"))
            if at is not None:
                return at
    return None


def telemetry_verifier(telemetry: IncidentTelemetry, analysis: RecoveryAnalysis | None = None) -> Verifier:
    """Recovery read through the incident's source after the action — re-queried from a live source,
    the recorded post-action telemetry of a recorded incident — and judged by `analysis`."""
    judge = analysis or golden_signal_recovery

    def check(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        after = telemetry.after(action.kind, _taken_at(action, outcomes))
        if after is None:
            recorded = ", ".join(telemetry.recorded_actions() or []) or "none"
            return Check(ok=None, detail=f"no telemetry observed after '{action.kind}' (recorded: {recorded})")
        return judge(telemetry, action.kind, after)

    return check


# Each re-query of a waiting recovery check, as it happens: (action, the real time, its answer).
Rechecked = Callable[[RecommendedAction, datetime, Check], None]


def _wall() -> datetime:
    return datetime.now(UTC)


def waiting_verifier(
    verifier: Verifier,
    patience: Patience,
    forget: Callable[[str], None],
    on_check: Rechecked,
    *,
    clock: Callable[[], datetime] = _wall,
    sleep: Callable[[float], None] = time.sleep,
) -> Verifier:
    """A live recovery check that waits for the system: the first re-query `settle` after the
    action took effect, then one every `every` until `verifier` says recovered or `timeout` has
    passed since the first (not recovered when a re-query said so, unknown when none could
    tell); after a recovery, re-queries for `watch` more and a regression (not recovered twice in a
    row) is not recovered.

    Due times derive from when the action took effect, not from when this check began, so a
    check resumed after a restart waits only for what is left. A stopped run stops the wait with
    its worker process. `forget(kind)` drops what the telemetry holds of the previous re-query
    (`IncidentTelemetry.forget_after`)."""

    def until(when: datetime) -> None:
        left = (when - clock()).total_seconds()
        if left > 0:
            sleep(left)

    def ask(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        forget(action.kind)  # drop the held post-action read: a fresh re-query, not the previous answer
        answer = verifier(action, outcomes)
        on_check(action, clock(), answer)
        return answer

    def check(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        taken = _taken_at(action, outcomes) or clock()
        due = taken + patience.settle
        deadline = due + patience.timeout
        said_no: Check | None = None
        asked = 0
        while True:
            until(due)
            answer = ask(action, outcomes)
            asked += 1
            if answer.ok is True:
                break
            said_no = answer if answer.ok is False else said_no
            due = max(due + patience.every, clock())
            if due > deadline:
                waited = f"{asked} re-quer{'y' if asked == 1 else 'ies'} over {patience.timeout.total_seconds():g} s"
                if said_no is None:
                    return Check(ok=None, detail=f"recovery could not be told ({waited}): {answer.detail}")
                return Check(ok=False, detail=f"not recovered ({waited}): {said_no.detail}", data=said_no.data)
        recovered = answer
        watch_end = clock() + patience.watch
        # A regression is two not-recovered answers in a row (an unknown between them neither breaks
        # nor makes one): one re-query of a noisy p99 over a few scrapes is not the system going back
        # (an alert rule's `for:`). A failure at the watch's end gets the one re-query that confirms it.
        pending = False
        while clock() + patience.every <= watch_end or pending:
            until(clock() + patience.every)
            again = ask(action, outcomes)
            if again.ok is False and pending:
                return Check(ok=False, detail=f"regressed after recovery: {again.detail}", data=again.data)
            if clock() + patience.every > watch_end and pending:
                break  # the confirming re-query did not confirm it
            pending = again.ok is False or (pending and again.ok is None)
        held = f"; held for {patience.watch.total_seconds():g} s" if patience.watch else ""
        return recovered.model_copy(update={"detail": f"{recovered.detail}{held}"})

    return check


# How far above the baseline's typical value a signal may sit and still count as recovered when the
# manifest gives no SLO: a quarter above the pre-incident median, the usual slack of an SLO alert.
BASELINE_SLACK = 1.25


def _services(telemetry: IncidentTelemetry, after: pl.DataFrame) -> list[str]:
    seen = set(after.get_column("service").unique().to_list())
    preferred = [s for s in (telemetry.manifest.alert.service, telemetry.manifest.entry_service) if s and s in seen]
    return preferred or sorted(seen)


def _baseline_frame(telemetry: IncidentTelemetry) -> pl.DataFrame | None:
    if telemetry.baseline is not None and telemetry.baseline.metrics is not None:
        return telemetry.baseline.metrics
    metrics = telemetry.metrics
    if metrics is None:
        return None
    start = telemetry.manifest.effective_window().start
    before = metrics.filter(pl.col("timestamp") < start)
    return before if before.height else None


def _median(frame: pl.DataFrame, service: str, metric: str) -> float | None:
    values = frame.filter((pl.col("service") == service) & (pl.col("metric") == metric)).get_column("value")
    if values.len() == 0:
        return None
    median = values.median()
    return float(median) if isinstance(median, int | float) else None


def _settled(frame: pl.DataFrame) -> pl.DataFrame:
    """The second half of the post-action period: the change needs a moment to take effect."""
    if frame.height == 0:
        return frame
    ts = frame.get_column("timestamp")
    lo, hi = ts.min(), ts.max()
    if lo is None or hi is None or lo == hi:
        return frame
    middle = lo + (hi - lo) / 2  # type: ignore[operator]
    return frame.filter(pl.col("timestamp") >= middle)


def golden_signal_recovery(telemetry: IncidentTelemetry, kind: str, after: Telemetry) -> Check:
    """Latency p99 and error rate of the alerting service, after the action, within SLO or near baseline."""
    if after.metrics is None:
        return Check(ok=None, detail=f"after/{kind}/ has no metrics")
    settled = _settled(after.metrics)
    baseline = _baseline_frame(telemetry)
    slo = telemetry.manifest.slo
    limits = {conv.LATENCY_P99: slo.latency_p99_ms, conv.ERROR_RATE: slo.error_rate}
    checks: list[dict[str, object]] = []
    for service in _services(telemetry, settled):
        for metric, slo_limit in limits.items():
            value = _median(settled, service, metric)
            if value is None:
                continue
            limit = slo_limit
            basis = "SLO"
            if limit is None and baseline is not None:
                base = _median(baseline, service, metric)
                limit = base * BASELINE_SLACK if base is not None else None
                basis = "baseline"
            if limit is None:
                continue
            checks.append(
                {
                    "service": service,
                    "metric": metric,
                    "value": round(value, 4),
                    "limit": round(limit, 4),
                    "basis": basis,
                    "ok": value <= limit,
                }
            )
        if checks:
            break  # the first service with comparable signals is the one the alert is about
    if not checks:
        return Check(ok=None, detail=f"after/{kind}/: no latency or error-rate series to compare")
    ok = all(bool(c["ok"]) for c in checks)
    text = ", ".join(
        f"{c['metric']} {c['value']} {'≤' if c['ok'] else '>'} {c['limit']} ({c['basis']})" for c in checks
    )
    verdict = "recovered" if ok else "not recovered"
    return Check(ok=ok, detail=f"after {kind}: {verdict} on {checks[0]['service']}: {text}", data={"checks": checks})


def statistical_recovery(telemetry: IncidentTelemetry, kind: str, after: Telemetry) -> Check:
    """The recovery-validation analysis (warroom.analysis.recovery) as a loop verifier answer."""
    from warroom.analysis.recovery import Verdict, verify_after

    result = verify_after(telemetry, kind)
    ok = {Verdict.RECOVERED: True, Verdict.NOT_RECOVERED: False}.get(result.verdict)
    checks = [check.model_dump(mode="json") for check in result.checks]
    detail = result.reason or f"after {kind}: {result.verdict.value}"
    return Check(ok=ok, detail=detail, data={"verdict": result.verdict.value, "checks": checks})


def probe_from_config(raw: dict[str, object]) -> Verifier:
    """A live recovery probe from configuration: {"http": {url, expect_status, …}} and/or
    {"argv": [...], "timeout_s": …}; several given are all required."""
    verifiers: list[Verifier] = []
    http = raw.get("http")
    if isinstance(http, dict):
        verifiers.append(http_probe(Probe.model_validate(http)))
    argv = raw.get("argv")
    if isinstance(argv, list) and argv:
        timeout = raw.get("timeout_s")
        verifiers.append(
            command_probe([str(a) for a in argv], float(timeout) if isinstance(timeout, int | float) else 30.0)
        )
    if not verifiers:
        raise ValueError("a recovery probe needs 'http' or 'argv'")
    return verifiers[0] if len(verifiers) == 1 else all_of(*verifiers)
