"""Stakeholder updates on the severity's cadence while a served incident is open and not recovered.

The workflow's communications specialist speaks at the phases of a run; between them (a run
waiting for an approval, a live check waiting for the system) nobody would hear anything. A
thread of the service looks at every open incident each tick: when an interval of the severity's
cadence (comms/cadence.py; `[comms] cadence_minutes` and the incident's own cadence win) has
passed since the last update the store holds, in incident time, it sends the next update through
the configured channels (comms/updates.py) and records each delivery on the timeline. Once the
incident has recovered it sends one last update, which says so, and no more. Due times derive
from the stored last update, never from memory, so a restarted service keeps the cadence.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from warroom.comms.cadence import DEFAULT_INTERVAL_MINUTES, interval_for
from warroom.comms.config import CommsConfig
from warroom.comms.message import AUDIENCES, updates_sent
from warroom.comms.updates import send_update
from warroom.errors import NotFoundError
from warroom.incident import Incident, Status, TimelineKind
from warroom.redact import redact_tree
from warroom.serve.clock import incident_now
from warroom.store.records import run_context
from warroom.store.repository import Store

log = logging.getLogger("warroom.serve")

SENDER = "warroom-serve (cadence)"
# The keeper looks four times per shortest interval (an update is at most a quarter late), at most
# every 5 s and at least every 50 ms.
LOOKS_PER_INTERVAL = 4
MAX_TICK_S = 5.0
MIN_TICK_S = 0.05


def _recovered(incident: Incident, context: dict[str, Any]) -> bool:
    """Recovered for real: a verified recovery after an executed action, or the incident monitored."""
    if incident.status is Status.MONITORING:
        return True
    mitigation: Any = context.get("mitigation")
    return isinstance(mitigation, dict) and mitigation.get("recovered") is True and not mitigation.get("dry_run")


class CadenceKeeper:
    def __init__(self, store: Store, comms: CommsConfig, reports_dir: Path) -> None:
        self.store = store
        self.comms = comms
        self.reports_dir = reports_dir
        shortest = min({**DEFAULT_INTERVAL_MINUTES, **comms.cadence_minutes}.values())
        self.tick_s = min(MAX_TICK_S, max(MIN_TICK_S, shortest * 60 / LOOKS_PER_INTERVAL))
        self._stop = threading.Event()
        # the incident and run state each incident's record was last read at (a cache of what
        # the store holds, so a restarted keeper reads every record once again)
        self._looked: dict[str, tuple[Status, tuple[str, str, int] | None]] = {}
        self._thread = threading.Thread(target=self._loop, name="warroom-cadence", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.send_due()
            except Exception:  # one bad tick must not end the updates of every incident
                log.exception("stakeholder updates: a pass failed")

    def send_due(self) -> list[str]:
        """Send every update that is due now; the incidents updated."""
        updated = []
        for incident in self.store.list_incidents():
            if incident.status in (Status.RESOLVED, Status.CLOSED):
                continue  # over: what is left to say is the postmortem
            if self._update(incident):
                updated.append(incident.id)
        return updated

    def _run_state(self, incident: Incident) -> tuple[str, str, int] | None:
        try:
            run = self.store.latest_run(incident.id)
        except NotFoundError:
            return None
        return run.id, run.status, self.store.step_count(run.id)

    def _update(self, incident: Incident) -> bool:
        # Only the updates sent are read each tick; the run's context (redacted) only when an
        # update is due or the run moved on (a step recorded may be the verified recovery that
        # calls for the last update). Never the whole record: on a storm's incident its timeline
        # holds thousands of alert events, and reading it held the GIL for most of a second.
        sent = self.store.timeline(incident.id, kinds=(TimelineKind.COMMUNICATION_SENT.value,))
        if any(e.data.get("final") for e in sent):
            return False  # the update saying it recovered went out: no more
        now = incident_now(self.store, incident.id)
        interval = interval_for(incident.severity.value, self.comms.cadence_minutes, incident.comms_cadence_minutes)
        last = max((e.at for e in sent), default=None) or incident.detected_at or now
        due = now >= last + timedelta(minutes=interval)
        state = (incident.status, self._run_state(incident))
        if not due and self._looked.get(incident.id) == state:
            return False
        try:
            context = redact_tree(run_context(self.store, incident.id))
        except NotFoundError:
            return False
        self._looked[incident.id] = state  # what the context was read at: not recovered unless it changes
        recovered = _recovered(incident, context)
        if not (due or recovered):
            return False
        self._send(incident, context, now, updates_sent(sent) + 1, final=recovered)
        return True

    def _send(self, incident: Incident, context: dict[str, Any], now: datetime, sequence: int, *, final: bool) -> None:
        # what the executor already did (a rollback executed, its live check still waiting on the
        # system) is on the timeline before the executor's step ends and its outcome reaches the context
        actions = self.store.timeline(
            incident.id, kinds=(TimelineKind.ACTION_EXECUTED.value, TimelineKind.ACTION_VERIFIED.value)
        )
        update = send_update(
            context,
            incident_id=incident.id,
            severity=incident.severity.value,
            now=now,
            comms=self.comms,
            sequence=sequence,
            audiences=list(AUDIENCES),
            out_dir=self.reports_dir / incident.id,
            incident_cadence=incident.comms_cadence_minutes,
            sender=SENDER,
            actions=actions,
        )
        with self.store.transaction() as session:
            for event in update.timeline:
                marked = event.model_copy(update={"data": {**event.data, "final": final}})
                key = f"cadence:{sequence}:{event.data['audience']}:{event.data['channel']}"
                self.store.add_event(session, incident.id, marked, dedupe_key=key)
        for limitation in update.limitations:
            log.warning("%s: %s", incident.id, limitation)
