"""What every Prometheus reader does once it has the samples: derive the canonical series with the
mapping rules, take the alerts from an `ALERTS` series, and say what it found and derived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import polars as pl

from warroom.errors import BundleError
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.manifest import Alert
from warroom.sources.mapping.derive import Derivation, derive
from warroom.sources.mapping.promql import duration
from warroom.sources.mapping.rules import RuleSet, load_rules
from warroom.sources.mapping.samples import Samples
from warroom.sources.raw.labels import service_of
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions


@lru_cache(maxsize=8)
def rule_sets(user_files: tuple[Path, ...]) -> tuple[RuleSet, ...]:
    return load_rules(user_files)


def alerts_from(samples: Samples, service_label: str | None = None) -> list[Alert]:
    """The alerts a Prometheus `ALERTS` series shows firing, each from its first firing sample. One
    already firing when the data begins began before it: when `ALERTS_FOR_STATE` says (its value,
    the alert's activeAt, is when it went pending). One whose series stops while the data goes on
    resolved at its last sample (a scrape interval or two short of the end is still firing)."""
    series = samples.series
    if "alertstate" not in series.columns or "alertname" not in series.columns:
        return []
    firing = series.filter((pl.col("metric") == "ALERTS") & (pl.col("alertstate") == "firing"))
    if firing.height == 0 or samples.points.height == 0:
        return []
    spans = (
        samples.points.filter(pl.col("sid").is_in(firing.get_column("sid").to_list()))
        .group_by("sid")
        .agg(
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
            pl.col("timestamp").diff().median().alias("step"),
        )
    )
    data_start = samples.points.get_column("timestamp").min()
    data_end = samples.points.get_column("timestamp").max()
    active_at = _active_at(samples)
    alerts = []
    by_sid = {row["sid"]: row for row in spans.iter_rows(named=True)}
    for sid, labels in zip(firing.get_column("sid"), samples.label_sets(firing.get_column("sid")), strict=True):
        span = by_sid.get(sid)
        if span is None:
            continue
        labels = {k: v for k, v in labels.items() if k not in ("metric", "alertstate")}
        step = span["step"] or timedelta(0)
        from_the_start = span["first"] <= data_start + 2 * step  # type: ignore[operator]
        began = active_at.get(_identity(labels)) if from_the_start else None
        stopped = span["last"] < data_end - 2 * step if step else False  # type: ignore[operator]
        alerts.append(
            Alert(
                name=labels["alertname"],
                fired_at=min(began, span["first"]) if began is not None else span["first"],
                service=service_of(labels, service_label),
                labels={**labels, "source": "prometheus"},
                resolved_at=span["last"] if stopped else None,
            )
        )
    return sorted(alerts, key=lambda a: a.fired_at)


def _identity(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ("metric", "alertstate", "source")))


def _active_at(samples: Samples) -> dict[tuple[tuple[str, str], ...], datetime]:
    """Per alert (its labels), when it became active as `ALERTS_FOR_STATE` records it (a unix time)."""
    state = samples.series.filter(pl.col("metric") == "ALERTS_FOR_STATE")
    if state.height == 0:
        return {}
    first = (
        samples.points.filter(pl.col("sid").is_in(state.get_column("sid").to_list()))
        .group_by("sid")
        .agg(pl.col("value").filter(pl.col("value").is_finite() & (pl.col("value") > 0)).min())
    )
    value = dict(first.iter_rows())
    found = {}
    for sid, labels in zip(state.get_column("sid"), samples.label_sets(state.get_column("sid")), strict=True):
        if value.get(sid) is not None:
            found[_identity(labels)] = datetime.fromtimestamp(float(value[sid]), UTC)
    return found


def _kind_counts(derivation: Derivation, samples: Samples) -> str:
    per_name = samples.series.group_by("metric").len()
    counts: dict[str, int] = {}
    for name, n in per_name.iter_rows():
        kind = derivation.kinds.get(name, "gauge")
        counts[kind] = counts.get(kind, 0) + n
    order = (("counter", "counter"), ("bucket", "histogram bucket"), ("gauge", "gauge"), ("meta", "metadata"))
    return ", ".join(f"{counts[k]} {label}" for k, label in order if counts.get(k))


def _notes(shape: str, samples: Samples, derivation: Derivation, alerts: list[Alert]) -> list[str]:
    spacing = f"every {duration(derivation.grid.step_us)}" if derivation.grid.measured else "one sample per series"
    notes = [
        f"{shape}: {samples.series.height} series ({_kind_counts(derivation, samples)}), "
        f"{samples.points.height} samples, {spacing}"
    ]
    for record in derivation.records:
        notes.append(
            f"{record.record} for {len(record.services)} service(s) ({', '.join(record.services[:4])}"
            f"{' …' if len(record.services) > 4 else ''}) by {', '.join(record.rule_sets)}"
        )
    if derivation.unmapped_names:
        shown = ", ".join(derivation.unmapped_names[:6])
        more = f" and {len(derivation.unmapped_names) - 6} more" if len(derivation.unmapped_names) > 6 else ""
        notes.append(f"analysed by name (no mapping rule reads them): {shown}{more}")
    notes.extend(f"alert {a.name} firing from {a.fired_at.isoformat()} ({a.service or 'no service'})" for a in alerts)
    return notes


def samples_read(
    samples: Samples, path: Path, options: ReadOptions, shape: str, problems: list[str] | None = None
) -> RawRead:
    """The RawRead of one file's samples: a table per derived series (its query the rule's PromQL),
    one for the series analysed by name, the alerts, notes and limitations (the reader's own
    `problems` first)."""
    if samples.series.height == 0:
        return RawRead(notes=[f"{shape}: no series"], limitations=list(problems or []))
    alerts = alerts_from(samples, options.service_label)
    derivation = derive(samples, rule_sets(options.mapping_rules), path.name, service_label=options.service_label)
    derivation.limitations[:0] = problems or []
    tables = []
    for record in derivation.records:
        query = SourceQuery(
            source="bundle",
            modality=Modality.METRICS,
            text=record.promql,
            location=str(path),
            start=record.frame.get_column("timestamp").min(),
            end=record.frame.get_column("timestamp").max(),
            derives=record.record,
        )
        tables.append(RawTable(Modality.METRICS, record.frame, query))
    if derivation.unmapped.height:
        text = f"{path.name}: the series no mapping rule reads, by name"
        tables.append(
            RawTable(
                Modality.METRICS,
                derivation.unmapped,
                SourceQuery(source="bundle", modality=Modality.METRICS, text=text, location=str(path)),
            )
        )
    if samples.points.height and not derivation.screened_points and not alerts:
        raise BundleError(f"no usable Prometheus samples ({'; '.join(derivation.limitations)})", file=path)
    return RawRead(
        tables=tables,
        alerts=alerts,
        notes=_notes(shape, samples, derivation, alerts),
        limitations=derivation.limitations,
    )
