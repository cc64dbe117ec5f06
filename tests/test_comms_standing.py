"""Stakeholder updates say what the executor already did while its step is still under way: a live
recovery check waits minutes for the system, and until the step ends its outcome is only on the
timeline (the audit trail), not in the run's context. A rollback executed then is "mitigating", a
replayed one (nothing changed) is not, a verified one is recovered; the recorded outcome, once there,
is the last word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warroom.actions.journal import AuditEvent, AuditStep, timeline_events
from warroom.comms.cadence import next_update
from warroom.comms.compose import build_updates
from warroom.incident import TimelineEvent

T0 = datetime(2026, 12, 2, 16, 54, tzinfo=UTC)
CONTEXT = {
    "incident": {"id": "INC-1", "title": "checkout failing", "severity": "P1", "detected_at": T0.isoformat()},
    "resolution_plan": [{"id": "rollback", "kind": "rollback", "title": "Roll checkout back", "target": "checkout"}],
}


def _steps(*steps: AuditStep, **data: object) -> list[TimelineEvent]:
    events = [
        AuditEvent(at=T0 + timedelta(seconds=i), action_id="rollback", kind="rollback", step=step, data=dict(data))
        for i, step in enumerate(steps)
    ]
    return timeline_events(events)


def _customer_subject_and_status(actions: list[TimelineEvent], context: dict[str, object] = CONTEXT) -> tuple[str, str]:
    cadence = next_update("P1", T0 + timedelta(minutes=3), last_update_at=None)
    messages = build_updates(
        context, incident_id="INC-1", audiences=["customer"], cadence=cadence, now=T0 + timedelta(minutes=3),
        sequence=2, actions=actions,
    )  # fmt: skip
    return messages[0].subject, messages[0].facts["Status"]


def test_an_executed_action_under_verification_is_mitigating() -> None:
    subject, status = _customer_subject_and_status(_steps(AuditStep.STARTED, AuditStep.EXECUTED, AuditStep.RECHECKED))
    assert subject.startswith("Monitoring") and status.startswith("mitigating")


def test_without_the_timeline_nothing_was_done() -> None:
    subject, status = _customer_subject_and_status([])
    assert subject.startswith("Investigating") and status == "mitigation proposed"


def test_a_replayed_action_changed_nothing() -> None:
    subject, status = _customer_subject_and_status(_steps(AuditStep.EXECUTED, simulated=True))
    assert subject.startswith("Investigating") and "nothing changed" in status


def test_a_verified_action_is_recovered_and_an_undone_one_is_not() -> None:
    subject, status = _customer_subject_and_status(_steps(AuditStep.EXECUTED, AuditStep.VERIFIED))
    assert subject.startswith("Resolved") and "recovery verified" in status
    subject, status = _customer_subject_and_status(_steps(AuditStep.EXECUTED, AuditStep.UNDONE))
    assert subject.startswith("Investigating")


def test_the_recorded_outcome_is_the_last_word() -> None:
    undone = {**CONTEXT, "mitigation": {"outcomes": [{"action_id": "rollback", "status": "undone"}]}}
    subject, _ = _customer_subject_and_status(_steps(AuditStep.EXECUTED), undone)
    assert subject.startswith("Investigating")
