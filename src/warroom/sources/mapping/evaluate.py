"""Mapping rules evaluated over raw samples offline, with the meaning their PromQL has live.

Every node yields, per key (service, instance) and grid point, one value: the series a leaf selects
are keyed by the label that names their service (the rule's own `service_label`, else the
configured one, else the conventions of sources/raw/labels.py: the first present) and the rule's
instance label, then aggregated; histogram buckets are summed by key and `le` before the quantile;
a ratio needs a non-zero denominator and counts an absent numerator as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from warroom.sources.mapping.quantile import quantile, ranked, without_inf
from warroom.sources.mapping.rules import Aggregate, Node, Quantile, Ratio, Rule, Series, required
from warroom.sources.mapping.samples import Samples
from warroom.sources.mapping.selector import Selector
from warroom.sources.mapping.series_ops import Grid, per_series

KEYS = ["service", "instance"]
KEYED_SCHEMA = pl.Schema({"service": pl.String(), "instance": pl.String(), "g": pl.Int64(), "value": pl.Float64()})


@dataclass(frozen=True)
class RankedBuckets:
    """A histogram's buckets ranked for its quantiles by an integer `key` and grid point (not the
    service and instance text: grouping and sorting every bucket sample by text was the costly
    part), the key's service and instance, and what could not be used."""

    buckets: pl.DataFrame
    keys: pl.DataFrame  # key, service, instance
    problems: list[str]


@dataclass
class Evaluated:
    """One rule's series (service, instance, g, value), the labels that named their services, and
    what it could not use."""

    frame: pl.DataFrame
    service_labels: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def service_columns(series: pl.DataFrame, candidates: tuple[str, ...]) -> tuple[pl.Expr, pl.Expr]:
    """The service of each series (first candidate label present and non-empty) and that label's name."""
    present = [c for c in candidates if c in series.columns]
    if not present:
        return pl.lit(None, dtype=pl.String), pl.lit(None, dtype=pl.String)
    named = [pl.when(pl.col(c).fill_null("") != "") for c in present]
    service = pl.coalesce([w.then(pl.col(c)) for w, c in zip(named, present, strict=True)])
    label = pl.coalesce([w.then(pl.lit(c)) for w, c in zip(named, present, strict=True)])
    return service, label


class Evaluator:
    def __init__(self, samples: Samples, grid: Grid, service_labels: tuple[str, ...], origin: str) -> None:
        self.samples = samples
        self.points = samples.points.lazy()
        self.grid = grid
        self.service_labels = service_labels
        self.origin = origin
        self.columns = set(samples.series.columns)
        self.names = set(samples.series.get_column("metric").unique().to_list())
        self._per_series: dict[tuple[str, str], pl.DataFrame] = {}
        self._ranked: dict[tuple[Selector, tuple[str, ...] | None, str | None], RankedBuckets] = {}

    def _keys(self, selector: Selector, rule: Rule, evaluated: Evaluated, extra: tuple[str, ...] = ()) -> pl.DataFrame:
        """sid, service, instance (and `extra` labels) of the series a selector picks for a rule."""
        series = self.samples.series.filter(selector.expression(self.columns))
        if series.height == 0:
            return pl.DataFrame(schema={"sid": pl.UInt32(), "service": pl.String(), "instance": pl.String()})
        candidates = rule.service_label or self.service_labels
        service, label = service_columns(series, candidates)
        instance = rule.instance_label
        keyed = series.select(
            "sid",
            service.alias("service"),
            label.alias("service_label"),
            (pl.col(instance) if instance and instance in self.columns else pl.lit(None, dtype=pl.String)).alias(
                "instance"
            ),
            *(pl.col(name) if name in self.columns else pl.lit(None, dtype=pl.String).alias(name) for name in extra),
        )
        unnamed = keyed.filter(pl.col("service").is_null()).height
        if unnamed:
            evaluated.problems.append(
                f"{self.origin}: {unnamed} series of {selector.metric} carry no label naming a service "
                f"(looked for {', '.join(candidates)}): not used for {rule.record}; set [sources] service_label"
            )
        named = keyed.filter(pl.col("service").is_not_null())
        evaluated.service_labels.extend(
            label
            for label in named.get_column("service_label").unique().sort().to_list()
            if label not in evaluated.service_labels
        )
        return named.drop("service_label")

    def _series(self, series: Series, keys: pl.DataFrame) -> pl.LazyFrame:
        """The operation over every series of the selector's metric, computed once per metric and
        kind (the p50, p95 and p99 of a histogram, an error ratio and its request rate share them)."""
        cached = self._per_series.get((series.kind, series.selector.metric))
        if cached is None:
            sids = self.samples.series.filter(pl.col("metric") == series.selector.metric).get_column("sid")
            points = self.points.filter(pl.col("sid").is_in(sids.implode()))
            cached = self._per_series[(series.kind, series.selector.metric)] = per_series(
                points, series.kind, self.grid
            ).collect()
        return cached.lazy().join(keys.lazy(), on="sid")

    def _node(self, node: Node, rule: Rule, evaluated: Evaluated) -> pl.LazyFrame:
        if isinstance(node, Aggregate):
            keys = self._keys(node.of.selector, rule, evaluated)
            if keys.height == 0:
                return pl.LazyFrame(schema=KEYED_SCHEMA)
            values = self._series(node.of, keys)
            how = pl.len().cast(pl.Float64) if node.how == "count" else getattr(pl.col("value"), node.how)()
            return values.group_by([*KEYS, "g"]).agg(how.alias("value"))
        if isinstance(node, Quantile):
            return self._quantile(node, rule, evaluated)
        if isinstance(node, Ratio):
            numerator = self._node(node.numerator, rule, evaluated)
            denominator = self._node(node.denominator, rule, evaluated).rename({"value": "denominator"})
            joined = denominator.filter(pl.col("denominator") != 0).join(
                numerator, on=[*KEYS, "g"], how="left" if node.absent_is_zero else "inner", nulls_equal=True
            )
            return joined.select(*KEYS, "g", (pl.col("value").fill_null(0.0) / pl.col("denominator")).alias("value"))
        return self._node(node.of, rule, evaluated).with_columns(pl.col("value") * node.factor)

    def _quantile(self, node: Quantile, rule: Rule, evaluated: Evaluated) -> pl.LazyFrame:
        cache = (node.buckets, rule.service_label, rule.instance_label)
        if cache not in self._ranked:
            self._ranked[cache] = self._ranked_buckets(node, rule, evaluated)
        ranked_buckets = self._ranked[cache]
        # said once per histogram (every quantile of it has the same problem), not once per record
        evaluated.problems.extend(f"{p}: no quantile of it derived there" for p in ranked_buckets.problems)
        values = quantile(node.q, ranked_buckets.buckets, ["key", "g"])
        return values.join(ranked_buckets.keys.lazy(), on="key").select(*KEYS, "g", "value")

    def _ranked_buckets(self, node: Quantile, rule: Rule, evaluated: Evaluated) -> RankedBuckets:
        """The bucket rates of a histogram summed by key and bound, ranked for its quantiles, and
        what could not be used (series with no numeric bound, keys with no +Inf bucket)."""
        keys = self._keys(node.buckets, rule, evaluated, extra=("le",))
        if keys.height == 0:
            empty = pl.LazyFrame(
                schema={"key": pl.UInt32(), "g": pl.Int64(), "le": pl.Float64(), "value": pl.Float64()}
            )
            return RankedBuckets(ranked(empty, ["key", "g"]), pl.DataFrame(schema=KEYED_SCHEMA).select(KEYS), [])
        keys = keys.with_columns(
            pl.col("le").str.strip_chars().cast(pl.Float64, strict=False),
            pl.struct(KEYS).rank("dense").cast(pl.UInt32).alias("key"),
        )
        problems = []
        bad_le = keys.filter(pl.col("le").is_null()).height
        if bad_le:
            problems.append(f"{self.origin}: {bad_le} series of {node.buckets.metric} without a numeric le label")
        missing = without_inf(keys.lazy(), KEYS).collect()
        if missing.height:
            shown = ", ".join(sorted({str(s) for s in missing.get_column("service")})[:5])
            problems.append(
                f"{self.origin}: histogram {node.buckets.metric} has no +Inf bucket for {missing.height} "
                f"service/instance(s) ({shown})"
            )
        buckets = self._series(Series("rate", node.buckets), keys.filter(pl.col("le").is_not_null()))
        named = keys.select("key", *KEYS).unique("key")
        return RankedBuckets(ranked(buckets.select("key", "g", "le", "value"), ["key", "g"]), named, problems)

    def plan(self, rule: Rule) -> tuple[pl.LazyFrame | None, Evaluated]:
        """A rule's series as a query not yet run (None when the series it needs are absent)."""
        evaluated = Evaluated(pl.DataFrame(schema=KEYED_SCHEMA))
        if not required(rule.expr) <= self.names:
            return None, evaluated
        frame = self._node(rule.expr, rule, evaluated).filter(pl.col("value").is_finite())
        return frame.select(*KEYS, "g", "value").sort(*KEYS, "g"), evaluated

    def rules(self, rules: list[Rule]) -> list[Evaluated]:
        """Every rule evaluated, their queries run together (polars shares and parallelises them)."""
        planned = [self.plan(rule) for rule in rules]
        runnable = [(query, evaluated) for query, evaluated in planned if query is not None]
        for frame, (_, evaluated) in zip(pl.collect_all([q for q, _ in runnable]), runnable, strict=True):
            evaluated.frame = frame
        return [evaluated for _, evaluated in planned]
