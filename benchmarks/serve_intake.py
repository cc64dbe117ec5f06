"""Benchmark of `warroom serve` (not a test): sustained alert intake, loss across a server kill,
and time from alert to diagnosis on the example bundle.

    .venv/bin/python benchmarks/serve_intake.py [--seconds 10] [--clients 16] [--batch 1 --batch 10]
        [--rounds 3] [--json]

Everything runs on loopback: a real `warroom serve --replay examples/checkout-pool-exhaustion`
process (SQLite store in a temporary folder) and an asyncio HTTP client in this process, on the
same cores. Intake: the first alert opens an incident and its run goes to its approval gate; then
`clients` concurrent senders post Alertmanager v4 payloads of `batch` alerts each (one storm, new
fingerprints) for `seconds`; each acknowledged alert was committed before its 202. Kill: during
a sustained send the server's process group is SIGKILLed; after a restart every alert that got a
202 must be in the store. Diagnosis: a new alert opens a new incident on a warm server; the time
until the diagnosis endpoint names checkout's connection pool.
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
from pathlib import Path
from typing import Any

import httpx

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


async def _send(served: Served, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    acknowledged: list[str] = []
    errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=served.url, headers=served.headers("responder"), limits=limits) as http:

        async def sender() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                body, fingerprints = _batch(batch)
                started = time.perf_counter()
                try:
                    response = await http.post("/api/v1/alerts/alertmanager", json=body, timeout=30)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code == 202:
                    acknowledged.extend(fingerprints)
                else:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(clients)))
        elapsed = time.perf_counter() - began
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


def intake(served: Served, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    result = asyncio.run(_send(served, clients, batch, seconds))
    result["stored"] = _stored(served, result["acknowledged"])
    result["acknowledged"] = len(result["acknowledged"])
    return result


def kill_during_intake(served: Served, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        sending = asyncio.create_task(_send(served, clients, batch, seconds))
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


def alert_to_diagnosis(served: Served, round_no: int) -> float:
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
    return time.perf_counter() - started


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    batches = args.batch or [1, 10]
    report: dict[str, Any] = {"cpus": os.cpu_count(), "intake": {}, "kill": [], "alert_to_diagnosis_s": []}
    with tempfile.TemporaryDirectory(prefix="warroom-serve-bench-") as tmp:
        served = Served(Path(tmp), f"sqlite:///{tmp}/warroom.db", config=CONFIG)
        served.make_tokens()
        served.start()
        try:
            for n in range(args.rounds):
                report["alert_to_diagnosis_s"].append(alert_to_diagnosis(served, n))
            _open_storm(served)
            for batch in batches:
                report["intake"][batch] = [
                    intake(served, args.clients, batch, args.seconds) for _ in range(args.rounds)
                ]
            for _ in range(args.rounds):
                report["kill"].append(kill_during_intake(served, args.clients, batches[-1], args.seconds))
        finally:
            served.stop()
    summary = {
        "alert_to_diagnosis_median_s": statistics.median(report["alert_to_diagnosis_s"]),
        "intake": {
            batch: {
                "alerts_per_s_median": statistics.median(r["alerts_per_s"] for r in runs),
                "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
                "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
                "lost": sum(r["acknowledged"] - r["stored"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
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
