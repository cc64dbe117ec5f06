"""compute_metrics: response metrics from the record's own timestamps, None (with why) otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from test_report_support import at, build_record, ev
from warroom.incident import TimelineKind
from warroom.report import compute_metrics, derive_metrics, write_reports
from warroom.store.records import facts_of


def test_metrics_of_the_seed_run() -> None:
    m = compute_metrics(build_record())
    # The seed's shape: 2 + 3 + 20 = 25 minutes, within the 30 minute RTO, updates every 10 minutes.
    assert m.detection_to_assessment_min == 2.0
    assert m.assessment_to_investigation_min == 3.0
    assert m.investigation_to_resolution_min == 20.0
    assert m.total_resolution_min == 25.0
    assert m.rto_minutes == 30.0
    assert m.rto_met is True
    assert m.communication_interval_min == 10.0
    assert m.run_seconds == 26 * 60.0


def test_metrics_json_carries_numbers_and_their_basis(tmp_path: Path) -> None:
    write_reports(build_record(), tmp_path)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["total_resolution_min"] == 25.0
    assert data["detection_to_mitigation_min"] == 18.5  # the first executed action, not a status change
    assert data["rto_met"] is True
    assert data["milestones"]["assessed"]["source"] == "status change to triaged"
    assert data["communications"] == {
        "count": 3,
        "cadence_minutes": 15.0,
        "first_update_after_detection_min": 3.0,
        "longest_gap_min": 10.0,
        "cadence_met": True,
        "source": "communication events on the timeline",
    }
    assert data["basis"]["rto_met"] == "total resolution 25 min against RTO 30 min"


def test_falls_back_to_phases_and_decision_without_status_events() -> None:
    record = build_record()
    record.timeline = [e for e in record.timeline if e.kind != TimelineKind.STATUS_CHANGED]
    report = derive_metrics(record)
    # Assessment ends with the first phase (2 min); investigation starts with the decision (5 min).
    assert report.milestones["assessed"].source == "end of the first phase"
    assert report.milestones["investigating"].source == "first decision event"
    assert report.metrics.detection_to_assessment_min == 2.0
    assert report.metrics.assessment_to_investigation_min == 3.0


def test_detection_falls_back_to_the_first_alert() -> None:
    record = build_record()
    record.incident.detected_at = None
    report = derive_metrics(record)
    assert report.milestones["detected"].source == "first alert event"
    assert report.metrics.total_resolution_min == 26.0  # alert at T-1 min, resolved at T+25 min


def not_recovered(record):  # type: ignore[no-untyped-def]
    """The same run with no verified recovery: validation never ran, and no live probe passed."""
    record.context.pop("recovery")
    for outcome in record.context["mitigation"]["outcomes"]:
        outcome["verified"] = False
    return record


def test_unresolved_incident_has_no_resolution_metrics() -> None:
    record = not_recovered(build_record())
    record.incident.resolved_at = None
    record.timeline = [e for e in record.timeline if e.data.get("to") != "resolved"]
    report = derive_metrics(record)
    m = report.metrics
    assert m.total_resolution_min is None
    assert m.investigation_to_resolution_min is None
    assert m.rto_met is None
    assert m.detection_to_assessment_min == 2.0  # what is derivable still is
    assert "incident.resolved_at" in report.basis["total_resolution_min"]
    assert report.basis["rto_met"] == "not derivable: total resolution time is unknown"


def test_rto_missed() -> None:
    record = build_record()
    record.context["recovery"]["recovered_at"] = at(45).isoformat()
    m = compute_metrics(record)
    assert m.total_resolution_min == 45.0 and m.rto_met is False


def test_clocks_that_disagree_give_none_not_a_negative_number() -> None:
    record = build_record()
    record.incident.detected_at = at(60)  # "detected" an hour after it was triaged
    report = derive_metrics(record)
    assert report.metrics.detection_to_assessment_min is None
    assert "precedes start" in report.basis["detection_to_assessment_min"]


def test_communication_interval_needs_two_updates() -> None:
    record = build_record()
    comms = [e for e in record.timeline if e.kind == TimelineKind.COMMUNICATION_SENT]
    record.timeline = [e for e in record.timeline if e.kind != TimelineKind.COMMUNICATION_SENT] + comms[:1]
    report = derive_metrics(record)
    assert report.metrics.communication_interval_min is None
    assert report.basis["communication_interval_min"].startswith("not derivable: 1 update round")


def test_missed_cadence_is_judged_on_the_longest_gap() -> None:
    record = build_record()
    record.timeline.append(ev(99, 45, TimelineKind.COMMUNICATION_SENT, "comms", "Resolved"))
    report = derive_metrics(record)
    # Gaps 10, 10, 22 min: the mean is within 15 min, the longest gap is not.
    assert report.metrics.communication_interval_min == 14.0
    assert report.communications["longest_gap_min"] == 22.0
    assert report.communications["cadence_met"] is False


def test_no_rto_no_verdict() -> None:
    record = build_record()
    record.incident.rto_minutes = None
    report = derive_metrics(record)
    assert report.metrics.rto_met is None
    assert report.basis["rto_met"] == "not derivable: the incident has no RTO target"


def test_resolution_is_the_verified_recovery_never_a_replay() -> None:
    record = build_record()
    record.incident.resolved_at = None
    # The recorded data after a replayed action shows recovery 40 minutes in: that resolves nothing.
    record.context["mitigation"] = {
        "outcomes": [{"action_id": "A2", "status": "dry_run", "verified": True, "data": {"simulated": True}}]
    }
    record.context["recovery"] = {"recovered": True, "recovered_at": at(40).isoformat(), "basis": "replayed"}
    assert derive_metrics(record).milestones["resolved"].at is None
    # Observed after an executed action, it is the resolution.
    record.context["recovery"].update(basis="observed", verified=True)
    report = derive_metrics(record)
    assert report.milestones["resolved"].source.startswith("verified recovery")
    assert report.metrics.total_resolution_min == 40.0
    assert report.metrics.investigation_to_resolution_min == 35.0
    assert report.metrics.rto_met is False


def test_unvalidated_recovery_time_is_not_used() -> None:
    record = build_record()
    record.context["recovery"] = {"recovered": False, "recovered_at": at(40).isoformat()}
    report = derive_metrics(record)
    assert report.milestones["resolved"].source == "incident.resolved_at"
    assert report.metrics.total_resolution_min == 25.0


def test_audiences_of_one_round_count_once() -> None:
    record = build_record()
    record.timeline = [e for e in record.timeline if e.kind != TimelineKind.COMMUNICATION_SENT]
    for seq, minute in ((1, 3), (2, 18)):
        for offset, audience in enumerate(("internal", "executive", "customer")):
            record.timeline.append(
                ev(
                    100 + seq * 10 + offset,
                    minute + offset * 0.01,
                    TimelineKind.COMMUNICATION_SENT,
                    "comms",
                    audience,
                    sequence=seq,
                )
            )
    report = derive_metrics(record)
    assert report.communications["count"] == 2
    assert report.metrics.communication_interval_min == 15.0


def test_rounds_from_context_messages_when_the_timeline_has_none() -> None:
    record = build_record()
    record.timeline = [e for e in record.timeline if e.kind != TimelineKind.COMMUNICATION_SENT]
    record.context["communications"] = [
        {"sequence": 1, "audience": "internal", "created_at": at(4).isoformat(), "status": "delivered"},
        {"sequence": 1, "audience": "customer", "created_at": at(4).isoformat(), "status": "delivered"},
        {"sequence": 2, "audience": "internal", "created_at": at(16).isoformat(), "status": "delivered"},
        {"sequence": 3, "audience": "internal", "created_at": at(20).isoformat(), "status": "failed"},
    ]
    report = derive_metrics(record)
    assert report.communications["source"] == "messages in context.communications"
    assert report.communications["count"] == 2
    assert report.metrics.communication_interval_min == 12.0


def test_an_action_is_timed_when_it_ran_not_when_its_step_was_written() -> None:
    """A live recovery check holds the executor's step for minutes: its result (written at the end)
    precedes, in the order of writing, the audit steps journalled on the way. The action ran at its
    `executed` step: mitigation is timed from there, not from the end of the check."""
    record = build_record()
    k = TimelineKind
    record.timeline = [e for e in record.timeline if e.data.get("action_id") not in ("A1", "A2")] + [
        ev(90, 26, k.ACTION_VERIFIED, "change-executor", "A2 verified after the watch", action_id="A2"),
        ev(91, 18.8, k.ACTION_EXECUTED, "change-executor", "A2 started", action_id="A2", step="started"),
        ev(92, 19, k.ACTION_EXECUTED, "change-executor", "A2 executed", action_id="A2", step="executed"),
        ev(93, 24, k.ACTION_VERIFIED, "change-executor", "A2 verified", action_id="A2", step="verified"),
    ]
    facts = facts_of(record)
    assert next(a for a in facts.actions if a.id == "A2").at == at(19)
    assert facts.mitigated_at == at(19)
