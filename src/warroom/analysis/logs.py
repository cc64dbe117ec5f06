"""Logs: template mining, per-service template rates against the baseline, new and error templates,
and the change in log-statement order (which statement follows which inside one request).

Template mining masks the variable parts of a message (ids, numbers, quoted values) with a fixed
set of regular expressions, columnar in Polars: on the data we measured it separates the same log
statements as Drain does, at a fraction of the cost. Code locations such as `Class#123` are kept,
because the line number is what tells two statements apart and is the code-region hint.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from warroom.analysis.frames import decoded
from warroom.analysis.surprise import burst_z

TEMPLATE_CHARS = 120  # long object dumps vary in their tail; the head names the statement
ERROR_LEVELS = ("ERROR", "FATAL", "CRITICAL", "SEVERE", "ALERT", "EMERG")
WARN_LEVELS = ("WARN", "WARNING")
EXCEPTION_RE = r"(?i)(exception|traceback|panic:|stack ?trace|\bthrow)"
ERROR_WORDS_RE = r"(?i)\b(error|fail(ed|ure|s)?|refused|timeout|timed out|unavailable)\b"
EXCEPTION_CLASS_RE = r"\b[A-Za-z_][\w$]*(?:Exception|Error)\b"
END = "<end>"
MIN_SOURCE = 5  # a statement seen fewer times than this says little about what follows it


def mine_templates(logs: pl.DataFrame) -> pl.DataFrame:
    """Add `template`, `severity` (0 info, 1 warning, 2 error) and `exception` columns."""
    masked = (
        pl.col("message")
        .str.replace_all(r"(?i)\b(trace_?id|span_?id)[:=]\s*\S+", "$1:<id>")
        .str.replace_all(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>")
        .str.replace_all(r"\b[0-9a-fA-F]{12,}\b", "<hex>")
        .str.replace_all(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?\S*", "<time>")
        .str.replace_all(r"(^|[^#\w.])-?\d+(\.\d+)?", "${1}<n>")
        .str.replace_all(r"\"[^\"]{0,200}\"|'[^']{0,200}'", "<str>")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.slice(0, TEMPLATE_CHARS)
    )
    level = pl.col("level").cast(pl.String).str.to_uppercase()
    exception = pl.col("message").str.contains(EXCEPTION_RE)
    # The head of a long exception line is often a framework's generic wrapper ("Servlet.service()
    # … threw exception"); the exception classes further on tell two different failures apart.
    classes = (
        pl.col("message")
        .str.extract_all(EXCEPTION_CLASS_RE)
        .list.unique(maintain_order=True)
        .list.head(3)
        .list.join(",")
    )
    masked = pl.when(exception & (classes.str.len_chars() > 0)).then(masked + " [" + classes + "]").otherwise(masked)
    severity = (
        pl.when(level.is_in(ERROR_LEVELS) | exception)
        .then(2)
        .when(level.is_in(WARN_LEVELS) | pl.col("message").str.contains(ERROR_WORDS_RE))
        .then(1)
        .otherwise(0)
    )
    return logs.with_columns(
        masked.alias("template"), severity.cast(pl.Int8).alias("severity"), exception.alias("exception")
    )


def dependency_named(services: list[str]) -> pl.Expr:
    """The other service a log line names, if any (else null): "No instances available for X",
    "connection refused: X:8080", "UnknownHostException: X". Such an error says the request failed
    on the way to X; it is not evidence of a defect in the code of the service that logs it."""
    names = sorted((s for s in services if len(s) >= 3), key=len, reverse=True)
    if not names:
        return pl.lit(None, pl.String)
    # Longest names first so that "a-b-service" is not read as "b-service"; a name must stand
    # alone (not be a part of a longer word) and must not be the logging service itself.
    pattern = r"(?:^|[^\w-])(" + "|".join(re.escape(n) for n in names) + r")(?:[^\w-]|$)"
    named = pl.col("message").str.extract(pattern, 1)
    return pl.when(named != pl.col("service")).then(named).otherwise(None)


def code_location(template: str) -> str | None:
    """The `Class#line` (or `file:line`) a log statement names, if any: the code-region hint."""
    for token in template.split():
        if "#" in token and token.rsplit("#", 1)[-1].isdigit():
            return token
    return None


def _two_proportion_z(k1: pl.Expr, n1: pl.Expr, k0: pl.Expr, n0: pl.Expr) -> pl.Expr:
    """z of the difference between proportions k1/n1 (current) and k0/n0 (baseline), pooled."""
    pooled = (k1 + k0 + 0.5) / (n1 + n0 + 1.0)
    se = (pooled * (1 - pooled) * (1 / n1 + 1 / n0)).sqrt()
    return (k1 / n1 - k0 / n0) / se


def template_shift(current: pl.DataFrame, baseline: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Per (service, template): counts, shares within the service, z of the share change, new flag.

    With `by` (a column of both frames, e.g. the caller) the z is stratified: the share is
    compared within each (service, by) and the strata are combined (Cochran-Mantel-Haenszel), so
    a change in the mix of callers does not read as a change in what the service logs, while a
    change seen in every caller's requests adds up."""
    keys = ["service", by] if by else ["service"]
    cur = current.group_by(*keys, "template").agg(
        pl.len().alias("count"),
        pl.col("severity").max(),
        pl.col("exception").any(),
        pl.col("message").first().alias("sample"),
    )
    base = baseline.group_by(*keys, "template").agg(pl.len().alias("base_count"))
    totals_c = current.group_by(*keys).agg(pl.len().alias("n"))
    totals_b = baseline.group_by(*keys).agg(pl.len().alias("base_n"))
    joined = (
        cur.join(base, on=[*keys, "template"], how="full", coalesce=True)
        .join(totals_c, on=keys, how="left")
        .join(totals_b, on=keys, how="left")
        .with_columns(
            pl.col("count").fill_null(0),
            pl.col("base_count").fill_null(0),
            pl.col("n").fill_null(0),
            pl.col("base_n").fill_null(0),
            pl.col("severity").fill_null(0),
            pl.col("exception").fill_null(False),
        )
    )
    if by:
        joined = cmh_shift(joined, ["service", "template"], first=["severity", "exception", "sample"])
        has_both = pl.lit(True)
        z = pl.col("z")
    else:
        has_both = (pl.col("n") > 0) & (pl.col("base_n") > 0)
        z = _two_proportion_z(
            pl.col("count").cast(pl.Float64),
            pl.col("n").cast(pl.Float64),
            pl.col("base_count").cast(pl.Float64),
            pl.col("base_n").cast(pl.Float64),
        )
    return joined.with_columns(
        pl.when(has_both).then(z).otherwise(0.0).alias("z"),
        ((pl.col("base_count") == 0) & (pl.col("count") > 0) & (pl.col("base_n") > 0)).alias("new"),
        (pl.col("count") / pl.col("n").clip(1, None)).alias("share"),
        (pl.col("base_count") / pl.col("base_n").clip(1, None)).alias("base_share"),
    )


def cmh_shift(strata: pl.DataFrame, keys: list[str], first: list[str] | None = None) -> pl.DataFrame:
    """Combine per-stratum 2×2 tables (count of n now, base_count of base_n before) into one z
    per `keys` (Cochran-Mantel-Haenszel). A stratum seen in only one period carries no
    information about change and adds nothing. Counts and totals are summed over the strata
    seen in both periods."""
    n = pl.col("n").cast(pl.Float64)
    n0 = pl.col("base_n").cast(pl.Float64)
    m1 = (pl.col("count") + pl.col("base_count")).cast(pl.Float64)
    total = n + n0
    both = (pl.col("n") > 0) & (pl.col("base_n") > 0)
    expected = n * m1 / total.clip(1.0, None)
    var = n * n0 * m1 * (total - m1) / (total.pow(2) * (total - 1.0)).clip(1.0, None)
    frame = strata.with_columns(
        pl.when(both).then(pl.col("count").cast(pl.Float64) - expected).otherwise(0.0).alias("_dev"),
        pl.when(both).then(var).otherwise(0.0).alias("_var"),
    )
    out = frame.group_by(keys).agg(
        pl.col("count").sum(),
        pl.col("base_count").sum(),
        pl.col("n").filter(both).sum().alias("n"),
        pl.col("base_n").filter(both).sum().alias("base_n"),
        pl.col("_dev").sum(),
        pl.col("_var").sum(),
        *[pl.col(c).first() for c in first or []],
    )
    return out.with_columns(
        pl.when(pl.col("_var") > 0).then(pl.col("_dev") / pl.col("_var").sqrt()).otherwise(0.0).alias("z")
    ).drop("_dev", "_var")


def with_span_id(logs: pl.DataFrame) -> pl.DataFrame:
    """Add a `span_id` column (null where unknown) from the line's attributes (`{"span_id": …}`),
    unless the frame already has one: it ties a log line to the span that logged it."""
    if "span_id" in logs.columns:
        return logs
    if "attributes" not in logs.columns:
        return logs.with_columns(pl.lit(None, pl.String).alias("span_id"))
    return logs.with_columns(pl.col("attributes").str.json_path_match("$.span_id").alias("span_id"))


def request_lines(logs: pl.DataFrame) -> pl.DataFrame:
    """Mined lines tied to their span (`mine_templates` + `with_span_id`), with only the columns
    the request-flow and template comparisons read: millions of lines are joined and regrouped."""
    lines = with_span_id(mine_templates(logs))
    keep = ["timestamp", "service", "message", "trace_id", "span_id", "template", "severity", "exception"]
    return decoded(lines.select([col for col in keep if col in lines.columns]))


def _transitions(frame: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Which statement follows which inside one request and service: within one span (one
    handler invocation) when lines carry span ids, else within one trace."""
    if "trace_id" not in frame.columns:
        return pl.DataFrame(schema={"service": pl.String, "_by": pl.String, "src": pl.String, "dst": pl.String})
    keyed = frame.filter(pl.col("trace_id").is_not_null() & (pl.col("trace_id") != ""))
    # A trace can hold several requests to the same service (a workflow calling it twice); the
    # span keeps their statements apart, so a change in the request mix is not a change in flow.
    span = pl.col("span_id").fill_null("") if "span_id" in keyed.columns else pl.lit("")
    return (
        keyed.lazy()  # lazy, so that only the columns used are sorted
        .sort("timestamp")
        .with_columns(span.alias("_span"))
        .with_columns(pl.col("template").shift(-1).over("trace_id", "_span", "service").fill_null(END).alias("dst"))
        .select("service", (pl.col(by) if by else pl.lit("")).alias("_by"), pl.col("template").alias("src"), "dst")
        .collect()
    )


def transition_shift(current: pl.DataFrame, baseline: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Per (service, src, dst): P(dst | src) now and in the baseline, and the z of the change.
    A statement that is no longer followed by its usual successor marks the code region where
    the request now leaves the normal path (an exception, an early return). With `by` (e.g. the
    caller) the change is stratified like `template_shift`'s: a branch taken for one caller's
    requests and not for another's does not read as a change when only the mix of callers changed."""
    keys = ["service", "_by", "src", "dst"]
    cur = _transitions(current, by).group_by(keys).agg(pl.len().alias("count"))
    base = _transitions(baseline, by).group_by(keys).agg(pl.len().alias("base_count"))
    if cur.height == 0 or base.height == 0:
        return pl.DataFrame(
            schema={
                "service": pl.String,
                "src": pl.String,
                "dst": pl.String,
                "count": pl.UInt32,
                "base_count": pl.UInt32,
                "n": pl.UInt32,
                "base_n": pl.UInt32,
                "p": pl.Float64,
                "base_p": pl.Float64,
                "z": pl.Float64,
            }
        )
    joined = cur.join(base, on=keys, how="full", coalesce=True).with_columns(
        pl.col("count").fill_null(0), pl.col("base_count").fill_null(0)
    )
    joined = joined.with_columns(
        pl.col("count").sum().over("service", "_by", "src").alias("n"),
        pl.col("base_count").sum().over("service", "_by", "src").alias("base_n"),
    )
    if by:
        joined = cmh_shift(joined, ["service", "src", "dst"])
    else:
        joined = joined.drop("_by").with_columns(
            _two_proportion_z(
                pl.col("count").cast(pl.Float64),
                pl.col("n").cast(pl.Float64),
                pl.col("base_count").cast(pl.Float64),
                pl.col("base_n").cast(pl.Float64),
            ).alias("z")
        )
    return joined.filter((pl.col("n") >= MIN_SOURCE) & (pl.col("base_n") >= MIN_SOURCE)).with_columns(
        (pl.col("count") / pl.col("n")).alias("p"),
        (pl.col("base_count") / pl.col("base_n")).alias("base_p"),
    )


def service_log_scores(
    templates: pl.DataFrame, transitions: pl.DataFrame, shares: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per service: the strongest evidence of changed logging.

    - `new_error`: occurrences of error templates that the baseline never showed (or whose share
      rose sharply), `new_error_z` its strength;
    - `flow_z`: the largest change in which statement follows which;
    - `share_z`: the largest change in a template's share of the service's lines (from `shares`,
      e.g. shares within each caller's requests, when given).
    """
    err = anomalous_errors(templates)
    err_scores = err.group_by("service").agg(
        pl.col("count").sum().alias("new_error"),
        pl.col("bz").max().alias("new_error_z"),
        pl.col("exception").any().alias("new_exception"),
    )
    share = (
        (shares if shares is not None else templates)
        .group_by("service")
        .agg(pl.col("z").abs().max().alias("share_z"), pl.col("count").sum().alias("lines"))
    )
    if transitions.height:
        flow = transitions.group_by("service").agg(pl.col("z").abs().max().alias("flow_z"))
        out = share.join(flow, on="service", how="left")
    else:
        out = share.with_columns(pl.lit(None, pl.Float64).alias("flow_z"))
    out = out.join(err_scores, on="service", how="left").with_columns(
        pl.col("flow_z").fill_null(0.0),
        pl.col("new_error").fill_null(0),
        pl.col("new_error_z").fill_null(0.0),
        pl.col("new_exception").fill_null(False),
    )
    return out


def anomalous_errors(templates: pl.DataFrame) -> pl.DataFrame:
    """Error templates that are new or surging against the baseline, with `bz`: how surprising
    their count is (Poisson tail against the baseline rate, as z)."""
    err = templates.filter((pl.col("severity") >= 2) & (pl.col("new") | (pl.col("z") > 3)))
    if err.height == 0:
        return err.with_columns(pl.lit(0.0).alias("bz"))
    count = err.get_column("count").cast(pl.Float64).to_numpy()
    n = err.get_column("n").cast(pl.Float64).to_numpy()
    expected = (
        (err.get_column("base_count").cast(pl.Float64).to_numpy() + 0.5)
        * n
        / np.maximum(err.get_column("base_n").cast(pl.Float64).to_numpy(), 1.0)
    )
    bz = burst_z(count, expected)
    return err.with_columns(pl.Series("bz", bz))
