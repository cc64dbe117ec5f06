"""Fusion: metrics, logs and traces into ranked root-cause candidates, each with its reason.

Per service the analysis gathers one strength per hypothesis, each on a z-like scale:

- code defect: changed logging (new error templates, changed statement order or shares),
  compared per caller so a change in who calls a service is not a change in what it does;
  errors that name another service are about that dependency, not the logger's code (counted
  for the callee when its span erred in the request, evidence only when it was never reached);
  discounted when a service it calls shows an above-noise change of the same kind (then it is a
  victim) and by how often it is not the deepest erroring service in its requests;
- CPU / memory: the robust z of the service's own utilisation, weighted by how much of the
  remaining headroom the rise consumed; a node-level CPU rise with the pod's own CPU flat and its
  latency up is contention from a neighbour;
- network delay: extra time on calls into the service (caller span minus callee span), counted
  on calls from callers that are not slow themselves (a delayed pod also slows its own calls);
- latency: self time (span time not spent in callees).

The service's score is its strongest hypothesis; the fault type is that hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis import logs as logs_mod
from warroom.analysis import metrics as metrics_mod
from warroom.analysis import traces as traces_mod
from warroom.incident import Evidence, Finding, RootCauseCandidate
from warroom.sources.canonical import Telemetry

MAX_CANDIDATES = 10
PROPAGATION_SHARE = 0.5  # a callee with at least half the anomaly explains its caller's anomaly
CODE_FAULTS = ("exception", "return")
LATENCY_NAMES = ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms")


class Diagnosis(BaseModel):
    """What the investigation concluded, with the evidence behind every candidate."""

    candidates: list[RootCauseCandidate] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    findings: dict[str, list[Finding]] = Field(default_factory=dict)
    limitations: list[str] = Field(default_factory=list)
    features: list[dict[str, Any]] = Field(default_factory=list)  # per-service scores, for audit

    def top(self) -> RootCauseCandidate | None:
        return self.candidates[0] if self.candidates else None


def _between(frame: pl.DataFrame, column: str, start: datetime, end: datetime) -> pl.DataFrame:
    return frame.filter(pl.col(column).is_between(start, end))


def _split(
    current: pl.DataFrame | None,
    baseline: pl.DataFrame | None,
    column: str,
    start: datetime,
    end: datetime,
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, str]:
    """The window's rows, and the rows to compare against (the baseline folder, else before)."""
    if current is None:
        return None, None, "absent"
    during = _between(current, column, start, end)
    if baseline is not None and baseline.height:
        return during, baseline, "baseline"
    before = current.filter(pl.col(column) < start)
    return during, (before if before.height else None), "before-window"


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def next(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"


@dataclass
class _Collector:
    """Evidence, findings and each service's evidence ids, built together so that every finding
    cites the evidence it rests on and the ranking sees which modality spoke for a service."""

    start: datetime
    end: datetime
    per_service: dict[str, dict[str, Any]]
    evidence: list[Evidence]
    findings: dict[str, list[Finding]]
    ids: _Ids = field(default_factory=_Ids)

    def add(
        self,
        source: str,
        prefix: str,
        service: str,
        query: str,
        values: dict[str, Any],
        title: str,
        detail: str,
        confidence: float,
        *,
        samples: list[str] | None = None,
        kind: str = "observation",
    ) -> dict[str, Any]:
        """Record one piece of evidence and the finding on `service` it supports; the service's entry."""
        eid = self.ids.next(prefix)
        ev = Evidence(
            id=eid, source=source, query=query, start=self.start, end=self.end, values=values, samples=samples or []
        )
        self.evidence.append(ev)
        entry = self.per_service.setdefault(service, {"service": service, "evidence": {}})
        entry["evidence"].setdefault(source, []).append(eid)
        self.findings[source].append(
            Finding(
                id=f"finding-{eid}",
                title=title,
                detail=detail,
                confidence=confidence,
                service=service,
                kind=kind,
                evidence=[ev],
            )
        )
        return entry


def _f(value: Any) -> float:
    return float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else 0.0


def diagnose(
    current: Telemetry,
    baseline: Telemetry | None,
    *,
    alert_time: datetime,
    window_start: datetime,
    window_end: datetime,
    topology: dict[str, list[str]] | None = None,
) -> Diagnosis:
    """Rank root-cause candidates for the window from the telemetry alone."""
    evidence: list[Evidence] = []
    findings: dict[str, list[Finding]] = {"metrics": [], "logs": [], "traces": []}
    limitations: list[str] = []
    base = baseline or Telemetry()
    start = min(window_start, alert_time)

    per_service: dict[str, dict[str, Any]] = {}
    collect = _Collector(start, window_end, per_service, evidence, findings)

    def feat(service: str) -> dict[str, Any]:
        return per_service.setdefault(service, {"service": service, "evidence": {}})

    error_keys, tests = _log_features(current, base, start, window_end, collect, feat, limitations)

    graph = _trace_features(current, base, start, window_end, topology, error_keys, collect, feat, limitations)

    if current.metrics is None or current.metrics.height == 0:
        limitations.append("metrics: none, so CPU and memory saturation could not be checked")
    else:
        scored = metrics_mod.score_series(current.metrics, base.metrics, start, window_end)
        if scored.height == 0:
            limitations.append("metrics: no points in the window or no baseline points to compare")
        else:
            scored = scored.with_columns(metrics_mod.materiality(scored).alias("material"))
            for kind, name in (("cpu", "cpu_utilization"), ("memory", "memory_utilization")):
                sub = scored.filter((pl.col("metric") == name) & (pl.col("z") > 0))
                for row in sub.iter_rows(named=True):
                    # Weight by the share of the remaining headroom the rise consumed: load moves
                    # a service's CPU, a contending or leaking process eats the headroom.
                    headroom = _f(row["delta"]) / max(1.0 - _f(row["base_median"]), 0.05)
                    used = min(max(headroom, 0.0), 1.0) ** 2
                    f = feat(row["service"])
                    f[f"{kind}_z"] = min(_f(row["abs_z"]), 100.0) * used
            _noisy_neighbours(scored, per_service)
            _metric_evidence(scored, collect)

    candidates = _rank(per_service, graph, tests)
    return Diagnosis(
        candidates=candidates,
        evidence=evidence,
        findings=findings,
        limitations=limitations,
        features=[{k: v for k, v in f.items() if k != "evidence"} for f in per_service.values()],
    )


def _trace_features(
    current: Telemetry,
    base: Telemetry,
    start: datetime,
    window_end: datetime,
    topology: dict[str, list[str]] | None,
    error_keys: pl.DataFrame | None,
    collect: _Collector,
    feat: Callable[[str], dict[str, Any]],
    limitations: list[str],
) -> dict[str, list[str]]:
    """Trace evidence and per-service trace features; returns the call graph (topology plus the
    calls seen in the window)."""
    per_service = collect.per_service
    cur_tr, base_tr, _kind = _split(current.traces, base.traces, "start_time", start, window_end)
    graph: dict[str, list[str]] = dict(topology or {})
    if cur_tr is None or cur_tr.height == 0:
        limitations.append("traces: none in the window, so no call graph, latency split or network delay")
    else:
        pc = traces_mod.prepare(cur_tr)
        for caller, callees in traces_mod.call_graph(pc).items():
            graph[caller] = sorted(set(graph.get(caller, [])) | set(callees))
        deep = traces_mod.deepest_errors(pc, error_keys)
        for row in deep.iter_rows(named=True):
            feat(row["service"]).update(deepest=int(row["deepest"]), erroring=int(row["erroring"]))
        if base_tr is None or base_tr.height == 0:
            limitations.append("traces: no baseline, so latency and call gaps were not compared")
        else:
            pb = traces_mod.prepare(base_tr)
            lat = traces_mod.service_latency(pc, pb)
            for row in lat.iter_rows(named=True):
                feat(row["service"]).update(self_z=_f(row["self_z"]), self_ratio=_f(row["self_ratio"]))
            gaps = traces_mod.edge_gaps(pc, pb)
            for row in gaps.iter_rows(named=True):
                feat(row["service"]).update(gap_z=_f(row["gap_z"]), gap_delta_ms=_f(row["gap_delta_ms"]))
            _egress_delay(gaps, pc, pb, per_service)
            _trace_evidence(lat, gaps, collect)
    return graph


def _log_features(
    current: Telemetry,
    base: Telemetry,
    start: datetime,
    window_end: datetime,
    collect: _Collector,
    feat: Callable[[str], dict[str, Any]],
    limitations: list[str],
) -> tuple[pl.DataFrame | None, int]:
    """Log evidence and per-service log features; returns the (trace_id, service) keys of the
    anomalous error lines and the number of comparisons made. A function of its own so that the
    mined log frames are freed before the metrics are scored."""
    tests = 1
    cur_logs, base_logs, log_base_kind = _split(current.logs, base.logs, "timestamp", start, window_end)
    error_keys: pl.DataFrame | None = None
    if cur_logs is None or cur_logs.height == 0:
        limitations.append("logs: none in the window, so code defects could only be seen through traces")
    elif base_logs is None:
        limitations.append("logs: no baseline (no baseline/ folder and nothing before the window)")
    else:
        services = _service_names(current, base)
        # The spans the reference lines ran in: the baseline's, or the incident's own before the window.
        ref_spans = base.traces if log_base_kind == "baseline" else current.traces
        tc, dep_cur, rep_cur = _without_dependency_errors(logs_mod.request_lines(cur_logs), services, current.traces)
        tb, _dep_base, rep_base = _without_dependency_errors(logs_mod.request_lines(base_logs), services, ref_spans)
        by = None
        if "trace_id" in tc.columns and current.traces is not None and ref_spans is not None and ref_spans.height:
            # Tie each line to the service on whose behalf it ran (span id → nearest ancestor
            # span in another service), and compare flows and shares per caller.
            tc = _with_caller(tc, current.traces)
            tb = _with_caller(tb, ref_spans)
            by = "caller"
        else:
            limitations.append("logs: not tied to spans of both periods, so log changes were not compared per caller")
        if tc.get_column("span_id").null_count() == tc.height:
            limitations.append("logs: no span ids, so the request flow was followed per trace, not per handler")
        # Templates count the callee errors their callers reported; the request flow stays each
        # service's own statements.
        tc_all, tb_all = _with_reported(tc, rep_cur), _with_reported(tb, rep_base)
        templates = logs_mod.template_shift(tc_all, tb_all)
        shares = logs_mod.template_shift(tc_all, tb_all, by=by) if by else templates
        transitions = logs_mod.transition_shift(tc, tb, by=by)
        scores = logs_mod.service_log_scores(templates, transitions, shares)
        tests = shares.height + transitions.height
        anomalous_err = logs_mod.anomalous_errors(templates).select("service", "template")
        if dep_cur.height:
            _dependency_evidence(dep_cur, collect)
        if "trace_id" in tc.columns:
            error_keys = tc_all.join(anomalous_err, on=["service", "template"], how="semi").select(
                "trace_id", "service"
            )
        for row in scores.iter_rows(named=True):
            f = feat(row["service"])
            f["new_error"] = int(row["new_error"])
            f["new_error_z"] = _f(row["new_error_z"])
            f["new_exception"] = bool(row["new_exception"])
            f["flow_z"] = _f(row["flow_z"])
            f["share_z"] = _f(row["share_z"])
        _log_evidence(templates, transitions, collect)
        if log_base_kind == "before-window":
            limitations.append("logs: baseline is the data before the window (no baseline/ folder)")
    return error_keys, tests


def _service_names(*telemetry: Telemetry) -> list[str]:
    names: set[str] = set()
    for tel in telemetry:
        for frame in (tel.logs, tel.traces):
            if frame is not None and "service" in frame.columns:
                names.update(str(x) for x in frame.get_column("service").unique().drop_nulls())
    return sorted(names)


def _with_caller(lines: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Add `caller` to log lines: the calling service of the span that logged the line ("" when
    unknown or the request entered from outside)."""
    callers = traces_mod.entry_callers(spans)
    return lines.join(callers, on=["trace_id", "span_id"], how="left").with_columns(pl.col("caller").fill_null(""))


def _without_dependency_errors(
    mined: pl.DataFrame, services: list[str], spans: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Split off the requests in which a service logged an error naming another service:
    (the remaining lines, the naming lines for a dependency it never reached, the naming lines for
    a dependency it did reach, re-attributed to that dependency).

    Either way the request left the logging service's code path because of the dependency, so
    neither those error lines nor the changed statement order of that request are evidence of a
    defect in the logging service. When the trace holds an erroring span of the named service, it
    was reached and answered with the error: the line is the callee's error as its caller saw it,
    and is counted for the callee (template prefixed "reported by caller:"). Otherwise (no
    instance, connection refused, or no span status to tell) it is evidence only."""
    row = "_row"  # lines are dropped by position: one filter, not a copy per condition
    dep = (
        mined.with_row_index(row)
        .filter(pl.col("severity") >= 2)
        .with_columns(logs_mod.dependency_named(services).alias("dependency"))
        .filter(pl.col("dependency").is_not_null())
    )
    if dep.height == 0:
        return mined, dep.drop(row), dep.drop(row, "dependency")
    line = ["timestamp", "service", "message"]
    dropped = dep.get_column(row)
    reached = dep.clear()
    if "trace_id" in mined.columns:
        keys = dep.filter(pl.col("trace_id").is_not_null() & (pl.col("trace_id") != "")).select("trace_id", "service")
        same_request = (
            mined.select("trace_id", "service")
            .with_row_index(row)
            .join(keys.unique(), on=["trace_id", "service"], how="semi")
            .get_column(row)
        )
        dropped = pl.concat([dropped, same_request])
        if spans is not None and spans.height and "status" in spans.columns:
            # Reached and failed: the named service has an erroring span in the request. (A span
            # of it alone is not enough: a request can reach it in one call and miss it in the
            # next, when no instance is left to call.)
            failed = spans.filter(pl.col("status").cast(pl.String).is_in(traces_mod.ERROR_STATUS))
            present = failed.select("trace_id", pl.col("service").cast(pl.String).alias("dependency")).unique()
            reached = dep.join(present, on=["trace_id", "dependency"], how="semi")
    # Lines without a trace id cannot be tied to a request: only the naming line is dropped.
    kept = mined.filter(~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(dropped.implode()))
    dep = dep.drop(row)
    reached = reached.drop(row)
    unreached = dep.join(reached.select(line).unique(), on=line, how="anti")
    reported = reached.with_columns(
        pl.col("service").alias("reporter"),
        pl.col("dependency").alias("service"),
        ("reported by caller: " + pl.col("template")).alias("template"),
    ).drop("dependency")
    return kept, unreached, reported


def _with_reported(lines: pl.DataFrame, reported: pl.DataFrame) -> pl.DataFrame:
    """Lines plus the callee errors reported by callers (their caller stratum is the reporter)."""
    if reported.height == 0:
        return lines
    extra = reported.with_columns(pl.col("reporter").alias("caller")) if "caller" in lines.columns else reported
    return pl.concat([lines, extra.select(lines.columns)], how="vertical_relaxed")


def _egress_delay(
    gaps: pl.DataFrame, pc: pl.DataFrame, pb: pl.DataFrame, per_service: dict[str, dict[str, Any]]
) -> None:
    """A delayed pod slows the calls it makes as well as those into it, so its callees' call
    gaps rise too. For each service with slower calls into it, keep only the gap measured on calls
    from callers that are not slow themselves; a service reached only through slow callers cannot
    be told apart from them and keeps half its strength."""
    crit = _critical_z(max(gaps.height, 1))
    slow = {r["service"] for r in gaps.filter(pl.col("gap_z") > crit).iter_rows(named=True)}
    if len(slow) < 2:
        return
    clean = {r["service"]: r for r in traces_mod.edge_gaps(pc, pb, exclude_callers=slow).iter_rows(named=True)}
    for service in slow:
        f = per_service[service]
        row = clean.get(service)
        if row is None:
            f["gap_z"] = f["gap_z"] / 2.0
            f["gap_note"] = "only called by services whose own calls are slower: their egress may explain it"
        else:
            f["gap_z"] = min(f["gap_z"], _f(row["gap_z"]))


def _noisy_neighbours(scored: pl.DataFrame, per_service: dict[str, dict[str, Any]]) -> None:
    """`neighbour_z` for services whose node's CPU rose while their own did not, and whose
    latency rose: starved by another process on the node. Weighted like the service's own CPU,
    by the share of the node's headroom the rise consumed (a busy node is not a starved one)."""
    host = {r["service"]: r for r in scored.filter(pl.col("metric") == "host_cpu_utilization").iter_rows(named=True)}
    if not host:
        return
    latency = (
        scored.filter(pl.col("metric").is_in(list(LATENCY_NAMES)) & (pl.col("z") >= metrics_mod.ONSET_Z))
        .group_by("service")
        .agg(pl.col("z").max())
    )
    own = {r["service"]: r for r in scored.filter(pl.col("metric") == "cpu_utilization").iter_rows(named=True)}
    for service, lat_z in latency.iter_rows():
        h = host.get(service)
        if h is None or _f(h["z"]) < metrics_mod.ONSET_Z:
            continue
        mine = own.get(service)
        if mine is not None and _f(mine["z"]) >= metrics_mod.ONSET_Z:
            continue  # its own CPU rose: that is its own saturation, scored as such
        headroom = _f(h["delta"]) / max(1.0 - _f(h["base_median"]), 0.05)
        used = min(max(headroom, 0.0), 1.0) ** 2
        strength = min(_f(h["z"]), _f(lat_z), 100.0) * used
        if strength > 0:
            per_service.setdefault(service, {"service": service, "evidence": {}})["neighbour_z"] = strength


def _code_strength(f: dict[str, Any]) -> float:
    # New error lines and a changed request flow are independent views of one defect: add them.
    return f.get("new_error_z", 0.0) + max(f.get("flow_z", 0.0), f.get("share_z", 0.0))


def _softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def _critical_z(tests: int, alpha: float = 0.01) -> float:
    """Bonferroni: the |z| that one of `tests` independent comparisons exceeds by chance with
    probability alpha. Log changes below it are the noise of comparing two periods."""
    return float(NormalDist().inv_cdf(1.0 - alpha / (2.0 * max(tests, 1))))


def _descendants(graph: dict[str, list[str]], service: str, depth: int = 4) -> set[str]:
    seen: set[str] = set()
    frontier = {service}
    for _ in range(depth):
        frontier = {c for s in frontier for c in graph.get(s, []) if c != service and c not in seen}
        if not frontier:
            break
        seen |= frontier
    return seen


def _rank(per_service: dict[str, dict[str, Any]], graph: dict[str, list[str]], tests: int) -> list[RootCauseCandidate]:
    scored: list[tuple[float, str, str, str, str]] = []
    crit = _critical_z(tests)
    # Excess over the noise level, smoothed (softplus): a change far above the noise counts by
    # its excess; one just below it keeps a small weight, so that when nothing clears the noise
    # the ranking still follows the strongest log evidence rather than the CPU series' wiggle.
    excess = {s: _softplus(_code_strength(f) - crit) if _code_strength(f) > 0 else 0.0 for s, f in per_service.items()}
    for service, f in per_service.items():
        hyps: list[tuple[float, str, str, str]] = []
        strength = excess[service]
        reason_bits = [f"log change {_code_strength(f):.1f} against a noise level of {crit:.1f}"]
        factor = 1.0
        below = _descendants(graph, service)
        # Only a callee whose own change clears the noise level can explain its caller's.
        blamed = sorted(
            c
            for c in below
            if _code_strength(per_service.get(c, {})) > crit and excess.get(c, 0.0) >= PROPAGATION_SHARE * strength > 0
        )
        if blamed:
            factor *= 0.5
            reason_bits.append(f"services it calls ({', '.join(blamed[:3])}) changed too: likely propagation")
        if f.get("erroring"):
            depth_share = f.get("deepest", 0) / max(f["erroring"], 1)
            factor *= 0.5 + 0.5 * depth_share
            reason_bits.append(f"deepest erroring service in {f.get('deepest', 0)} of {f['erroring']} traces")
        if strength > 0:
            if f.get("new_error", 0) > 0 and not f.get("new_exception", False):
                fault, indicator = "return", "new error log template"
            elif f.get("new_error", 0) > 0:
                fault, indicator = "exception", "new exception log template"
            else:
                fault, indicator = "exception", "request flow leaves the usual log path"
            hyps.append((strength * factor, fault, indicator, "; ".join(reason_bits)))
        cpu = f.get("cpu_z", 0.0)
        if cpu > 0:
            # The pod's own CPU rose: a process in it (a stressor, or the service's own code) ate
            # the headroom. Minute-level CPU does not tell contention from the service's own
            # consumption; the reason says so. Only a node-level rise with the pod's own CPU flat
            # (below) is unambiguous contention from a neighbour.
            hyps.append(
                (
                    cpu,
                    "cpu_contention",
                    "cpu_utilization",
                    "CPU utilisation far above its baseline (contention, or the service's own consumption:"
                    " minute-level CPU does not tell them apart)",
                )
            )
        neighbour = f.get("neighbour_z", 0.0)
        if neighbour > 0:
            hyps.append(
                (
                    neighbour,
                    "cpu_contention",
                    "host_cpu_utilization",
                    "its node's CPU rose and its latency with it, while its own CPU did not (a noisy neighbour)",
                )
            )
        mem = f.get("memory_z", 0.0)
        if mem > 0:
            hyps.append((mem, "memory", "memory_utilization", "memory utilisation far above its baseline"))
        gap = min(f.get("gap_z", 0.0), 100.0)
        # A CPU-starved pod also delays the start of its server spans: only a gap without a
        # resource explanation is network delay.
        if gap > crit and max(cpu, mem) < 1.0:
            note = f"; {f['gap_note']}" if f.get("gap_note") else ""
            hyps.append(
                (gap - crit, "network_delay", "call latency gap", f"calls into it take longer on the wire{note}")
            )
        if not hyps:
            continue
        best = max(hyps, key=lambda h: h[0])
        if best[0] <= 0:
            continue
        scored.append((best[0], service, best[1], best[2], best[3]))
    scored.sort(key=lambda t: -t[0])
    total = sum(s for s, *_ in scored[:MAX_CANDIDATES]) or 1.0
    out = []
    for rank, (score, service, fault, indicator, reason) in enumerate(scored[:MAX_CANDIDATES], start=1):
        ev = per_service[service]["evidence"]
        out.append(
            RootCauseCandidate(
                rank=rank,
                service=service,
                fault_type=fault,
                indicator=indicator,
                confidence=round(min(score / total, 1.0), 3),
                reason=f"score {score:.1f}: {indicator}; {reason}",
                evidence_ids=[i for ids in ev.values() for i in ids][:6],
            )
        )
    return out


def _z_confidence(z: Any) -> float:
    return round(min(abs(_f(z)) / 10.0, 1.0), 2)


def _log_evidence(templates: pl.DataFrame, transitions: pl.DataFrame, out: _Collector) -> None:
    """A few of the strongest template and flow changes per service, as evidence."""
    top = (
        templates.filter(pl.col("new") & (pl.col("severity") >= 1) | (pl.col("z").abs() > 3))
        # names break ties, so that the same data always gives the same evidence
        .sort([pl.col("z").abs(), "count", "service", "template"], descending=[True, True, False, False])
        .group_by("service", maintain_order=True)
        .head(2)
    )
    for row in top.iter_rows(named=True):
        kind = "new" if row["new"] else ("surging" if _f(row["z"]) > 0 else "vanishing")
        out.add(
            "logs",
            "log",
            row["service"],
            f"service={row['service']} template={row['template']!r}",
            {
                "count": int(row["count"]),
                "baseline_count": int(row["base_count"]),
                "share": round(_f(row["share"]), 4),
                "baseline_share": round(_f(row["base_share"]), 4),
                "z": round(_f(row["z"]), 2),
                "new": bool(row["new"]),
                "code_location": logs_mod.code_location(row["template"] or ""),
            },
            f"{row['service']}: {kind} log template",
            f"{row['template']} ({int(row['base_count'])} → {int(row['count'])})",
            _z_confidence(row["z"]),
            samples=[str(row["sample"])[:300]] if row["sample"] else [],
        )
    if transitions.height == 0:
        return
    flow = (
        transitions.filter(pl.col("z").abs() > 3)
        .sort([pl.col("z").abs(), "n", "service", "src", "dst"], descending=[True, True, False, False, False])
        .group_by("service", maintain_order=True)
        .head(1)
    )
    for row in flow.iter_rows(named=True):
        region = " → ".join(x for x in (logs_mod.code_location(row["src"]), logs_mod.code_location(row["dst"])) if x)
        out.add(
            "logs",
            "log",
            row["service"],
            f"service={row['service']} after {row['src']!r} comes {row['dst']!r}",
            {
                "p": round(_f(row["p"]), 3),
                "baseline_p": round(_f(row["base_p"]), 3),
                "n": int(row["n"]),
                "baseline_n": int(row["base_n"]),
                "z": round(_f(row["z"]), 2),
                "code_region": region or None,
            },
            f"{row['service']}: request flow changed after a log statement",
            f"P(next={row['dst']} | {row['src']}) {_f(row['base_p']):.2f} → {_f(row['p']):.2f}",
            _z_confidence(row["z"]),
        )


def _dependency_evidence(dep: pl.DataFrame, out: _Collector) -> None:
    """Errors in which a service says it could not reach another one (no span of it in the
    request), as evidence on the named service; they count for neither service's code defect."""
    pairs = (
        dep.group_by("service", "dependency")
        .agg(pl.len().alias("count"), pl.col("message").first().alias("sample"))
        .sort("count", descending=True)
        .head(5)
    )
    for row in pairs.iter_rows(named=True):
        entry = out.add(
            "logs",
            "log",
            row["dependency"],
            f"service={row['service']} error lines naming {row['dependency']}",
            {"count": int(row["count"]), "caller": row["service"], "named_service": row["dependency"]},
            f"{row['service']} could not reach {row['dependency']}",
            f"{int(row['count'])} error lines name {row['dependency']}",
            0.3,
            samples=[str(row["sample"])[:300]],
        )
        entry["named_in_errors"] = entry.get("named_in_errors", 0) + int(row["count"])


def _trace_evidence(lat: pl.DataFrame, gaps: pl.DataFrame, out: _Collector) -> None:
    for row in lat.filter(pl.col("self_z") > 3).sort("self_z", descending=True).head(5).iter_rows(named=True):
        out.add(
            "traces",
            "trace",
            row["service"],
            f"spans service={row['service']} self time",
            {
                "self_p50_ms": round(_f(row["self_p50"]), 2),
                "baseline_self_p50_ms": round(_f(row["base_self_p50"]), 2),
                "self_p90_ms": round(_f(row["self_p90"]), 2),
                "baseline_self_p90_ms": round(_f(row["base_self_p90"]), 2),
                "z": round(_f(row["self_z"]), 2),
                "spans": int(row["spans"]),
            },
            f"{row['service']}: self time up",
            f"median self time {_f(row['base_self_p50']):.1f} → {_f(row['self_p50']):.1f} ms",
            _z_confidence(row["self_z"]),
            kind="bottleneck",
        )
    for row in gaps.filter(pl.col("gap_z") > 3).sort("gap_z", descending=True).head(5).iter_rows(named=True):
        out.add(
            "traces",
            "trace",
            row["service"],
            f"calls into service={row['service']}: caller span minus callee span",
            {
                "gap_p50_ms": round(_f(row["gap_p50"]), 2),
                "baseline_gap_p50_ms": round(_f(row["base_gap_p50"]), 2),
                "delta_ms": round(_f(row["gap_delta_ms"]), 2),
                "z": round(_f(row["gap_z"]), 2),
                "calls": int(row["calls"]),
            },
            f"{row['service']}: calls into it are slower on the wire",
            f"median caller−callee gap {_f(row['base_gap_p50']):.1f} → {_f(row['gap_p50']):.1f} ms",
            _z_confidence(row["gap_z"]),
            kind="bottleneck",
        )


def _metric_evidence(scored: pl.DataFrame, out: _Collector) -> None:
    ranked = (
        scored.with_columns((pl.col("abs_z").clip(0, 100) * pl.col("material")).alias("score"))
        .filter(pl.col("score") > 1.0)
        .sort("score", descending=True)
        .head(8)
    )
    for row in ranked.iter_rows(named=True):
        out.add(
            "metrics",
            "metric",
            row["service"],
            f"{row['metric']}{{service={row['service']}}}",
            {
                "baseline_median": round(_f(row["base_median"]), 4),
                "peak": round(_f(row["peak"]), 4),
                "z": round(_f(row["z"]), 2),
                "onset": row["onset"].isoformat() if row["onset"] is not None else None,
            },
            f"{row['service']}: {row['metric']} {'up' if _f(row['z']) > 0 else 'down'}",
            f"{_f(row['base_median']):.4g} → {_f(row['peak']):.4g} (robust z {_f(row['z']):.1f})",
            round(min(_f(row["score"]) / 10.0, 1.0), 2),
        )
