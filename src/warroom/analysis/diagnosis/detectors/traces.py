"""Trace evidence: the call graph, self time, the time calls spend on the wire (per edge), erroring
spans and the deepest erroring service per trace, span durations, the sequence of calls each handler
makes, and the database statements each service sends.

Each statistic is its own test family against the reference spans:

- self time (span time not spent in callees): robust z of the median per service;
- call gap: per caller→callee edge, the time around the callee's span that the caller spends
  neither in it nor in its other calls (request plus response transit); a delayed pod adds it to the
  calls into it *and* to the calls it makes, a CPU-starved one starts its server spans late and
  stretches its own calls. The observation names both ends (`call_gap.in` for the callee,
  `call_gap.out` for the caller) and the hypotheses decide which end explains it;
- span errors: two-proportion z of each service's share of erroring spans;
- deepest erroring service: in how many traces a service errs (span status, or a line the logs
  found anomalous) with no erroring service below it, as a Poisson tail against the reference;
- span duration: robust z of the median duration of each service's spans;
- call flow: which call follows which inside one handler invocation, compared per endpoint
  (Cochran-Mantel-Haenszel, as the logs' request flow). A handler that throws or returns early stops
  making its usual calls; a callee that answers differently changes what its callers do next. Only
  calls that stop count (a handler completing more calls than in the reference is not the fault). The
  observation names both the handler's service (`trace_flow.change`) and the callee after which the
  flow changed (`trace_flow.callers`);
- database statements: per calling service and statement, robust z of the median duration against
  the same statement in the reference (a new statement against the caller's other statements there).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import polars as pl

from warroom.analysis import logs as logs_mod
from warroom.analysis import surprise
from warroom.analysis import traces as traces_mod
from warroom.analysis.attrs import attr, has_key
from warroom.analysis.diagnosis.detectors.result import DetectorResult
from warroom.analysis.diagnosis.evidence import Observation, critical_z, noise_level
from warroom.analysis.diagnosis.periods import Periods

EMIT_Z = 1.0
MIN_CALLS = 5
MS_FLOOR = 0.5  # below half a millisecond a span time is measurement noise
RELATIVE_FLOOR = 0.1  # … and so is a tenth of its reference median


def detect(
    periods: Periods, known: Collection[str], error_keys: pl.DataFrame | None
) -> tuple[DetectorResult, dict[str, set[str]]]:
    """Trace observations and the call graph (caller → callees, from the topology and the spans of
    both periods)."""
    result = DetectorResult("traces")
    graph: dict[str, set[str]] = {s: set(deps) for s, deps in periods.topology.items()}
    split = periods.split("traces")
    if split.during is None or split.during.height == 0:
        result.limitations.append("traces: none in the window, so no call graph, latency split or network delay")
        return result, graph
    pc = traces_mod.prepare(split.during)
    pb = traces_mod.prepare(split.reference) if split.reference is not None and split.reference.height else None
    for frame in (pc, pb):
        if frame is not None:
            for caller, callees in traces_mod.call_graph(frame).items():
                graph.setdefault(caller, set()).update(callees)
    if pb is None:
        result.limitations.append("traces: no reference spans, so latency, call gaps and call flow were not compared")
        return result, graph
    if "trace_flow.change" in known:
        _flow(pc, pb, periods, result)
    _deepest(pc, pb, error_keys, periods, result)
    _self_time(pc, pb, periods, result)
    _gaps(pc, pb, periods, result)
    _span_errors(pc, pb, periods, result)
    _unanswered(pc, pb, periods, result)
    _durations(pc, pb, periods, result)
    _span_rates(pc, pb, periods, result)
    _statements(pc, pb, periods, result)
    return result, graph


def _robust_z(now_median: pl.Expr, ref_median: pl.Expr, ref_mad: pl.Expr) -> pl.Expr:
    scale = pl.max_horizontal(ref_mad * 1.4826, ref_median.abs() * RELATIVE_FLOOR, pl.lit(MS_FLOOR))
    return (now_median - ref_median) / scale


def _median_stats(frame: pl.DataFrame, keys: list[str], value: str, prefix: str) -> pl.DataFrame:
    return frame.group_by(keys).agg(
        pl.len().alias(f"{prefix}n"),
        pl.col(value).median().alias(f"{prefix}median"),
        (pl.col(value) - pl.col(value).median()).abs().median().alias(f"{prefix}mad"),
    )


def _compare(now: pl.DataFrame, ref: pl.DataFrame, keys: list[str], value: str) -> pl.DataFrame:
    """Per key: counts, medians and the robust z of the median shift (both periods need MIN_CALLS)."""
    joined = _median_stats(now, keys, value, "").join(_median_stats(ref, keys, value, "ref_"), on=keys, how="inner")
    return joined.filter((pl.col("n") >= MIN_CALLS) & (pl.col("ref_n") >= MIN_CALLS)).with_columns(
        _robust_z(pl.col("median"), pl.col("ref_median"), pl.col("ref_mad")).alias("z")
    )


def _self_time(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    stats = _compare(pc, pb, ["service"], "self_ms")
    _emit_shift(
        stats,
        "self_time.up",
        "traces.self_time",
        "ms",
        periods,
        result,
        query="spans service={service}: self time (duration minus direct children)",
    )


def _durations(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    stats = _compare(pc, pb, ["service"], "duration_ms")
    _emit_shift(
        stats,
        "span_duration.up",
        "traces.span_duration",
        "ms",
        periods,
        result,
        query="spans service={service}: duration",
    )


def _emit_shift(
    stats: pl.DataFrame,
    signal: str,
    detector: str,
    unit: str,
    periods: Periods,
    result: DetectorResult,
    *,
    query: str,
) -> None:
    if stats.height == 0:
        return
    result.measure(signal, stats.get_column("service").cast(pl.String).to_list())
    noise = noise_level(stats.get_column("z").to_list())
    for row in stats.filter(pl.col("z") >= EMIT_Z).iter_rows(named=True):
        service = str(row["service"])
        result.add(
            Observation(
                detector=detector,
                modality="traces",
                signal=signal,
                service=service,
                strength=float(row["z"]),
                noise=noise,
                effect=float(min((row["median"] - row["ref_median"]) / max(row["ref_median"], MS_FLOOR), 1.0)),
                baseline=float(row["ref_median"]),
                value=float(row["median"]),
                peak=float(row["median"]),
                unit=unit,
                query=query.format(service=service),
                start=periods.start,
                end=periods.end,
                data={"spans": int(row["n"]), "reference_spans": int(row["ref_n"])},
            )
        )


def _gaps(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    now = traces_mod.call_gaps(pc)
    stats = _compare(now, traces_mod.call_gaps(pb), ["caller", "callee"], "gap_ms")
    if stats.height == 0:
        return
    # The effect is the share of the caller's time the extra gap takes: the edge a delay sits on
    # carries all of it, a neighbouring call (whose lead-in holds the delayed response) a part.
    callers = now.group_by("caller", "callee").agg(pl.col("caller_ms").median().alias("caller_ms"))
    stats = stats.join(callers, on=["caller", "callee"], how="left")
    result.measure("call_gap.in", stats.get_column("callee").cast(pl.String).to_list())
    result.measure("call_gap.out", stats.get_column("caller").cast(pl.String).to_list())
    noise = noise_level(stats.get_column("z").to_list())
    for row in stats.filter(pl.col("z") >= EMIT_Z).iter_rows(named=True):
        caller, callee = str(row["caller"]), str(row["callee"])
        result.add(
            Observation(
                detector="traces.call_gap",
                modality="traces",
                signal="call_gap",
                service=callee,
                peer=caller,
                roles={"call_gap.in": callee, "call_gap.out": caller},
                strength=float(row["z"]),
                noise=noise,
                effect=float(min((row["median"] - row["ref_median"]) / max(row["caller_ms"] or 0.0, 1.0), 1.0)),
                baseline=float(row["ref_median"]),
                value=float(row["median"]),
                peak=float(row["median"]),
                unit="ms",
                query=f"calls {caller} → {callee}: caller's time around the callee's span",
                start=periods.start,
                end=periods.end,
                data={"calls": int(row["n"]), "reference_calls": int(row["ref_n"])},
            )
        )


def _span_rates(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    """Services whose spans became rarer, relative to all spans (calls stopped reaching them): the
    lower Poisson tail of their count against the reference share."""
    now = pc.group_by("service").agg(pl.len().alias("n"))
    ref = pb.group_by("service").agg(pl.len().alias("ref_n"))
    joined = ref.join(now, on="service", how="left").with_columns(pl.col("n").fill_null(0))
    if joined.height == 0:
        return
    expected = joined.get_column("ref_n").cast(pl.Float64).to_numpy() * pc.height / max(pb.height, 1)
    counts = joined.get_column("n").cast(pl.Float64).to_numpy()
    strengths = surprise.dearth_z(counts, np.maximum(expected, 1e-9))
    # The mix of requests differs between any two periods more than Poisson counting says (a test
    # load's or a day's mix of endpoints): the family's own spread, both ways, widens the noise level.
    rises = surprise.burst_z(counts, np.maximum(expected, 1e-9))
    noise = noise_level(np.where(strengths > 0, strengths, rises).tolist())
    for row, strength, mean in zip(joined.iter_rows(named=True), strengths, expected, strict=True):
        if strength < EMIT_Z or mean < MIN_CALLS:
            continue
        service = str(row["service"])
        result.add(
            Observation(
                detector="traces.span_rate",
                modality="traces",
                signal="span_rate.down",
                service=service,
                strength=float(strength),
                noise=noise,
                effect=float(min(1.0 - row["n"] / max(mean, 1e-9), 1.0)),
                baseline=round(float(mean), 1),
                value=float(row["n"]),
                peak=float(row["n"]),
                unit="spans (expected from the reference share)",
                query=f"count of spans service={service}",
                start=periods.start,
                end=periods.end,
            )
        )


def _span_errors(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    if "status" not in pc.columns:
        return

    def shares(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
        return frame.group_by("service").agg(pl.len().alias(f"{prefix}n"), pl.col("error").sum().alias(f"{prefix}k"))

    stats = shares(pc, "").join(shares(pb, "ref_"), on="service", how="inner")
    if stats.height == 0:
        return
    k1, n1 = pl.col("k").cast(pl.Float64), pl.col("n").cast(pl.Float64)
    k0, n0 = pl.col("ref_k").cast(pl.Float64), pl.col("ref_n").cast(pl.Float64)
    pooled = (k1 + k0 + 0.5) / (n1 + n0 + 1.0)
    stats = stats.with_columns(((k1 / n1 - k0 / n0) / (pooled * (1 - pooled) * (1 / n1 + 1 / n0)).sqrt()).alias("z"))
    noise = critical_z(stats.height)
    for row in stats.filter(pl.col("z") >= EMIT_Z).iter_rows(named=True):
        service = str(row["service"])
        share, ref_share = row["k"] / max(row["n"], 1), row["ref_k"] / max(row["ref_n"], 1)
        result.add(
            Observation(
                detector="traces.span_errors",
                modality="traces",
                signal="span_error.up",
                service=service,
                strength=float(row["z"]),
                noise=noise,
                baseline=round(ref_share, 4),
                value=round(share, 4),
                peak=round(share, 4),
                unit="share of spans",
                query=f"spans service={service} status=ERROR",
                start=periods.start,
                end=periods.end,
                data={"erroring_spans": int(row["k"]), "spans": int(row["n"])},
            )
        )


def _unanswered(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    """Calls into a service that failed with no span of it below them, against the reference's count:
    its callers could not reach it (no instance left, connection refused, a name that no longer
    resolves). The span reader hands such a call to the callee and marks its caller
    (`warroom.caller`); a database call is always handed over (databases emit no spans), so it says
    nothing of reachability and is left out, and so is a call that got an HTTP status back (an
    uninstrumented callee that answered 503 was reached)."""
    if "attributes" not in pc.columns or "attributes" not in pb.columns:
        return
    answered = has_key("http.response.status_code") | has_key("http.status_code")

    def failed(frame: pl.DataFrame) -> pl.DataFrame:
        calls = frame.filter(pl.col("error") & has_key("warroom.caller") & ~has_key("db.system") & ~answered)
        return calls.group_by("service").agg(
            pl.len().alias("k"),
            attr("warroom.caller").mode().first().alias("caller"),
            pl.col("start_time").min().alias("first"),
        )

    now = failed(pc)
    if now.height == 0:
        return
    ref = {str(r["service"]): int(r["k"]) for r in failed(pb).iter_rows(named=True)}
    exposure = pc.height / max(pb.height, 1)
    counts = now.get_column("k").cast(pl.Float64).to_numpy()
    expected = np.asarray([(ref.get(str(s), 0) + 0.5) * exposure for s in now.get_column("service")])
    strengths = surprise.burst_z(counts, expected)
    noise = critical_z(len(periods.services()))
    for row, strength in zip(now.iter_rows(named=True), strengths, strict=True):
        if strength < EMIT_Z:
            continue
        service = str(row["service"])
        result.add(
            Observation(
                detector="traces.unanswered_calls",
                modality="traces",
                signal="span_unanswered.up",
                service=service,
                peer=str(row["caller"]) if row["caller"] else None,
                strength=float(strength),
                noise=noise,
                baseline=float(ref.get(service, 0)),
                value=float(row["k"]),
                peak=float(row["k"]),
                unit="failed calls with no span of it",
                query=f"client spans calling {service} with status ERROR and no child span",
                start=periods.start,
                end=periods.end,
                onset=row["first"],
            )
        )


def _deepest(
    pc: pl.DataFrame, pb: pl.DataFrame, error_keys: pl.DataFrame | None, periods: Periods, result: DetectorResult
) -> None:
    """Traces in which a service is the deepest erroring one, against the reference's count."""
    now = traces_mod.deepest_errors(pc, error_keys)
    if now.height == 0:
        return
    ref = {str(r["service"]): int(r["deepest"]) for r in traces_mod.deepest_errors(pb).iter_rows(named=True)}
    exposure = pc.get_column("trace_id").n_unique() / max(pb.get_column("trace_id").n_unique(), 1)
    counts = now.get_column("deepest").cast(pl.Float64).to_numpy()
    expected = np.asarray([(ref.get(str(s), 0) + 0.5) * exposure for s in now.get_column("service")])
    strengths = surprise.burst_z(counts, expected)
    noise = critical_z(len(periods.services()))
    for row, strength, mean in zip(now.iter_rows(named=True), strengths, expected, strict=True):
        if strength < EMIT_Z:
            continue
        service = str(row["service"])
        # When it began: the first erring trace beyond the ones the reference rate accounts for.
        times = row["times"] or []
        result.add(
            Observation(
                detector="traces.deepest_error",
                modality="traces",
                signal="deepest_error.up",
                service=service,
                strength=float(strength),
                noise=noise,
                effect=float(row["deepest"]) / max(float(row["erroring"]), 1.0),
                onset=times[min(int(mean), len(times) - 1)] if times else None,
                baseline=float(ref.get(service, 0)),
                value=float(row["deepest"]),
                peak=float(row["deepest"]),
                unit="traces",
                query=f"traces in which {service} errs (span status or anomalous error line) and nothing below it does",
                start=periods.start,
                end=periods.end,
                data={"erroring_traces": int(row["erroring"])},
            )
        )


def _flow(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    """Handlers that stop making their usual calls: after a call (or at the start), the usual next
    call became rarer or the handler now ends there more often. One-sided: a handler that now makes
    more of its calls than in the reference is not failing (its reference was)."""
    now, ref = traces_mod.call_sequences(pc), traces_mod.call_sequences(pb)
    shift = logs_mod.transition_shift(now, ref, by="operation")
    if shift.height == 0:
        return
    noise = critical_z(shift.height)
    ends = pl.col("dst") == logs_mod.END
    stops = pl.when(ends).then(pl.col("z")).otherwise(-pl.col("z")).fill_nan(0.0)
    # A handler that now ends after a call (or at its start) more often stopped: its own fault, or
    # the answer of the callee it stopped after. One that only calls another service instead of the
    # usual one chose another branch: after a call, on that callee's answer (evidence about the
    # callee only); at its start, on its own input (another request mix, no evidence of a fault).
    top = (
        shift.with_columns(stops.alias("_stop"), ends.alias("_ends"))
        .filter(pl.col("_ends") | (pl.col("src") != traces_mod.START))
        .sort(["_ends", "_stop", "service", "src", "dst"], descending=[True, True, False, False, False])
        .filter(pl.col("_stop") >= EMIT_Z)
        .group_by("service", "src", maintain_order=True)
        .head(1)
    )
    for row in top.iter_rows(named=True):
        service, after = str(row["service"]), str(row["src"])
        roles = {"trace_flow.change": service} if row["_ends"] else {}
        if after != traces_mod.START:
            roles["trace_flow.callers"] = after
        result.add(
            Observation(
                detector="traces.call_flow",
                modality="traces",
                signal="trace_flow",
                service=service,
                peer=after if after != traces_mod.START else None,
                roles=roles,
                strength=float(row["_stop"]),
                noise=noise,
                baseline=round(float(row["base_p"]), 3),
                value=round(float(row["p"]), 3),
                peak=round(float(row["p"]), 3),
                unit="P(next call)",
                query=f"handlers of {service}: after {after} comes {row['dst']}",
                start=periods.start,
                end=periods.end,
                data={"next": str(row["dst"]), "n": int(row["n"]), "baseline_n": int(row["base_n"])},
            )
        )


def _statements(pc: pl.DataFrame, pb: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    """Statements (spans with `db.statement`) per calling service: slower than the same statement in
    the reference, or new and slower than the caller's statements were there."""
    if "attributes" not in pc.columns or "attributes" not in pb.columns:
        return

    def per_caller(frame: pl.DataFrame) -> pl.DataFrame:
        parents = frame.select("trace_id", pl.col("span_id").alias("parent_span_id"), pl.col("service").alias("caller"))
        return (
            frame.filter(has_key("db.statement"))
            .select("trace_id", "parent_span_id", "service", attr("db.statement").alias("statement"), "duration_ms")
            .join(parents, on=["trace_id", "parent_span_id"], how="inner")
            .filter(pl.col("caller") != pl.col("service"))
        )

    now, ref = per_caller(pc), per_caller(pb)
    if now.height == 0 or ref.height == 0:
        return
    keys = ["caller", "statement"]
    same = _median_stats(ref, keys, "duration_ms", "ref_")
    caller_wide = _median_stats(ref, ["caller"], "duration_ms", "ref_")
    stats = _median_stats(now, keys, "duration_ms", "").join(same, on=keys, how="left")
    stats = stats.join(caller_wide, on="caller", how="left", suffix="_caller").with_columns(
        pl.col("ref_n").is_null().alias("new"),
        pl.coalesce("ref_median", "ref_median_caller").alias("_ref_median"),
        pl.coalesce("ref_mad", "ref_mad_caller").alias("_ref_mad"),
    )
    stats = stats.filter((pl.col("n") >= MIN_CALLS) & pl.col("_ref_median").is_not_null()).with_columns(
        _robust_z(pl.col("median"), pl.col("_ref_median"), pl.col("_ref_mad")).alias("z")
    )
    if stats.height == 0:
        return
    result.measure("db_statement.slow", stats.get_column("caller").cast(pl.String).to_list())
    noise = noise_level(stats.get_column("z").to_list())
    best = (
        stats.sort(["z", "caller", "statement"], descending=[True, False, False])
        .group_by("caller", maintain_order=True)
        .head(1)
    )
    for row in best.filter(pl.col("z") >= EMIT_Z).iter_rows(named=True):
        caller = str(row["caller"])
        result.add(
            Observation(
                detector="traces.statements",
                modality="traces",
                signal="db_statement.slow",
                service=caller,
                strength=float(row["z"]),
                noise=noise,
                baseline=float(row["_ref_median"]),
                value=float(row["median"]),
                peak=float(row["median"]),
                unit="ms",
                query=f"spans with db.statement sent by {caller}",
                start=periods.start,
                end=periods.end,
                samples=[str(row["statement"])[:300]],
                data={"calls": int(row["n"]), "new_statement": bool(row["new"])},
            )
        )
