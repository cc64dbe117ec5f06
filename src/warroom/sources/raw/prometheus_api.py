"""Prometheus HTTP API answers saved as received: `/api/v1/query_range` (matrix), `/api/v1/query`
(vector), and JSON Lines of their result items; a `/api/v1/series` answer is recognised and holds no
samples.

The live source's snapshots are these answers: its queries name their results (`__name__` set by
label_replace to the canonical series they derive), so reading a snapshot back gives the same
canonical series the live read gave, with no knowledge of the queries.

    {"status": "success", "data": {"resultType": "matrix", "result": [
      {"metric": {"__name__": "error_rate", "service": "checkout"}, "values": [[1716823290, "0.021"], …]}]}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from warroom.errors import BundleError
from warroom.sources.mapping.resolution import QuantileBounds, quantile_bounds
from warroom.sources.mapping.samples import POINTS_SCHEMA, SID, Samples, from_label_sets
from warroom.sources.raw.compressed import content, head_text, suffix
from warroom.sources.raw.labels import SERVICE_LABELS
from warroom.sources.raw.prometheus_read import rule_sets, samples_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import decoded
from warroom.sources.tables import to_timestamp


def _result_item(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("metric"), dict) and ("values" in item or "value" in item)


def _json(path: Path) -> Any:
    text = decoded(content(path), path)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass  # JSON Lines: one result item per line
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BundleError(f"cannot parse JSON ({exc.msg})", file=path, line=number) from None
        if not _result_item(item):
            raise BundleError("not a Prometheus result item (expected metric and values)", file=path, line=number)
        items.append(item)
    return {"status": "success", "data": {"resultType": "matrix", "result": items}}


def _results(answer: Any, path: Path) -> tuple[str, list[Any]]:
    """The result type and items of an API answer; a BundleError for an error answer or another shape."""
    if not isinstance(answer, dict):
        raise BundleError("not a Prometheus API answer (expected a JSON object with status and data)", file=path)
    if answer.get("status") == "error":
        detail = f"{answer.get('errorType', 'error')}: {answer.get('error', '')}"
        raise BundleError(f"a Prometheus error answer, not data ({detail[:160]})", file=path, field="status")
    data = answer.get("data")
    if isinstance(data, list):
        return "series", data
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise BundleError("expected data.result (a query or query_range answer)", file=path, field="data.result")
    kind = str(data.get("resultType", ""))
    if kind not in ("matrix", "vector"):
        raise BundleError(f"result type {kind!r} holds no series (expected matrix or vector)", file=path, field="data")
    return kind, data["result"]


def api_samples(answer: Any, path: Path) -> tuple[Samples, list[str]]:
    """The samples of a query or query_range answer, and what could not be read as samples."""
    _, items = _results(answer, path)
    label_sets: list[dict[str, str]] = []
    sids: list[int] = []
    times: list[Any] = []
    values: list[str] = []
    unnamed = native = 0
    for index, item in enumerate(items):
        where = f"data.result.{index}"
        if not _result_item(item):
            raise BundleError("expected metric and values (or value)", file=path, field=where)
        labels = {str(k): str(v) for k, v in item["metric"].items()}
        if "__name__" not in labels:
            unnamed += 1
            continue
        if "histograms" in item or "histogram" in item:
            native += 1
        pairs = item.get("values") if "values" in item else [item["value"]]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise BundleError("expected [time, value] pairs", file=path, field=f"{where}.values")
        labels["metric"] = labels.pop("__name__")
        sid = len(label_sets)
        label_sets.append(labels)
        sids.extend([sid] * len(pairs))
        times.extend(p[0] for p in pairs)
        values.extend(str(p[1]) for p in pairs)
    problems = []
    if unnamed:
        problems.append(
            f"{path.name}: {unnamed} result series without __name__ (an expression's result): not used; "
            'name them in the query with label_replace(…, "__name__", "name", "", "")'
        )
    if native:
        problems.append(f"{path.name}: {native} native histogram series: not read (only classic buckets are)")
    number = pl.Series(values, dtype=pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    if number.is_null().any():
        bad = values[int(number.is_null().arg_true()[0])]
        raise BundleError(f"value {bad[:40]!r} is not a number", file=path, field="data.result")
    try:
        stamps = to_timestamp(pl.Series(times, dtype=pl.Float64))
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        raise BundleError("a sample time is not epoch seconds", file=path, field="data.result") from None
    points = pl.DataFrame({"sid": pl.Series(sids, dtype=SID), "timestamp": stamps, "value": number})
    return from_label_sets(label_sets, points), problems


class PrometheusApiAnswer:
    name = "Prometheus HTTP API answer"

    def sniff(self, path: Path, head: bytes) -> bool:
        if suffix(path) not in (".json", ".jsonl", ".ndjson", ""):
            return False
        text = head_text(path, head).lstrip()
        if text.startswith(b"{") and b'"status"' in text[:200]:
            compact = text.replace(b" ", b"")
            return b'"resultType"' in text or b'"data":[' in compact or b'"status":"error"' in compact[:200]
        if text.startswith(b"{") and b'"metric"' in text[:2000]:
            first = text.split(b"\n", 1)[0]
            try:
                return _result_item(json.loads(first))
            except json.JSONDecodeError:
                return False
        return False

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        return answer_read(_json(path), path, options)


def discovery_samples(label_sets: list[Any]) -> Samples:
    """A series discovery answer's label sets as series with no points (the name as `metric`)."""
    named = [
        {("metric" if k == "__name__" else k): v for k, v in labels.items()}
        for labels in label_sets
        if isinstance(labels, dict)
    ]
    return from_label_sets(named, pl.DataFrame(schema=POINTS_SCHEMA))


def discovered_bounds(label_sets: list[Any], options: ReadOptions) -> list[QuantileBounds]:
    """The bucket bounds of the recorded quantiles' histograms among a series discovery's label sets."""
    discovered = discovery_samples(label_sets)
    candidates = (options.service_label,) if options.service_label else SERVICE_LABELS
    return quantile_bounds(discovered.series, rule_sets(options.mapping_rules), candidates)


def answer_read(answer: Any, path: Path, options: ReadOptions) -> RawRead:
    """An API answer (as saved, or as the live source received it) read into canonical tables."""
    kind, items = _results(answer, path)
    if kind == "series":
        return RawRead(
            notes=[f"Prometheus series discovery answer: {len(items)} label set(s), no samples"],
            quantile_bounds=discovered_bounds(items, options),
        )
    samples, problems = api_samples(answer, path)
    return samples_read(samples, path, options, f"Prometheus {kind} answer", problems)
