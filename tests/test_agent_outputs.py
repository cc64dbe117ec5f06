"""The typed context between phases: producers are checked against their models, consumers read models."""

from __future__ import annotations

from typing import ClassVar

import pytest

from warroom.agents import outputs
from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.registry import builtin
from warroom.incident import AgentReport

CANDIDATE = {"rank": 1, "service": "checkout", "fault_type": "db_pool_exhaustion", "indicator": "db_pool_utilization"}


def _producer(values: dict[str, object], declared: tuple[str, ...]) -> type[Specialist]:
    class Producer(Specialist):
        spec: ClassVar[AgentSpec] = AgentSpec(name="producer", purpose="test", outputs=declared)

        def run(self, ctx: AgentContext) -> AgentReport:
            return AgentReport(agent="producer", summary="s", outputs=values)

    return Producer


def _ctx(context: dict[str, object] | None = None) -> AgentContext:
    return AgentContext(telemetry=None, incident_id="INC-1", context=context or {})  # type: ignore[arg-type]


def test_builtin_agents_are_checked_and_their_core_keys_have_models():
    agents = set(builtin().values())
    assert all(issubclass(cls, Specialist) for cls in agents)
    declared = {key for cls in agents for key in cls.spec.outputs}
    assert set(outputs.KEYS) <= declared  # no model for a key nobody writes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"diagnosis": [{**CANDIDATE, "confidence": 1.5}]}, "'diagnosis'.0.confidence"),
        ({"diagnosis": [{**CANDIDATE, "confidence": 0.5, "stray": 1}]}, "'diagnosis[0].stray'"),
        ({"incident": {"severity": "P1", "roles": {"commander": {"name": "x"}}}}, "'incident'.roles.commander.kind"),
        ({"undeclared": 1}, "context key 'undeclared' it does not declare"),
    ],
)
def test_a_producer_writing_a_wrong_shape_fails_when_it_returns(values, message):
    producer = _producer(values, ("diagnosis", "incident"))
    with pytest.raises(outputs.OutputShapeError, match=message.replace("[", r"\[").replace(".", r"\.")):
        producer().run(_ctx())


def test_a_well_formed_output_passes_and_is_left_as_written():
    values = {"diagnosis": [{**CANDIDATE, "confidence": 0.8}], "suspect_service": "checkout"}
    report = _producer(values, ("diagnosis", "suspect_service"))().run(_ctx())
    assert report.outputs == values


def test_reading_is_lenient_with_older_and_partial_values():
    ctx = _ctx(
        {
            # an older run's extra field reads and is kept on the way through
            "diagnosis": [{**CANDIDATE, "confidence": 0.8, "retired": "x"}, "not an entry", {"rank": "?"}],
            "incident": {"severity": "P3"},
            "suspect_change": {"id": "c1", "time": "2024-01-15T14:02:00+00:00", "service": "s", "kind": "deploy"},
            "security": "cleared",  # not the model's shape: reads as absent
        }
    )
    diagnosis = ctx.read_list(outputs.DIAGNOSIS)
    assert [d.service for d in diagnosis] == ["checkout"] and diagnosis[0].model_dump()["retired"] == "x"
    incident = ctx.read(outputs.INCIDENT)
    assert incident is not None and incident.severity == "P3" and incident.rto_minutes is None
    change = ctx.read(outputs.SUSPECT_CHANGE)
    assert change is not None and change.minutes_before_onset == 0.0 and change.code_file is None
    assert ctx.read(outputs.SECURITY) is None and ctx.read(outputs.MITIGATION) is None
    assert ctx.read_list(outputs.CODE_FINDINGS) == []
