"""`incident.yaml`: the bundle's manifest (alert, symptoms, window, SLOs, business context)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Alert(Strict):
    name: str
    fired_at: AwareDatetime
    service: str | None = None
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    # set when the alert is known to have stopped firing (an Alertmanager "resolved" notification)
    resolved_at: AwareDatetime | None = None


class Window(Strict):
    """The span of telemetry to examine. Baseline is everything before `start` unless a
    `baseline/` folder is given."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("window.end must be after window.start")
        return self


class Slo(Strict):
    latency_p99_ms: float | None = Field(default=None, gt=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    availability: float | None = Field(default=None, gt=0, le=1)


class Business(Strict):
    revenue_per_minute: float | None = Field(default=None, ge=0)
    currency: str = "USD"
    users_per_minute: float | None = Field(default=None, ge=0)
    critical_services: list[str] = Field(default_factory=list)
    description: str = ""


class Objectives(Strict):
    rto_minutes: float | None = Field(default=None, gt=0)
    rpo_minutes: float | None = Field(default=None, ge=0)


class Comms(Strict):
    cadence_minutes: float | None = Field(default=None, gt=0)
    audiences: list[str] = Field(default_factory=lambda: ["internal", "executive", "customer"])


class Manifest(Strict):
    """Validated content of `incident.yaml`."""

    version: int = 1
    title: str
    system: str = ""
    alert: Alert
    symptoms: list[str] = Field(default_factory=list)
    window: Window | None = None
    slo: Slo = Field(default_factory=Slo)
    business: Business = Field(default_factory=Business)
    objectives: Objectives = Field(default_factory=Objectives)
    comms: Comms = Field(default_factory=Comms)
    roles: dict[str, str] = Field(default_factory=dict)
    entry_service: str | None = None  # the user-facing front door, if known

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"bundle format version {value} is not supported (expected 1)")
        return value

    def effective_window(self) -> Window:
        if self.window is not None:
            return self.window
        fired = self.alert.fired_at.astimezone(UTC)
        return Window(start=fired - timedelta(minutes=30), end=fired + timedelta(minutes=30))


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
