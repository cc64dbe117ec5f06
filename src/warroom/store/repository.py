"""The incident store: incidents, runs, step results, timeline, actions and audit, in one database.

SQLite by default (a file under the user's data directory), PostgreSQL by URL. The schema is
upgraded by Alembic migrations when the store opens; a new, empty database is created at the head.

Two guarantees hold at this boundary for every writer (the engine, the CLI, the server):
- secrets never reach the database: every text and JSON column of every row is redacted just
  before it is flushed (`_redact_before_flush`), except identifiers looked up by equality;
- the database's own failures (a bad URL, a corrupt or locked file, a missing directory) surface as
  one-line `StoreError`s, never as a driver traceback.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Mapper, Session, sessionmaker

from warroom.errors import NotFoundError, StoreError
from warroom.incident import Incident, Status, TimelineEvent, TimelineKind, check_transition
from warroom.redact import redact_tree
from warroom.store.deferred import write_deferred
from warroom.store.models import ActionRow, AuditRow, Base, IncidentRow, RunRow, StepRow, TimelineRow

ENV_VAR = "WARROOM_DB"
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions (tests/test_store_schema_head.py checks it is
# alembic's head): a store already there is opened without loading alembic, which costs half a
# second of every command's start-up.
SCHEMA_HEAD = "0002"


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


# How long a writer waits for another process's lock on a SQLite store before giving up.
BUSY_TIMEOUT_MS = 10_000
BACKENDS = ("sqlite", "postgresql")
EXPECTED_URL = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")  # first: the next pragma may wait on a lock
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def parse_url(url: str) -> URL:
    """The store URL, checked: a backend warroom supports, and its driver installed."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"'{url}' is not a database URL (expected {EXPECTED_URL})", field="store URL") from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise StoreError(
            f"unsupported store URL scheme '{parsed.drivername}' (expected {EXPECTED_URL})", field="store URL"
        )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite store; None for an in-memory one or another backend."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def _prepare_file(path: Path, create: bool) -> None:
    """A SQLite store's file: create its directory only when the caller may create a store."""
    if path.is_dir():
        raise StoreError("is a directory, not a store file", file=path)
    if path.exists():
        if not create and path.stat().st_size == 0:
            raise StoreError("not a warroom store (an empty file)", file=path)
        return
    if not create:
        raise StoreError("no store here (nothing has been recorded in it yet)", file=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store's directory ({exc.strerror})", file=path.parent) from None


def make_engine(url: str, *, create: bool = True) -> Engine:
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        _prepare_file(path, create)
    try:
        engine = create_engine(parsed, future=True)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(f"cannot use store URL '{parsed.drivername}': {exc}", field="store URL") from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the database driver for '{parsed.drivername}' is not installed ({exc.name})", field="store URL"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def describe_failure(exc: DatabaseError, where: str) -> StoreError:
    """A database failure as one line saying what the operator can do about it."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = reason.lower()
    if "file is not a database" in lowered or "malformed" in lowered:
        message = "not a readable SQLite database (corrupt, or another kind of file)"
    elif "locked" in lowered or "busy" in lowered:
        message = f"the store is locked by another process (waited {BUSY_TIMEOUT_MS / 1000:g} s)"
    elif "readonly" in lowered or "read-only" in lowered:
        message = "the store is read-only here"
    elif "unable to open" in lowered:
        message = "cannot open the store file"
    else:
        message = f"store failure: {reason[:200]}"
    return StoreError(message, file=where)


def _redactable(mapper: Mapper[Any]) -> tuple[str, ...]:
    """The attributes of a table that may hold free text: text and JSON columns, except keys and
    columns marked `verbatim` (identifiers the store looks rows up by)."""
    names = []
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        if column.primary_key or column.foreign_keys or column.info.get("verbatim"):
            continue
        if isinstance(column.type, String | JSON):
            names.append(attr.key)
    return tuple(names)


def _redact_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """The one redaction of everything the store writes: new rows whole, changed rows' changed
    columns. All the rows of a flush are redacted in one pass (`redact_tree` over them together):
    a step's commit writes its result and its timeline events at once, and a pass per row paid
    the detectors' fixed cost per row."""
    pending: list[tuple[Any, list[str], dict[str, Any]]] = []
    for obj in [*session.new, *session.dirty]:
        state = inspect(obj)
        new = obj in session.new
        names = [n for n in _redactable(state.mapper) if new or state.attrs[n].history.has_changes()]
        if names:
            pending.append((obj, names, {name: getattr(obj, name) for name in names}))
    cleaned = redact_tree([values for _, _, values in pending])
    for (obj, names, values), clean in zip(pending, cleaned, strict=True):
        for name in names:
            if clean[name] != values[name]:
                setattr(obj, name, clean[name])


# Dedupe keys looked up per statement: well under every backend's limit on bound parameters.
KEYS_PER_QUERY = 500


def _taken_keys(session: Session, incident_id: str, keys: Sequence[str]) -> set[str]:
    """Which of `keys` the incident's timeline holds already, or this transaction added: one query
    per `KEYS_PER_QUERY` keys instead of one per event."""
    wanted = set(keys)
    taken = {
        row.dedupe_key
        for row in session.new
        if isinstance(row, TimelineRow) and row.incident_id == incident_id and row.dedupe_key in wanted
    }
    unknown = sorted(wanted - taken)
    with session.no_autoflush:  # the pending rows were just checked: do not write them for this query
        for start in range(0, len(unknown), KEYS_PER_QUERY):
            chunk = unknown[start : start + KEYS_PER_QUERY]
            taken.update(
                session.scalars(
                    select(TimelineRow.dedupe_key).where(
                        TimelineRow.incident_id == incident_id, TimelineRow.dedupe_key.in_(chunk)
                    )
                )
            )
    return taken


def _recorded_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


# Alembic's own record of a database's revision, as alembic creates it.
_ALEMBIC_VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def _create_at_head(engine: Engine) -> None:
    """A new, empty database gets the models' schema and is recorded at the head revision: the
    same schema the migrations build (tests/test_store_schema_head.py compares them), without
    loading alembic and replaying every migration (0.11 s of a first `respond`)."""
    with engine.begin() as connection:
        Base.metadata.create_all(connection)
        _ALEMBIC_VERSION.create(connection)
        connection.execute(_ALEMBIC_VERSION.insert().values(version_num=SCHEMA_HEAD))


def migrate(engine: Engine) -> None:
    revision = _recorded_revision(engine)
    if revision == SCHEMA_HEAD:
        return
    if revision is None and not inspect(engine).get_table_names():
        _create_at_head(engine)
        return
    # only a store behind the head loads alembic
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    """`create=False` (every command that only reads, or acts on what is recorded) opens an existing
    store and never creates a file, a directory or a schema."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True, create: bool = True) -> None:
        self.url = url or default_url()
        self.engine = make_engine(self.url, create=create)
        self._where = str(sqlite_path(self.engine.url) or self.engine.url.render_as_string(hide_password=True))
        try:
            if not create and not inspect(self.engine).has_table("alembic_version"):
                raise StoreError("not a warroom store (no schema recorded in it)", file=self._where)
            if upgrade:
                migrate(self.engine)
        except DatabaseError as exc:
            self.engine.dispose()
            raise describe_failure(exc, self._where) from None
        except StoreError:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", _redact_before_flush)
        event.listen(self._sessions, "before_commit", write_deferred)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise  # a unique key taken by a concurrent writer: callers retry on it
        except DatabaseError as exc:
            raise describe_failure(exc, self._where) from None

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
        return self.add_events(session, incident_id, [(item, dedupe_key)])[0]

    def add_events(
        self, session: Session, incident_id: str, items: Sequence[tuple[TimelineEvent, str | None]]
    ) -> list[bool]:
        """Append events in order, each unless one with its dedupe key exists (in the store, in this
        transaction, or earlier in `items`); for each, True when appended. The keys are looked up
        together: one query for a step's events, not one per event."""
        taken = _taken_keys(session, incident_id, [key for _, key in items if key is not None])
        appended = []
        for item, dedupe_key in items:
            if dedupe_key is not None and dedupe_key in taken:
                appended.append(False)
                continue
            key = dedupe_key or f"uuid:{uuid.uuid4()}"
            taken.add(key)
            # Not flushed one by one: the rows of a transaction go to the database together when it
            # commits (or when a query needs them), in the order they were added, so their sequence
            # numbers keep that order; redaction runs then, once for all of them.
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
            appended.append(True)
        return appended

    def timeline(self, incident_id: str, kinds: tuple[str, ...] | None = None) -> list[TimelineEvent]:
        """The incident's events in order; only those of `kinds` when given (a storm's incident
        holds thousands of alert events that a reader of its updates need not load)."""
        with self.transaction() as session:
            self.get_incident(incident_id, session)
            query = select(TimelineRow).where(TimelineRow.incident_id == incident_id)
            if kinds is not None:
                query = query.where(TimelineRow.kind.in_(kinds))
            return [_event_of(row) for row in session.scalars(query.order_by(TimelineRow.seq))]

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

    def run_counts(self) -> dict[str, int]:
        """How many runs the store holds in each status."""
        with self.transaction() as session:
            rows = session.execute(select(RunRow.status, func.count()).group_by(RunRow.status))
            return {status: count for status, count in rows}

    def set_run_status(self, session: Session, run_id: str, status: str, finished: bool = False) -> None:
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no run '{run_id}'")
        if row.status == "cancelled":
            return  # final: a step that was in flight when a human cancelled cannot revive the run
        row.status = status
        row.finished_at = now() if finished else None

    def claim_run(self, session: Session, run_id: str) -> None:
        """Hold the run's row until the caller's transaction ends: a write that changes nothing,
        which takes the row lock on PostgreSQL and the write lock on SQLite. Two transactions that
        both claim the run first are serialised, so each reads what the other committed (a
        decision and the run stopping at its gate cannot miss each other)."""
        session.execute(update(RunRow).where(RunRow.id == run_id).values(status=RunRow.status))

    def swap_run_status(self, session: Session, run_id: str, expected: str, status: str) -> bool:
        """Compare-and-set: the run takes `status` only if it is `expected` now. True if it did."""
        done = session.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == expected)
            .values(status=status, finished_at=None)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(done, "rowcount", 0))

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

    def step_count(self, run_id: str) -> int:
        with self.transaction() as session:
            return int(session.scalar(select(func.count()).where(StepRow.run_id == run_id)) or 0)

    def steps(self, run_id: str, skip: Collection[str] = ()) -> list[StepRow]:
        """The run's steps in the order they were recorded; without those whose key is in `skip`
        (steps the caller read already: a step is recorded once and never changes)."""
        with self.transaction() as session:
            query = select(StepRow).where(StepRow.run_id == run_id)
            if skip:
                query = query.where(StepRow.key.not_in(list(skip)))
            rows = list(session.scalars(query.order_by(StepRow.id)))
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
        if row.data == redact_tree(data) or row.status != "proposed" or row.approved_by:
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
