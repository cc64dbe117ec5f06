"""Reading JSON-shaped values handed between agents (context, outputs): tolerant, typed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a mapping, else an empty one (a context key may be absent or null)."""
    return value if isinstance(value, dict) else {}


def parse_time(value: Any) -> datetime | None:
    """A datetime or an ISO 8601 string as an aware datetime (naive means UTC); None otherwise."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
