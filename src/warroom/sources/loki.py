"""Loki as a live log source: `GET /loki/api/v1/query_range`, read forward in time slices, within
a line budget, every page saved as received (one JSON line per page: the parameters sent and the
body answered, re-encoded compactly; `sources/raw/loki_responses.py` reads them back).

The query is the configured stream selector, or one selector over the services asked for
(`{service_name=~"checkout|payment"}`, by the configured service label). The period is cut into
slices (`slice_minutes`); each slice is read forward in pages of `page_size` lines, the next page
starting at the last line's nanosecond (Loki's `start` is inclusive; the overlap is removed when
read back). The budget (`max_lines`) is shared evenly across the slices, so the whole period is
sampled rather than only its start; a slice cut short, and what was left out, is named in a
limitation. An error answer (Loki answers query errors as text with status 400) is one line.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import orjson

from warroom.errors import InputError
from warroom.sources.captured import EventRead, RawResponse, read_back
from warroom.sources.config import LokiConfig
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.reader import ReadOptions

QUERY_RANGE = "/loki/api/v1/query_range"


class LokiError(InputError):
    """Loki could not be asked, or refused the query."""


def selector_for(config: LokiConfig, services: list[str]) -> str:
    if config.selector:
        return config.selector
    if not services:
        raise LokiError("no selector configured and no services to select", field="sources.loki.selector")
    names = "|".join(re.escape(s) for s in sorted(services))
    return f'{{{config.service_label}=~"{names}"}}'


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _page_entries(body: dict[str, Any]) -> list[int]:
    return [int(v[0]) for stream in (body.get("data") or {}).get("result") or [] for v in stream.get("values") or []]


class LokiSource:
    def __init__(self, config: LokiConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.client = client or httpx.Client(
            base_url=config.url, headers=config.headers(section="sources.loki"), timeout=config.timeout_s
        )

    def _get(self, params: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        try:
            answer = self.client.get(QUERY_RANGE, params=params)
        except httpx.HTTPError as exc:
            raise LokiError(f"cannot reach Loki ({exc.__class__.__name__}: {exc})", file=self.config.url) from None
        if answer.status_code != 200:
            detail = " ".join(answer.text.split())[:200]
            raise LokiError(f"Loki answered {answer.status_code}: {detail}", file=str(answer.url)) from None
        try:
            body = orjson.loads(answer.content)
        except orjson.JSONDecodeError:
            raise LokiError("Loki answered something that is not JSON", file=str(answer.url)) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise LokiError(f"Loki answered status {body.get('status') if isinstance(body, dict) else body!r}")
        return body, answer.content

    def read(self, services: list[str], start: datetime, end: datetime) -> EventRead:
        """The period's log lines of the services (or the configured selector)."""
        query = selector_for(self.config, services)
        slices = max(1, int(-(-(end - start).total_seconds() // (self.config.slice_minutes * 60))))
        width = (end - start) / slices
        share = self.config.max_lines // slices
        lines: list[bytes] = []
        left_out: list[str] = []
        carried = 0
        for index in range(slices):
            low, high = start + width * index, start + width * (index + 1)
            budget = share + carried
            read, full = self._slice(query, low, high, budget, lines)
            carried = budget - read
            if full:
                left_out.append(f"{low.isoformat()} .. {high.isoformat()}")
        if left_out:
            note = (
                f"loki: line budget ({self.config.max_lines} lines over {slices} slice(s)) reached in "
                f"{len(left_out)} slice(s); later lines of these were not read: {', '.join(left_out[:5])}"
            )
            lines.append(orjson.dumps({"left_out": note}))
        body = b"\n".join(lines) + b"\n"
        query_record = SourceQuery(
            source="loki",
            modality=Modality.LOGS,
            text=query,
            location=f"{self.config.url}{QUERY_RANGE}",
            start=start,
            end=end,
        )
        response = RawResponse("loki/query_range.jsonl", body)
        return read_back([response], [query_record], ReadOptions())

    def _slice(self, query: str, low: datetime, high: datetime, budget: int, lines: list[bytes]) -> tuple[int, bool]:
        """Read one slice forward within `budget` lines; (lines read, whether the budget cut it)."""
        cursor, end, read = _ns(low), _ns(high), 0
        while budget - read > 0:
            limit = min(self.config.page_size, budget - read)
            params = {"query": query, "start": cursor, "end": end, "limit": limit, "direction": "forward"}
            body, _raw = self._get(params)
            request = {**params, "service_label": self.config.service_label}
            lines.append(orjson.dumps({"request": request, "response": body}))
            stamps = _page_entries(body)
            read += len(stamps)
            if len(stamps) < limit:
                return read, False
            last = max(stamps)
            if last <= cursor:  # a whole page within one nanosecond: step past it
                last = cursor + 1
            cursor = last
        return read, True
