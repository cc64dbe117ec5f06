"""A run's failed steps, named with their errors: what the benchmarks report beside each case, so a
crashed diagnosis step is told apart from an honest "inconclusive" (both leave no cause)."""

from __future__ import annotations

from datetime import UTC, datetime

from warroom.incident import Incident, Severity
from warroom.record import PhaseRecord, RunRecord, StepRecord, StepStatus

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def _step(agent: str, status: StepStatus, error: str | None = None) -> StepRecord:
    return StepRecord(
        phase_id="p", step_id=agent, agent=agent, status=status, started_at=T0, finished_at=T0, error=error
    )


def test_failed_and_timed_out_steps_are_named_with_their_errors() -> None:
    phases = [
        PhaseRecord(
            id="assess", title="a", kind="agent", steps=[_step("commander", StepStatus.FAILED, "NameError: x")]
        ),
        PhaseRecord(
            id="deep",
            title="d",
            kind="parallel",
            steps=[_step("monitoring", StepStatus.SUCCEEDED), _step("logs", StepStatus.TIMED_OUT)],
        ),
    ]
    incident = Incident(id="INC-1", title="t", severity=Severity.P2)
    record = RunRecord(incident=incident, workflow="w", run_status="completed_with_failures", phases=phases)
    assert record.failed_steps == ["commander: NameError: x", "logs: timed_out"]
    assert RunRecord(incident=incident, workflow="w", run_status="succeeded").failed_steps == []
