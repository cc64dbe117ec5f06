"""The lab supervisor process (`python -m warroom.lab.daemon DIR`): starts, keeps and stops everything.

Start order: PostgreSQL (initialised and loaded on first use), the OTLP receiver, the exporters,
Prometheus and Alertmanager, the five services (each deployed at the version it last ran, or
HEAD), then the load generator. SIGTERM or POST /stop stops it all in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import uvicorn

from warroom.lab import comms_sink, deploy, edge, monitoring, operations, postgres, processes
from warroom.lab import repo as shop_repo
from warroom.lab.cgroup import Container, ContainerCollector, remove_group, weigh_group
from warroom.lab.control import Operation, create_app
from warroom.lab.supervisor import EventLog, ServiceSlot, Unit
from warroom.lab.topology import SERVICES, LabError, LabPaths, LabSettings, LabState, free_port, load_settings

MIB = 1024 * 1024
SLOW_STATEMENT_MS = {"normal": 250, "compressed": 100}


class _ControlServer(uvicorn.Server):
    """The control API inside the supervisor's loop; SIGTERM is the lab's to handle, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Lab:
    def __init__(self, paths: LabPaths, settings: LabSettings) -> None:
        self.paths = paths
        self.settings = settings
        self.events = EventLog(paths.logs / "supervisor.log")
        self.token = secrets.token_urlsafe(24)
        self.group = f"warroom-lab-{os.getpid()}"
        self.services = {
            name: ServiceSlot(
                name, paths, self.events, Container(self.group, name), functools.partial(self._environment, name)
            )
            for name in SERVICES
        }
        # The database and the shoppers run in containers of their own too (a database server and
        # the customers are not on the services' machine), with no limit but their own CPU share.
        self.containers = {name: Container(self.group, name) for name in ("postgres", "loadgen")}
        weigh_group(self.group, len(self.services) + len(self.containers))
        self.ports: dict[str, int] = {name: slot.port for name, slot in self.services.items()}
        tools = ("postgres", "otlp", "prometheus", "alertmanager", "postgres_exporter", "node_exporter")
        for role in ("control", "smtp", *tools):
            self.ports[role] = free_port()
        self.units: dict[str, Unit] = {}
        self.started_at = datetime.now(UTC)
        self.stop_requested = asyncio.Event()
        self.repo_lock = asyncio.Lock()

    # -- state ---------------------------------------------------------------------------------
    def _write_state(self, ready: bool, error: str | None = None) -> None:
        state = LabState(
            supervisor_pid=os.getpid(),
            control_port=self.ports["control"],
            token=self.token,
            ports=self.ports,
            started_at=self.started_at,
            ready=ready,
            error=error,
        )
        tmp = self.paths.state.with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(self.paths.state)

    def status(self) -> dict[str, Any]:
        return {
            "timeline": self.settings.timeline,
            "ports": self.ports,
            "services": {name: slot.status() for name, slot in self.services.items()},
            "units": {name: unit.status() for name, unit in self.units.items()},
        }

    # -- the services' environment ----------------------------------------------------------------
    def _environment(self, service: str, commit: str, release: Path) -> dict[str, str]:
        delay = str(self.settings.timing.otel_batch_delay_ms)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "OTEL_SERVICE_NAME": service,
            "OTEL_RESOURCE_ATTRIBUTES": f"service.version={commit[:12]},deployment.environment.name=lab",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.ports['otlp']}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": delay,
            "OTEL_BLRP_SCHEDULE_DELAY": delay,
            "DATABASE_URL": postgres.url(self.ports["postgres"]),
            "SHOP_LOG_FILE": str(self.paths.service_log(service)),
            "SHOP_RELEASE_DIR": str(release),
            # prometheus_client's *_created series (one more per counter and histogram child) are
            # commonly turned off; they carry nothing an alert or a diagnosis reads.
            "PROMETHEUS_DISABLE_CREATED_SERIES": "True",
        }
        for name in SERVICES:
            env[f"UPSTREAM_{name.upper()}_URL"] = f"http://127.0.0.1:{self.ports[name]}"
        return env

    # -- units -----------------------------------------------------------------------------------
    async def _unit(self, name: str, argv: list[str], **kwargs: Any) -> Unit:
        unit = Unit(name, argv, self.paths, self.events, **kwargs)
        self.units[name] = unit
        await unit.start()
        return unit

    async def _start_database(self) -> None:
        await asyncio.to_thread(postgres.initialise, self.paths, SLOW_STATEMENT_MS[self.settings.timeline])
        await self._unit(
            "postgres",
            postgres.server_command(self.paths, self.ports["postgres"]),
            user=postgres.run_as(),
            stop_signal=signal.SIGINT,  # fast shutdown: roll back open transactions, then exit
            container=self.containers["postgres"],
        )
        await asyncio.to_thread(postgres.wait_ready, self.ports["postgres"])
        server = self.units["postgres"].process
        if server is not None:  # the processes it forked before it was moved into its container
            self.containers["postgres"].adopt_tree(server.pid)
        self.events.write("database.loading", products=self.settings.products)
        await asyncio.to_thread(postgres.load_shop, self.ports["postgres"], self.paths.repo, self.settings.products)
        self.events.write("database.ready")

    async def _start_monitoring(self) -> None:
        bins = monitoring.binaries()
        monitoring.write_configs(self.paths, self.settings, self.ports)
        await asyncio.to_thread(monitoring.check_configs, self.paths)
        receiver = [sys.executable, "-m", "uvicorn", "--factory", "warroom.sources.otlp_receiver:app_from_environment"]
        await self._unit(
            "otlp-receiver",
            [*receiver, "--host", "127.0.0.1", "--port", str(self.ports["otlp"]), "--log-level", "warning"],
            env={
                **os.environ,
                "WARROOM_OTLP_DIR": str(self.paths.otlp),
                "WARROOM_OTLP_ROTATE_SECONDS": "300" if self.settings.timeline == "normal" else "60",
            },
        )
        if "postgres_exporter" in bins:
            dsn = f"{postgres.url(self.ports['postgres'])}?sslmode=disable"
            await self._unit(
                "postgres-exporter",
                monitoring.postgres_exporter_command(bins, self.ports["postgres_exporter"]),
                env={"DATA_SOURCE_NAME": dsn, "PATH": os.environ.get("PATH", "")},
            )
        if "node_exporter" in bins:
            await self._unit("node-exporter", monitoring.node_exporter_command(bins, self.ports["node_exporter"]))
        # PostgreSQL's own log to the OTLP receiver, the lab's log store (as a filelog receiver would)
        await self._unit(
            "pglog-shipper",
            [sys.executable, "-m", "warroom.lab.pglog_shipper", str(self.paths.postgres_logs)],
            env={
                **os.environ,
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.ports['otlp']}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BLRP_SCHEDULE_DELAY": str(self.settings.timing.otel_batch_delay_ms),
            },
        )

    async def _start_alerting(self) -> None:
        # After the services, so no target is scraped (and alerted on) before it could be up.
        bins = monitoring.binaries()
        await self._unit("prometheus", monitoring.prometheus_command(self.paths, bins, self.ports["prometheus"]))
        await self._unit("alertmanager", monitoring.alertmanager_command(self.paths, bins, self.ports["alertmanager"]))

    async def _start_services(self) -> None:
        versions = deploy.current_versions(self.paths)
        head = shop_repo.head(self.paths.repo)
        await asyncio.gather(
            *(
                self.deploy_service(
                    {"service": name, "commit": versions.get(name, head), "description": "initial deploy"},
                    record=name not in versions,
                )
                for name in SERVICES
            )
        )

    async def _start_load(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "warroom.lab.loadgen",
            "--traffic",
            str(self.paths.traffic),
            "--target",
            f"http://127.0.0.1:{self.ports['gateway']}",
            "--log",
            str(self.paths.logs / "tools" / "loadgen-stats.log"),
        ]
        await self._unit("loadgen", argv, container=self.containers["loadgen"])

    # -- deploys, restarts, scaling: the lab's change path (the control API's operations) ---------
    def _slot(self, request: dict[str, Any]) -> ServiceSlot:
        service = str(request.get("service", ""))
        if service not in self.services:
            raise LabError(f"unknown service {service!r}; the lab runs {', '.join(SERVICES)}", field="service")
        return self.services[service]

    async def deploy_service(self, request: dict[str, Any], record: bool = True) -> dict[str, Any]:
        """Run a commit (HEAD when none is given): a deploy, a config change or a rollback."""
        slot = self._slot(request)
        spec = str(request.get("commit") or "HEAD")
        try:
            commit = shop_repo.git(self.paths.repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}").strip()
        except LabError:
            raise LabError(f"no commit {spec!r} in the shop repository", field="commit") from None
        return await self._roll(slot, commit, request, record=record)

    async def restart_service(self, request: dict[str, Any]) -> dict[str, Any]:
        """A new worker of the running version, then the old one stops (as `kubectl rollout restart`)."""
        slot = self._slot(request)
        if slot.commit is None:
            raise LabError(f"{slot.name} has never been deployed", field="service")
        return await self._roll(slot, slot.commit, request, kind="restart")

    async def scale_service(self, request: dict[str, Any]) -> dict[str, Any]:
        """Set the running replicas without a commit (as `kubectl scale`); the next deploy of a release
        goes back to the replicas its deploy/services.yaml says. One worker at most per service."""
        slot = self._slot(request)
        replicas = request.get("replicas")
        if replicas not in (0, 1):
            raise LabError("replicas must be 0 or 1 (the lab runs one worker per service)", field="replicas")
        if slot.commit is None:
            raise LabError(f"{slot.name} has never been deployed", field="service")
        return await self._roll(slot, slot.commit, request, kind="scale", replicas=int(replicas))

    async def rollback_service(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run the version the service ran before its current one, or `to` (as `kubectl rollout undo`)."""
        slot = self._slot(request)
        target = str(request.get("to") or operations.previous_version(self.paths, slot.name))
        description = request.get("description") or f"rollback of {slot.name} to {target[:12]}"
        return await self.deploy_service({**request, "commit": target, "description": description})

    async def revert_commit(self, request: dict[str, Any]) -> dict[str, Any]:
        """Commit the reverse of `commit` (a commit, or a deploy-log change id) on the main branch and
        deploy it to `service` (by default the service the change went to)."""
        commit, changed = deploy.change_commit(self.paths, str(request.get("commit") or ""))
        slot = self._slot({"service": request.get("service") or changed})
        async with self.repo_lock:  # two reverts at once would race for the working tree
            reverted = await asyncio.to_thread(shop_repo.revert, self.paths.repo, commit, request.get("author"))
        return await self.deploy_service({**request, "service": slot.name, "commit": reverted})

    async def block_networks(self, request: dict[str, Any]) -> dict[str, Any]:
        """Set the client networks a rule of the edge refuses (none removes the rule): a commit of
        the gateway's configuration, deployed to the gateway."""
        rule, networks = edge.parse_request(request)
        reason = str(request.get("reason") or "")
        async with self.repo_lock:
            commit = await asyncio.to_thread(
                edge.commit_rule, self.paths.repo, rule, networks, request.get("author"), reason
            )
        return await self.deploy_service({**request, "service": edge.EDGE_SERVICE, "commit": commit})

    async def _roll(
        self,
        slot: ServiceSlot,
        commit: str,
        request: dict[str, Any],
        *,
        kind: deploy.DeployKind | None = None,
        replicas: int | None = None,
        record: bool = True,
    ) -> dict[str, Any]:
        async with slot.lock:
            previous = slot.commit
            release_dir = await asyncio.to_thread(deploy.release, self.paths, commit)
            spec = deploy.service_spec(release_dir, slot.name)
            replicas = spec.replicas if replicas is None else replicas
            rescaled = previous is not None and replicas != slot.replicas
            kind = kind or deploy.classify(self.paths, previous, commit, rescaled)
            commits = deploy.commits_between(self.paths, previous, commit, slot.name)
            status: Literal["succeeded", "failed"] = "succeeded"
            failure: LabError | None = None
            try:
                await slot.run(commit, release_dir, replicas, spec.memory_limit_mb * MIB, spec.cpu_limit)
            except LabError as exc:
                status, failure = "failed", exc
            entry = deploy.DeployRecord(
                time=datetime.now(UTC),
                service=slot.name,
                version=commit[:12],
                commit=commit,
                previous_version=previous[:12] if previous else None,
                previous_commit=previous,
                commits=commits,
                author=commits[0].author if commits else None,
                kind=kind,
                description=str(
                    request.get("description")
                    or "; ".join(c.message.splitlines()[0] for c in commits)
                    or f"{kind} of {slot.name} at {commit[:12]}"
                ),
                deployed_by=str(request.get("deployed_by") or "lab"),
                status=status,
                replicas=replicas,
            )
            if record or failure:
                deploy.append(self.paths, entry)
            self.events.write("deploy." + status, service=slot.name, version=commit[:12], kind=kind)
        if failure:
            raise failure
        return entry.model_dump(mode="json")

    # -- lifecycle -------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        self._write_state(ready=False)
        start_times: dict[str, float] = {}
        containers = {**{n: slot.container for n, slot in self.services.items()}, **self.containers}
        collector = ContainerCollector(containers, start_times)
        operations: dict[str, Operation] = {
            "deploy": self.deploy_service,
            "restart": self.restart_service,
            "scale": self.scale_service,
            "rollback": self.rollback_service,
            "revert": self.revert_commit,
            "block": self.block_networks,
        }
        app = create_app(self.paths, self.token, self.status, operations, self.request_stop, collector)
        server = _ControlServer(
            uvicorn.Config(app, host="127.0.0.1", port=self.ports["control"], log_level="warning", lifespan="off")
        )
        control = asyncio.create_task(server.serve())
        mail = await comms_sink.start_smtp(self.paths.comms_received / "mail", self.ports["smtp"])
        refresher = asyncio.create_task(self._refresh_start_times(start_times))
        try:
            await self._start_database()
            await self._start_monitoring()
            await self._start_services()
            await self._start_alerting()
            await self._start_load()
            self._write_state(ready=True)
            self.events.write("lab.ready", ports=self.ports)
        except Exception as exc:  # a failed start is reported to `lab up`, then everything stops
            message = exc.one_line() if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
            self.events.write("lab.failed", "ERROR", error=message)
            self._write_state(ready=False, error=message)
            self.request_stop()
        await self.stop_requested.wait()
        await self._shutdown()
        refresher.cancel()
        mail.close()
        server.should_exit = True
        await control

    async def _refresh_start_times(self, start_times: dict[str, float]) -> None:
        while True:
            for name, slot in self.services.items():
                if slot.started_at:
                    start_times[name] = slot.started_at
            await asyncio.sleep(0.5)

    async def _shutdown(self) -> None:
        self.events.write("lab.stopping")
        if "loadgen" in self.units:
            await self.units["loadgen"].stop()
        await asyncio.gather(*(slot.stop() for slot in self.services.values()))
        for name in (
            "prometheus",
            "alertmanager",
            "node-exporter",
            "postgres-exporter",
            "pglog-shipper",
            "otlp-receiver",
            "postgres",
        ):
            if name in self.units:
                await self.units[name].stop(grace=20)
        processes.sweep(self.paths.pids)
        remove_group(self.group)
        self.paths.state.unlink(missing_ok=True)
        self.events.write("lab.stopped")


def main(argv: list[str]) -> None:
    paths = LabPaths(Path(argv[0]).resolve())
    settings = load_settings(paths) or LabSettings()
    asyncio.run(Lab(paths, settings).run())


if __name__ == "__main__":
    main(sys.argv[1:])
