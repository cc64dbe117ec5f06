"""`warroom serve`: build the service from its configuration, resume what a crash interrupted,
and run it under uvicorn until it is stopped."""

from __future__ import annotations

import gc
import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import uvicorn

from warroom.application import continue_run
from warroom.config import WarroomConfig
from warroom.errors import Interrupted
from warroom.redact import redact
from warroom.serve.api.deps import Service
from warroom.serve.app import create_app
from warroom.serve.auth import TokenCache
from warroom.serve.cadence import CadenceKeeper
from warroom.serve.committer import GroupCommitter
from warroom.serve.config import ServeConfig
from warroom.serve.intake import RunSettings
from warroom.serve.metrics import ServiceMetrics
from warroom.serve.routing import LiveSettings, Router
from warroom.store.repository import Store
from warroom.workflow.executor import UNFINISHED, LocalExecutor

log = logging.getLogger("warroom.serve")
# The event loop and the store's writer thread hand each batch of requests to each other; at
# Python's default 5 ms switch interval each hand-over could wait that long behind the other's
# work (intake measured ~185 alerts/s at 5 ms, ~245/s at 0.5 ms on the same load).
SWITCH_INTERVAL_S = 0.0005


def _beside_store(store: Store, name: str) -> Path:
    """A folder beside a SQLite store (else under the working directory, `warroom-<name>`)."""
    if store.url.startswith("sqlite:///"):
        return Path(store.url.removeprefix("sqlite:///")).expanduser().resolve().parent / name
    return Path(f"warroom-{name}").resolve()


def reports_dir(config: ServeConfig, store: Store) -> Path:
    if config.reports_dir:
        return Path(config.reports_dir).resolve()
    return _beside_store(store, "reports")


def live_settings(config: WarroomConfig, store: Store) -> LiveSettings:
    """What live routes read: the file's [sources]; snapshots in its `snapshots` folder, else beside the store."""
    snapshots = Path(config.sources.snapshots) if config.sources.snapshots else _beside_store(store, "snapshots")
    path = str(Path(config.path).resolve()) if config.path else None
    return LiveSettings(config.sources, path, snapshots.resolve())


class Stopped(Interrupted):
    """The service was stopped by a signal; `unfinished` runs were left to resume at the next start."""

    def __init__(self, signal_name: str, unfinished: int) -> None:
        super().__init__(signal_name)
        self.unfinished = unfinished

    def one_line(self) -> str:
        if not self.unfinished:
            return f"stopped ({self.signal_name}); no run was in progress"
        return (
            f"stopped ({self.signal_name}): {self.unfinished} run(s) interrupted; "
            "they resume when the service starts again on this store"
        )


@dataclass
class Started:
    service: Service
    resumed: list[str]
    cadence: CadenceKeeper


def build_service(config: ServeConfig, whole: WarroomConfig | None = None) -> Started:
    """Open the store, load routes, bundles and live sources, start the warm pool, resubmit
    unfinished runs. `whole` is the configuration file `config` came from (its [sources])."""
    store = Store(config.db)
    live = live_settings(whole or WarroomConfig(), store)
    router = Router(config, live)  # validates workflows, bundles, live sources: bad ones stop here with one line
    executor = LocalExecutor(store, partial(continue_run, store), workers=config.workers)
    # one pool for every route: warm now (the agents imported; the first bundle a route replays
    # read), or the first incident would pay the workers' spawn and imports
    executor.warm(next(iter(router.bundles()), None))
    settings = RunSettings(reports_dir(config, store), execute=config.execute, workers=config.workers)
    resumed = executor.recover()
    committer = GroupCommitter(store)
    metrics = ServiceMetrics(store, committer)
    cadence = CadenceKeeper(store, (whole or WarroomConfig()).comms, settings.reports_dir)
    service = Service(store, config, router, executor, settings, committer, metrics, TokenCache(store))
    return Started(service, resumed, cadence)


def serve(config: ServeConfig, whole: WarroomConfig | None = None) -> None:
    started = build_service(config, whole)  # before logging is set up: bad configuration is one line
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a live read's every query is not news
    svc = started.service
    if started.resumed:
        log.info("resumed %d unfinished run(s): %s", len(started.resumed), ", ".join(started.resumed))
    log.info("store %s; reports in %s", redact(svc.store.url), svc.reports_dir)
    log.info("warroom serving on http://%s:%d/", config.host, config.port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(svc), host=config.host, port=config.port, log_level="warning", access_log=False)
    )
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # What start-up built (modules, agents, schemas) lives as long as the server: out of the
    # collector's generations, a full collection does not walk it while requests wait.
    gc.freeze()
    started.cadence.start()
    try:
        server.run()
    except KeyboardInterrupt as exc:  # SIGTERM or SIGINT, re-raised by uvicorn once it has stopped
        name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        raise Stopped(name, len(svc.store.runs_with_status(UNFINISHED))) from None
    finally:
        started.cadence.close()
        svc.committer.close()
        svc.executor.close()
        svc.store.close()
