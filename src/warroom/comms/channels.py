"""Delivery channels: console, file, generic JSON webhook, Slack-compatible incoming webhook, SMTP email.

A channel's `send` raises DeliveryError on failure; `deliver` retries with backoff and records the
outcome, so a channel that is down never crashes an incident run. Every message is redacted before
it reaches any channel.
"""

from __future__ import annotations

import json
import smtplib
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar, TextIO

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from warroom.comms.message import AUDIENCES, Audience, Delivery, DeliveryStatus, Message
from warroom.redact import redact


class DeliveryError(Exception):
    """A channel could not deliver (connection refused, bad status, SMTP error …)."""


class Channel(ABC):
    kind: ClassVar[str]

    def __init__(self, name: str | None = None, audiences: Sequence[Audience] | None = None) -> None:
        self.name = name or self.kind
        self.audiences: tuple[Audience, ...] = tuple(audiences) if audiences else AUDIENCES

    def accepts(self, message: Message) -> bool:
        return message.audience in self.audiences

    @abstractmethod
    def send(self, message: Message) -> str:
        """Deliver; return a short description of where it went. Raise DeliveryError on failure."""


class ConsoleChannel(Channel):
    kind = "console"

    def __init__(
        self, name: str | None = None, audiences: Sequence[Audience] | None = None, stream: TextIO | None = None
    ):
        super().__init__(name, audiences)
        self.stream = stream

    def send(self, message: Message) -> str:
        stream = self.stream or sys.stdout
        stream.write(f"── [{message.audience}] {message.subject}\n{message.body}\n")
        stream.flush()
        return "printed"


class FileChannel(Channel):
    """Appends each message to `<dir>/communications.md` and `<dir>/communications.jsonl`."""

    kind = "file"
    _lock = threading.Lock()

    def __init__(self, directory: str | Path, name: str | None = None, audiences: Sequence[Audience] | None = None):
        super().__init__(name, audiences)
        self.directory = Path(directory)

    def send(self, message: Message) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._lock:
                with (self.directory / "communications.md").open("a", encoding="utf-8") as handle:
                    handle.write(f"## [{message.audience}] {message.subject}\n\n{message.body}\n\n")
                with (self.directory / "communications.jsonl").open("a", encoding="utf-8") as handle:
                    handle.write(message.model_dump_json() + "\n")
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.directory}: {exc.strerror or exc}") from exc
        return str(self.directory / "communications.md")


class _HttpChannel(Channel):
    def __init__(
        self,
        url: str,
        name: str | None = None,
        audiences: Sequence[Audience] | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
    ):
        super().__init__(name, audiences)
        self.url = url
        self.headers = headers or {}
        self.timeout_s = timeout_s

    def payload(self, message: Message) -> dict[str, object]:
        raise NotImplementedError

    def send(self, message: Message) -> str:
        import httpx  # half a second to import; a run without an HTTP channel never needs it

        try:
            with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
                response = client.post(self.url, json=self.payload(message), headers=self.headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
        return f"HTTP {response.status_code}"


class WebhookChannel(_HttpChannel):
    """POSTs the message as JSON."""

    kind = "webhook"

    def payload(self, message: Message) -> dict[str, object]:
        return dict(json.loads(message.model_dump_json()))


class SlackChannel(_HttpChannel):
    """A Slack-compatible incoming webhook: `text` for notifications plus Block Kit blocks."""

    kind = "slack"
    MAX_SECTION = 2900  # Slack rejects a section text over 3000 characters

    def payload(self, message: Message) -> dict[str, object]:
        blocks: list[dict[str, object]] = [
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150], "emoji": False}},
        ]
        if message.facts:
            blocks.append(
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": f"*{key}*\n{value}"}
                        for key, value in list(message.facts.items())[:10]
                    ],
                }
            )
        body = message.body
        for start in range(0, len(body), self.MAX_SECTION):
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": body[start : start + self.MAX_SECTION]}}
            )
        context = f"{message.incident_id} · {message.severity} · audience: {message.audience}"
        if message.next_update_at is not None:
            context += f" · next update {message.next_update_at.strftime('%H:%M UTC')}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        return {"text": message.subject, "blocks": blocks}


class EmailChannel(Channel):
    """Plain-text email over SMTP (optionally STARTTLS or SSL, optionally authenticated)."""

    kind = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        name: str | None = None,
        audiences: Sequence[Audience] | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout_s: float = 10.0,
    ):
        super().__init__(name, audiences)
        self.host, self.port = host, port
        self.sender, self.recipients = sender, list(recipients)
        self.username, self.password = username, password
        self.starttls, self.ssl = starttls, ssl
        self.timeout_s = timeout_s

    def send(self, message: Message) -> str:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["X-Warroom-Incident"] = message.incident_id
        mail["X-Warroom-Audience"] = message.audience
        mail.set_content(message.body)
        smtp_class = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            with smtp_class(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls and not self.ssl:
                    smtp.starttls()
                if self.username and self.password:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
        if refused:
            raise DeliveryError(f"refused recipients: {', '.join(refused)}")
        return f"mailed to {len(self.recipients)} recipient(s) via {self.host}:{self.port}"


class BrokenChannel(Channel):
    """A configured channel that cannot work (e.g. its secret's environment variable is unset):
    every delivery fails with the reason, so the problem shows in the record instead of crashing."""

    kind = "unconfigured"

    def __init__(self, name: str, reason: str, audiences: Sequence[Audience] | None = None):
        super().__init__(name, audiences)
        self.reason = reason

    def send(self, message: Message) -> str:
        raise DeliveryError(self.reason)


def deliver(
    message: Message,
    channels: Sequence[Channel],
    *,
    attempts: int = 3,
    backoff_s: float = 0.5,
    backoff_max_s: float = 10.0,
) -> list[Delivery]:
    """Send to every channel that takes the message's audience; retry each; record every outcome."""
    safe = message.redacted()
    deliveries: list[Delivery] = []
    for channel in channels:
        if not channel.accepts(safe):
            continue
        tries = 0

        def once(target: Channel = channel) -> str:
            nonlocal tries
            tries += 1
            return target.send(safe)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, attempts)),
            wait=wait_exponential(multiplier=backoff_s, max=backoff_max_s),
            retry=retry_if_exception_type(DeliveryError),
            reraise=False,
        )
        try:
            detail = retrying(once)
            status: DeliveryStatus = "delivered"
        except RetryError as exc:
            last = exc.last_attempt.exception()
            detail = f"failed after {tries} attempt(s): {last}"
            status = "failed"
        except Exception as exc:  # a channel bug must not end the incident run either
            detail = f"failed: {exc.__class__.__name__}: {exc}"
            status = "failed"
        deliveries.append(
            Delivery(
                message_id=safe.id,
                audience=safe.audience,
                channel=channel.name,
                channel_type=channel.kind,
                status=status,
                attempts=tries,
                detail=redact(str(detail))[:500],
            )
        )
    return deliveries
