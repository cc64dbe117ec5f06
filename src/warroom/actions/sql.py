"""SQL actions through SQLAlchemy: list and terminate long-running queries (PostgreSQL)."""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from warroom.actions.contract import ActionAdapter, Check, Params, RunOptions, StepResult
from warroom.incident import RiskLevel
from warroom.redact import redact

# `{start}` is query_start (how long the running statement has run) or xact_start (how long its
# transaction has been open: a transaction that locks rows, then waits between short statements,
# shows as "idle in transaction" with a fresh query_start).
_LONG_QUERIES = """
    SELECT pid, usename, datname, application_name, state,
           EXTRACT(EPOCH FROM (clock_timestamp() - {start})) AS seconds,
           left(query, 300) AS query
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
      AND backend_type = 'client backend'
      AND state IS DISTINCT FROM 'idle'
      AND {start} IS NOT NULL
      AND clock_timestamp() - {start} > make_interval(secs => :min_seconds)
      AND (CAST(:database AS text) IS NULL OR datname = :database)
      AND (CAST(:username AS text) IS NULL OR usename = :username)
      AND (CAST(:application AS text) IS NULL OR application_name = :application)
    ORDER BY {start}
    LIMIT :limit
    """
_START_COLUMN = {"query": "query_start", "transaction": "xact_start"}


class SqlParams(Params):
    url: str | None = None  # a SQLAlchemy URL; prefer url_env so that the password stays out of runbooks
    url_env: str | None = None  # name of the environment variable that holds the URL
    min_seconds: float = Field(default=30.0, ge=0)
    running: Literal["query", "transaction"] = "query"  # what min_seconds measures: the statement or its transaction
    database: str | None = None
    username: str | None = None
    application: str | None = None
    limit: int = Field(default=50, ge=1, le=1000)  # never terminate more than this in one step
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_url(self) -> SqlParams:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url, url_env")
        return self


def _url(params: SqlParams, options: RunOptions) -> str:
    if params.url is not None:
        return params.url
    env = options.env or os.environ
    assert params.url_env is not None
    if params.url_env not in env:
        raise LookupError(f"environment variable {params.url_env} is not set")
    return env[params.url_env]


def _engine(params: SqlParams, options: RunOptions) -> Engine:
    timeout_ms = int(params.timeout_s * 1000)
    return create_engine(
        _url(params, options),
        poolclass=NullPool,
        connect_args={
            "connect_timeout": max(1, int(params.timeout_s)),
            "options": f"-c statement_timeout={timeout_ms}",
        },
    )


def list_long_queries(params: SqlParams, options: RunOptions) -> list[dict[str, Any]]:
    engine = _engine(params, options)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(_LONG_QUERIES.format(start=_START_COLUMN[params.running])),
                {
                    "min_seconds": params.min_seconds,
                    "database": params.database,
                    "username": params.username,
                    "application": params.application,
                    "limit": params.limit,
                },
            ).mappings()
            return [
                {**dict(row), "seconds": round(float(row["seconds"]), 1), "query": redact(row["query"] or "")}
                for row in rows
            ]
    finally:
        engine.dispose()


def _where(params: SqlParams) -> str:
    filters = [f"{params.running} running > {params.min_seconds:g} s"]
    for label, value in (("db", params.database), ("user", params.username), ("app", params.application)):
        if value:
            filters.append(f"{label}={value}")
    return ", ".join(filters)


def _failed(exc: Exception, what: str) -> StepResult:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return StepResult(ok=False, detail=f"{what}: {reason[:300]}").redacted()


class ListLongQueries(ActionAdapter[SqlParams]):
    name = "sql.list_long_queries"
    params_model = SqlParams
    risk = RiskLevel.LOW
    summary = "list queries running longer than a threshold (read-only)"

    def describe(self, params: SqlParams) -> str:
        return f"list queries ({_where(params)}) from pg_stat_activity"

    def preview(self, params: SqlParams, options: RunOptions) -> StepResult:
        return self.execute(params, options)

    def execute(self, params: SqlParams, options: RunOptions) -> StepResult:
        try:
            queries = list_long_queries(params, options)
        except (SQLAlchemyError, LookupError) as exc:
            return _failed(exc, "cannot list queries")
        return StepResult(
            ok=True, detail=f"{len(queries)} quer(ies) {_where(params)}", data={"queries": queries}
        ).redacted()


class TerminateLongQueries(ActionAdapter[SqlParams]):
    name = "sql.terminate_long_queries"
    params_model = SqlParams
    risk = RiskLevel.MEDIUM
    summary = "terminate queries running longer than a threshold (pg_terminate_backend; cannot be undone)"

    def describe(self, params: SqlParams) -> str:
        return f"pg_terminate_backend(pid) for queries {_where(params)}"

    def preview(self, params: SqlParams, options: RunOptions) -> StepResult:
        """List what would be terminated, terminating nothing."""
        try:
            queries = list_long_queries(params, options)
        except (SQLAlchemyError, LookupError) as exc:
            return _failed(exc, "cannot list queries")
        pids = [q["pid"] for q in queries]
        return StepResult(
            ok=True,
            detail=f"would terminate {len(pids)} backend(s) {_where(params)}: pids {pids}",
            data={"queries": queries},
        ).redacted()

    def execute(self, params: SqlParams, options: RunOptions) -> StepResult:
        try:
            queries = list_long_queries(params, options)
            terminated: list[int] = []
            engine = _engine(params, options)
            try:
                with engine.connect() as conn:
                    for query in queries:
                        done = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": query["pid"]}).scalar()
                        if done:
                            terminated.append(int(query["pid"]))
            finally:
                engine.dispose()
        except (SQLAlchemyError, LookupError) as exc:
            return _failed(exc, "cannot terminate queries")
        return StepResult(
            ok=len(terminated) == len(queries),
            changed=bool(terminated),
            detail=f"terminated {len(terminated)} of {len(queries)} backend(s) {_where(params)}",
            data={"queries": queries, "terminated": terminated},
        ).redacted()

    def verify(self, params: SqlParams, result: StepResult, options: RunOptions) -> Check:
        """The terminated backends are gone (termination is asynchronous: poll for a few seconds)."""
        if not result.ok:
            return Check(ok=False, detail=result.detail)
        wanted = set(result.data.get("terminated", []))
        deadline = time.monotonic() + min(params.timeout_s, 10.0)
        remaining: set[int] = wanted
        while True:
            try:
                remaining = wanted & {
                    q["pid"] for q in list_long_queries(params.model_copy(update={"min_seconds": 0}), options)
                }
            except (SQLAlchemyError, LookupError) as exc:
                return Check(ok=None, detail=f"cannot re-check: {redact(str(exc))[:200]}")
            if not remaining or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if remaining:
            return Check(
                ok=False, detail=f"backend(s) {sorted(remaining)} still running", data={"pids": sorted(remaining)}
            )
        return Check(ok=True, detail=f"{len(wanted)} terminated backend(s) gone")
