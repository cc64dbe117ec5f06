"""`warroom serve`: build the service from its configuration, resume what a crash interrupted,
and run it under uvicorn until it is stopped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import uvicorn

from warroom.application import continue_run
from warroom.redact import redact
from warroom.serve.api.deps import Service
from warroom.serve.app import create_app
from warroom.serve.config import ServeConfig
from warroom.serve.intake import RunSettings
from warroom.serve.routing import Router
from warroom.store.repository import Store
from warroom.workflow.executor import LocalExecutor

log = logging.getLogger("warroom.serve")


def reports_dir(config: ServeConfig, store: Store) -> Path:
    if config.reports_dir:
        return Path(config.reports_dir).resolve()
    if store.url.startswith("sqlite:///"):
        return Path(store.url.removeprefix("sqlite:///")).expanduser().resolve().parent / "reports"
    return Path("warroom-reports").resolve()


@dataclass
class Started:
    service: Service
    resumed: list[str]


def build_service(config: ServeConfig) -> Started:
    """Open the store, load routes and bundles, start the warm pool, resubmit unfinished runs."""
    store = Store(config.db)
    router = Router(config)  # validates workflows and bundles: bad ones stop here with one line
    executor = LocalExecutor(store, partial(continue_run, store), workers=config.workers)
    for bundle in router.bundles()[:1]:  # one pool: warm it on the first bundle a route replays
        executor.warm(bundle)
    settings = RunSettings(reports_dir(config, store), execute=config.execute, workers=config.workers)
    resumed = executor.recover()
    return Started(Service(store, config, router, executor, settings), resumed)


def serve(config: ServeConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = build_service(config)
    svc = started.service
    if started.resumed:
        log.info("resumed %d unfinished run(s): %s", len(started.resumed), ", ".join(started.resumed))
    log.info("store %s; reports in %s", redact(svc.store.url), svc.reports_dir)
    log.info("warroom serving on http://%s:%d/", config.host, config.port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(svc), host=config.host, port=config.port, log_level="warning", access_log=False)
    )
    try:
        server.run()
    finally:
        svc.executor.close()
        svc.store.close()
