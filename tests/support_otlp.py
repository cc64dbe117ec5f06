"""A real OTLP/HTTP receiver (warroom's, under uvicorn) on loopback, and what it spooled."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from support_prometheus import free_port
from warroom.sources.otlp_receiver import Spool, create_app


@contextmanager
def running_receiver(spool_dir: Path) -> Iterator[str]:
    """The receiver's base URL while it runs, spooling into `spool_dir`."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(Spool(spool_dir)), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def spooled(spool_dir: Path, signal: str) -> list[dict]:
    """Every export request spooled for `signal` (traces, logs), as JSON."""
    return [json.loads(line) for path in sorted((spool_dir / signal).glob("*.jsonl")) for line in path.open()]
