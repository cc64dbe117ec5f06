"""Helpers for the service tests: a real `warroom serve` process on loopback, tokens, payloads."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from warroom.store.repository import Store
from warroom.store.tokens import create_token

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkout-pool-exhaustion"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll until `probe` returns something truthy; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def am_payload(
    name: str = "ApiLatencyP99High",
    *,
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    severity: str = "critical",
    service: str = "gateway",
    starts_at: str = "2024-05-12T18:49:30Z",
    group_key: str | None = None,
) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4) with one alert."""
    labels = {"alertname": name, "service": service, "severity": severity}
    return {
        "version": "4",
        "groupKey": group_key or f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "warroom",
        "groupLabels": {"alertname": name},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": f"{service} latency_p99_ms 5090ms above 500ms for 3 minutes"},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2024-05-12T19:10:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


CONFIG = """
[serve]
workers = 1
[[serve.routes]]
name = "shop"
matchers = ['severity=~"critical|P0|P1"']
storm_window_s = 0
"""


@dataclass
class Served:
    """A `warroom serve --replay` process (its own process group) and its store."""

    root: Path
    db_url: str
    config: str = CONFIG
    port: int = field(default_factory=free_port)
    tokens: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    replay: Path | None = EXAMPLE  # None: the routes' own sources (a live route's [sources])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_tokens(self) -> None:
        store = Store(self.db_url)
        for role in ("viewer", "responder", "commander", "admin"):
            self.tokens[role] = create_token(store, f"{role}-token", role, created_by="test")
        store.close()

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def start(self) -> None:
        config = self.root / "warroom.toml"
        config.write_text(self.config, encoding="utf-8")
        self.starts += 1
        log = (self.root / f"server-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "warroom", "serve", "--config", str(config), "--db", self.db_url),
                *("--port", str(self.port)),
                *(("--replay", str(self.replay)) if self.replay else ()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches the worker pool too
            cwd=self.root,
        )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.root / f'server-{self.starts}.log').read_text()}")
            try:
                return httpx.get(f"{self.url}/api/v1/openapi.json", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "the server to answer")

    @contextlib.contextmanager
    def running(self) -> Iterator[Served]:
        """Tokens made, the server started; stopped (SIGTERM) when the block ends."""
        self.make_tokens()
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def get(self, path: str, role: str = "viewer") -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers(role), timeout=10)

    def group(self) -> list[psutil.Process]:
        assert self.proc is not None
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self, sig: signal.Signals) -> list[psutil.Process]:
        """Signal the whole process group and wait; returns the members that outlived 15 s (then
        killed), so a test can assert there were none."""
        assert self.proc is not None
        members = self.group()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        _, alive = psutil.wait_procs(members, timeout=15)
        for process in alive:  # a clean stop that hangs is still stopped
            process.kill()
        self.proc.wait(timeout=5)
        self.proc = None
        return alive

    def stop(self) -> None:
        if self.proc is not None:
            self.kill(signal.SIGTERM)
