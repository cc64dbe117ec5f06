"""Mapping rules: how the canonical series the analyses read are derived from raw Prometheus series.

In the spirit of Prometheus recording rules, each rule records one series from an expression over
raw series, but the expression is a small declarative tree (YAML) rather than free PromQL, so the
same rule can be evaluated over exported samples offline (`evaluate.py`) and rendered to PromQL for
a live Prometheus (`promql.py`) with the same meaning:

    record: latency_p99_ms
    expr: {scale: 1000, of: {histogram_quantile: 0.99, of: 'http_request_duration_seconds_bucket'}}

Expression nodes (docs/bundle-format.md, "Mapping rules"):
- `{sum|max|min|avg|count: {rate|increase|changes|value: SELECTOR}}` — per series a counter's
  per-second rate (resets handled), its increase, the number of value changes, or a gauge's value;
  then aggregated by the rule's keys (service, instance);
- `{histogram_quantile: Q, of: SELECTOR}` — the bucket rates summed by keys and `le`, then
  Prometheus' linear interpolation (a `+Inf` bucket is required);
- `{ratio: [A, B]}` — A / B where B has a non-zero value; A absent counts as 0 (no 5xx series yet
  is no errors), unless `numerator_absent: no_value` (no CPU rate yet is not an idle CPU);
- `{scale: K, of: A}` — A × K (seconds → ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError, field_validator

from warroom.errors import BundleError
from warroom.sources.mapping.selector import Selector, parse_selector
from warroom.yamlfile import load_model

SeriesKind = Literal["rate", "increase", "changes", "value"]
Aggregation = Literal["sum", "max", "min", "avg", "count"]
SERIES_KINDS: tuple[SeriesKind, ...] = ("rate", "increase", "changes", "value")
AGGREGATIONS: tuple[Aggregation, ...] = ("sum", "max", "min", "avg", "count")


@dataclass(frozen=True)
class Series:
    kind: SeriesKind
    selector: Selector


@dataclass(frozen=True)
class Aggregate:
    how: Aggregation
    of: Series


@dataclass(frozen=True)
class Quantile:
    q: float
    buckets: Selector


@dataclass(frozen=True)
class Ratio:
    numerator: Node
    denominator: Node
    absent_is_zero: bool = True


@dataclass(frozen=True)
class Scale:
    factor: float
    of: Node


Node = Aggregate | Quantile | Ratio | Scale


def selectors(node: Node) -> list[Selector]:
    """Every raw-series selector an expression reads."""
    if isinstance(node, Aggregate):
        return [node.of.selector]
    if isinstance(node, Quantile):
        return [node.buckets]
    if isinstance(node, Ratio):
        return [*selectors(node.numerator), *selectors(node.denominator)]
    return selectors(node.of)


def required(node: Node) -> set[str]:
    """The raw names without which an expression has no value (a ratio needs its denominator)."""
    if isinstance(node, Aggregate):
        return {node.of.selector.metric}
    if isinstance(node, Quantile):
        return {node.buckets.metric}
    if isinstance(node, Ratio):
        return required(node.denominator)
    return required(node.of)


def _one_key(data: Any, allowed: tuple[str, ...], where: str) -> tuple[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with one of {', '.join(allowed)}")
    keys = [k for k in data if k in allowed]
    if len(keys) != 1:
        raise ValueError(f"{where}: expected exactly one of {', '.join(allowed)}, got {', '.join(map(str, data))}")
    return keys[0], data[keys[0]]


def _selector(text: Any, where: str) -> Selector:
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a series selector as text, e.g. 'http_requests_total{{code=~\"5..\"}}'")
    return parse_selector(text)


def _series(data: Any, where: str) -> Series:
    kind, text = _one_key(data, SERIES_KINDS, where)
    if len(data) != 1:
        raise ValueError(f"{where}: '{kind}' takes a selector and nothing else")
    return Series(kind, _selector(text, f"{where}.{kind}"))  # type: ignore[arg-type]


def parse_node(data: Any, where: str = "expr") -> Node:
    """A YAML expression tree → nodes; ValueError saying where it is wrong and what was expected."""
    key, value = _one_key(data, ("ratio", "scale", "histogram_quantile", *AGGREGATIONS), where)
    if key in AGGREGATIONS:
        if len(data) != 1:
            raise ValueError(f"{where}: '{key}' takes one series and nothing else")
        return Aggregate(key, _series(value, f"{where}.{key}"))
    if key == "ratio":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(f"{where}.ratio: expected [numerator, denominator]")
        absent = data.get("numerator_absent", "zero")
        if set(data) - {"ratio", "numerator_absent"} or absent not in ("zero", "no_value"):
            raise ValueError(f"{where}: a ratio takes [numerator, denominator] and numerator_absent: zero | no_value")
        numerator, denominator = parse_node(value[0], f"{where}.ratio.0"), parse_node(value[1], f"{where}.ratio.1")
        return Ratio(numerator, denominator, absent_is_zero=absent == "zero")
    if set(data) != {key, "of"}:
        raise ValueError(f"{where}: '{key}' takes a number and 'of'")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{where}.{key}: expected a number")
    if key == "histogram_quantile":
        if not 0 <= value <= 1:
            raise ValueError(f"{where}.histogram_quantile: a quantile is between 0 and 1")
        return Quantile(float(value), _selector(data["of"], f"{where}.of"))
    return Scale(float(value), parse_node(data["of"], f"{where}.of"))


class Rule(BaseModel):
    """One recorded series: its name, its expression, and the labels that key it."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    # Not a raw series' name: a recorded `_total` or `_bucket` would be read back as a counter.
    record: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    expr: SkipValidation[Node]
    # The labels naming the service for this rule, in order (default: [sources] service_label or
    # the common conventions, sources/raw/labels.py). node_exporter's hosts are their `instance`.
    service_label: tuple[str, ...] | None = None
    # The label that becomes the canonical `instance` column; null aggregates the instances away.
    instance_label: str | None = "instance"
    description: str = ""

    @field_validator("expr", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Node:
        if isinstance(value, Aggregate | Quantile | Ratio | Scale):
            return value
        return parse_node(value)

    @field_validator("record")
    @classmethod
    def _not_raw(cls, value: str) -> str:
        if value.endswith(("_total", "_bucket", "_created")):
            raise ValueError("a recorded series is not named like a raw counter or bucket (_total, _bucket, _created)")
        return value

    @field_validator("service_label", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def selectors(self) -> list[Selector]:
        return selectors(self.expr)


class RuleSet(BaseModel):
    """A file of rules for one exporter (or one instrumentation family)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    exporter: str  # what writes the series the rules read, for people
    description: str = ""
    rules: tuple[Rule, ...]
    path: str = Field(default="", exclude=True)


SHIPPED_DIR = Path(__file__).with_name("rulesets")
# The shipped rule sets, in the order they are asked: application instrumentations first (they name
# the service the way its owners do), then pools, the database, hosts and the container platform.
SHIPPED = (
    "prometheus-client",
    "opentelemetry-http",
    "db-pools",
    "postgres-exporter",
    "node-exporter",
    "kubernetes",
)


def load_rule_set(path: Path) -> RuleSet:
    """One rule file; a BundleError naming its line and field when it does not validate.

    Parsed with libyaml first (the shipped files are read by every Prometheus read); only a file
    that does not validate is parsed again node by node, to say on which line."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        rule_set = RuleSet.model_validate(data)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError):
        rule_set = load_model(path, RuleSet, BundleError)
    return rule_set.model_copy(update={"path": str(path)})


def load_rules(user_files: tuple[Path, ...] = ()) -> tuple[RuleSet, ...]:
    """A user's own rule files first (their rules win for the series they record), then the shipped ones."""
    shipped = tuple(load_rule_set(SHIPPED_DIR / f"{name}.yaml") for name in SHIPPED)
    return (*(load_rule_set(path) for path in user_files), *shipped)
