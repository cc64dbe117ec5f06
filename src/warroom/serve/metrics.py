"""The service's own metrics for Prometheus (`GET /metrics`): alert intake, the group commit,
and workflow runs by status.

Each service has its own registry (never prometheus_client's global one), so two services in one
process do not share counters. Run counts are read from the store at scrape time: the store, not
this process, knows the runs another server or a restart left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from warroom.serve.auth import Principal, Role, requires
from warroom.serve.committer import GroupCommitter
from warroom.serve.intake import IntakeResult
from warroom.store.repository import Store

# Seconds; the intake's target is a p99 under 50 ms, so the buckets are dense below it.
INTAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Store(Collector):
    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self.store = store
        self.committer = committer

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("warroom_runs", "Workflow runs in the store, by status.", labels=["status"])
        for status, count in sorted(self.store.run_counts().items()):
            runs.add_metric([status], count)
        yield runs
        queued = GaugeMetricFamily("warroom_store_writes_queued", "Writes waiting for the store's next group commit.")
        queued.add_metric([], self.committer.waiting())
        yield queued
        commits = CounterMetricFamily("warroom_store_commits", "Group commits of the service's writes.")
        commits.add_metric([], self.committer.batches)
        yield commits
        writes = CounterMetricFamily(
            "warroom_store_committed_writes", "Writes (intake requests, audit entries) committed by the group commits."
        )
        writes.add_metric([], self.committer.jobs)
        yield writes


class ServiceMetrics:
    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.alerts = Counter(
            "warroom_alerts",
            "Alerts received, by what became of them (opened an incident, attached to one, stored only).",
            ["outcome"],
            registry=self.registry,
        )
        self.runs_queued = Counter("warroom_runs_queued", "Workflow runs started by alerts.", registry=self.registry)
        self.intake_seconds = Histogram(
            "warroom_intake_duration_seconds",
            "Engine time from an intake request's parsed alerts to their committed storage.",
            buckets=INTAKE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Store(store, committer))

    def taken(self, result: IntakeResult, seconds: float) -> None:
        for alert in result.alerts:
            self.alerts.labels(alert.outcome).inc()
        self.runs_queued.inc(len(result.runs))
        self.intake_seconds.observe(seconds)


# Not in the OpenAPI document: it is Prometheus's text format, not the API's JSON. A scrape sends a
# viewer token (scrape_configs: authorization: credentials_file).
router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, _: Annotated[Principal, Depends(requires(Role.VIEWER))]) -> Response:
    registry = request.app.state.service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
