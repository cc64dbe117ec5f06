"""Raw Prometheus samples, whatever file or response they came from: a small table of series (one
row per label set) and a long table of points, joined by a series id.

Label sets repeat on every sample of a series; holding them once per series keeps a large export's
samples narrow (id, time, value) and lets selectors run over a few thousand rows, not millions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from warroom.sources.canonical import TS

SeriesType = Literal["counter", "gauge", "histogram", "summary", "unknown"]
SID = pl.UInt32()
POINTS_SCHEMA = pl.Schema({"sid": SID, "timestamp": TS, "value": pl.Float64()})
# Where a sample's metric name is written, in the shapes exporters and people use.
NAME_FIELDS = ("__name__", "metric", "name")


@dataclass
class Samples:
    """Raw samples: `series` has `sid`, `metric` and one text column per label name (null where a
    series lacks the label); `points` has `sid`, `timestamp`, `value`, sorted by sid and time."""

    series: pl.DataFrame
    points: pl.DataFrame
    # Metric family → type, where the source said it (`# TYPE` lines of an exposition).
    declared: dict[str, SeriesType] = field(default_factory=dict)

    def label_sets(self, sids: Iterable[int]) -> list[dict[str, str]]:
        rows = self.series.filter(pl.col("sid").is_in(list(sids)))
        return [{k: v for k, v in row.items() if v is not None and k != "sid"} for row in rows.iter_rows(named=True)]

    def with_points(self, points: pl.DataFrame) -> Samples:
        return Samples(self.series, points, self.declared)


def _series_table(label_sets: list[dict[str, str]]) -> pl.DataFrame:
    """One row per label set (metric included under `metric`), columns sorted for a stable shape."""
    names = sorted({k for labels in label_sets for k in labels} - {"metric"})
    return pl.DataFrame(
        {
            "sid": pl.Series(range(len(label_sets)), dtype=SID),
            "metric": [labels["metric"] for labels in label_sets],
            **{name: pl.Series([labels.get(name) for labels in label_sets], dtype=pl.String) for name in names},
        }
    )


def from_label_sets(label_sets: Sequence[Mapping[str, str]], points: pl.DataFrame) -> Samples:
    """Samples from label sets (each with its metric under `metric`) and points whose `sid` indexes
    them; equal label sets are merged into one series."""
    canonical: dict[tuple[tuple[str, str], ...], int] = {}
    remap: list[int] = []
    unique: list[dict[str, str]] = []
    for labels in label_sets:
        key = tuple(sorted((k, str(v)) for k, v in labels.items() if v is not None and v != ""))
        sid = canonical.get(key)
        if sid is None:
            sid = canonical[key] = len(unique)
            unique.append(dict(key))
        remap.append(sid)
    # the points' ids index `remap`: a gather, not a join
    merged = points.select(pl.lit(pl.Series(remap, dtype=SID)).gather(pl.col("sid")).alias("sid"), "timestamp", "value")
    return Samples(_series_table(unique), _sorted(merged))


def _sorted(points: pl.DataFrame) -> pl.DataFrame:
    """Points sorted by sid and time (stably), not sorted again when they already are: an export
    usually writes each series' samples together and in time order, and ids follow first appearance."""
    sid, previous = pl.col("sid"), pl.col("sid").shift(1)
    later = pl.col("timestamp") >= pl.col("timestamp").shift(1)
    # (the first row has nothing before it; a null time is not in order)
    if points.select(((sid > previous) | ((sid == previous) & later)).slice(1).fill_null(False).all()).item():
        return points
    return points.sort("sid", "timestamp", maintain_order=True)


def label_json(text: str | None) -> dict[str, str]:
    """A `labels` JSON object as text → its label set (values as text); ValueError when it is not one."""
    if text is None or text == "":
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("labels is not a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items() if v is not None}


def from_long(frame: pl.DataFrame, label_columns: list[str], labels_json: str | None = None) -> Samples:
    """Samples from a long table (`metric`, `timestamp` (TS), `value` (Float64), label columns, and
    optionally a column of label sets as JSON text): one series per distinct metric and label set."""
    keys = ["metric", *label_columns, *([labels_json] if labels_json else [])]
    # One dictionary code per distinct key text: the rows are coded once, not joined on text.
    text = pl.concat_str([pl.col(k).cast(pl.String).fill_null("\x00") for k in keys], separator="\x1f")
    coded = frame.with_columns(text.cast(pl.Categorical).to_physical().alias("code"))
    distinct = coded.select("code", *keys).unique(subset="code", maintain_order=True)
    label_sets: list[dict[str, str]] = []
    for row in distinct.iter_rows(named=True):
        labels = {k: str(row[k]) for k in label_columns if row[k] is not None}
        if labels_json:
            labels.update(label_json(row[labels_json]))
        labels["metric"] = labels.pop("__name__", "") or str(row["metric"])
        label_sets.append(labels)
    ids = distinct.select("code", pl.int_range(pl.len(), dtype=SID).alias("sid"))
    points = coded.select("code", "timestamp", "value").join(ids, on="code").select("sid", "timestamp", "value")
    return from_label_sets(label_sets, points)
