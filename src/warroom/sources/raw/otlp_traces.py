"""OTLP/JSON traces: `resourceSpans` → `scopeSpans` → `spans`, one export request per line (as
warroom's receiver and the Collector's file exporter spool them) or one document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warroom.sources.contract import Modality
from warroom.sources.raw import otlp
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.raw.semconv import canonical_attributes
from warroom.sources.raw.spans import SpanColumns, exception_attributes, span_table, traces_query


def otlp_spans(requests: list[dict[str, Any]], lines: list[int]) -> SpanColumns:
    """Every span of a list of export requests, with the line its request starts on."""
    columns = SpanColumns()
    start, end = columns.start.append, columns.end.append
    for request, line in zip(requests, lines, strict=True):
        for resource, item in otlp.scoped_items(request, "resourceSpans", "scopeSpans", "spans"):
            status = item.get("status") or {}
            attributes = canonical_attributes(otlp.attributes(item.get("attributes")))
            events = item.get("events")
            if events:
                exception = exception_attributes(
                    [{"name": e.get("name"), "attributes": otlp.attributes(e.get("attributes"))} for e in events]
                )
                for key, value in exception.items():
                    attributes.setdefault(key, value)
            ids = item.get("traceId"), item.get("spanId"), item.get("parentSpanId")
            columns.append(line, *ids, resource.service, item.get("name"))
            start(item.get("startTimeUnixNano"))
            end(item.get("endTimeUnixNano"))
            columns.settle(status.get("code"), status.get("message"), item.get("kind"), resource.instance, attributes)
    return columns


class OtlpTraces:
    name = "OTLP/JSON traces (resourceSpans)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return otlp.sniff(head, b"resourceSpans")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        requests = otlp.export_requests(path, "resourceSpans")
        spans = otlp_spans(requests.records, requests.line_numbers)
        table = span_table(spans, path, database=options.database_service)
        query = traces_query(path, f"{path.name}: every span of {len(requests.records)} export request(s)")
        return RawRead(
            tables=[RawTable(Modality.TRACES, table.frame, query)],
            notes=table.notes,
            limitations=requests.skipped.limitations(path, "line") + table.limitations + otlp.left_out(requests),
        )
