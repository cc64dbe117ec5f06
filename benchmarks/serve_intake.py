"""Benchmark of `warroom serve` (not a test): sustained alert intake, loss across a server kill,
and time from alert to diagnosis on the example bundle.

    .venv/bin/python benchmarks/serve_intake.py [--seconds 10] [--clients 16] [--batch 1 --batch 10]
        [--rate 500 [--connections 64]] [--rounds 3] [--json]

Everything runs on loopback: a real `warroom serve --replay examples/checkout-pool-exhaustion`
process (SQLite store in a temporary folder) and an asyncio HTTP client in this process, on the
same cores. Intake: the first alert opens an incident and its run goes to its approval gate; then
`clients` concurrent senders post Alertmanager v4 payloads of `batch` alerts each (one storm, new
fingerprints) for `seconds`; each acknowledged alert was committed before its 202. That closed
loop gives the maximum throughput, but its latency is queueing (Little's law: clients / rate).
Open loop (`--rate R`, alerts per second, one alert per request): requests are sent on a fixed
schedule, one every 1/R s, each on a free keep-alive connection (a new one when all are busy, up
to `--connections`; then it waits for one), and latency is measured from the scheduled send
time, so a server that falls behind shows it in the latency instead of slowing the senders down
(no coordinated omission). Kill: during a sustained send the server's process group is
SIGKILLed; after a restart every alert that got a 202 must be in the store. Diagnosis: a new
alert opens a new incident on a warm server; the time until the diagnosis endpoint names
checkout's connection pool.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_support import Served, am_payload, wait_for
from warroom.store.models import AlertRow
from warroom.store.repository import Store

STORM = "IntakeStorm"
_serial = itertools.count()


def _batch(size: int) -> tuple[dict[str, Any], list[str]]:
    fingerprints = [f"{next(_serial):016x}" for _ in range(size)]
    body = am_payload(STORM, fingerprint=fingerprints[0], service="checkout")
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "fingerprint": fp, "labels": {**template["labels"], "instance": f"pod-{fp}"}}
        for fp in fingerprints
    ]
    return body, fingerprints


class _Connection:
    """One keep-alive HTTP/1.1 connection that posts pre-encoded JSON and reads the status.

    The senders are lean on purpose: they share the server's 2 cores, and httpx spends more CPU
    per request than the server does (about 7 ms on a loaded machine), so with it the benchmark
    measured its own client. Alertmanager, the real sender, is a separate Go process."""

    def __init__(self, served: Served) -> None:
        self.port = served.port
        self.head = (
            "POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {served.headers('responder')['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _send(
    served: Served, clients: int, batch: int, seconds: float, acknowledged: list[str] | None = None
) -> dict[str, Any]:
    latencies: list[float] = []
    acknowledged = [] if acknowledged is None else acknowledged  # the kill round watches it fill
    errors = 0
    deadline = time.monotonic() + seconds

    async def sender() -> None:
        nonlocal errors
        connection = _Connection(served)
        try:
            while time.monotonic() < deadline:
                body, fingerprints = _batch(batch)
                started = time.perf_counter()
                try:
                    status = await asyncio.wait_for(connection.post(json.dumps(body).encode()), 30)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    errors += 1  # the server is gone (the kill round): stop sending
                    return
                latencies.append(time.perf_counter() - started)
                if status == 202:
                    acknowledged.extend(fingerprints)
                else:
                    errors += 1
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(clients)))
    return _latency(latencies, acknowledged, time.perf_counter() - began, errors)


async def _send_open(served: Served, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    """One alert per request, request i scheduled at i / rate s, on one of at most `connections`
    keep-alive connections (opened as needed; a request finding all busy waits for one, which
    its latency, counted from the schedule, includes)."""
    latencies: list[float] = []
    acknowledged: list[str] = []
    errors = 0
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    opened: list[_Connection] = []

    async def send(scheduled: float) -> None:
        nonlocal errors
        if idle.empty() and len(opened) < connections:
            opened.append(_Connection(served))
            idle.put_nowait(opened[-1])
        connection = await idle.get()
        body, fingerprints = _batch(1)
        try:
            status = await asyncio.wait_for(connection.post(json.dumps(body).encode()), 30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            errors += 1
            connection.close()
            return
        latencies.append(time.perf_counter() - scheduled)
        idle.put_nowait(connection)
        if status == 202:
            acknowledged.extend(fingerprints)
        else:
            errors += 1

    began = time.perf_counter()
    sending = []
    for i in range(int(rate * seconds)):
        scheduled = began + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sending.append(asyncio.create_task(send(scheduled)))
    await asyncio.gather(*sending)
    elapsed = time.perf_counter() - began
    for connection in opened:
        connection.close()
    return {**_latency(latencies, acknowledged, elapsed, errors), "connections": len(opened)}


def _latency(latencies: list[float], acknowledged: list[str], elapsed: float, errors: int) -> dict[str, Any]:
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return {
        "alerts_per_s": len(acknowledged) / elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": p99 * 1000,
        "errors": errors,
        "acknowledged": acknowledged,
    }


def _stored(served: Served, fingerprints: list[str]) -> int:
    from sqlalchemy import select

    store = Store(served.db_url)
    with store.transaction() as session:
        found = set(session.scalars(select(AlertRow.fingerprint).where(AlertRow.fingerprint.in_(fingerprints))))
    store.close()
    return len(found)


def _open_storm(served: Served) -> None:
    body, _ = _batch(1)
    incident = httpx.post(
        f"{served.url}/api/v1/alerts/alertmanager", json=body, headers=served.headers("responder"), timeout=30
    ).json()["incidents"][0]

    def parked() -> bool:
        detail = httpx.get(f"{served.url}/api/v1/incidents/{incident}", headers=served.headers("viewer"), timeout=10)
        return detail.json()["run_status"] in ("waiting_approval", "succeeded")

    wait_for(parked, 180, "the storm incident's run to reach its gate", every=0.5)


def _cpu_s(served: Served) -> float:
    assert served.proc is not None
    times = psutil.Process(served.proc.pid).cpu_times()
    return float(times.user + times.system)


def intake(served: Served, sending: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    # The server's CPU per alert does not depend on what else the machine runs; the rate does.
    cpu, own = _cpu_s(served), time.process_time()
    result = asyncio.run(sending)
    alerts = max(1, len(result["acknowledged"]))
    result["server_cpu_ms_per_alert"] = (_cpu_s(served) - cpu) * 1000 / alerts
    result["client_cpu_ms_per_alert"] = (time.process_time() - own) * 1000 / alerts
    result["stored"] = _stored(served, result["acknowledged"])
    result["acknowledged"] = len(result["acknowledged"])
    return result


def kill_during_intake(served: Served, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        # Killed `seconds / 2` after the first acknowledgement (a restarted server's first answers
        # are slow on a loaded machine), with senders still going: they stop when it is gone.
        acknowledged: list[str] = []
        sending = asyncio.create_task(_send(served, clients, batch, seconds * 10, acknowledged))
        while not acknowledged and not sending.done():
            await asyncio.sleep(0.02)
        await asyncio.sleep(seconds / 2)
        await asyncio.to_thread(served.kill, signal.SIGKILL)
        return await sending

    result = asyncio.run(run())
    served.start()
    stored = _stored(served, result["acknowledged"])
    return {
        "acknowledged": len(result["acknowledged"]),
        "stored_after_restart": stored,
        "lost": len(result["acknowledged"]) - stored,
    }


def alert_to_diagnosis(served: Served, round_no: int) -> tuple[float, dict[str, float]]:
    body = am_payload(f"CheckoutLatency{round_no}", fingerprint=f"d1a9{round_no:012x}", service="gateway")
    started = time.perf_counter()
    sent = httpx.post(f"{served.url}/api/v1/alerts/alertmanager", json=body, headers=served.headers("responder"))
    incident = sent.json()["incidents"][0]

    def named() -> bool:
        found = httpx.get(f"{served.url}/api/v1/incidents/{incident}/diagnosis", headers=served.headers("viewer"))
        candidates = found.json().get("candidates", []) if found.status_code == 200 else []
        return bool(candidates) and (candidates[0]["service"], candidates[0]["fault_type"]) == (
            "checkout",
            "db_pool_exhaustion",
        )

    wait_for(named, 120, "the diagnosis", every=0.05)
    return time.perf_counter() - started, _breakdown(served, incident)


def _breakdown(served: Served, incident_id: str) -> dict[str, float]:
    """Where the time went, from the run's steps: a replayed incident's clock starts at its alert
    and runs at wall speed, so each step's times are seconds since the alert arrived."""
    store = Store(served.db_url)
    origin = store.get_incident(incident_id).detected_at
    assert origin is not None
    steps = store.steps(store.latest_run(incident_id).id)
    store.close()

    def since(at: datetime) -> float:
        return ((at if at.tzinfo else at.replace(tzinfo=UTC)) - origin).total_seconds()

    agents = [s for s in steps if s.kind == "agent"]
    found = {
        "first_step_started_s": since(agents[0].started_at),
        "steps_cpu_wall_s": sum(since(s.finished_at) - since(s.started_at) for s in agents),
    }
    for step in agents:
        found[f"{step.agent}_done_s"] = since(step.finished_at)
    return found


CONFIG = """
[serve]
workers = 2
[[serve.routes]]
name = "storm"
matchers = ['alertname="IntakeStorm"']
storm_window_s = 3600
[[serve.routes]]
name = "pages"
matchers = ['severity="critical"']
storm_window_s = 0
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--rate", type=float, action="append", help="open loop at this many alerts/s")
    parser.add_argument("--connections", type=int, default=64, help="the open loop's most connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only-diagnosis", action="store_true", help="skip the intake and kill rounds")
    args = parser.parse_args()
    batches = args.batch or [1, 10]
    report: dict[str, Any] = {"cpus": os.cpu_count(), "intake": {}, "kill": [], "alert_to_diagnosis_s": []}
    with tempfile.TemporaryDirectory(prefix="warroom-serve-bench-") as tmp:
        served = Served(Path(tmp), f"sqlite:///{tmp}/warroom.db", config=CONFIG)
        served.make_tokens()
        served.start()
        try:
            for n in range(args.rounds):
                seconds, breakdown = alert_to_diagnosis(served, n)
                report["alert_to_diagnosis_s"].append(seconds)
                report.setdefault("diagnosis_breakdown", []).append(breakdown)
            if args.only_diagnosis:
                batches = []
            else:
                _open_storm(served)
            for batch in batches:
                report["intake"][batch] = [
                    intake(served, _send(served, args.clients, batch, args.seconds)) for _ in range(args.rounds)
                ]
            for rate in (args.rate or []) if batches else []:
                report["intake"][f"open loop {rate:g}/s"] = [
                    intake(served, _send_open(served, rate, args.seconds, args.connections)) for _ in range(args.rounds)
                ]
            for _ in range(args.rounds if batches else 0):
                report["kill"].append(kill_during_intake(served, args.clients, batches[-1], args.seconds))
        finally:
            served.stop()
    summary = {
        "alert_to_diagnosis_median_s": statistics.median(report["alert_to_diagnosis_s"]),
        "diagnosis_breakdown_median_s": {
            key: statistics.median(b[key] for b in report["diagnosis_breakdown"] if key in b)
            for key in report["diagnosis_breakdown"][0]
        },
        "intake": {
            batch: {
                "alerts_per_s_median": statistics.median(r["alerts_per_s"] for r in runs),
                "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
                "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
                "server_cpu_ms_per_alert_median": statistics.median(r["server_cpu_ms_per_alert"] for r in runs),
                "client_cpu_ms_per_alert_median": statistics.median(r["client_cpu_ms_per_alert"] for r in runs),
                "lost": sum(r["acknowledged"] - r["stored"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                **({"connections_max": max(r["connections"] for r in runs)} if "connections" in runs[0] else {}),
            }
            for batch, runs in report["intake"].items()
        },
        "lost_across_kills": sum(k["lost"] for k in report["kill"]),
        "acknowledged_in_kill_rounds": [k["acknowledged"] for k in report["kill"]],
    }
    report["summary"] = summary
    print(json.dumps(report if args.json else summary, indent=2, default=str))


if __name__ == "__main__":
    main()
