"""Raw samples → the canonical metrics the analyses read: screened, mapped by the rules, the rest
analysed by name; with the PromQL of every derived series and what could not be used."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from warroom.sources.mapping.evaluate import Evaluated, Evaluator
from warroom.sources.mapping.kinds import MetricKind, metric_kinds
from warroom.sources.mapping.promql import Ranges, alternative, duration, keys_for, record_query
from warroom.sources.mapping.resolution import quantile_bounds, with_resolution
from warroom.sources.mapping.rules import Rule, RuleSet
from warroom.sources.mapping.samples import Samples
from warroom.sources.mapping.screen import screen
from warroom.sources.mapping.series_ops import Grid
from warroom.sources.mapping.unmapped import CANONICAL, derive_unmapped
from warroom.sources.raw.labels import SERVICE_LABELS

DEFAULT_STEP = timedelta(seconds=15)  # when no series has two samples to tell its interval
WINDOW_STEPS = 4  # a rate's window spans four sampling intervals, as Prometheus advises


@dataclass
class DerivedRecord:
    """One canonical series derived by the rules: which rule sets gave it, and its PromQL."""

    record: str
    rule_sets: list[str]
    promql: str
    services: list[str]
    frame: pl.DataFrame  # canonical rows


@dataclass
class Derivation:
    records: list[DerivedRecord]
    unmapped: pl.DataFrame  # canonical rows of the series no rule reads
    unmapped_names: list[str]
    grid: Grid
    kinds: dict[str, MetricKind]
    screened_points: int  # samples left once the unusable ones were dropped
    limitations: list[str] = field(default_factory=list)

    def frames(self) -> list[pl.DataFrame]:
        return [*(r.frame for r in self.records), *([self.unmapped] if self.unmapped.height else [])]


HISTOGRAM_PARTS = ("_bucket", "_sum", "_count", "_created")


def family(name: str) -> set[str]:
    """A name and the histogram or summary family it may belong to: a rule that reads a
    histogram's buckets or count has read its other series too (they are not unmapped)."""
    return {name, *(name.removesuffix(part) for part in HISTOGRAM_PARTS if name.endswith(part))}


def grid_of(samples: Samples, step: timedelta | None = None, window: timedelta | None = None) -> Grid:
    """The evaluation grid: the samples' typical interval (median over series of each one's median
    spacing), or the step given; the rate window four steps, or the window given."""
    spacing = step.total_seconds() * 1e6 if step is not None else None
    if spacing is None:
        spacing = (
            samples.points.lazy()
            .group_by("sid")
            .agg(pl.col("timestamp").diff().dt.total_microseconds().median().alias("d"))
            .select(pl.col("d").median())
            .collect()
            .item()
        )
    measured = bool(spacing)
    step_us = max(round(spacing / 1000.0) * 1000, 1000) if spacing else int(DEFAULT_STEP.total_seconds() * 1e6)
    window_us = int(window.total_seconds() * 1e6) if window else WINDOW_STEPS * step_us
    return Grid(step_us, window_us, measured=measured)


def _canonical(frame: pl.DataFrame, record: str) -> pl.DataFrame:
    return frame.select(
        pl.col("g").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp"),
        "service",
        pl.lit(record).alias("metric"),
        "value",
        "instance",
    )


def _first_alternative(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Each service's series at each time from the first alternative that has it (PromQL's `or on(service)`)."""
    if len(frames) == 1:
        return frames[0]
    ranked = pl.concat([f.with_columns(pl.lit(i).alias("alternative")) for i, f in enumerate(frames)])
    first = pl.col("alternative") == pl.col("alternative").min().over("service", "g")
    return ranked.filter(first).drop("alternative")


def _records(
    evaluator: Evaluator, rule_sets: tuple[RuleSet, ...], candidates: tuple[str, ...], ranges: Ranges
) -> tuple[list[DerivedRecord], set[str], list[str]]:
    """Every record some rule derived (the first alternative wins per service and time),
    the raw names those rules read, and their problems."""
    found: dict[str, list[tuple[RuleSet, Rule, Evaluated]]] = {}
    used: set[str] = set()
    problems: list[str] = []
    every = [(rule_set, rule) for rule_set in rule_sets for rule in rule_set.rules]
    for (rule_set, rule), evaluated in zip(every, evaluator.rules([rule for _, rule in every]), strict=True):
        problems.extend(evaluated.problems)
        if evaluated.frame.height:
            found.setdefault(rule.record, []).append((rule_set, rule, evaluated))
            used.update(*(family(s.metric) for s in rule.selectors()))
    records = []
    for record, alternatives in found.items():
        frame = _first_alternative([e.frame for _, _, e in alternatives])
        queries = [
            alternative(rule, keys_for(rule, label, rule.service_label or candidates), ranges)
            for _, rule, evaluated in alternatives
            for label in evaluated.service_labels
        ]
        records.append(
            DerivedRecord(
                record=record,
                rule_sets=list(dict.fromkeys(rs.name for rs, _, _ in alternatives)),
                promql=record_query(record, queries),
                services=sorted(frame.get_column("service").unique().to_list()),
                frame=_canonical(frame, record),
            )
        )
    return records, used, list(dict.fromkeys(problems))


def _single_samples(samples: Samples, kinds: dict[str, MetricKind], origin: str) -> list[str]:
    """A counter or bucket series with one sample has no rate: say so rather than show nothing."""
    cumulative = [name for name, kind in kinds.items() if kind in ("counter", "bucket")]
    counts = samples.points.group_by("sid").len()
    # (series the screening emptied were named there)
    single = samples.series.filter(pl.col("metric").is_in(cumulative)).join(counts, on="sid")
    alone = single.filter(pl.col("len") == 1).height
    if not alone:
        return []
    return [
        f"{origin}: {alone} counter or histogram series with one sample: no rate derived from them "
        "(a rate needs two samples of a series in the same file)"
    ]


def derive(
    samples: Samples,
    rule_sets: tuple[RuleSet, ...],
    origin: str,
    *,
    service_label: str | None = None,
) -> Derivation:
    """Screen the samples, derive every record the rules can, and keep the rest by name."""
    kinds = metric_kinds(samples)
    samples, limitations = screen(samples, kinds, origin)
    grid = grid_of(samples)
    candidates = (service_label,) if service_label else SERVICE_LABELS
    evaluator = Evaluator(samples, grid, candidates, origin)
    ranges = Ranges(duration(grid.window_us), duration(grid.step_us))
    records, used, problems = _records(evaluator, rule_sets, candidates, ranges)
    bounds = quantile_bounds(samples.series, rule_sets, candidates)
    for record in records:
        record.frame = with_resolution(record.frame, bounds)
    limitations.extend(problems)
    limitations.extend(_single_samples(samples, kinds, origin))
    recorded = {r.record for r in records}
    unmapped: dict[str, MetricKind] = {
        name: kind
        for name, kind in kinds.items()
        if kind != "meta" and not family(name) & used and name not in recorded
    }
    frame, unnamed = derive_unmapped(samples, unmapped, grid, candidates)
    if unnamed:
        limitations.append(
            f"{origin}: {unnamed} unmapped series carry no label naming a service "
            f"(looked for {', '.join(candidates)}): not used; set [sources] service_label"
        )
    return Derivation(
        records=records,
        unmapped=frame if frame.height else pl.DataFrame(schema=CANONICAL),
        unmapped_names=sorted(unmapped),
        grid=grid,
        kinds=kinds,
        screened_points=samples.points.height,
        limitations=limitations,
    )
