"""OTLP/JSON traces: `resourceSpans` → `scopeSpans` → `spans`, one export request per line (as
warroom's receiver and the Collector's file exporter spool them) or one document."""

from __future__ import annotations

from pathlib import Path

from warroom.sources.contract import Modality
from warroom.sources.raw import otlp
from warroom.sources.raw.otlp_messages import Status, TracesRequest, attributes_of, export_requests, resource_of
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.raw.semconv import canonical_attributes
from warroom.sources.raw.spans import SpanColumns, exception_attributes, span_table, traces_query

NO_STATUS = Status()


def otlp_spans(requests: list[TracesRequest], lines: list[int]) -> SpanColumns:
    """Every span of a list of export requests, with the line its request starts on."""
    columns = SpanColumns()
    start, end = columns.start.append, columns.end.append
    for request, line in zip(requests, lines, strict=True):
        for batch in request.batches():
            resource = resource_of(batch.resource)
            for span in batch.items():
                attributes = canonical_attributes(attributes_of(span.attributes))
                if span.events:
                    events = [{"name": e.name, "attributes": attributes_of(e.attributes)} for e in span.events]
                    for key, value in exception_attributes(events).items():
                        attributes.setdefault(key, value)
                columns.append(line, span.trace_id, span.span_id, span.parent_span_id, resource.service, span.name)
                start(span.start_time_unix_nano)
                end(span.end_time_unix_nano)
                status = span.status or NO_STATUS
                columns.settle(status.code, status.message, span.kind, resource.instance, attributes)
    return columns


class OtlpTraces:
    name = "OTLP/JSON traces (resourceSpans)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return otlp.sniff(head, b"resourceSpans")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        requests = export_requests(path, TracesRequest)
        spans = otlp_spans(requests.records, requests.line_numbers)
        table = span_table(spans, path, database=options.database_service)
        query = traces_query(path, f"{path.name}: every span of {len(requests.records)} export request(s)")
        return RawRead(
            tables=[RawTable(Modality.TRACES, table.frame, query)],
            notes=table.notes,
            limitations=requests.skipped.limitations(path, "line") + table.limitations + requests.left_out(),
        )
