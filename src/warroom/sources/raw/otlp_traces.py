"""OTLP/JSON traces: `resourceSpans` → `scopeSpans` → `spans`, one export request per line (as
warroom's receiver and the Collector's file exporter spool them) or one document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warroom.sources.contract import Modality
from warroom.sources.raw import otlp
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.raw.spans import Span, span_table, traces_query


def _span(resource: otlp.Resource, item: dict[str, Any], line: int) -> Span:
    status = item.get("status") or {}
    return Span(
        line=line,
        trace_id=item.get("traceId"),
        span_id=item.get("spanId"),
        parent_span_id=item.get("parentSpanId"),
        service=resource.service,
        operation=item.get("name"),
        start=item.get("startTimeUnixNano"),
        end=item.get("endTimeUnixNano"),
        status_code=status.get("code"),
        status_message=status.get("message") or None,
        kind=item.get("kind"),
        instance=resource.instance,
        attributes=otlp.attributes(item.get("attributes")),
        events=[
            {"name": event.get("name"), "attributes": otlp.attributes(event.get("attributes"))}
            for event in item.get("events") or []
            if isinstance(event, dict)
        ],
    )


def otlp_spans(requests: list[dict[str, Any]], lines: list[int]) -> list[Span]:
    """Every span of a list of export requests, with the line its request starts on."""
    return [
        _span(resource, item, line)
        for request, line in zip(requests, lines, strict=True)
        for resource, item in otlp.scoped_items(request, "resourceSpans", "scopeSpans", "spans")
    ]


class OtlpTraces:
    name = "OTLP/JSON traces (resourceSpans)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return otlp.sniff(head, b"resourceSpans")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        requests = otlp.export_requests(path, "resourceSpans")
        table = span_table(otlp_spans(requests.records, requests.line_numbers), path)
        query = traces_query(path, f"{path.name}: every span of {len(requests.records)} export request(s)")
        return RawRead(
            tables=[RawTable(Modality.TRACES, table.frame, query)],
            notes=table.notes,
            limitations=requests.skipped.limitations(path, "line") + table.limitations,
        )
