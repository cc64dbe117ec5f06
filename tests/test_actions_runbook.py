"""Runbooks: the built-in ones load and cover the fault types; diagnosis → ordered plan; the
bundle-mode loop judges recovery from a real bundle's after/<kind>/ telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warroom.actions.journal import InMemoryJournal
from warroom.actions.loop import run_mitigation, summarize
from warroom.actions.policy import ApprovalPolicy, Mode, Target
from warroom.actions.runbook import ACTION_KINDS, builtin_runbooks, load_runbook, plan_from_diagnosis
from warroom.actions.verify import telemetry_verifier
from warroom.errors import InputError
from warroom.sources.bundle import load_bundle

FAULTS = [
    "connection_leak",
    "pool_exhaustion",
    "missing_index",
    "cpu_saturation",
    "memory_leak",
    "slow_external_dependency",
    "bad_config",
    "network_delay",
    "certificate_expiry",
    "credential_stuffing",
    "data_corruption",
    "code_defect",
    "cpu_contention",
    "exception",
]


def test_builtin_runbooks_load_and_use_known_kinds():
    books = builtin_runbooks()
    assert len(books) >= 11
    for book in books:
        assert all(step.kind in ACTION_KINDS for step in book.steps)
        assert all(step.rollback for step in book.steps), book.name


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_type_has_a_runbook(fault):
    runbook, plan = plan_from_diagnosis(
        [{"rank": 1, "service": "checkout", "fault_type": fault, "indicator": "", "confidence": 0.7}]
    )
    assert runbook is not None and plan


def test_plan_fills_placeholders_and_keeps_order():
    variables = {"kube_context": "prod", "namespace": "shop", "database_url_env": "CHECKOUT_DB_URL"}
    runbook, plan = plan_from_diagnosis(
        [
            {
                "rank": 1,
                "service": "checkout",
                "fault_type": "Connection Leak",
                "indicator": "db_pool_utilization",
                "confidence": 0.9,
            }
        ],
        variables=variables,
    )
    assert runbook is not None and runbook.name == "connection-pool-exhaustion"
    assert [a.kind for a in plan][:2] == ["kill_long_queries", "recycle_pool"]
    assert plan[0].parameters["params"] == {"url_env": "CHECKOUT_DB_URL", "min_seconds": 60}
    assert plan[1].parameters["params"] == {"context": "prod", "namespace": "shop", "name": "checkout"}
    # raise_pool_size needs a variable that was not given: it stays a manual step and says why.
    assert "adapter" not in plan[2].parameters
    assert "raised_pool_size" in plan[2].parameters["manual_reason"]
    # A rollback is not taken back when recovery is not seen (that would deploy the blamed change
    # again); the other actions are, unless their step says otherwise.
    undo = {a.kind: a.parameters["undo_if_not_recovered"] for a in plan}
    assert undo["rollback"] is False and undo["kill_long_queries"] is True and undo["recycle_pool"] is True


def test_indicator_alone_selects_and_second_candidate_is_used_when_first_has_none():
    _, plan = plan_from_diagnosis(
        [
            {"rank": 1, "service": "x", "fault_type": "unheard-of", "indicator": "nothing", "confidence": 0.5},
            {"rank": 2, "service": "auth", "fault_type": "odd", "indicator": "auth_failures", "confidence": 0.4},
        ]
    )
    assert plan and plan[0].kind == "block_sources" and plan[0].target == "auth"
    assert plan_from_diagnosis(
        [{"rank": 1, "service": "x", "fault_type": "?", "indicator": "?", "confidence": 0.1}]
    ) == (None, [])


def test_bad_runbook_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmatch: {}\nsteps:\n  - id: a\n    kind: reboot_everything\n    title: t\n    risk: low\n")
    with pytest.raises(InputError) as err:
        load_runbook(path)
    assert "bad.yaml:5" in str(err.value) and "unknown action kind" in str(err.value)


def _series(start: datetime, minutes: int, p99: float, err: float) -> list[str]:
    rows = []
    for minute in range(minutes):
        ts = (start + timedelta(minutes=minute)).isoformat()
        rows.append(f"{ts},checkout,latency_p99_ms,{p99 + minute % 3}")
        rows.append(f"{ts},checkout,error_rate,{err}")
    return rows


def make_bundle(root: Path) -> Path:
    fired = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    root.mkdir()
    (root / "incident.yaml").write_text(
        "title: Checkout latency\n"
        f"alert: {{name: HighLatency, fired_at: '{fired.isoformat()}', service: checkout}}\n"
        f"window: {{start: '{(fired - timedelta(minutes=10)).isoformat()}', "
        f"end: '{(fired + timedelta(minutes=20)).isoformat()}'}}\n"
        "slo: {latency_p99_ms: 500, error_rate: 0.01}\n"
    )
    header = "timestamp,service,metric,value"
    # Healthy before the incident window (the baseline), then the incident.
    before = _series(fired - timedelta(minutes=30), 20, 200, 0.001)
    during = _series(fired - timedelta(minutes=10), 30, 2400, 0.2)
    (root / "metrics.csv").write_text("\n".join([header, *before, *during]) + "\n")
    for kind, p99, err in (("recycle_pool", 2300, 0.18), ("kill_long_queries", 2200, 0.15), ("rollback", 210, 0.002)):
        folder = root / "after" / kind
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text(
            "\n".join([header, *_series(fired + timedelta(minutes=25), 20, p99, err)]) + "\n"
        )
    return root


def test_bundle_mode_escalates_until_the_post_action_data_recovers(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    _, plan = plan_from_diagnosis(
        [
            {
                "rank": 1,
                "service": "checkout",
                "fault_type": "connection_leak",
                "indicator": "db_pool_utilization",
                "confidence": 0.9,
            }
        ]
    )
    journal = InMemoryJournal()
    mode = Mode(execute=False, target=Target.BUNDLE, policy=ApprovalPolicy.RISKY)
    outcomes = run_mitigation(plan, {}, journal, telemetry_verifier(bundle), mode)
    statuses = [(o.action_id, o.verified) for o in outcomes]
    assert statuses == [
        ("kill-long-queries", False),
        ("recycle-pool", False),
        ("raise-pool-size", None),
        ("rollback-deploy", True),
    ]
    assert "no telemetry observed after 'raise_pool_size'" in outcomes[2].detail
    assert "latency_p99_ms" in outcomes[3].detail and "(SLO)" in outcomes[3].detail
    summary = summarize(plan, outcomes, mode)
    assert summary.recovered and summary.recovered_by == "rollback"


def test_telemetry_verifier_without_slo_compares_with_baseline(tmp_path):
    root = make_bundle(tmp_path / "bundle")
    text = (root / "incident.yaml").read_text().replace("slo: {latency_p99_ms: 500, error_rate: 0.01}\n", "")
    (root / "incident.yaml").write_text(text)
    metrics = (root / "metrics.csv").read_text().splitlines()
    # Before the window the service was healthy: 200 ms, 0.1 % errors.
    fixed = [metrics[0]] + [
        line.replace(",2400", ",200").replace(",2401", ",201").replace(",2402", ",202").replace(",0.2", ",0.001")
        if line < "2026-03-01T11:50"
        else line
        for line in metrics[1:]
    ]
    (root / "metrics.csv").write_text("\n".join(fixed) + "\n")
    bundle = load_bundle(root)
    _, plan = plan_from_diagnosis(
        [{"rank": 1, "service": "checkout", "fault_type": "code_defect", "indicator": "", "confidence": 0.9}]
    )
    check = telemetry_verifier(bundle)(plan[0], [])
    assert plan[0].kind == "rollback"
    assert check.ok is False  # 0.002 error rate is above 1.25 × the 0.001 baseline
    assert "(baseline)" in check.detail


def test_site_runbooks_and_vars_from_warroom_toml_come_first(tmp_path, monkeypatch):
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "site.yaml").write_text(
        "name: site-pool\n"
        "match: {fault_types: [connection_leak]}\n"
        "steps:\n"
        "  - id: restart-it\n"
        "    kind: restart\n"
        "    title: Restart {service}\n"
        "    risk: medium\n"
        "    rollback: none\n"
        "    adapter: shell\n"
        "    params: {argv: [systemctl, restart, '{unit}']}\n"
    )
    (tmp_path / "warroom.toml").write_text(
        '[actions]\nrunbooks = ["books"]\n[actions.vars]\nunit = "checkout.service"\n'
    )
    monkeypatch.setenv("WARROOM_CONFIG", str(tmp_path / "warroom.toml"))
    runbook, plan = plan_from_diagnosis(
        [{"rank": 1, "service": "checkout", "fault_type": "connection_leak", "indicator": "", "confidence": 0.8}]
    )
    assert runbook is not None and runbook.name == "site-pool"
    assert plan[0].parameters["params"]["argv"] == ["systemctl", "restart", "checkout.service"]
    # a diagnosis the site runbooks do not cover still gets a built-in runbook
    runbook, _ = plan_from_diagnosis(
        [{"rank": 1, "service": "checkout", "fault_type": "memory_leak", "indicator": "", "confidence": 0.8}]
    )
    assert runbook is not None and runbook.name == "memory-leak"


def test_a_builtin_runbook_that_cannot_undo_the_blamed_change_borrows_the_step_that_can():
    slowed = [{"rank": 1, "service": "payment", "fault_type": "slow_dependency", "indicator": "", "confidence": 0.9}]
    runbook, plan = plan_from_diagnosis(slowed, builtin_runbooks(), {}, undo_kind="revert_config")
    assert runbook is not None and runbook.name == "slow-external-dependency"
    assert [a.kind for a in plan] == ["failover_dependency", "scale_out", "fix_forward", "revert_config"]
    assert plan[-1].parameters["runbook"] == "bad-config" and plan[-1].target == "payment"
    # without a blamed change, or when the runbook can undo it itself, nothing is borrowed
    assert [a.kind for a in plan_from_diagnosis(slowed, builtin_runbooks(), {})[1]][-1] == "fix_forward"
    leaking = [{"rank": 1, "service": "checkout", "fault_type": "memory_leak", "indicator": "", "confidence": 0.9}]
    assert [a.kind for a in plan_from_diagnosis(leaking, builtin_runbooks(), {}, undo_kind="rollback")[1]] == [
        "restart",
        "scale_out",
        "rollback",
    ]
