"""The lab's shape: where its files live, its settings, its timelines and the running state.

A lab directory holds everything one lab owns: the services' git repository and releases,
PostgreSQL's data, Prometheus' and Alertmanager's configuration and data, the logs, the OTLP
spool, the deploy log and (apart from anything warroom reads) the truth of each fault.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from warroom.errors import InputError

SERVICES = ("gateway", "catalog", "checkout", "payment", "auth")


class LabError(InputError):
    """The lab cannot do what was asked (not running, already running, a tool missing, …)."""


class Timeline(BaseModel):
    """How fast the lab's monitoring reacts: `normal` as in production, `compressed` for tests."""

    name: str
    scrape_interval_s: int
    evaluation_interval_s: int
    rate_window: str
    alert_for: str
    # "usual" for the alerts that compare a service with itself: the median over this window, ending
    # this long ago (before a fault's own start)
    usual_window: str
    usual_offset: str
    # memory filling up: the trend over this window, carried this many seconds ahead, trusted only
    # once the process has run this long (a fresh process' warm-up, imports and pools filling, is a
    # steep climb that levels off: carried an hour ahead it paged after every restart)
    trend_window: str
    fill_horizon_s: int
    trend_settled_after_s: int
    group_wait: str
    group_interval: str
    repeat_interval: str
    otel_batch_delay_ms: int


TIMELINES = {
    "normal": Timeline(
        name="normal",
        scrape_interval_s=5,
        evaluation_interval_s=5,
        rate_window="1m",
        alert_for="1m",
        usual_window="30m",
        usual_offset="5m",
        trend_window="5m",
        fill_horizon_s=3600,
        trend_settled_after_s=420,
        group_wait="10s",
        group_interval="1m",
        repeat_interval="4h",
        otel_batch_delay_ms=5000,
    ),
    # Seconds instead of minutes, yet robust on a loaded two-core machine: a 2 s scrape timeout
    # rides out a starved worker's pause, and `for: 15s` needs seven failed evaluations in a row.
    "compressed": Timeline(
        name="compressed",
        scrape_interval_s=2,
        evaluation_interval_s=2,
        rate_window="20s",
        alert_for="15s",
        usual_window="10m",
        usual_offset="2m",
        trend_window="2m",
        fill_horizon_s=900,
        trend_settled_after_s=180,
        group_wait="2s",
        group_interval="5s",
        repeat_interval="1h",
        otel_batch_delay_ms=1000,
    ),
}


class LabSettings(BaseModel):
    """Chosen at the first `lab up` and kept in lab.json (a later `up` reuses them)."""

    products: int = Field(1_000_000, ge=1000)
    timeline: Literal["normal", "compressed"] = "normal"
    # warroom serve against the lab (DIR/warroom.toml) listens here; Alertmanager posts to its intake
    # unless another webhook is given.
    serve_port: int = Field(8000, ge=1, le=65535)
    alert_webhook: str | None = None
    load_rate: float = Field(10.0, ge=0)

    @property
    def timing(self) -> Timeline:
        return TIMELINES[self.timeline]

    @property
    def webhook(self) -> str:
        return self.alert_webhook or f"http://127.0.0.1:{self.serve_port}/api/v1/alerts/alertmanager"


class LabState(BaseModel):
    """What the running lab supervisor publishes (run/state.json)."""

    supervisor_pid: int
    control_port: int
    token: str
    ports: dict[str, int]
    started_at: datetime
    ready: bool = False
    error: str | None = None


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "lab.json"

    @property
    def repo(self) -> Path:
        return self.root / "shop"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres" / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def postgres_logs(self) -> Path:
        return self.logs / "postgresql"

    @property
    def otlp(self) -> Path:
        return self.root / "otlp"

    @property
    def monitoring(self) -> Path:
        return self.root / "monitoring"

    @property
    def prometheus_data(self) -> Path:
        return self.root / "prometheus-data"

    @property
    def alertmanager_data(self) -> Path:
        return self.root / "alertmanager-data"

    @property
    def alerts_received(self) -> Path:
        return self.root / "alerts-received"

    @property
    def deploy_log(self) -> Path:
        return self.root / "deploys.jsonl"

    @property
    def traffic(self) -> Path:
        return self.root / "traffic.yaml"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def comms_received(self) -> Path:
        """Stakeholder updates the lab's loopback webhook and SMTP server received (webhook/, mail/)."""
        return self.root / "comms-received"

    @property
    def serve(self) -> Path:
        """warroom serve's store and reports when it runs against the lab."""
        return self.root / "serve"

    @property
    def serve_config(self) -> Path:
        return self.root / "warroom.toml"

    @property
    def serve_env(self) -> Path:
        """The secrets of warroom.toml's `_env` names (the control API's token), for `set -a; . FILE`."""
        return self.run / "warroom.env"

    @property
    def alertmanager_token(self) -> Path:
        return self.run / "alertmanager.token"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def state(self) -> Path:
        return self.run / "state.json"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    def service_log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def ensure(self) -> None:
        for folder in (self.root, self.logs, self.otlp, self.monitoring, self.alerts_received, self.truth, self.run):
            folder.mkdir(parents=True, exist_ok=True)


def load_settings(paths: LabPaths) -> LabSettings | None:
    if not paths.settings.exists():
        return None
    try:
        return LabSettings.model_validate_json(paths.settings.read_text())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise LabError(first["msg"], file=paths.settings, field=field) from None


def save_settings(paths: LabPaths, settings: LabSettings) -> None:
    paths.settings.write_text(settings.model_dump_json(indent=2) + "\n")


def read_state(paths: LabPaths) -> LabState | None:
    """The running lab's state, or None when no supervisor is alive for this directory."""
    if not paths.state.exists():
        return None
    try:
        state = LabState.model_validate_json(paths.state.read_text())
    except (ValidationError, json.JSONDecodeError):
        return None
    try:
        os.kill(state.supervisor_pid, 0)
    except ProcessLookupError:
        return None
    return state


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for tools that bind it themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
