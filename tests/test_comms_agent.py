"""warroom.toml and the incident-communications-specialist end to end: Slack to a loopback server,
email to aiosmtpd, a status-page webhook that is down, the default file channel; secrets stay out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actions_helpers import closed_port, http_service
from comms_helpers import smtp_server
from test_actions_runbook import make_bundle
from warroom.agents.base import AgentContext
from warroom.agents.communications import IncidentCommunicationsSpecialist
from warroom.analysis.impact import ImpactFacts
from warroom.comms.config import build_channels
from warroom.config import load_config
from warroom.errors import InputError
from warroom.figures import Figure, Window
from warroom.sources.bundle import load_bundle

PLANTED = "postgresql://checkout:Pl4nted-S3cret@db.internal/shop"
WINDOW = Window(start=datetime(2026, 3, 1, 11, 50, tzinfo=UTC), end=datetime(2026, 3, 1, 12, 20, tzinfo=UTC))

CONTEXT = {
    "incident": {
        "id": "INC-2026-042",
        "title": "Checkout failing",
        "severity": "P0",
        "affected_services": ["checkout"],
        "started_at": "2026-03-01T11:50:00+00:00",
        "symptoms": [f"pool exhausted connecting to {PLANTED}"],
    },
    "diagnosis": [
        {
            "rank": 1,
            "service": "checkout",
            "fault_type": "connection_leak",
            "indicator": "db_pool_utilization",
            "confidence": 0.86,
            "change_id": "deploy-1932",
            "reason": f"leak seen in {PLANTED}",
        },
    ],
    "impact": ImpactFacts(
        service="checkout",
        window=WINDOW,
        requests=Figure(value=20030, unit="count", method="requests logged", window=WINDOW, noun="requests"),
        failed_requests=Figure(value=4120, unit="count", method="failed requests", window=WINDOW, noun="requests"),
        failure_rate=Figure(value=4120 / 20030, unit="ratio", method="failed ÷ all", window=WINDOW),
        baseline_failure_rate=Figure(value=0.001, unit="ratio", method="failed ÷ all at baseline"),
        users_active=Figure(value=2003, unit="count", method="distinct user_id", window=WINDOW, noun="users"),
        users_affected=Figure(value=412, unit="count", method="distinct user_id failed", window=WINDOW, noun="users"),
        sessions_affected=Figure(value=501, unit="count", method="sessions", window=WINDOW, noun="sessions"),
        transactions=Figure(value=900, unit="count", method="txns", window=WINDOW, noun="transactions"),
        failed_transactions=Figure(value=300, unit="count", method="failed txns", window=WINDOW, noun="transactions"),
        abandoned_carts=Figure(value=120, unit="count", method="carts", window=WINDOW, noun="carts"),
        revenue=Figure(value=48210.0, unit="EUR", method="cart values of failed transactions", window=WINDOW),
        scope="a subset of users: 412 of 2,003 active users saw a failure",
    ).as_context(),
    "mitigation": {
        "outcomes": [
            {"action_id": "kill-long-queries", "status": "executed", "verified": False, "detail": "3 terminated"},
            {"action_id": "rollback-deploy", "status": "verified", "verified": True, "detail": "p99 back to 180 ms"},
        ],
        "recovered_by": "rollback",
        "recovered": True,
        "summary": "recovered after rollback-deploy (rollback)",
    },
    "recovery": {"recovered": True, "summary": "latency and errors back to baseline"},
}


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_loads_channels_with_secrets_from_environment(tmp_path):
    cfg = write_config(
        tmp_path / "warroom.toml",
        """
[comms]
retries = 1
[comms.cadence_minutes]
P0 = 10
[[comms.channels]]
type = "slack"
name = "incident-room"
webhook_url_env = "TEST_SLACK_URL"
audiences = ["internal"]
[[comms.channels]]
type = "email"
host = "127.0.0.1"
port = 2525
from = "warroom@example.com"
to = ["exec@example.com"]
password_env = "TEST_SMTP_PASSWORD"
username_env = "TEST_SMTP_USER"
[[comms.channels]]
type = "file"
path = "updates"
[actions]
policy = "all"
[actions.vars]
namespace = "shop"
""",
    )
    config = load_config(cfg, env={})
    assert config.comms.cadence_minutes == {"P0": 10} and config.actions.policy == "all"
    channels = build_channels(config.comms.channels, out_dir=tmp_path, env={"TEST_SLACK_URL": "http://127.0.0.1:1/x"})
    kinds = [c.kind for c in channels]
    assert kinds == ["slack", "unconfigured", "file"]  # the SMTP password variable is unset
    assert "TEST_SMTP_USER" in channels[1].reason  # type: ignore[attr-defined]
    assert channels[2].directory == tmp_path / "updates"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[comms\nretries = 1", "invalid TOML"),
        ('[[comms.channels]]\ntype = "pigeon"\n', "comms.channels.0"),
        ("[comms]\nretires = 3\n", "comms.retires"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, text, needle):
    cfg = write_config(tmp_path / "warroom.toml", text)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_agent_sends_every_audience_and_records_delivery(tmp_path, monkeypatch):
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    down = closed_port()
    with http_service() as (base, state), smtp_server() as (smtp_port, recorder):
        monkeypatch.setenv("TEST_SLACK_URL", f"{base}/slack")
        monkeypatch.setenv("TEST_STATUS_URL", f"http://127.0.0.1:{down}/status")
        cfg = write_config(
            tmp_path / "warroom.toml",
            f"""
[comms]
retries = 2
backoff_s = 0.01
[[comms.channels]]
type = "slack"
webhook_url_env = "TEST_SLACK_URL"
audiences = ["internal"]
[[comms.channels]]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
from = "warroom@example.com"
to = ["exec@example.com"]
audiences = ["executive"]
[[comms.channels]]
type = "webhook"
name = "status-page"
url_env = "TEST_STATUS_URL"
audiences = ["customer"]
[[comms.channels]]
type = "file"
""",
        )
        out = tmp_path / "out"
        ctx = AgentContext(
            telemetry=bundle,
            incident_id="INC-2026-042",
            context=json.loads(json.dumps(CONTEXT)),
            params={"config": str(cfg), "out_dir": str(out), "now": "2026-03-01T12:20:00Z"},
        )
        report = IncidentCommunicationsSpecialist().run(ctx)
        comms = report.outputs["communications"]
        by_channel = {(c["audience"], c["channel_type"]): c for c in comms}
        assert by_channel[("internal", "slack")]["status"] == "delivered"
        assert by_channel[("executive", "email")]["status"] == "delivered"
        status_page = by_channel[("customer", "webhook")]
        assert status_page["status"] == "failed" and status_page["attempts"] == 3
        assert all(c["next_update_at"].startswith("2026-03-01T12:35") for c in comms)  # P0: every 15 min
        assert {c["audience"] for c in comms if c["channel_type"] == "file"} == {"internal", "executive", "customer"}
        assert any("status-page" in line for line in report.limitations)
        # every delivery is on the timeline with its channel and status
        sent = [e for e in report.timeline if e.kind.value == "communication_sent"]
        assert len(sent) == len(comms)
        assert {(e.data["channel_type"], e.data["status"]) for e in sent} >= {
            ("webhook", "failed"),
            ("slack", "delivered"),
        }

        slack_text = json.dumps(state.recorded("/slack")[0].json())
        mail_text = recorder.mails[0].get_payload(decode=True).decode()
        files = (out / "communications.md").read_text() + (out / "communications.jsonl").read_text()
        for text in (slack_text, mail_text, files, json.dumps(report.model_dump(mode="json"))):
            assert "Pl4nted-S3cret" not in text
        assert "EUR" in mail_text and "connection leak" in mail_text  # the executive update carries impact
        customer = next(c for c in comms if c["audience"] == "customer")
        assert "checkout" in customer["body"] and "connection_leak" not in customer["body"]
        assert customer["subject"].startswith("Resolved")


def test_agent_defaults_to_a_file_channel_in_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no warroom.toml here
    monkeypatch.delenv("WARROOM_CONFIG", raising=False)
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    ctx = AgentContext(
        telemetry=bundle,
        incident_id="INC-2026-042",
        context={"incident": {"severity": "P3"}},
        params={"out_dir": str(tmp_path / "out")},
    )
    report = IncidentCommunicationsSpecialist().run(ctx)
    comms = report.outputs["communications"]
    assert {c["channel_type"] for c in comms} == {"file"} and all(c["status"] == "delivered" for c in comms)
    assert comms[0]["interval_minutes"] == 240
    assert (tmp_path / "out" / "communications.md").is_file()
    # a second update continues the numbering and keeps the first in the record
    ctx.context.update(report.outputs)
    again = IncidentCommunicationsSpecialist().run(ctx).outputs["communications"]
    assert len(again) == 2 * len(comms) and again[-1]["sequence"] == 2
    # updates the service's cadence keeper sent between the phases (counted by the engine) come first
    ctx.params["updates_sent"] = 4
    after_cadence = IncidentCommunicationsSpecialist().run(ctx).outputs["communications"]
    assert after_cadence[-1]["sequence"] == 5


def test_updates_are_counted_by_sequence_whoever_sent_them() -> None:
    from datetime import UTC, datetime

    from warroom.comms.message import updates_sent
    from warroom.incident import TimelineEvent, TimelineKind

    def sent(sequence: int, audience: str) -> TimelineEvent:
        return TimelineEvent(
            at=datetime(2026, 12, 2, tzinfo=UTC), kind=TimelineKind.COMMUNICATION_SENT, source="x",
            summary=f"{audience} update {sequence}", data={"sequence": sequence, "audience": audience},
        )  # fmt: skip

    note = TimelineEvent(at=datetime(2026, 12, 2, tzinfo=UTC), kind=TimelineKind.NOTE, source="x", summary="n")
    assert updates_sent([sent(1, "internal"), sent(1, "customer"), sent(2, "internal"), note]) == 2
    assert updates_sent([]) == 0
