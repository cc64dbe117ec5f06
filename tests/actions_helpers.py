"""Real components for the actions/comms tests: a loopback HTTP service, a fake kubectl, git repos,
a long-running PostgreSQL query. Nothing here is a mock: each is a real server, process or repo."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ServiceState:
    """A tiny service: /health is 503 until POST /restart; /webhook records; /flaky fails N times."""

    healthy: bool = False
    restarts: int = 0
    flaky_failures: int = 0
    slow_seconds: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recorded(self, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def _handler(state: ServiceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with state.lock:
                state.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
            if self.path == "/health":
                self._reply(200 if state.healthy else 503, {"status": "ok" if state.healthy else "degraded"})
            elif self.path == "/restart" and self.command == "POST":
                state.restarts += 1
                state.healthy = True
                self._reply(202, {"restarted": state.restarts})
            elif self.path == "/flaky":
                if state.flaky_failures > 0:
                    state.flaky_failures -= 1
                    self._reply(503, {"error": "try again"})
                else:
                    self._reply(200, {"ok": True})
            elif self.path == "/slow":
                time.sleep(state.slow_seconds)
                self._reply(200, {"ok": True})
            elif self.path == "/forbidden":
                self._reply(403, {"error": "forbidden"})
            else:
                self._reply(200, {"received": True})

        do_GET = _handle
        do_POST = _handle
        do_PUT = _handle
        do_DELETE = _handle

    return Handler


@contextmanager
def http_service(state: ServiceState | None = None) -> Iterator[tuple[str, ServiceState]]:
    """A real HTTP server on 127.0.0.1 in a thread; yields (base_url, state)."""
    state = state or ServiceState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The fake reads its behaviour from files beside it (not from the environment: the kubectl adapter
# passes only allow-listed variables to the child, which is one of the things under test).
FAKE_KUBECTL = """#!/usr/bin/env python3
import json, os, sys
home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(home, "kubectl.log"), "a") as handle:
    handle.write(json.dumps(sys.argv[1:]) + "\\n")
if os.path.exists(os.path.join(home, "kubectl.fail")):
    sys.stderr.write("error: deployments.apps not found\\n")
    sys.exit(1)
if "get" in sys.argv and "jsonpath={.spec.replicas}" in sys.argv:
    with open(os.path.join(home, "kubectl.replicas")) as handle:
        sys.stdout.write(handle.read().strip())
else:
    sys.stdout.write("deployment.apps/checkout " + " ".join(sys.argv[1:]) + "\\n")
"""


def fake_kubectl(folder: Path, replicas: int = 3) -> tuple[dict[str, str], Path]:
    """A `kubectl` executable first on PATH that records each argv; returns (env, log path).
    Create `folder/kubectl.fail` to make it fail."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "kubectl"
    exe.write_text(FAKE_KUBECTL)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (folder / "kubectl.replicas").write_text(str(replicas))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(folder),
        "KUBECONFIG": str(folder / "kubeconfig"),
    }
    return env, folder / "kubectl.log"


def kubectl_calls(log: Path) -> list[list[str]]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def deploy_repo(path: Path) -> dict[str, str]:
    """A deploy repository: a good release, then a bad one at HEAD. Returns their commit ids."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "checkout.yaml").write_text("image: checkout:1.4.1\npool_size: 20\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "checkout 1.4.1")
    good = git(path, "rev-parse", "HEAD")
    (path / "checkout.yaml").write_text("image: checkout:1.5.0\npool_size: 20\n")
    git(path, "commit", "-q", "-am", "checkout 1.5.0: new order handler")
    bad = git(path, "rev-parse", "HEAD")
    return {"good": good, "bad": bad}


class LongQuery:
    """A real `pg_sleep` query holding a connection in a background thread."""

    def __init__(self, url: str, seconds: float = 60.0, application: str = "checkout-leak") -> None:
        self.url = url
        self.seconds = seconds
        self.application = application
        self.error: str | None = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        engine = sa.create_engine(self.url, connect_args={"application_name": self.application})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(:s)"), {"s": self.seconds})
        except Exception as exc:
            self.error = str(exc).splitlines()[0]
        finally:
            engine.dispose()
            self.finished.set()

    def start(self, engine_url: str, wait_s: float = 10.0) -> LongQuery:
        """Start the query and wait until PostgreSQL shows it as active."""
        self.thread.start()
        probe = sa.create_engine(engine_url)
        deadline = time.monotonic() + wait_s
        try:
            while time.monotonic() < deadline:
                with probe.connect() as conn:
                    found = conn.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a AND state = 'active'"
                        ),
                        {"a": self.application},
                    ).scalar()
                if found:
                    return self
                time.sleep(0.05)
        finally:
            probe.dispose()
        raise RuntimeError("the long query did not start")
