"""Inserts written together when their transaction commits: one executemany per statement for all
the rows a transaction deferred, instead of one statement per row.

The service's group commit runs hundreds of alert intakes in one transaction; each stored its
alert, its timeline event and its audit entry with a statement of its own, and the statements'
per-call cost (parameter processing, cursor, result) was most of the writer's time. Rows deferred
here are not visible to reads of the same transaction: a caller that must find one again (an
alert re-sent within the batch) keeps its own record of what it deferred (store/alerts.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable
from sqlalchemy.orm import Session

_KEY = "warroom.deferred"


def defer(session: Session, statement: Executable, row: dict[str, Any]) -> None:
    """Insert `row` with `statement` when the session's transaction commits (rows in the order given)."""
    pending: dict[int, tuple[Executable, list[dict[str, Any]]]] = session.info.setdefault(_KEY, {})
    pending.setdefault(id(statement), (statement, []))[1].append(row)


def write_deferred(session: Session) -> None:
    """The session's `before_commit`: the ORM's pending objects first (an incident before the alert
    events that name it), then each statement's rows in one call. A failure here fails the commit."""
    pending: dict[int, tuple[Executable, list[dict[str, Any]]]] | None = session.info.pop(_KEY, None)
    if not pending:
        return
    session.flush()
    for statement, rows in pending.values():
        session.execute(statement, rows)
