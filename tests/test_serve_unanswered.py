"""A live route whose only source does not answer (a Prometheus URL on a closed loopback port):
the incident opens, its run ends `failed` with a `run_failed` event naming the source and the
error, in the API and in the room, and the incident stays open (a failed run is not among the
runs a restart takes up: test_serve_executor.py's recovery)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_support import Served, am_payload, free_port, wait_for


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    closed = free_port()  # bound once and released: nothing listens there
    config = f"""
[sources]
lookback = "10m"
[sources.prometheus]
url = "http://127.0.0.1:{closed}"

[serve]
workers = 1

[[serve.routes]]
name = "live"
source = "live"
storm_window_s = 0
"""
    with Served(tmp_path, f"sqlite:///{tmp_path / 'warroom.db'}", config=config, replay=None).running() as server:
        yield server


def test_a_run_no_source_answers_ends_failed_and_says_why(served: Served) -> None:
    posted = httpx.post(
        f"{served.url}/api/v1/alerts/alertmanager", headers=served.headers("responder"), json=am_payload(), timeout=10
    )
    assert posted.status_code == 202, posted.text
    [incident_id] = posted.json()["incidents"]

    def ended() -> str | None:
        status = served.get(f"/api/v1/incidents/{incident_id}").json()["run_status"]
        return status if status not in (None, "running", "queued") else None

    assert wait_for(ended, 60, "the run to end", every=0.3) == "failed"
    shown = served.get(f"/api/v1/incidents/{incident_id}").json()
    assert shown["incident"]["status"] not in ("resolved", "closed")
    events = served.get(f"/api/v1/incidents/{incident_id}/timeline").json()["events"]
    [failed] = [e for e in events if e["kind"] == "run_failed"]
    assert "no live source answered" in failed["summary"]
    [source] = failed["data"]["sources"]
    assert source["kind"] == "prometheus" and source["location"].startswith("http://127.0.0.1:")
    assert source["detail"]  # the error the source gave
    page = httpx.get(f"{served.url}/incidents/{incident_id}", cookies={"warroom_token": served.tokens["viewer"]})
    assert page.status_code == 200 and 'id="run-failed"' in page.text and "no live source answered" in page.text

    log = (served.root / "server-1.log").read_text()
    assert "Traceback" not in log
