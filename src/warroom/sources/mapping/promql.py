"""Mapping rules rendered to PromQL, aggregated on the server so that only derived series come back.

The query of one recorded series is every alternative rule that records it, for each label that
names the services of its series, combined with `or on(service)` (the first alternative that has a
service wins for it, as the offline evaluation does), and named by `label_replace` so the answer says
what it is (`__name__="latency_p99_ms"`, `service`, `instance`): a saved answer replays through
the API-response reader to the same canonical series with no knowledge of the query.

    label_replace(
      histogram_quantile(0.99, sum by (service, instance, le) (rate(x_bucket{service!=""}[1m]))) * 1000,
      "__name__", "latency_p99_ms", "", "")
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warroom.sources.mapping.rules import Aggregate, Node, Quantile, Ratio, Rule, Series
from warroom.sources.mapping.selector import Matcher, Selector

_PROMQL_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Keeps the finite values only: a ratio over no requests, a quantile of no observations are NaN or
# ±Inf in PromQL, and no value (rather than a bad one) in the canonical series, as offline.
FINITE = " > -Inf < Inf"


@dataclass(frozen=True)
class Keys:
    """How one group of series is keyed: the label naming their service (the labels preferred to it
    are absent from them) and the label that becomes the instance (None: aggregated away)."""

    service_label: str
    preferred: tuple[str, ...]
    instance_label: str | None

    def matchers(self) -> tuple[Matcher, ...]:
        return (
            *(Matcher(label, "=", "") for label in self.preferred),
            Matcher(self.service_label, "!=", ""),
        )

    def by(self, *extra: str) -> str:
        labels = [self.service_label]
        if self.instance_label is not None and "instance" not in labels:
            labels.append("instance")
        return ", ".join([*labels, *extra])


def promql_labels(candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The candidates a Prometheus series can carry (`service.name` cannot: dots are not allowed)."""
    return tuple(label for label in candidates if _PROMQL_LABEL.match(label))


def keys_for(rule: Rule, service_label: str, candidates: tuple[str, ...]) -> Keys:
    ordered = promql_labels(candidates)
    preferred = ordered[: ordered.index(service_label)] if service_label in ordered else ()
    return Keys(service_label, preferred, rule.instance_label)


@dataclass(frozen=True)
class Ranges:
    """The ranges a query looks back over: a rate's window, and the evaluation step. An increase or a
    count of changes is per step (the events of the interval ending at each point, so that the
    points add up to the events), a rate is smoothed over the window."""

    window: str
    step: str


def duration(us: int) -> str:
    """A PromQL duration: whole seconds as `15s`, else milliseconds."""
    return f"{us // 1_000_000}s" if us % 1_000_000 == 0 else f"{max(us // 1000, 1)}ms"


def _series(series: Series, keys: Keys, ranges: Ranges) -> str:
    selector = series.selector.promql(keys.matchers())
    # per step from the sample a step before (a range function over one step holds one sample of a
    # series scraped at that step, and nothing to compare it with); a drop is a counter's reset,
    # after which its value is the increase
    per_step = {
        "value": selector,
        "rate": f"rate({selector}[{ranges.window}])",
        "changes": f"({selector} != bool ({selector} offset {ranges.step}))",
        "increase": f"(({selector} - ({selector} offset {ranges.step})) >= 0 or {selector} * 1)",
    }
    text = per_step[series.kind]
    if keys.instance_label not in (None, "instance"):
        text = f'label_replace({text}, "instance", "$1", "{keys.instance_label}", "(.*)")'
    return text


def _node(node: Node, keys: Keys, ranges: Ranges) -> str:
    if isinstance(node, Aggregate):
        return f"{node.how} by ({keys.by()}) ({_series(node.of, keys, ranges)})"
    if isinstance(node, Quantile):
        buckets = _series(Series("rate", node.buckets), keys, ranges)
        return f"histogram_quantile({node.q:g}, sum by ({keys.by('le')}) ({buckets}))"
    if isinstance(node, Ratio):
        numerator, denominator = _node(node.numerator, keys, ranges), _node(node.denominator, keys, ranges)
        if not node.absent_is_zero:
            return f"({numerator}) / ({denominator})"
        return f"(({numerator}) or ({denominator}) * 0) / ({denominator})"
    return f"({_node(node.of, keys, ranges)}) * {node.factor:g}"


def alternative(rule: Rule, keys: Keys, ranges: Ranges) -> str:
    """One rule over the series whose service is named by `keys.service_label`, keyed by `service`."""
    text = _node(rule.expr, keys, ranges)
    if keys.service_label == "service":
        return text
    by = "service" if keys.instance_label is None else "service, instance"
    return f'sum by ({by}) (label_replace({text}, "service", "$1", "{keys.service_label}", "(.*)"))'


def named(name: str, query: str) -> str:
    """A query whose answer carries `__name__="name"`."""
    return f'label_replace({query}, "__name__", "{name}", "", "")'


def record_query(record: str, alternatives: list[str]) -> str:
    body = alternatives[0] if len(alternatives) == 1 else " or on(service) ".join(f"({a})" for a in alternatives)
    return named(record, body)


def unmapped_query(selector: Selector, kind: str, name: str, window: str) -> str:
    """An unmapped series as warroom analyses it: a counter's rate, a histogram's p99, a gauge as is."""
    text = selector.promql()
    if kind == "counter":
        return named(name, f"rate({text}[{window}]){FINITE}")
    if kind == "bucket":
        return named(name, f"histogram_quantile(0.99, rate({text}[{window}])){FINITE}")
    return text
