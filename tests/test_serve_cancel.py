"""Cancelling a served investigation, and the stakeholder cadence across a server crash, on one
real `warroom serve --replay` process: a commander's cancel stops the run at its next step
boundary (durably: a `kill -9` and a restart do not resume it), and the cadence updates go on
after the restart with no update lost or sent twice."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from serve_support import CONFIG, Served, am_payload, wait_for
from warroom.serve.cadence import SENDER
from warroom.store.repository import Store
from warroom.store.tokens import audit_entries

pytestmark = pytest.mark.long

# an update every 1.2 s of incident time (fractional minutes), set on the incident itself: its own
# cadence (the example's 15 minutes) wins over [comms] cadence_minutes
CADENCE = 0.02


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve-cancel")
    found = Served(root, f"sqlite:///{root / 'warroom.db'}", config=CONFIG)
    found.make_tokens()
    found.start()
    try:
        yield found
    finally:
        found.stop()


def _get(served: Served, path: str) -> Any:
    response = httpx.get(f"{served.url}{path}", headers=served.headers("admin"), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _cancel(served: Served, incident_id: str, role: str) -> httpx.Response:
    return httpx.post(
        f"{served.url}/api/v1/incidents/{incident_id}/cancel",
        json={"reason": "a duplicate: handled in the other incident"},
        headers=served.headers(role),
        timeout=30,
    )


def _cadence_updates(served: Served, incident_id: str) -> list[list[dict[str, Any]]]:
    by_sequence: dict[int, list[dict[str, Any]]] = {}
    for event in _get(served, f"/api/v1/incidents/{incident_id}/comms")["events"]:
        if event["source"] == SENDER:
            by_sequence.setdefault(event["data"]["sequence"], []).append(event)
    return [by_sequence[k] for k in sorted(by_sequence)]


def _updates_across_a_crash(served: Served, store: Store, incident_id: str) -> None:
    """Stakeholder updates go on while the incident is open (cancelling the run closes nothing),
    before and after a kill -9 of the server."""
    incident = store.get_incident(incident_id)
    with store.transaction() as session:  # as a commander setting the cadence would
        store.save_incident(session, incident.model_copy(update={"comms_cadence_minutes": CADENCE}))
    wait_for(lambda: len(_cadence_updates(served, incident_id)) >= 2, 30, "two updates on cadence")
    assert served.kill(signal.SIGKILL) == []
    stored_before = {e.data["sequence"] for e in store.timeline(incident_id) if e.source == SENDER}
    served.start()
    more = len(stored_before) + 2
    wait_for(lambda: len(_cadence_updates(served, incident_id)) >= more, 30, "updates after the restart")


def test_cancel_stops_the_run_for_good_and_the_cadence_survives_a_crash(served: Served) -> None:
    sent = httpx.post(
        f"{served.url}/api/v1/alerts/alertmanager", json=am_payload(), headers=served.headers("responder"), timeout=30
    )
    assert sent.status_code == 202, sent.text
    incident_id = sent.json()["incidents"][0]
    store = Store(served.db_url)
    try:
        run_id = store.latest_run(incident_id).id
        wait_for(lambda: store.steps(run_id) and store.get_run(run_id).status == "running", 60, "a first step")
        assert _cancel(served, incident_id, "viewer").status_code == 403
        assert _cancel(served, incident_id, "responder").status_code == 403
        cancelled = _cancel(served, incident_id, "commander")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json() | {"stopped_queued": None} == {
            "incident_id": incident_id,
            "run_id": run_id,
            "status": "cancelled",
            "by": "commander-token",
            "stopped_queued": None,
        }
        assert _cancel(served, incident_id, "commander").status_code == 409  # over: nothing left to cancel

        # The step in flight finishes and is recorded; then the worker stops, and writes the
        # reports as every run does when it stops.
        def stopped() -> bool:
            postmortem = f"{served.url}/api/v1/incidents/{incident_id}/postmortem"
            return httpx.get(postmortem, headers=served.headers("viewer"), timeout=30).status_code == 200

        wait_for(stopped, 60, "the cancelled run to stop and write its reports")
        steps = len(store.steps(run_id))
        events = _get(served, f"/api/v1/incidents/{incident_id}/timeline")["events"]
        [mark] = [e for e in events if e["kind"] == "cancelled"]
        assert mark["source"] == "commander-token" and "a duplicate" in mark["summary"]
        # (what the step in flight found, proposals included, is recorded after the mark)
        assert not [e for e in events if e["seq"] > mark["seq"] and e["kind"] == "phase_started"]
        assert store.get_run(run_id).status == "cancelled"
        [entry] = [a for a in audit_entries(store, incident_id) if a.path.endswith("/cancel") and a.status_code == 200]
        assert entry.actor == "commander-token" and entry.role == "commander"

        _updates_across_a_crash(served, store, incident_id)
    finally:
        store.close()
    updates = _cadence_updates(served, incident_id)
    sequences = [u[0]["data"]["sequence"] for u in updates]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))  # none lost, none twice
    for update in updates:  # one event per audience and channel of each update, never a repeat
        assert len({(e["data"]["audience"], e["data"]["channel"]) for e in update}) == len(update)
    times = [datetime.fromisoformat(u[0]["at"]) for u in updates]
    assert all(b - a >= timedelta(minutes=CADENCE) - timedelta(milliseconds=50) for a, b in itertools.pairwise(times))
    # the cancelled run was not resumed by the restart and ran nothing more
    events = _get(served, f"/api/v1/incidents/{incident_id}/timeline")["events"]
    assert not [e for e in events if e["kind"] == "resumed"]
    assert _get(served, f"/api/v1/incidents/{incident_id}")["run_status"] == "cancelled"
    reopened = Store(served.db_url)
    try:
        assert len(reopened.steps(run_id)) == steps
    finally:
        reopened.close()
