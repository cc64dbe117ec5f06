"""API tokens (kept as SHA-256 digests only) and the API's audit log (tables of migration 0002)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.errors import InputError, NotFoundError
from warroom.store.deferred import defer
from warroom.store.models import ApiAuditRow, ApiTokenRow
from warroom.store.repository import Store

TOKEN_PREFIX = "wr_"


class TokenExists(InputError):
    """A token of that name exists already (names are unique: the audit log names tokens)."""


def digest(token: str) -> str:
    # A token is 256 random bits: a plain SHA-256 cannot be brute-forced, and lookup by digest is
    # an index seek, so no slow password hash is needed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


def _info(row: ApiTokenRow) -> TokenInfo:
    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    return TokenInfo(row.name, row.role, aware(row.created_at) or row.created_at, row.created_by, aware(row.revoked_at))


def create_token(store: Store, name: str, role: str, created_by: str) -> str:
    """A new token for `name`; the caller shows it once, the store keeps only its digest."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with store.transaction() as session:
            session.add(
                ApiTokenRow(
                    name=name,
                    role=role,
                    token_hash=digest(token),
                    created_at=datetime.now(UTC),
                    created_by=created_by,
                    revoked_at=None,
                )
            )
    except IntegrityError:
        raise TokenExists(f"a token named '{name}' already exists (names are unique)", field="name") from None
    return token


# Every request looks its token up and every write appends to the audit: statements built once,
# run on a plain connection (ORM sessions cost more than the queries here).
TOKENS = cast(Table, ApiTokenRow.__table__)
_FIND = select(TOKENS).where(TOKENS.c.token_hash == bindparam("digest"), TOKENS.c.revoked_at.is_(None))
_AUDIT = insert(cast(Table, ApiAuditRow.__table__))


def find_token(store: Store, token: str) -> TokenInfo | None:
    """The live (not revoked) token with this value, if any (a revocation counts at once)."""
    with store.engine.connect() as connection:
        row = connection.execute(_FIND, {"digest": digest(token)}).first()
    if row is None:
        return None
    return _info(row)  # type: ignore[arg-type]  # a Row has the same named fields


def list_tokens(store: Store) -> list[TokenInfo]:
    with store.transaction() as session:
        return [_info(row) for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id))]


def revoke_token(store: Store, name: str) -> TokenInfo:
    with store.transaction() as session:
        row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.name == name)).first()
        if row is None:
            raise NotFoundError(f"no token named '{name}'")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return _info(row)


def record_request(session: Session, entry: dict[str, Any]) -> None:
    """Append one API write (or refused write) to the audit log, in the caller's transaction (with
    the other entries it holds, when it commits)."""
    defer(session, _AUDIT, entry)


def audit_entries(store: Store, incident_id: str | None = None, limit: int = 200) -> list[ApiAuditRow]:
    with store.transaction() as session:
        query = select(ApiAuditRow).order_by(ApiAuditRow.seq.desc()).limit(limit)
        if incident_id is not None:
            query = query.where(ApiAuditRow.incident_id == incident_id)
        rows = list(session.scalars(query))
        for row in rows:
            row.at = row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at
            session.expunge(row)
        return rows
