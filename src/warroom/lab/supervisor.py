"""Process supervision: helper units that are restarted when they exit, and the shop's services.

A service's listening socket belongs to the supervisor, not to a worker: each worker is handed
the socket (uvicorn --fd) so a deploy starts the new worker on the same socket, waits for its
readiness (sd_notify's READY=1), and only then stops the old one — no connection is refused.
A worker that exits on its own (a crash, an OOM kill) is restarted with back-off.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warroom.lab import processes
from warroom.lab.cgroup import Container
from warroom.lab.topology import LabError, LabPaths

READY_TIMEOUT_S = 90.0
MAX_BACKOFF_S = 30.0


class EventLog:
    """The supervisor's own JSON log (starts, exits, OOM kills, deploys), like a kubelet's events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, level: str = "INFO", **fields: Any) -> None:
        doc = {
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "logger": "lab.supervisor",
            "event": event,
            **fields,
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(doc, default=str) + "\n")


class Unit:
    """A helper process (PostgreSQL, Prometheus, …) kept running until the lab stops."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        paths: LabPaths,
        events: EventLog,
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        container: Container | None = None,
    ) -> None:
        self.name = name
        self.container = container
        self.argv = argv
        self.paths = paths
        self.events = events
        self.env = env
        self.user = user
        self.stop_signal = stop_signal
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await processes.spawn(
            self.argv,
            name=self.name,
            pids_file=self.paths.pids,
            log=self.paths.logs / "tools" / f"{self.name}.log",
            env=self.env,
            user=self.user,
            # A process that changes user cannot join a cgroup itself: it is moved in once started.
            before_exec=self.container.enter if self.container and not self.user else None,
        )
        if self.container and self.user:
            self.container.adopt(self.process.pid)
        self.events.write("unit.started", unit=self.name, pid=self.process.pid)
        self._watcher = asyncio.create_task(self._watch(self.process))

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self._stopping:
            return
        self.restarts += 1
        delay = min(2.0**self.restarts, MAX_BACKOFF_S)
        self.events.write("unit.exited", "WARNING", unit=self.name, pid=process.pid, exit_code=code, restart_in_s=delay)
        await asyncio.sleep(delay)
        if not self._stopping:
            await self.start()

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        if self.process:
            await processes.stop(self.process, self.stop_signal, grace)
        if self._watcher:
            self._watcher.cancel()

    def status(self) -> dict[str, Any]:
        running = self.process is not None and self.process.returncode is None
        return {"pid": self.process.pid if running and self.process else None, "restarts": self.restarts}


class Worker:
    def __init__(self, process: asyncio.subprocess.Process, commit: str) -> None:
        self.process = process
        self.commit = commit
        self.started = time.time()
        self.watcher: asyncio.Task[None] | None = None


class ServiceSlot:
    """One shop service: its socket, its current worker, its container (memory and CPU), its restarts."""

    def __init__(
        self,
        name: str,
        paths: LabPaths,
        events: EventLog,
        container: Container,
        environment: Callable[[str, Path], dict[str, str]],
    ) -> None:
        self.name = name
        self.paths = paths
        self.events = events
        self.container = container
        self.environment = environment
        self.sock: socket.socket | None = self._bind(0)
        self.port = int(self.sock.getsockname()[1])
        self.worker: Worker | None = None
        self.commit: str | None = None
        self.release: Path | None = None
        self.replicas = 1
        self.restarts = 0
        self.lock = asyncio.Lock()
        self._spawned = 0
        self._stopping = False

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        return sock

    @property
    def started_at(self) -> float | None:
        return self.worker.started if self.worker else None

    async def _spawn(self, commit: str, release: Path) -> Worker:
        """Start a worker of `release` on the shared socket and wait until it says it is ready."""
        assert self.sock is not None
        self._spawned += 1
        address = f"@warroom-lab-{os.getpid()}-{self.name}-{self._spawned}"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind("\0" + address[1:])
        notify.setblocking(False)
        fd = self.sock.fileno()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            f"shop.{self.name}.app:app",
            "--fd",
            str(fd),
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "10",
        ]
        env = {**self.environment(commit, release), "NOTIFY_SOCKET": address}
        try:
            process = await processes.spawn(
                argv,
                name=f"{self.name}-worker",
                pids_file=self.paths.pids,
                log=self.paths.logs / "tools" / f"{self.name}.stderr.log",
                env=env,
                cwd=release,
                pass_fds=(fd,),
                before_exec=self.container.enter,
            )
            loop = asyncio.get_running_loop()
            ready = asyncio.ensure_future(loop.sock_recv(notify, 256))
            exited = asyncio.ensure_future(process.wait())
            done, _ = await asyncio.wait({ready, exited}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
            for task in (ready, exited):
                if task not in done:
                    task.cancel()
            if ready not in done or not ready.result().startswith(b"READY=1"):
                await processes.stop(process, signal.SIGKILL, 5)
                reason = "exited" if exited in done else f"not ready within {READY_TIMEOUT_S:.0f} s"
                raise LabError(f"{self.name} worker of {commit[:12]} {reason} (see logs/tools/{self.name}.stderr.log)")
        finally:
            notify.close()
        worker = Worker(process, commit)
        self.events.write("worker.ready", service=self.name, pid=process.pid, version=commit[:12])
        worker.watcher = asyncio.create_task(self._watch(worker))
        return worker

    async def _watch(self, worker: Worker) -> None:
        ooms_before = self.container.readings().get("oom_kills", 0.0)
        code = await worker.process.wait()
        if self._stopping or worker is not self.worker:
            return
        oom = self.container.readings().get("oom_kills", 0.0) > ooms_before
        self.restarts += 1
        delay = min(2.0 ** min(self.restarts, 5) / 2, MAX_BACKOFF_S)
        self.events.write(
            "worker.exited",
            "ERROR",
            service=self.name,
            pid=worker.process.pid,
            exit_code=code,
            signal=signal.Signals(-code).name if code < 0 else None,
            oom_killed=oom,
            restart_in_s=delay,
        )
        await asyncio.sleep(delay)
        async with self.lock:
            if self._stopping or worker is not self.worker or self.release is None:
                return
            self.worker = None
            try:
                self.worker = await self._spawn(worker.commit, self.release)
                self.events.write("worker.restarted", service=self.name, pid=self.worker.process.pid)
            except LabError as exc:
                self.events.write("worker.restart_failed", "ERROR", service=self.name, error=str(exc))

    async def run(self, commit: str, release: Path, replicas: int, memory_bytes: int, cpu_cores: float | None) -> None:
        """Make `commit` the running version (start-new-then-stop-old), or stop when replicas is 0."""
        self.container.set(memory_bytes, cpu_cores)
        if replicas == 0:
            old = self.worker
            self.worker, self.commit, self.release, self.replicas = None, commit, release, 0
            if old:
                await processes.stop(old.process)
            if self.sock is not None:
                self.sock.close()
                self.sock = None
            self.events.write("service.scaled_to_zero", service=self.name, version=commit[:12])
            return
        if self.sock is None:
            self.sock = self._bind(self.port)
        new = await self._spawn(commit, release)
        old, self.worker = self.worker, new
        self.commit, self.release, self.replicas = commit, release, replicas
        if old:
            await processes.stop(old.process)

    async def stop(self) -> None:
        self._stopping = True
        if self.worker:
            await processes.stop(self.worker.process)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.container.remove()

    def status(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "pid": self.worker.process.pid if self.worker else None,
            "version": self.commit[:12] if self.commit else None,
            "commit": self.commit,
            "replicas": self.replicas,
            "restarts": self.restarts,
            "memory_limit": self.container.memory_kind,
            "cpu_limit": self.container.cpu_kind,
        }
