"""Log evidence: new and surging error templates, changed request flow and template shares (compared
per caller), errors that name an unreachable dependency, and surges of well-known failure lines.

The statistics are `analysis.logs`': masked templates, Poisson tails for error templates against the
reference rate, Cochran-Mantel-Haenszel z for shares and for which statement follows which, stratified
by the caller on whose behalf a line ran (so that a change in who calls a service is not a change in
what it does). Each kind of comparison is its own test family with its own noise level.

Errors that name another service of the system ("No instances available for X", "connection refused:
X:8080") say the request failed on the way to X. The whole request is taken out of the logging
service's comparisons (its error and its changed statement order are not evidence of a defect in its
code). If the request holds an erroring span of X, X answered with the error and the line counts as
X's (template "reported by caller: …"); otherwise X never saw the request and the lines are evidence
that X could not be reached.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

import numpy as np
import polars as pl

from warroom.analysis import logs as logs_mod
from warroom.analysis import surprise
from warroom.analysis import traces as traces_mod
from warroom.analysis.diagnosis.detectors.result import DetectorResult
from warroom.analysis.diagnosis.evidence import Observation, critical_z
from warroom.analysis.diagnosis.periods import Periods

EMIT_Z = 1.0
SAMPLE_CHARS = 300


def detect(
    periods: Periods, known: Collection[str], patterns: Mapping[str, str]
) -> tuple[DetectorResult, pl.DataFrame | None]:
    """Log observations, and the (trace_id, service) keys of anomalous error lines (for the traces'
    deepest-error analysis)."""
    result = DetectorResult("logs")
    split = periods.split("logs")
    if split.during is None or split.during.height == 0:
        result.limitations.append("logs: none in the window, so code defects could only be seen through traces")
        return result, None
    if split.reference is None:
        result.limitations.append("logs: no reference (no baseline/ folder and nothing before the window)")
        return result, None
    if split.kind == "before-window":
        result.limitations.append("logs: the reference is the data before the window (no baseline/ folder)")
    _patterns(
        periods,
        _by_sender(split.during, periods.current.traces),
        _by_sender(split.reference, periods.reference_spans(split.kind)),
        patterns,
        known,
        result,
    )
    services = periods.services()
    ref_spans = periods.reference_spans(split.kind)
    tc, dep_cur, rep_cur = _without_dependency_errors(
        logs_mod.request_lines(split.during), services, periods.current.traces
    )
    tb, dep_base, rep_base = _without_dependency_errors(logs_mod.request_lines(split.reference), services, ref_spans)
    by = None
    if "trace_id" in tc.columns and periods.current.traces is not None and ref_spans is not None and ref_spans.height:
        tc = _with_caller(tc, periods.current.traces)
        tb = _with_caller(tb, ref_spans)
        by = "caller"
    else:
        result.limitations.append(
            "logs: not tied to spans of both periods, so log changes were not compared per caller"
        )
    if tc.get_column("span_id").null_count() == tc.height:
        result.limitations.append("logs: no span ids, so the request flow was followed per trace, not per handler")
    # Templates count the callee errors their callers reported; the request flow stays each
    # service's own statements.
    tc_all, tb_all = _with_reported(tc, rep_cur), _with_reported(tb, rep_base)
    templates = logs_mod.template_shift(tc_all, tb_all)
    shares = logs_mod.template_shift(tc_all, tb_all, by=by) if by else templates
    transitions = logs_mod.transition_shift(tc, tb, by=by)
    # An error line that says what failed (a pool wait, a TLS handshake, an OOM kill, a timeout, an
    # upstream's 5xx) is evidence of that failure (the pattern signals above), not of an unknown
    # defect in the code that logs it.
    known = "|".join(f"(?:{rx})" for rx in patterns.values())
    _errors(templates.filter(~pl.col("sample").fill_null("").str.contains(known)), periods, result)
    _shifts(shares, transitions, periods, result)
    if dep_cur.height:
        _unreachable(dep_cur, dep_base, tc.height, tb.height, periods, result)
    error_keys = None
    if "trace_id" in tc_all.columns:
        anomalous = logs_mod.anomalous_errors(templates).select("service", "template")
        error_keys = tc_all.join(anomalous, on=["service", "template"], how="semi").select("trace_id", "service")
    result.tests = templates.height + transitions.height
    return result, error_keys


def _errors(templates: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    """New or surging error templates per service: one observation for all of them, one for those
    with exception text and one for those without (a throw versus an error returned)."""
    errors = templates.filter(pl.col("severity") >= 2)
    if errors.height == 0:
        return
    count = errors.get_column("count").cast(pl.Float64).to_numpy()
    n = errors.get_column("n").cast(pl.Float64).to_numpy()
    base = errors.get_column("base_count").cast(pl.Float64).to_numpy()
    base_n = np.maximum(errors.get_column("base_n").cast(pl.Float64).to_numpy(), 1.0)
    bz = surprise.burst_z(count, (base + 0.5) * n / base_n)
    errors = errors.with_columns(pl.Series("bz", bz))
    noise = critical_z(len(bz))
    anomalous = errors.filter(pl.col("new") | (pl.col("z") > 3))
    for (service,), group in anomalous.group_by("service"):
        name = str(service)
        for signal, part in (
            ("log_error.new", group),
            ("log_exception.new", group.filter(pl.col("exception"))),
            ("log_error_only.new", group.filter(~pl.col("exception"))),
        ):
            if part.height == 0:
                continue
            top = part.sort(["bz", "count", "template"], descending=[True, True, False]).row(0, named=True)
            if top["bz"] < EMIT_Z:
                continue
            result.add(
                Observation(
                    detector="logs.error_templates",
                    modality="logs",
                    signal=signal,
                    service=name,
                    strength=float(top["bz"]),
                    noise=noise,
                    baseline=float(top["base_count"]),
                    value=float(top["count"]),
                    peak=float(top["count"]),
                    unit="lines",
                    query=f"service={name} template={top['template']!r}",
                    start=periods.start,
                    end=periods.end,
                    samples=[str(top["sample"])[:SAMPLE_CHARS]] if top["sample"] else [],
                    data={
                        "templates": part.height,
                        "lines": int(part.get_column("count").sum()),
                        "new": bool(top["new"]),
                        "code_location": logs_mod.code_location(top["template"] or ""),
                    },
                )
            )


def _shifts(shares: pl.DataFrame, transitions: pl.DataFrame, periods: Periods, result: DetectorResult) -> None:
    """Per service the strongest change of a template's share and of which statement follows which."""
    if shares.height:
        noise = critical_z(shares.height)
        top = _strongest(shares, ["service", "template"])
        for row in top.iter_rows(named=True):
            if abs(row["z"]) < EMIT_Z:
                continue
            result.add(
                Observation(
                    detector="logs.template_shares",
                    modality="logs",
                    signal="log_share.change",
                    service=str(row["service"]),
                    strength=abs(float(row["z"])),
                    noise=noise,
                    baseline=round(float(row["base_share"]), 4),
                    value=round(float(row["share"]), 4),
                    peak=round(float(row["share"]), 4),
                    unit="share of the service's lines",
                    query=f"service={row['service']} template={row['template']!r}",
                    start=periods.start,
                    end=periods.end,
                    data={"code_location": logs_mod.code_location(row["template"] or "")},
                )
            )
    if transitions.height:
        noise = critical_z(transitions.height)
        for row in _strongest(transitions, ["service", "src", "dst"]).iter_rows(named=True):
            if abs(row["z"]) < EMIT_Z:
                continue
            region = " → ".join(
                x for x in (logs_mod.code_location(row["src"]), logs_mod.code_location(row["dst"])) if x
            )
            result.add(
                Observation(
                    detector="logs.request_flow",
                    modality="logs",
                    signal="log_flow.change",
                    service=str(row["service"]),
                    strength=abs(float(row["z"])),
                    noise=noise,
                    baseline=round(float(row["base_p"]), 3),
                    value=round(float(row["p"]), 3),
                    peak=round(float(row["p"]), 3),
                    unit="P(next statement)",
                    query=f"service={row['service']} after {row['src']!r} comes {row['dst']!r}",
                    start=periods.start,
                    end=periods.end,
                    data={"code_region": region or None, "n": int(row["n"]), "baseline_n": int(row["base_n"])},
                )
            )


def _strongest(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    # names break ties, so that the same data always gives the same evidence
    return (
        frame.with_columns(pl.col("z").fill_nan(0.0).abs().alias("_abs"))
        .sort(["_abs", *keys], descending=[True, *([False] * len(keys))])
        .group_by("service", maintain_order=True)
        .head(1)
    )


def _unreachable(
    dep_cur: pl.DataFrame,
    dep_base: pl.DataFrame,
    lines: int,
    base_lines: int,
    periods: Periods,
    result: DetectorResult,
) -> None:
    """Errors in which services say they could not reach another one (no span of it in the
    request): evidence on the named service, its strength the Poisson tail of their count."""
    now = dep_cur.group_by("dependency").agg(
        pl.len().alias("count"),
        pl.col("service").mode().first().alias("caller"),
        pl.col("message").first().alias("sample"),
    )
    before = (
        {str(r[0]): int(r[1]) for r in dep_base.group_by("dependency").agg(pl.len()).iter_rows()}
        if dep_base.height
        else {}
    )
    counts = now.get_column("count").cast(pl.Float64).to_numpy()
    expected = np.asarray(
        [(before.get(str(d), 0) + 0.5) * lines / max(base_lines, 1) for d in now.get_column("dependency")]
    )
    bz = surprise.burst_z(counts, expected)
    noise = critical_z(len(periods.services()))
    for row, strength in zip(now.iter_rows(named=True), bz, strict=True):
        if strength < EMIT_Z:
            continue
        result.add(
            Observation(
                detector="logs.dependency_errors",
                modality="logs",
                signal="log_unreachable.up",
                service=str(row["dependency"]),
                peer=str(row["caller"]),
                strength=float(strength),
                noise=noise,
                baseline=float(before.get(str(row["dependency"]), 0)),
                value=float(row["count"]),
                peak=float(row["count"]),
                unit="lines",
                query=f"level>=ERROR message names {row['dependency']} (logged by {row['caller']})",
                start=periods.start,
                end=periods.end,
                samples=[str(row["sample"])[:SAMPLE_CHARS]],
            )
        )


def _patterns(
    periods: Periods,
    during: pl.DataFrame,
    reference: pl.DataFrame,
    patterns: Mapping[str, str],
    known: Collection[str],
    result: DetectorResult,
) -> None:
    """Surges of well-known failure lines (TLS, OOM kills, failed logins, integrity errors, pool
    waits, slow queries, scans, lock waits, timeouts) per service: a Poisson tail of the window's
    count against the reference rate, per line of the service logged."""
    wanted = {name: rx for name, rx in patterns.items() if f"log_pattern.{name}" in known}
    if not wanted:
        return

    def counts(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.lazy()
            .select(
                pl.col("service").cast(pl.String),
                *[pl.col("message").str.contains(rx).alias(name) for name, rx in wanted.items()],
            )
            .group_by("service")
            .agg(pl.len().alias("_lines"), *[pl.col(name).sum() for name in wanted])
            .collect()
        )

    now, before = counts(during), counts(reference)
    joined = now.join(before, on="service", how="left", suffix="_ref").fill_null(0)
    lines_ref = joined.get_column("_lines_ref").cast(pl.Float64).to_numpy()
    # The window's share of the reference, per line the service logged; for a service that logged
    # nothing in the reference (a database server that logs only its slow statements and lock
    # waits) per unit of time instead: its lines are then the very thing that changed.
    scale = np.where(
        lines_ref > 0,
        joined.get_column("_lines").cast(pl.Float64).to_numpy() / np.maximum(lines_ref, 1.0),
        _duration(during) / max(_duration(reference), 1.0),
    )
    strengths: dict[tuple[str, str], float] = {}
    for name in wanted:
        count = joined.get_column(name).cast(pl.Float64).to_numpy()
        expected = (joined.get_column(f"{name}_ref").cast(pl.Float64).to_numpy() + 0.5) * scale
        for service, strength in zip(joined.get_column("service"), surprise.burst_z(count, expected), strict=True):
            strengths[(str(service), name)] = float(strength)
    noise = critical_z(len(strengths))
    for (service, name), strength in sorted(strengths.items()):
        if strength < EMIT_Z:
            continue
        row = joined.filter(pl.col("service") == service).row(0, named=True)
        sample = (
            during.filter((pl.col("service").cast(pl.String) == service) & pl.col("message").str.contains(wanted[name]))
            .head(2)
            .get_column("message")
            .to_list()
        )
        result.add(
            Observation(
                detector="logs.patterns",
                modality="logs",
                signal=f"log_pattern.{name}",
                service=service,
                strength=strength,
                noise=noise,
                baseline=float(row[f"{name}_ref"]),
                value=float(row[name]),
                peak=float(row[name]),
                unit="lines",
                query=f"service={service} message ~ /{_short(wanted[name])}/",
                start=periods.start,
                end=periods.end,
                samples=[str(s)[:SAMPLE_CHARS] for s in sample],
            )
        )


def _statement_key(column: pl.Expr) -> pl.Expr:
    """A statement's text with its parameters and literals masked and its spacing and case
    normalised: PostgreSQL logs `$1` where the client's span says `%s`, `?` or the value."""
    masked = column.str.replace_all(r"'(?:[^']|'')*'|\$\d+|%\(\w+\)s|%s|\?|\b\d+(?:\.\d+)?\b", "?")
    return masked.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()


def _by_sender(lines: pl.DataFrame, spans: pl.DataFrame | None) -> pl.DataFrame:
    """A database server's lines about a statement (a lock wait, a slow statement, its error) moved
    to the one service whose client spans send that statement: the statement is that service's work,
    and its fault (a long transaction, a missing index) is that service's. A statement several
    services send, or none in view, stays the server's."""
    if spans is None or "attributes" not in lines.columns or "attributes" not in spans.columns:
        return lines
    statement = r"$['db.statement']"
    keyed = lines.with_columns(_statement_key(pl.col("attributes").str.json_path_match(statement)).alias("_statement"))
    if keyed.get_column("_statement").null_count() == keyed.height:
        return lines  # no line speaks of a statement: the spans need not be read
    senders = (
        spans.lazy()
        .filter(pl.col("attributes").str.contains("warroom.caller", literal=True))
        .select(
            _statement_key(
                pl.coalesce(
                    pl.col("attributes").str.json_path_match(r"$['db.query.text']"),
                    pl.col("attributes").str.json_path_match(statement),
                )
            ).alias("_statement"),
            pl.col("attributes").str.json_path_match(r"$['warroom.caller']").alias("_sender"),
        )
        .drop_nulls()
        .unique()
        .group_by("_statement")
        .agg(pl.col("_sender").first(), pl.len().alias("_senders"))
        .filter(pl.col("_senders") == 1)
        .collect()
    )
    if senders.height == 0:
        return lines
    joined = keyed.join(senders.drop("_senders"), on="_statement", how="left")
    return joined.with_columns(
        pl.coalesce(pl.col("_sender"), pl.col("service").cast(pl.String)).cast(lines.schema["service"]).alias("service")
    ).drop("_statement", "_sender")


def _duration(lines: pl.DataFrame) -> float:
    """Seconds from a frame's first line to its last."""
    first, last = lines.get_column("timestamp").min(), lines.get_column("timestamp").max()
    return (last - first).total_seconds() if isinstance(first, datetime) and isinstance(last, datetime) else 0.0


def _short(pattern: str) -> str:
    return pattern if len(pattern) <= 80 else pattern[:77] + "…"


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
    a dependency it did reach, re-attributed to that dependency). See the module's docstring."""
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
