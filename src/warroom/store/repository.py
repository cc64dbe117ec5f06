"""The incident store: incidents, runs, step results, timeline, actions and audit, in one database.

SQLite by default (a file under the user's data directory), PostgreSQL by URL. The schema is
created and upgraded by Alembic migrations when the store opens.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from warroom.errors import NotFoundError
from warroom.incident import Incident, Status, TimelineEvent, TimelineKind, check_transition
from warroom.store.models import ActionRow, AuditRow, IncidentRow, RunRow, StepRow, TimelineRow

ENV_VAR = "WARROOM_DB"
MIGRATIONS = Path(__file__).parent / "migrations"


def default_url() -> str:
    """`$WARROOM_DB`, else a SQLite file in `$XDG_DATA_HOME/warroom/` (or ~/.local/share/warroom/)."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'warroom' / 'warroom.db'}"


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _event_of(row: TimelineRow) -> TimelineEvent:
    return TimelineEvent(
        at=_aware(row.at) or row.at,
        kind=TimelineKind(row.kind),
        source=row.source,
        summary=row.summary,
        data=row.data,
        seq=row.seq,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self.url = url or default_url()
        self.engine = make_engine(self.url)
        if upgrade:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # -- incidents ---------------------------------------------------------------------------

    def create_incident(self, draft: Incident) -> Incident:
        """Allocate the next INC-YYYY-NNN id for the incident's year and persist it."""
        for _ in range(20):  # another writer may take the same number: retry on the unique key
            try:
                with self.transaction() as session:
                    return self.add_incident(session, draft)
            except IntegrityError:
                continue
        raise RuntimeError("could not allocate an incident number")

    def add_incident(self, session: Session, draft: Incident) -> Incident:
        """Allocate the next number in the caller's transaction (IntegrityError if another writer took it)."""
        year = (draft.detected_at or now()).year
        last = session.scalar(select(func.max(IncidentRow.number)).where(IncidentRow.year == year))
        number = (last or 0) + 1
        incident = draft.model_copy(update={"id": f"INC-{year}-{number:03d}"})
        stamp = now()
        session.add(
            IncidentRow(
                id=incident.id,
                year=year,
                number=number,
                title=incident.title,
                severity=incident.severity.value,
                status=incident.status.value,
                data=incident.model_dump(mode="json"),
                created_at=stamp,
                updated_at=stamp,
            )
        )
        session.flush()
        return incident

    def get_incident(self, incident_id: str, session: Session | None = None) -> Incident:
        if session is None:
            with self.transaction() as own:
                return self.get_incident(incident_id, own)
        row = session.get(IncidentRow, incident_id)
        if row is None:
            raise NotFoundError(f"no incident '{incident_id}' in the store ({self.url})")
        return Incident.model_validate(row.data)

    def list_incidents(self) -> list[Incident]:
        with self.transaction() as session:
            rows = session.scalars(select(IncidentRow).order_by(IncidentRow.year, IncidentRow.number))
            return [Incident.model_validate(row.data) for row in rows]

    def save_incident(self, session: Session, incident: Incident) -> None:
        row = session.get(IncidentRow, incident.id)
        if row is None:
            raise NotFoundError(f"no incident '{incident.id}'")
        row.title = incident.title
        row.severity = incident.severity.value
        row.status = incident.status.value
        row.data = incident.model_dump(mode="json")
        row.updated_at = now()

    def transition(self, session: Session, incident: Incident, target: Status, at: datetime, source: str) -> Incident:
        """Move the incident along its lifecycle (refusing invalid moves) and record it."""
        if incident.status == target:
            return incident
        check_transition(incident.status, target)
        stamps = {
            Status.TRIAGED: "acknowledged_at",
            Status.MONITORING: "mitigated_at",
            Status.RESOLVED: "resolved_at",
        }
        update: dict[str, Any] = {"status": target}
        if target in stamps and getattr(incident, stamps[target]) is None:
            update[stamps[target]] = at
        updated = incident.model_copy(update=update)
        self.save_incident(session, updated)
        self.add_event(
            session,
            incident.id,
            TimelineEvent(
                at=at,
                kind=TimelineKind.STATUS_CHANGED,
                source=source,
                summary=f"status {incident.status.value} → {target.value}",
                data={"from": incident.status.value, "to": target.value},
            ),
            dedupe_key=f"status:{target.value}",
        )
        return updated

    # -- timeline ----------------------------------------------------------------------------

    def add_event(self, session: Session, incident_id: str, item: TimelineEvent, dedupe_key: str | None = None) -> bool:
        """Append an event unless one with the same dedupe key exists; True when appended."""
        key = dedupe_key or f"uuid:{uuid.uuid4()}"
        exists = session.scalar(
            select(TimelineRow.seq).where(TimelineRow.incident_id == incident_id, TimelineRow.dedupe_key == key)
        )
        if exists is not None:
            return False
        session.add(
            TimelineRow(
                incident_id=incident_id,
                dedupe_key=key,
                at=item.at,
                kind=item.kind.value,
                source=item.source,
                summary=item.summary,
                data=item.data,
            )
        )
        session.flush()
        return True

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        with self.transaction() as session:
            self.get_incident(incident_id, session)
            rows = session.scalars(
                select(TimelineRow).where(TimelineRow.incident_id == incident_id).order_by(TimelineRow.seq)
            )
            return [_event_of(row) for row in rows]

    def events_after(self, incident_id: str, after_seq: int, limit: int = 500) -> list[TimelineEvent]:
        """The incident's events with a sequence number above `after_seq` (what a live view has not seen)."""
        with self.transaction() as session:
            rows = session.scalars(
                select(TimelineRow)
                .where(TimelineRow.incident_id == incident_id, TimelineRow.seq > after_seq)
                .order_by(TimelineRow.seq)
                .limit(limit)
            )
            return [_event_of(row) for row in rows]

    # -- runs and steps ----------------------------------------------------------------------

    def create_run(
        self, session: Session, incident_id: str, workflow: str, spec: dict[str, Any], options: dict[str, Any]
    ) -> str:
        run_id = str(uuid.uuid4())
        session.add(
            RunRow(
                id=run_id,
                incident_id=incident_id,
                workflow=workflow,
                spec=spec,
                options=options,
                status="running",
                started_at=now(),
                finished_at=None,
            )
        )
        return run_id

    def get_run(self, run_id: str) -> RunRow:
        with self.transaction() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"no run '{run_id}'")
            session.expunge(row)
            return row

    def latest_run(self, incident_id: str) -> RunRow:
        with self.transaction() as session:
            self.get_incident(incident_id, session)
            row = session.scalars(
                select(RunRow).where(RunRow.incident_id == incident_id).order_by(RunRow.started_at.desc()).limit(1)
            ).first()
            if row is None:
                raise NotFoundError(f"incident '{incident_id}' has no workflow run")
            session.expunge(row)
            return row

    def runs_with_status(self, statuses: tuple[str, ...]) -> list[RunRow]:
        """Runs whose status is one of `statuses`, oldest first."""
        with self.transaction() as session:
            rows = list(session.scalars(select(RunRow).where(RunRow.status.in_(statuses)).order_by(RunRow.started_at)))
            for row in rows:
                session.expunge(row)
            return rows

    def set_run_status(self, session: Session, run_id: str, status: str, finished: bool = False) -> None:
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no run '{run_id}'")
        row.status = status
        row.finished_at = now() if finished else None

    def set_run_options(self, session: Session, run_id: str, options: dict[str, Any]) -> None:
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no run '{run_id}'")
        row.options = options

    def record_step(self, session: Session, run_id: str, step: dict[str, Any]) -> bool:
        """Persist a step result once; a second write of the same key is ignored (False)."""
        exists = session.scalar(select(StepRow.id).where(StepRow.run_id == run_id, StepRow.key == step["key"]))
        if exists is not None:
            return False
        session.add(StepRow(run_id=run_id, **step))
        session.flush()
        return True

    def steps(self, run_id: str) -> list[StepRow]:
        with self.transaction() as session:
            rows = list(session.scalars(select(StepRow).where(StepRow.run_id == run_id).order_by(StepRow.id)))
            for row in rows:
                row.started_at = _aware(row.started_at) or row.started_at
                row.finished_at = _aware(row.finished_at) or row.finished_at
                session.expunge(row)
            return rows

    # -- actions and audit -------------------------------------------------------------------

    def propose_action(self, session: Session, incident_id: str, action_id: str, data: dict[str, Any]) -> str:
        """Record a proposal: "new", "revised" (a later proposal of a still-unapproved action replaces
        it), or "kept" (unchanged, or already approved or acted on: an approval is never carried
        over to different content)."""
        row = session.scalars(
            select(ActionRow).where(ActionRow.incident_id == incident_id, ActionRow.action_id == action_id)
        ).first()
        if row is None:
            self.upsert_action(session, incident_id, action_id, "proposed", data=data)
            return "new"
        if row.data == data or row.status != "proposed" or row.approved_by:
            return "kept"
        row.data = data
        row.updated_at = now()
        return "revised"

    def upsert_action(
        self,
        session: Session,
        incident_id: str,
        action_id: str,
        status: str,
        data: dict[str, Any] | None = None,
        approved_by: str | None = None,
        approved_at: datetime | None = None,
    ) -> None:
        row = session.scalars(
            select(ActionRow).where(ActionRow.incident_id == incident_id, ActionRow.action_id == action_id)
        ).first()
        if row is None:
            session.add(
                ActionRow(
                    incident_id=incident_id,
                    action_id=action_id,
                    status=status,
                    data=data or {},
                    approved_by=approved_by,
                    approved_at=approved_at,
                    updated_at=now(),
                )
            )
        else:
            row.status = status
            if data is not None:
                row.data = data
            if approved_by is not None:
                row.approved_by = approved_by
                row.approved_at = approved_at
            row.updated_at = now()
        session.flush()

    def actions(self, incident_id: str) -> list[ActionRow]:
        with self.transaction() as session:
            rows = list(
                session.scalars(select(ActionRow).where(ActionRow.incident_id == incident_id).order_by(ActionRow.id))
            )
            for row in rows:
                row.approved_at = _aware(row.approved_at)
                session.expunge(row)
            return rows

    def audit(
        self,
        session: Session,
        incident_id: str,
        action_id: str,
        event_name: str,
        actor: str,
        at: datetime,
        data: dict[str, Any],
    ) -> None:
        session.add(
            AuditRow(incident_id=incident_id, action_id=action_id, event=event_name, actor=actor, at=at, data=data)
        )

    def audit_log(self, incident_id: str) -> list[AuditRow]:
        with self.transaction() as session:
            rows = list(
                session.scalars(select(AuditRow).where(AuditRow.incident_id == incident_id).order_by(AuditRow.seq))
            )
            for row in rows:
                row.at = _aware(row.at) or row.at
                session.expunge(row)
            return rows
