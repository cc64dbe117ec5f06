"""The queries a live read runs: the mapping rules rendered to PromQL over the series a Prometheus
has (found by series discovery), and the unmapped series, each with the series it will return.

Pure: it knows the discovered label sets, not the server. Queries come in the order a budget keeps
them: every recorded series in rule order (the golden signals first), then the unmapped series.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from warroom.sources.mapping.derive import family
from warroom.sources.mapping.evaluate import service_columns
from warroom.sources.mapping.kinds import metric_kinds
from warroom.sources.mapping.promql import (
    FINITE,
    Ranges,
    alternative,
    keys_for,
    promql_labels,
    record_query,
    unmapped_query,
)
from warroom.sources.mapping.rules import Rule, RuleSet, required
from warroom.sources.mapping.samples import Samples
from warroom.sources.mapping.selector import Selector, parse_selector
from warroom.sources.mapping.unmapped import unmapped_name


@dataclass(frozen=True)
class PlannedQuery:
    name: str  # the canonical series it derives, or the analysed name of an unmapped metric
    promql: str
    series: int  # how many series it returns (from discovery)
    rule_sets: tuple[str, ...] = ()  # empty: an unmapped metric


def _rule_groups(discovered: Samples, rule: Rule, candidates: tuple[str, ...]) -> tuple[list[str], int]:
    """The service labels that name the services of a rule's series, and its result's series count
    (distinct service and instance among the series without which it has no value)."""
    series = discovered.series
    columns = set(series.columns)
    names = required(rule.expr)
    chosen = series.filter(pl.any_horizontal([s.expression(columns) for s in rule.selectors() if s.metric in names]))
    wanted = promql_labels(rule.service_label or candidates)
    service, label = service_columns(chosen, wanted)
    instance = rule.instance_label
    keyed = chosen.select(
        service.alias("service"),
        label.alias("label"),
        (pl.col(instance) if instance and instance in columns else pl.lit(None, dtype=pl.String)).alias("instance"),
    ).filter(pl.col("service").is_not_null())
    labels = keyed.get_column("label").unique().sort().to_list()
    return labels, keyed.select("service", "instance").unique().height


def plan_records(
    discovered: Samples, rule_sets: tuple[RuleSet, ...], candidates: tuple[str, ...], ranges: Ranges
) -> tuple[list[PlannedQuery], set[str]]:
    """One query per recorded series the discovered series allow, and the raw names they read."""
    present = set(discovered.series.get_column("metric").unique().to_list())
    by_record: dict[str, list[tuple[RuleSet, Rule, list[str], int]]] = {}
    read: set[str] = set()
    for rule_set in rule_sets:
        for rule in rule_set.rules:
            if not required(rule.expr) <= present:
                continue
            labels, series = _rule_groups(discovered, rule, candidates)
            if labels:
                by_record.setdefault(rule.record, []).append((rule_set, rule, labels, series))
                read.update(*(family(s.metric) for s in rule.selectors()))
    planned = []
    for record, alternatives in by_record.items():
        terms = [
            alternative(rule, keys_for(rule, label, rule.service_label or candidates), ranges)
            for _, rule, labels, _ in alternatives
            for label in labels
        ]
        planned.append(
            PlannedQuery(
                name=record,
                promql=record_query(record, [f"({term}){FINITE}" for term in terms]),
                series=max(n for *_, n in alternatives),
                rule_sets=tuple(dict.fromkeys(rs.name for rs, *_ in alternatives)),
            )
        )
    return planned, read


def _restricted(name: str, selectors: list[str]) -> list[Selector]:
    """The selectors of a metric within the configured ones (`{job="x"}` applies to every name)."""
    chosen = []
    for text in selectors:
        selector = parse_selector(f"{name}{text}" if text.lstrip().startswith("{") else text)
        if selector.metric == name:
            chosen.append(selector)
    return chosen or [Selector(name)]


def plan_unmapped(
    discovered: Samples, read: set[str], recorded: set[str], selectors: list[str], window: str
) -> list[PlannedQuery]:
    """One query per discovered metric no planned record reads: a gauge as is, a counter's rate, a
    histogram's p99 (the names unmapped.py gives them offline)."""
    kinds = metric_kinds(discovered)
    counts = dict(discovered.series.group_by("metric").len().iter_rows())
    planned = []
    for metric in sorted(kinds):
        kind = kinds[metric]
        if kind == "meta" or family(metric) & read or metric in recorded:
            continue
        name = unmapped_name(metric, kind)
        parts = [unmapped_query(s, kind, name, window) for s in _restricted(metric, selectors)]
        planned.append(PlannedQuery(name=name, promql=" or ".join(parts), series=counts.get(metric, 0)))
    return planned
