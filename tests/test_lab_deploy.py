"""A deploy keeps the service's socket: the new worker starts on it before the old one stops."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from warroom.lab import deploy, repo
from warroom.lab.cgroup import MemoryLimit
from warroom.lab.supervisor import EventLog, ServiceSlot
from warroom.lab.topology import SERVICES, LabPaths

# Two real uvicorn workers start here: 10-50 s on a loaded two-core machine, so `make test-lab`.
pytestmark = pytest.mark.lab


def _environment(paths: LabPaths, commit: str, release: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "SHOP_RELEASE_DIR": str(release), "SHOP_LOG_FILE": str(paths.logs / "gateway.log")}
    # Upstreams that refuse connections: /healthz never calls them.
    env.update({f"UPSTREAM_{name.upper()}_URL": "http://127.0.0.1:9" for name in SERVICES})
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    return env


def test_deploy_without_a_refused_connection(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    paths.ensure()
    first = repo.create(paths.repo)
    second = repo.commit_files(
        paths.repo,
        {"docs/oncall.md": repo.template_text("docs/oncall.md") + "\n* Gateway deploys keep the socket.\n"},
        "Amara Okafor <amara.okafor@shop.example>",
        "docs: deploys keep the socket",
    )
    outcomes: list[str] = []
    done = threading.Event()

    async def scenario() -> tuple[int, int]:
        slot = ServiceSlot(
            "gateway",
            paths,
            EventLog(paths.logs / "supervisor.log"),
            MemoryLimit(f"warroom-test-{time.monotonic_ns()}", "gateway"),
            lambda commit, release: _environment(paths, commit, release),
        )
        try:
            await slot.run(first, deploy.release(paths, first), 1, 512 * 1024 * 1024)
            old_pid = slot.status()["pid"]
            hammer = threading.Thread(target=_hammer, args=(slot.port, outcomes, done))
            hammer.start()
            await asyncio.sleep(0.5)
            await slot.run(second, deploy.release(paths, second), 1, 512 * 1024 * 1024)
            await asyncio.sleep(0.5)
            done.set()
            hammer.join(10)
            return old_pid, slot.status()["pid"]
        finally:
            done.set()
            await slot.stop()

    old_pid, new_pid = asyncio.run(scenario())
    assert old_pid != new_pid
    assert len(outcomes) > 20
    assert set(outcomes) == {"200"}, {o for o in outcomes if o != "200"}


def _hammer(port: int, outcomes: list[str], done: threading.Event) -> None:
    # A new connection for every request: a closed listener would show as ConnectError.
    while not done.is_set():
        try:
            outcomes.append(str(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code))
        except httpx.HTTPError as exc:
            outcomes.append(type(exc).__name__)
