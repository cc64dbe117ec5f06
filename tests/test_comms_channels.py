"""Channels against real receivers: a loopback HTTP server, an aiosmtpd SMTP server, files; a channel
that is down is retried and recorded."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from actions_helpers import closed_port, http_service
from comms_helpers import smtp_server
from warroom.comms.channels import (
    BrokenChannel,
    ConsoleChannel,
    EmailChannel,
    FileChannel,
    SlackChannel,
    WebhookChannel,
    deliver,
)
from warroom.comms.message import Message

SECRET = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"


def message(audience: str = "internal") -> Message:
    return Message(
        id=f"INC-2026-007-u1-{audience}",
        incident_id="INC-2026-007",
        audience=audience,  # type: ignore[arg-type]
        severity="P1",
        subject="[P1] INC-2026-007 checkout errors",
        body=f"Pool exhausted. Leaked token in a log line: {SECRET}\nNext steps: roll back.",
        created_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        next_update_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        facts={"Severity": "P1", "Status": "mitigating"},
    )


def test_webhook_and_slack_payloads_are_received_redacted():
    with http_service() as (base, state):
        channels = [WebhookChannel(f"{base}/hook"), SlackChannel(f"{base}/slack", audiences=["internal"])]
        deliveries = deliver(message(), channels, attempts=2, backoff_s=0.01)
        assert [d.status for d in deliveries] == ["delivered", "delivered"]
        hook = state.recorded("/hook")[0].json()
        assert hook["incident_id"] == "INC-2026-007" and hook["audience"] == "internal"
        slack = state.recorded("/slack")[0].json()
        assert slack["text"].startswith("[P1]")
        kinds = [block["type"] for block in slack["blocks"]]
        assert kinds[0] == "header" and kinds[-1] == "context" and "section" in kinds
        assert "next update 12:30 UTC" in slack["blocks"][-1]["elements"][0]["text"]
        everything = json.dumps([r.json() for r in state.requests])
        assert SECRET not in everything and "[REDACTED]" in everything
        # the audience filter: a customer message does not go to the internal Slack channel
        only_hook = deliver(message("customer"), channels, attempts=1)
        assert [d.channel_type for d in only_hook] == ["webhook"]


def test_channel_down_is_retried_and_recorded_never_raised():
    port = closed_port()
    channels = [
        WebhookChannel(f"http://127.0.0.1:{port}/hook", name="status-page"),
        ConsoleChannel(stream=io.StringIO()),
    ]
    deliveries = deliver(message(), channels, attempts=3, backoff_s=0.01)
    down, console = deliveries
    assert down.status == "failed" and down.attempts == 3
    assert "ConnectError" in down.detail and down.channel == "status-page"
    assert console.status == "delivered"


def test_http_error_status_is_a_failure():
    with http_service() as (base, _):
        deliveries = deliver(message(), [WebhookChannel(f"{base}/forbidden")], attempts=2, backoff_s=0.01)
        assert deliveries[0].status == "failed" and "HTTP 403" in deliveries[0].detail


def test_email_reaches_a_real_smtp_server():
    with smtp_server() as (port, recorder):
        channel = EmailChannel("127.0.0.1", port, "warroom@example.com", ["cto@example.com", "vp@example.com"])
        deliveries = deliver(message("executive"), [channel], attempts=2, backoff_s=0.01)
        assert deliveries[0].status == "delivered", deliveries[0].detail
        mail = recorder.mails[0]
        assert mail["Subject"] == "[P1] INC-2026-007 checkout errors"
        assert mail["X-Warroom-Audience"] == "executive"
        assert recorder.envelopes[0] == ("warroom@example.com", ["cto@example.com", "vp@example.com"])
        body = mail.get_payload(decode=True).decode()
        assert "roll back" in body and SECRET not in body


def test_smtp_down_is_recorded():
    channel = EmailChannel("127.0.0.1", closed_port(), "a@example.com", ["b@example.com"], timeout_s=2)
    deliveries = deliver(message(), [channel], attempts=2, backoff_s=0.01)
    assert deliveries[0].status == "failed" and deliveries[0].attempts == 2


def test_file_and_console_channels(tmp_path):
    stream = io.StringIO()
    deliveries = deliver(message(), [FileChannel(tmp_path / "comms"), ConsoleChannel(stream=stream)], attempts=1)
    assert all(d.status == "delivered" for d in deliveries)
    text = (tmp_path / "comms" / "communications.md").read_text()
    assert "checkout errors" in text and SECRET not in text
    record = json.loads((tmp_path / "comms" / "communications.jsonl").read_text().splitlines()[0])
    assert record["next_update_at"].startswith("2026-03-01T12:30")
    assert "roll back" in stream.getvalue()


def test_unconfigured_channel_fails_with_its_reason():
    broken = BrokenChannel("slack", "environment variable SLACK_WEBHOOK_URL is not set")
    deliveries = deliver(message(), [broken], attempts=2, backoff_s=0.01)
    assert deliveries[0].status == "failed" and "SLACK_WEBHOOK_URL" in deliveries[0].detail
