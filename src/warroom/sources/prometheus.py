"""A live Prometheus (HTTP API v1) as the metrics half of a live investigation.

One read of a period: series discovery (`/api/v1/series`) over the names the mapping rules read
and the configured selectors; the rules rendered to PromQL that aggregates on the server (only the
derived series come back: `sum by (service, instance, le) (rate(…))` inside `histogram_quantile`)
and the unmapped series; both within the configured budgets (series and points), with a named
limitation for what a budget left out; then every query_range answer read by the same reader that
reads a saved answer. Every answer is returned as received, so a snapshot that saves them replays
to the same canonical series (`sources/raw/prometheus_api.py`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from warroom.errors import InputError
from warroom.sources.canonical import TABLES
from warroom.sources.config import PrometheusConfig
from warroom.sources.contract import Modality, Prerequisite, SourceQuery
from warroom.sources.manifest import Alert
from warroom.sources.mapping.plan import PlannedQuery, plan_records, plan_unmapped
from warroom.sources.mapping.promql import Ranges, duration
from warroom.sources.mapping.resolution import quantile_bounds, with_resolution
from warroom.sources.raw.folder import as_canonical
from warroom.sources.raw.labels import SERVICE_LABELS
from warroom.sources.raw.prometheus_api import answer_read, discovery_samples
from warroom.sources.raw.prometheus_read import rule_sets
from warroom.sources.raw.reader import ReadOptions

MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses a query_range with more steps than this
ALERTS_QUERY = 'ALERTS{alertstate="firing"}'


@dataclass(frozen=True)
class RawResponse:
    """One answer as received: a snapshot saves `body` as it is, under `name`."""

    name: str  # a file name that says what it holds: "007-latency_p99_ms.json"
    endpoint: str
    params: dict[str, str]
    body: bytes


@dataclass
class MetricsRead:
    """The canonical metrics of one period, the queries behind them, what was left out, the
    alerts Prometheus shows firing, and every answer as received."""

    frame: pl.DataFrame | None
    queries: list[SourceQuery] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    raw_responses: list[RawResponse] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def _aligned(start: datetime, end: datetime, step: timedelta) -> tuple[datetime, datetime]:
    """The period on multiples of the step, so that every read of it lands on the same grid."""
    seconds = step.total_seconds()
    low = math.floor(start.timestamp() / seconds) * seconds
    high = math.ceil(end.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(low, UTC), datetime.fromtimestamp(high, UTC)


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", name).strip("_")[:80] or "query"


class PrometheusMetrics:
    """Reads of one Prometheus: prerequisites, and the metrics (and firing alerts) of a period."""

    def __init__(
        self,
        config: PrometheusConfig,
        options: ReadOptions | None = None,
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.options = options or ReadOptions()
        self.base = config.url.rstrip("/")
        self._env = os.environ if env is None else env
        self._transport = transport or httpx.HTTPTransport(retries=2)

    def describe(self) -> str:
        return f"prometheus {self.base}"

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers=self.config.headers(self._env, section="sources.prometheus"),
            timeout=self.config.timeout_s,
            transport=self._transport,
        )

    def _get(self, client: httpx.Client, endpoint: str, params: dict[str, Any]) -> tuple[bytes, Any]:
        """An answer's body and JSON; an InputError naming the URL when Prometheus cannot be used."""
        try:
            response = client.post(endpoint, data=params)
        except httpx.HTTPError as exc:
            raise InputError(f"cannot reach Prometheus ({exc.__class__.__name__}: {exc})", file=self.base) from None
        try:
            answer = response.json()
        except json.JSONDecodeError:
            reason = f"HTTP {response.status_code}, not JSON"
            raise InputError(f"{endpoint}: not a Prometheus API answer ({reason})", file=self.base) from None
        if response.status_code in (401, 403):
            raise InputError(f"{endpoint}: HTTP {response.status_code} (check headers_env)", file=self.base)
        return response.content, answer

    def prerequisites(self) -> list[Prerequisite]:
        try:
            with self._client() as client:
                response = client.get("/api/v1/status/buildinfo")
            version = response.json().get("data", {}).get("version", "?") if response.status_code == 200 else None
        except InputError as exc:
            return [Prerequisite(name="prometheus", ok=False, detail=exc.one_line())]
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            return [Prerequisite(name="prometheus", ok=False, detail=f"{self.base}: {exc.__class__.__name__}: {exc}")]
        if version is None:
            return [Prerequisite(name="prometheus", ok=False, detail=f"{self.base}: HTTP {response.status_code}")]
        return [Prerequisite(name="prometheus", ok=True, detail=f"{self.base} (Prometheus {version})")]

    def _step(self, start: datetime, end: datetime, limitations: list[str]) -> timedelta:
        step = self.config.step_delta()
        steps = (end - start) / step
        if steps > MAX_POINTS_PER_SERIES:
            wider = timedelta(seconds=math.ceil((end - start).total_seconds() / MAX_POINTS_PER_SERIES))
            limitations.append(
                f"prometheus: {steps:.0f} steps of {self.config.step} exceed Prometheus' {MAX_POINTS_PER_SERIES} per "
                f"series: read every {duration(int(wider.total_seconds() * 1e6))} instead"
            )
            return wider
        return step

    def _discover(self, client: httpx.Client, names: set[str], start: datetime, end: datetime) -> tuple[Any, bytes]:
        matchers = [f'{{__name__=~"{"|".join(sorted(names))}"}}', *self.config.selectors]
        body, answer = self._get(
            client, "/api/v1/series", {"match[]": matchers, "start": start.timestamp(), "end": end.timestamp()}
        )
        return answer, body

    def _budget(self, planned: list[PlannedQuery], steps: int, limitations: list[str]) -> list[PlannedQuery]:
        """The queries within the budgets, in order; a limitation naming what was left out."""
        kept: list[PlannedQuery] = []
        left: list[PlannedQuery] = []
        series = 0
        for query in planned:
            if (
                series + query.series <= self.config.max_series
                and (series + query.series) * steps <= self.config.max_points
            ):
                kept.append(query)
                series += query.series
            else:
                left.append(query)
        if left:
            names = ", ".join(q.name for q in left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
            limitations.append(
                f"prometheus: budget (max_series {self.config.max_series}, max_points {self.config.max_points}) "
                f"left out {len(left)} series group(s), {sum(q.series for q in left)} series: {names}"
            )
        return kept

    def read_metrics(self, start: datetime, end: datetime) -> MetricsRead:
        """The canonical metrics of [start, end] and what a snapshot needs to replay them."""
        limitations: list[str] = []
        step = self._step(start, end, limitations)
        start, end = _aligned(start, end, step)
        window = duration(int(self.config.window_delta().total_seconds() * 1e6))
        ranges = Ranges(window, duration(int(step.total_seconds() * 1e6)))
        rules = rule_sets(self.options.mapping_rules)
        names = {s.metric for rs in rules for rule in rs.rules for s in rule.selectors()}
        candidates = (self.options.service_label,) if self.options.service_label else SERVICE_LABELS
        read = MetricsRead(frame=None, limitations=limitations)
        with self._client() as client:
            answer, body = self._discover(client, names, start, end)
            read.raw_responses.append(RawResponse("000-series.json", "/api/v1/series", {}, body))
            if answer.get("status") != "success" or not isinstance(answer.get("data"), list):
                raise InputError(f"/api/v1/series: {answer.get('error', 'not a series answer')}", file=self.base)
            discovered = discovery_samples(answer["data"])
            records, used = plan_records(discovered, rules, candidates, ranges)
            unmapped = plan_unmapped(discovered, used, {q.name for q in records}, self.config.selectors, window)
            steps = int((end - start) / step) + 1
            planned = self._budget([*records, *unmapped], steps, limitations)
            planned.append(PlannedQuery(name="ALERTS", promql=ALERTS_QUERY, series=0))
            frames = []
            for index, query in enumerate(planned, start=1):
                frame = self._run(client, index, query, start, end, step, read)
                if frame is not None:
                    frames.append(frame)
        if frames:
            merged = pl.concat(frames, how="diagonal_relaxed")
            # from the discovery already read, as a replay of its saved answer gives them
            # (raw/prometheus_api.py `discovered_bounds`: the same rules and service labels)
            bounds = quantile_bounds(discovered.series, rules, candidates)
            read.frame = with_resolution(merged, bounds).sort("timestamp", maintain_order=True)
        return read

    def _run(
        self,
        client: httpx.Client,
        index: int,
        query: PlannedQuery,
        start: datetime,
        end: datetime,
        step: timedelta,
        read: MetricsRead,
    ) -> pl.DataFrame | None:
        """One query_range: its answer kept as received and read as a saved answer would be."""
        params = {
            "query": query.promql,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step.total_seconds():g}",
        }
        body, answer = self._get(client, "/api/v1/query_range", params)
        name = f"{index:03d}-{_slug(query.name)}.json"
        read.raw_responses.append(RawResponse(name, "/api/v1/query_range", params, body))
        if answer.get("status") != "success":
            read.limitations.append(f"prometheus: the query for {query.name} failed ({answer.get('error', '?')})")
            return None
        result = answer.get("data", {}).get("result", [])
        if not result:
            return None
        raw = answer_read(answer, Path(name), self.options)
        read.alerts.extend(raw.alerts)
        read.limitations.extend(raw.limitations)
        if not raw.tables:
            return None
        read.queries.append(
            SourceQuery(
                source="prometheus",
                modality=Modality.METRICS,
                text=query.promql,
                location=f"{self.base}/api/v1/query_range",
                start=start,
                end=end,
                derives=query.name if query.rule_sets else "",
            )
        )
        spec = TABLES["metrics"]
        return pl.concat([as_canonical(t.frame, spec) for t in raw.tables], how="diagonal_relaxed")
