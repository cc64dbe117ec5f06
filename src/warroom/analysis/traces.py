"""Traces: the service call graph, self time versus time in callees, caller/callee latency gaps
(network delay), and the direction of error propagation (the deepest erroring service)."""

from __future__ import annotations

import polars as pl

from warroom.analysis.frames import decoded

ERROR_STATUS = ("error", "ERROR", "STATUS_CODE_ERROR", "2")  # OTel status code 2 is ERROR
MIN_SPANS = 5


def prepare(spans: pl.DataFrame) -> pl.DataFrame:
    """Add duration, self time (duration minus the time of direct children) and an error flag. A span
    exported twice (the same trace and span id) counts once."""
    frame = (
        decoded(spans)
        .unique(["trace_id", "span_id"], keep="first", maintain_order=True)
        .with_columns(
            ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).alias("duration_ms")
        )
    )
    children = (
        frame.filter(pl.col("parent_span_id").is_not_null())
        .group_by("trace_id", "parent_span_id")
        .agg(pl.col("duration_ms").sum().alias("child_ms"), pl.len().alias("children"))
    )
    frame = frame.join(
        children,
        left_on=["trace_id", "span_id"],
        right_on=["trace_id", "parent_span_id"],
        how="left",
    ).with_columns(
        (pl.col("duration_ms") - pl.col("child_ms").fill_null(0.0)).clip(0.0, None).alias("self_ms"),
        pl.col("children").fill_null(0),
    )
    if "status" in frame.columns:
        error = pl.col("status").cast(pl.String).is_in(ERROR_STATUS).fill_null(False)
    else:
        error = pl.lit(False)
    return frame.with_columns(error.alias("error"))


def entry_callers(spans: pl.DataFrame, max_depth: int = 12) -> pl.DataFrame:
    """Per span: `caller`, the service of its nearest ancestor span in another service ("" for a
    request that entered from outside). It says on whose behalf a handler ran, so that a change
    in who calls a service can be told apart from a change in what the service does."""
    slim = spans.select("trace_id", "span_id", "parent_span_id", "service").unique(["trace_id", "span_id"])
    parents = slim.select(
        "trace_id",
        pl.col("span_id").alias("_anc"),
        pl.col("parent_span_id").alias("_next"),
        pl.col("service").alias("_anc_service"),
    )
    todo = slim.select("trace_id", "span_id", "service", pl.col("parent_span_id").alias("_anc"))
    done: list[pl.DataFrame] = []
    for _ in range(max_depth):
        if todo.height == 0:
            break
        step = todo.join(parents, on=["trace_id", "_anc"], how="left")
        other = pl.col("_anc_service").is_not_null() & (pl.col("_anc_service") != pl.col("service"))
        done.append(
            step.filter(other).select("trace_id", "span_id", pl.col("_anc_service").cast(pl.String).alias("caller"))
        )
        # The parent is not (or no longer) in the data: the request entered here.
        done.append(
            step.filter(pl.col("_anc_service").is_null()).select("trace_id", "span_id", pl.lit("").alias("caller"))
        )
        todo = step.filter(pl.col("_anc_service") == pl.col("service")).select(
            "trace_id", "span_id", "service", pl.col("_next").alias("_anc")
        )
    done.append(todo.select("trace_id", "span_id", pl.lit("").alias("caller")))
    return pl.concat(done)


def edges(prepared: pl.DataFrame) -> pl.DataFrame:
    """Cross-service calls: caller, callee, the callee span's duration and the gap between the
    caller's span and the callee's (time spent on the wire and in queues)."""
    parents = prepared.select(
        "trace_id",
        pl.col("span_id").alias("parent_span_id"),
        pl.col("service").alias("caller"),
        pl.col("duration_ms").alias("parent_ms"),
        pl.col("children").alias("siblings"),
    )
    joined = prepared.join(parents, on=["trace_id", "parent_span_id"], how="inner")
    return joined.filter(pl.col("caller") != pl.col("service")).select(
        "trace_id",
        "caller",
        pl.col("service").alias("callee"),
        "duration_ms",
        # With one child the caller's span is the client side of this call: its excess is the gap.
        pl.when(pl.col("siblings") == 1)
        .then((pl.col("parent_ms") - pl.col("duration_ms")).clip(0.0, None))
        .otherwise(None)
        .alias("gap_ms"),
        "error",
    )


def call_graph(prepared: pl.DataFrame) -> dict[str, list[str]]:
    """caller → sorted callees, from the spans themselves."""
    e = edges(prepared).select("caller", "callee").unique()
    graph: dict[str, list[str]] = {}
    for caller, callee in e.iter_rows():
        graph.setdefault(caller, []).append(callee)
    return {k: sorted(v) for k, v in graph.items()}


def service_latency(current: pl.DataFrame, baseline: pl.DataFrame) -> pl.DataFrame:
    """Per service: median/p90 self time now and in the baseline, and a robust shift score
    (the change of the p90 in units of the baseline's spread)."""

    def stats(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
        return frame.group_by("service").agg(
            pl.len().alias(f"{prefix}spans"),
            pl.col("self_ms").median().alias(f"{prefix}self_p50"),
            pl.col("self_ms").quantile(0.9).alias(f"{prefix}self_p90"),
            pl.col("duration_ms").quantile(0.9).alias(f"{prefix}dur_p90"),
            (pl.col("self_ms") - pl.col("self_ms").median()).abs().median().alias(f"{prefix}self_mad"),
        )

    out = stats(current, "").join(stats(baseline, "base_"), on="service", how="inner")
    scale = pl.max_horizontal(
        pl.col("base_self_mad") * 1.4826, pl.col("base_self_p50") * 0.1, pl.lit(0.5)
    )  # 0.5 ms: below that a self time is measurement noise
    return out.filter((pl.col("spans") >= MIN_SPANS) & (pl.col("base_spans") >= MIN_SPANS)).with_columns(
        ((pl.col("self_p50") - pl.col("base_self_p50")) / scale).alias("self_z"),
        (pl.col("self_p90") / pl.col("base_self_p90").clip(0.01, None)).alias("self_ratio"),
    )


def edge_gaps(current: pl.DataFrame, baseline: pl.DataFrame, exclude_callers: set[str] | None = None) -> pl.DataFrame:
    """Per callee: the median extra time on calls into it (caller span minus callee span), now
    versus the baseline. A delayed pod adds the same latency to every call into it (and to every
    call it makes: `exclude_callers` leaves out the calls made by given services)."""
    skip = sorted(exclude_callers or ())

    def stats(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
        e = edges(frame).filter(pl.col("gap_ms").is_not_null() & ~pl.col("caller").is_in(skip))
        return e.group_by("callee").agg(
            pl.len().alias(f"{prefix}calls"),
            pl.col("gap_ms").median().alias(f"{prefix}gap_p50"),
            (pl.col("gap_ms") - pl.col("gap_ms").median()).abs().median().alias(f"{prefix}gap_mad"),
        )

    out = stats(current, "").join(stats(baseline, "base_"), on="callee", how="inner")
    scale = pl.max_horizontal(pl.col("base_gap_mad") * 1.4826, pl.col("base_gap_p50") * 0.1, pl.lit(0.5))
    return (
        out.filter((pl.col("calls") >= MIN_SPANS) & (pl.col("base_calls") >= MIN_SPANS))
        .with_columns(
            (pl.col("gap_p50") - pl.col("base_gap_p50")).alias("gap_delta_ms"),
            ((pl.col("gap_p50") - pl.col("base_gap_p50")) / scale).alias("gap_z"),
        )
        .rename({"callee": "service"})
    )


def deepest_errors(prepared: pl.DataFrame, error_keys: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per service: in how many traces it is the deepest erroring service (no erroring service
    below it in the same trace), and when each of those traces first erred there (`times`, sorted).
    Errors come from span status and, if given, from (trace_id, service) pairs that logged errors."""
    marked = prepared
    if error_keys is not None and error_keys.height:
        keys = error_keys.select("trace_id", "service").unique().with_columns(pl.lit(True).alias("_logged"))
        marked = marked.join(keys, on=["trace_id", "service"], how="left").with_columns(
            (pl.col("error") | pl.col("_logged").fill_null(False)).alias("error")
        )
    erroring = marked.filter(pl.col("error"))
    if erroring.height == 0:
        return pl.DataFrame(
            schema={"service": pl.String, "deepest": pl.UInt32, "erroring": pl.UInt32, "times": pl.List(pl.Datetime)}
        )
    # An erroring service is not the deepest in a trace if it calls, in that trace, a service that
    # also errs there.
    e = edges(marked).select("trace_id", "caller", "callee").unique()
    err_pairs = erroring.group_by("trace_id", "service").agg(pl.col("start_time").min())
    callee_errs = e.join(err_pairs.rename({"service": "callee"}), on=["trace_id", "callee"], how="inner").filter(
        pl.col("caller") != pl.col("callee")
    )
    shadowed = callee_errs.select("trace_id", pl.col("caller").alias("service")).unique()
    deepest = err_pairs.join(shadowed, on=["trace_id", "service"], how="anti")
    counts = deepest.group_by("service").agg(pl.len().alias("deepest"), pl.col("start_time").sort().alias("times"))
    total = err_pairs.group_by("service").agg(pl.len().alias("erroring"))
    return total.join(counts, on="service", how="left").with_columns(pl.col("deepest").fill_null(0))


def traffic_shift(current: pl.DataFrame, baseline: pl.DataFrame) -> pl.DataFrame:
    """Per service: its share of all spans now versus in the baseline (a service whose calls stop
    or multiply changes share even when its latency does not)."""
    cur = current.group_by("service").agg(pl.len().alias("spans"))
    base = baseline.group_by("service").agg(pl.len().alias("base_spans"))
    n, n0 = max(current.height, 1), max(baseline.height, 1)
    return (
        cur.join(base, on="service", how="full", coalesce=True)
        .with_columns(pl.col("spans").fill_null(0), pl.col("base_spans").fill_null(0))
        .with_columns(((pl.col("spans") / n + 1e-4) / (pl.col("base_spans") / n0 + 1e-4)).log().alias("log_ratio"))
    )


def call_gaps(prepared: pl.DataFrame) -> pl.DataFrame:
    """Per cross-service call: caller, callee, the time around the callee's span that the caller
    spends neither in it nor in its other calls (request transit before it plus response transit
    after it), and the caller span's duration. Works whether or not the caller records a client span
    per call: with one, the client span has this call as its only child and the gap is its excess
    over the callee's span."""
    parents = prepared.select(
        "trace_id",
        pl.col("span_id").alias("parent_span_id"),
        pl.col("service").alias("caller"),
        pl.col("start_time").alias("_p_start"),
        pl.col("end_time").alias("_p_end"),
    )
    children = (
        prepared.select("trace_id", "parent_span_id", pl.col("service").alias("callee"), "start_time", "end_time")
        .drop_nulls("parent_span_id")
        .join(parents, on=["trace_id", "parent_span_id"], how="inner")
        .sort("trace_id", "parent_span_id", "start_time")
        .with_columns(
            pl.col("end_time").cum_max().shift(1).over("trace_id", "parent_span_id").alias("_prev_end"),
            pl.col("start_time").shift(-1).over("trace_id", "parent_span_id").alias("_next_start"),
        )
        .with_columns(
            pl.max_horizontal(pl.col("_prev_end").fill_null(pl.col("_p_start")), pl.col("_p_start")).alias("_lead"),
            pl.min_horizontal(pl.col("_next_start").fill_null(pl.col("_p_end")), pl.col("_p_end")).alias("_trail"),
        )
        .filter(pl.col("caller") != pl.col("callee"))
    )
    gap_us = (pl.col("start_time") - pl.col("_lead")).dt.total_microseconds().clip(lower_bound=0) + (
        pl.col("_trail") - pl.col("end_time")
    ).dt.total_microseconds().clip(lower_bound=0)
    caller_ms = (pl.col("_p_end") - pl.col("_p_start")).dt.total_microseconds() / 1000.0
    return children.select(
        "trace_id", "caller", "callee", (gap_us / 1000.0).alias("gap_ms"), caller_ms.alias("caller_ms")
    )


def handlers(prepared: pl.DataFrame, max_depth: int = 12) -> pl.DataFrame:
    """Per span: `handler`, the span id of the nearest ancestor-or-self that entered its service (its
    parent is in another service or absent): the one handler invocation the span belongs to."""
    slim = prepared.select("trace_id", "span_id", "parent_span_id", "service")
    parent_service = slim.select(
        "trace_id", pl.col("span_id").alias("parent_span_id"), pl.col("service").alias("_parent_service")
    )
    marked = slim.join(parent_service, on=["trace_id", "parent_span_id"], how="left").with_columns(
        pl.when(pl.col("_parent_service").is_null() | (pl.col("_parent_service") != pl.col("service")))
        .then(pl.col("span_id"))
        .otherwise(None)
        .alias("handler")
    )
    done = [marked.filter(pl.col("handler").is_not_null()).select("trace_id", "span_id", "handler")]
    todo = marked.filter(pl.col("handler").is_null()).select(
        "trace_id", "span_id", pl.col("parent_span_id").alias("_up")
    )
    up = marked.select("trace_id", pl.col("span_id").alias("_up"), pl.col("handler").alias("_h"), "parent_span_id")
    for _ in range(max_depth):
        if todo.height == 0:
            break
        step = todo.join(up, on=["trace_id", "_up"], how="inner")
        done.append(
            step.filter(pl.col("_h").is_not_null()).select("trace_id", "span_id", pl.col("_h").alias("handler"))
        )
        todo = step.filter(pl.col("_h").is_null()).select("trace_id", "span_id", pl.col("parent_span_id").alias("_up"))
    return pl.concat(done)


START = "<start>"


def call_sequences(prepared: pl.DataFrame) -> pl.DataFrame:
    """The calls each handler invocation makes to other services, as "lines" the request-flow
    comparison of `analysis.logs` reads: one row per call (template = the callee) plus a `<start>`
    row per handler, with service = the handler's service, span_id = the handler, and `operation` =
    the handler's operation (the stratum: calls of different endpoints are not compared)."""
    owner = handlers(prepared)
    spans = prepared.select("trace_id", "span_id", "parent_span_id", "service", "operation", "start_time")
    entries = spans.join(owner, on=["trace_id", "span_id"]).filter(pl.col("span_id") == pl.col("handler"))
    starts = entries.select(
        "trace_id",
        pl.col("span_id"),
        "service",
        "operation",
        # a microsecond early: the handler's first call may start on the same tick
        (pl.col("start_time") - pl.duration(microseconds=1)).alias("timestamp"),
        pl.lit(START).alias("template"),
    )
    caller_handler = owner.select("trace_id", pl.col("span_id").alias("parent_span_id"), pl.col("handler").alias("_ch"))
    ops = entries.select(
        "trace_id", pl.col("span_id").alias("_ch"), pl.col("operation").alias("_op"), pl.col("service").alias("_cs")
    )
    calls = (
        entries.join(caller_handler, on=["trace_id", "parent_span_id"], how="inner")
        .join(ops, on=["trace_id", "_ch"], how="inner")
        .filter(pl.col("_cs") != pl.col("service"))
        .select(
            "trace_id",
            pl.col("_ch").alias("span_id"),
            pl.col("_cs").alias("service"),
            pl.col("_op").alias("operation"),
            pl.col("start_time").alias("timestamp"),
            pl.col("service").alias("template"),
        )
    )
    return pl.concat([starts, calls], how="vertical_relaxed")
