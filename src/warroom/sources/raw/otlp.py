"""What OTLP/JSON traces and logs share: attribute values as plain JSON, the resource that names
the service, and how a file is recognised (the typed messages they decode into: otlp_messages.py).

OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) is protobuf's JSON
mapping with lowerCamelCase keys, 64-bit integers as strings, enums as integers, and trace and
span ids as hex. Protobuf's own JSON printer (`MessageToJson`) writes the same documents with ids
in base64 and enums as names; both are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warroom.sources.raw.text import decoded_head

# Resource attributes that name the replica, in order of preference.
INSTANCE_ATTRIBUTES = ("service.instance.id", "k8s.pod.name", "host.name", "container.id")


def any_value(value: Any) -> Any:
    """An OTLP AnyValue (`{"stringValue": "x"}`, `{"intValue": "3"}`, arrays, key-value lists) as
    plain JSON; values already plain (some writers flatten them) are kept as they are."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        raw = value["intValue"]
        try:
            return int(raw)
        except (TypeError, ValueError):
            return raw
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [any_value(item) for item in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return value or None


def attributes(items: Any) -> dict[str, Any]:
    """OTLP's list of `{"key": k, "value": AnyValue}` as one object (also accepts an object)."""
    if isinstance(items, Mapping):
        return {str(k): any_value(v) for k, v in items.items()}
    result: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, dict) and "key" in item:
            result[str(item["key"])] = any_value(item.get("value"))
    return result


@dataclass(frozen=True)
class Resource:
    """Who emitted a batch: the service and the replica, and the other resource attributes."""

    service: str | None
    instance: str | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, resource: Any) -> Resource:
        return cls.named(attributes(resource.get("attributes", [])) if isinstance(resource, dict) else {})

    @classmethod
    def named(cls, attrs: dict[str, Any]) -> Resource:
        """The resource of these attributes: `service.name`, the first instance attribute."""
        service = attrs.get("service.name")
        instance = next((str(attrs[name]) for name in INSTANCE_ATTRIBUTES if attrs.get(name)), None)
        return cls(str(service) if service else None, instance, attrs)


def sniff(head: bytes, root_key: bytes) -> bool:
    """An OTLP/JSON document or export line: a JSON object whose first key is the signal's root."""
    text = decoded_head(head).lstrip()
    return text.startswith("{") and f'"{root_key.decode()}"' in text[:200]
