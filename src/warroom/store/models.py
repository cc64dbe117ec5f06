"""Tables of the incident store (SQLAlchemy 2 declarative models). Migrations live in migrations/.

Every text and JSON column is redacted by the store before it is written, except keys and columns
marked `info={"verbatim": True}`: identifiers the store looks rows up by (redacting one would
break the lookup) and the run's options (paths that resume reads back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("year", "number", name="uq_incident_number"),)


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    workflow: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]  # the workflow as it was when the run started: resume runs the same
    options: Mapped[dict[str, Any]] = mapped_column(info={"verbatim": True})  # paths resume reads back
    status: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class StepRow(Base):
    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    key: Mapped[str] = mapped_column(String(300), info={"verbatim": True})
    phase_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # agent | decision | gate
    agent: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]]

    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_step_key"),)


class TimelineRow(Base):
    __tablename__ = "timeline"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), info={"verbatim": True})
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]

    # Re-recording the same event (a resumed run replaying a step's bookkeeping) is a no-op.
    __table_args__ = (UniqueConstraint("incident_id", "dedupe_key", name="uq_timeline_event"),)


class ActionRow(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    action_id: Mapped[str] = mapped_column(String(200), info={"verbatim": True})
    status: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("incident_id", "action_id", name="uq_action"),)


class AuditRow(Base):
    """Append-only: every proposal, approval, execution, verification and undo of an action."""

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    action_id: Mapped[str] = mapped_column(String(200), info={"verbatim": True})
    event: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


# -- the service (`warroom serve`): alerts, alert groups, API tokens, API audit ------------------


class AlertRow(Base):
    """One occurrence of an alert (fingerprint + start time), as received; re-sends update it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    source: Mapped[str] = mapped_column(String(32))  # alertmanager | generic
    group_key: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]]
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(32))  # opened | attached | stored (why no incident: detail)
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", name="uq_alert_occurrence"),
        # an incident's first receipt (the replay clock's origin) is read on every attach
        Index("ix_alerts_incident_received", "incident_id", "received_at"),
    )


class AlertGroupRow(Base):
    """Which incident an alert group (Alertmanager's groupKey, or the route's group labels) feeds."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the key: keys can be long
    route: Mapped[str] = mapped_column(String(200), index=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    opened_at: Mapped[datetime]


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is kept, so the store never holds a usable credential."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]


class ApiAuditRow(Base):
    """Append-only: every write request to the API (and every refused one), who made it and when."""

    __tablename__ = "api_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))  # token name, proxy user, or "anonymous"
    role: Mapped[str | None] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(Integer)
    client: Mapped[str | None] = mapped_column(String(100))
    incident_id: Mapped[str | None] = mapped_column(String(32), index=True)
    detail: Mapped[dict[str, Any]]
