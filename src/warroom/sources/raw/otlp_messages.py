"""OTLP/JSON export requests decoded straight into typed messages, and what their values mean.

A lab snapshot holds tens of megabytes of OTLP/JSON. Decoded as plain JSON (dicts and lists), every
span leaves a dozen container objects that the cyclic garbage collector scans again and again while
the file is read: about three quarters of the parse time. Decoded into msgspec Structs declared
`gc=False`, the same data is one untracked object per message and decodes several times faster;
the readers then walk fields instead of looking keys up.

The messages are lenient where writers differ (otlp.py's module docstring): ids, times, kinds and
status codes are taken as written (text, numbers or enum names) and settled by the readers; an
attribute list may be an object; an attribute value may be an AnyValue or a plain JSON value;
`instrumentationLibrary*` is read for `scope*`. A line that is JSON but not in this shape is
skipped and counted; a root that is not a list is an error, as it always was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from warroom.errors import BundleError
from warroom.sources.raw import otlp
from warroom.sources.raw.text import Skipped, is_json_lines, json_documents, lines, read_text

# A field left out of the message (as opposed to written as null): AnyValue's kind is which key is
# present, whatever its value, as otlp.any_value reads it.
Unset = UnsetType
Scalar = str | int | float | bool


class AnyValue(msgspec.Struct, gc=False, rename="camel"):
    string_value: str | Unset | None = UNSET
    # 64-bit integers are text in OTLP/JSON; a double written as 3 stays 3 (the attributes keep it)
    int_value: int | float | str | Unset | None = UNSET
    double_value: int | float | str | Unset | None = UNSET
    bool_value: bool | Unset | None = UNSET
    array_value: ArrayValue | Unset | None = UNSET
    kvlist_value: KeyValueList | Unset | None = UNSET
    bytes_value: str | Unset | None = UNSET


Value = AnyValue | Scalar | list[Any] | None


class ArrayValue(msgspec.Struct, gc=False):
    values: list[Value] | None = None


class KeyValue(msgspec.Struct, gc=False):
    key: str | None = None
    value: Value = None


Attributes = list[KeyValue] | dict[str, Any] | None


class KeyValueList(msgspec.Struct, gc=False):
    values: Attributes = None


class Resource(msgspec.Struct, gc=False):
    attributes: Attributes = None


class Status(msgspec.Struct, gc=False):
    code: Any = None
    message: Any = None


class Event(msgspec.Struct, gc=False):
    name: Any = None
    attributes: Attributes = None


class Span(msgspec.Struct, gc=False, rename="camel"):
    trace_id: Any = None
    span_id: Any = None
    parent_span_id: Any = None
    name: Any = None
    kind: Any = None
    start_time_unix_nano: Any = None
    end_time_unix_nano: Any = None
    attributes: Attributes = None
    events: list[Event] | None = None
    status: Status | None = None

    def stamp(self) -> Any:
        """When it happened, as written (the spool keeps a request by its items' stamps)."""
        return self.start_time_unix_nano


class LogRecord(msgspec.Struct, gc=False, rename="camel"):
    time_unix_nano: Any = None
    observed_time_unix_nano: Any = None
    severity_number: Any = None
    severity_text: Any = None
    body: Value = None
    attributes: Attributes = None
    trace_id: Any = None
    span_id: Any = None

    def stamp(self) -> Any:
        return self.time_unix_nano or self.observed_time_unix_nano


class ScopeSpans(msgspec.Struct, gc=False):
    spans: list[Span] | None = None


class ScopeLogs(msgspec.Struct, gc=False, rename="camel"):
    log_records: list[LogRecord] | None = None


class _Batch(msgspec.Struct, gc=False):
    """What one resource sent: its spans or log records in scopes (`instrumentationLibrary*`
    before OTLP 0.15; old writers still produce it)."""

    resource: Resource | None = None


class ResourceSpans(_Batch, gc=False, rename="camel"):
    scope_spans: list[ScopeSpans] | None = None
    instrumentation_library_spans: list[ScopeSpans] | None = None

    def items(self) -> Iterator[Span]:
        return (
            span for scope in self.scope_spans or self.instrumentation_library_spans or [] for span in scope.spans or []
        )


class ResourceLogs(_Batch, gc=False, rename="camel"):
    scope_logs: list[ScopeLogs] | None = None
    instrumentation_library_logs: list[ScopeLogs] | None = None

    def items(self) -> Iterator[LogRecord]:
        scopes = self.scope_logs or self.instrumentation_library_logs or []
        return (record for scope in scopes for record in scope.log_records or [])


class _Request(msgspec.Struct, gc=False):
    # what a live read left out (otlp_spool writes it), on a line of its own
    left_out: Any = UNSET


class TracesRequest(_Request, gc=False, rename="camel"):
    resource_spans: list[ResourceSpans] | None = None

    def batches(self) -> list[ResourceSpans]:
        return self.resource_spans or []


class LogsRequest(_Request, gc=False, rename="camel"):
    resource_logs: list[ResourceLogs] | None = None

    def batches(self) -> list[ResourceLogs]:
        return self.resource_logs or []


R = TypeVar("R", TracesRequest, LogsRequest)
_ROOTS = {TracesRequest: "resourceSpans", LogsRequest: "resourceLogs"}


def value_of(value: Value) -> Any:
    """An AnyValue as plain JSON (otlp.any_value's reading of the same value)."""
    if not isinstance(value, AnyValue):
        return value
    if value.string_value is not UNSET:
        return value.string_value
    if value.int_value is not UNSET:
        raw = value.int_value
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return raw
    for plain in (value.double_value, value.bool_value):
        if plain is not UNSET:
            return plain
    if value.array_value is not UNSET:
        return [value_of(item) for item in (value.array_value.values if value.array_value else None) or []]
    if value.kvlist_value is not UNSET:
        return attributes_of(value.kvlist_value.values if value.kvlist_value else None)
    return None if value.bytes_value is UNSET else value.bytes_value


def attributes_of(items: Attributes) -> dict[str, Any]:
    """A message's attributes as one object (an object already: its values read as AnyValues)."""
    if isinstance(items, dict):
        return otlp.attributes(items)
    return {kv.key: value_of(kv.value) for kv in items or () if kv.key is not None}


def resource_of(resource: Resource | None) -> otlp.Resource:
    return otlp.Resource.named(attributes_of(resource.attributes) if resource else {})


@dataclass
class Requests(Generic[R]):
    """The export requests of a file with the line each starts on."""

    records: list[R]
    line_numbers: list[int]
    skipped: Skipped

    def left_out(self) -> list[str]:
        return [str(r.left_out) for r in self.records if r.left_out is not UNSET]


@cache
def _decoder(message: type[R]) -> msgspec.json.Decoder[R]:
    return msgspec.json.Decoder(message)


def export_requests(path: Path, message: type[R]) -> Requests[R]:
    """Every export request of the file: one per line (decoded line by line, straight into the
    messages), or pretty-printed documents (read as JSON, then converted)."""
    text = read_text(path)
    root = _ROOTS[message]
    expected = f"OTLP/JSON export requests with '{root}'"
    records: list[R] = []
    numbers: list[int] = []
    if is_json_lines(text):
        decode, skipped = _decoder(message).decode, Skipped()
        numbered: Iterator[tuple[int, Any]] = iter(lines(text))
    else:
        documents = json_documents(text, path, expected)
        decode, skipped = lambda record: msgspec.convert(record, message), documents.skipped
        numbered = zip(documents.line_numbers, documents.records, strict=True)
    for number, item in numbered:
        try:
            records.append(decode(item))
        except msgspec.ValidationError as exc:
            skipped.add(_not_a_request(item, path, number, root, exc), number)
            continue
        except msgspec.DecodeError:
            skipped.add("not JSON", number)
            continue
        numbers.append(number)
    skipped.fail_if_nothing_left(len(records), path, expected)
    return Requests(records, numbers, skipped)


def _not_a_request(item: Any, path: Path, line: int, root: str, error: msgspec.ValidationError) -> str:
    """Why a JSON line is not an export request; a root that is not a list is an error."""
    value = orjson.loads(item) if isinstance(item, str) else item
    if not isinstance(value, dict):
        return "not a JSON object"
    if not isinstance(value.get(root, []), list):
        raise BundleError(f"expected a list of {root}", file=path, line=line, field=root)
    # the path of the first field out of shape, without the line's own values: one reason for all
    where = str(error).rsplit(" - at ", 1)[-1].strip("`")
    return f"not an OTLP/JSON export request ({where} out of shape)"
