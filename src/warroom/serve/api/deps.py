"""What every router needs from the running service, read from the app's state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from warroom.serve.auth import TokenCache
from warroom.serve.committer import GroupCommitter
from warroom.serve.config import ServeConfig
from warroom.serve.intake import RunSettings
from warroom.serve.metrics import ServiceMetrics
from warroom.serve.routing import Router
from warroom.store.repository import Store
from warroom.workflow.executor import RunExecutor


@dataclass
class Service:
    store: Store
    config: ServeConfig
    router: Router
    executor: RunExecutor
    settings: RunSettings
    committer: GroupCommitter  # every write of the intake and the audit goes through it
    metrics: ServiceMetrics
    tokens: TokenCache  # the tokens requests authenticate with (revoking one clears it)

    @property
    def reports_dir(self) -> Path:
        return self.settings.reports_dir


async def service(request: Request) -> Service:
    # async: a sync dependency would cost every request a hop to the thread pool and back
    found: Service = request.app.state.service
    return found
