"""A change that lines up with the onset puts the step that removes it first."""

from __future__ import annotations

from warroom.agents.resolution import Facts, cause_first
from warroom.incident import RecommendedAction, RiskLevel


def plan() -> list[RecommendedAction]:
    kinds = ["recycle_pool", "raise_pool_size", "rollback", "fix_forward"]
    return [
        RecommendedAction(id=k, title=k, kind=k, risk=RiskLevel.MEDIUM, parameters={"order": i})
        for i, k in enumerate(kinds, 1)
    ]


def facts(**change: object) -> Facts:
    result = Facts()
    result.values.update(service="checkout", suspect_change={"id": "CHG-1", "service": "checkout", **change})
    return result


def test_a_correlated_deploy_is_rolled_back_first() -> None:
    ordered = cause_first(plan(), facts(score=0.9, minutes_before_onset=8))
    assert [a.kind for a in ordered] == ["rollback", "recycle_pool", "raise_pool_size", "fix_forward"]
    assert ordered[0].priority == "immediate" and "CHG-1" in ordered[0].rationale
    assert [a.parameters["order"] for a in ordered] == [1, 2, 3, 4]


def test_a_weak_or_later_or_unrelated_change_keeps_the_runbook_order() -> None:
    for change in (
        {"score": 0.3, "minutes_before_onset": 8},
        {"score": 0.9, "minutes_before_onset": -2},
        {"score": 0.9, "minutes_before_onset": 8, "service": "catalog"},
    ):
        assert next(a.kind for a in cause_first(plan(), facts(**change))) == "recycle_pool"
    assert next(a.kind for a in cause_first(plan(), Facts())) == "recycle_pool"


def test_a_change_stamped_within_a_metric_step_after_the_onset_still_counts() -> None:
    ordered = cause_first(plan(), facts(score=0.95, minutes_before_onset=-0.2))
    assert ordered[0].kind == "rollback"


def test_restoring_lost_data_stays_ahead_of_the_rollback() -> None:
    actions = [
        RecommendedAction(id=k, title=k, kind=k, risk=RiskLevel.HIGH, parameters={"order": i})
        for i, k in enumerate(["restore_backup", "rollback"], 1)
    ]
    ordered = cause_first(actions, facts(score=0.99, minutes_before_onset=1))
    assert [a.kind for a in ordered] == ["restore_backup", "rollback"]


def test_the_plan_adopts_earlier_proposals_of_the_same_kind_and_target() -> None:
    from warroom.agents.resolution import adopt_proposals

    planned = [a.model_copy(update={"target": "checkout"}) for a in plan()]
    earlier = [
        {"id": "db-rollback", "kind": "rollback", "target": "checkout"},
        {"id": "db-recycle", "kind": "recycle_pool", "target": "cart"},  # another service: not the same action
    ]
    adopted = adopt_proposals(planned, earlier)
    assert [a.id for a in adopted] == ["recycle_pool", "raise_pool_size", "db-rollback", "fix_forward"]
    assert adopt_proposals(planned, []) == planned


def test_a_config_change_that_lines_up_is_reverted_first_even_where_the_runbook_had_no_revert() -> None:
    from warroom.agents.resolution import build_plan

    lined_up = facts(score=0.9, minutes_before_onset=1, kind="config")
    lined_up.values.update(fault_type="slow_dependency", change_id="CHG-1", change_commit="ab12cd34")
    diagnosis = [
        {"rank": 1, "service": "checkout", "fault_type": "slow_dependency", "indicator": "", "confidence": 0.9}
    ]
    actions, source, _ = build_plan(lined_up, diagnosis, {})
    assert source == "runbook slow-external-dependency"
    assert actions[0].kind == "revert_config" and "CHG-1" in actions[0].rationale


def test_a_runbook_step_whose_wording_needs_an_unknown_value_stays_in_the_measured_words() -> None:
    """The certificate runbook's first step names the certificate, which nobody configured: the
    step stays first (it is the fix), titled from what the data gives, and runs as a manual step.
    The scale-out step of the CPU runbook gets its replica count from the measured CPU."""
    from warroom.agents.resolution import build_plan

    expired = Facts()
    expired.values.update(service="payment", fault_type="certificate_expiry")
    diagnosis = [
        {"rank": 1, "service": "payment", "fault_type": "certificate_expiry", "indicator": "", "confidence": 0.9}
    ]
    actions, source, skipped = build_plan(expired, diagnosis, {})
    assert source == "runbook certificate-expiry" and not skipped
    first = actions[0]
    assert (first.kind, first.title) == ("renew_certificate", "Renew and deploy the certificate of payment")
    assert "certificate" in first.parameters["manual_reason"]
    saturated = Facts()
    saturated.values.update(service="cart", fault_type="load_saturation", replicas=3, cpu_max=1.0)
    cpu = [{"rank": 1, "service": "cart", "fault_type": "load_saturation", "indicator": "", "confidence": 0.9}]
    actions, source, _ = build_plan(saturated, cpu, {})
    assert source == "runbook cpu-saturation"
    assert (actions[0].kind, actions[0].title) == ("scale_out", "Scale cart out to 5 replicas")
