"""SQL actions against a real PostgreSQL (pgserver) with a real long-running pg_sleep query."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from actions_helpers import LongQuery
from warroom.actions.contract import RunOptions
from warroom.actions.sql import ListLongQueries, TerminateLongQueries
from warroom.errors import InputError

pgserver = pytest.importorskip("pgserver")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    # Its own temporary directory, not pytest's: pytest prunes old basetemp folders, which can pull
    # the data directory from under a server when several test sessions run at once.
    folder = tempfile.mkdtemp(prefix="warroom-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _with_password(url: str) -> str:
    # Local socket auth ignores the password, but it is in the URL: exactly what must never leak.
    return url.replace("postgres:@", "postgres:Pg-S3cret-Passw0rd@", 1)


def test_terminate_long_query(pg_url):
    query = LongQuery(pg_url, seconds=60, application="sql-test-leak").start(pg_url)
    options = RunOptions(env={"DB_URL": _with_password(pg_url)})
    listing = ListLongQueries()
    params = listing.parse({"url_env": "DB_URL", "min_seconds": 0.2, "application": "sql-test-leak"})
    import time

    time.sleep(0.3)
    listed = listing.execute(params, options)
    assert listed.ok and len(listed.data["queries"]) == 1
    assert "pg_sleep" in listed.data["queries"][0]["query"]

    adapter = TerminateLongQueries()
    tparams = adapter.parse({"url_env": "DB_URL", "min_seconds": 0.2, "application": "sql-test-leak"})
    preview = adapter.preview(tparams, options)
    assert preview.ok and "would terminate 1" in preview.detail
    assert not query.finished.is_set()  # the preview changed nothing

    result = adapter.execute(tparams, options)
    assert result.ok and result.changed, result.detail
    assert len(result.data["terminated"]) == 1
    assert adapter.verify(tparams, result, options).ok is True
    assert query.finished.wait(10)
    assert query.error and "terminat" in query.error.lower()
    assert adapter.undo(tparams, result, options) is None  # a terminated query cannot come back


def test_threshold_spares_short_queries(pg_url):
    query = LongQuery(pg_url, seconds=5, application="sql-test-short").start(pg_url)
    adapter = TerminateLongQueries()
    params = adapter.parse({"url": pg_url, "min_seconds": 120, "application": "sql-test-short"})
    result = adapter.execute(params, RunOptions())
    assert result.ok and result.data["terminated"] == []
    assert not query.finished.is_set()


def test_bad_connection_is_a_redacted_failure(pg_url):
    bad = "postgresql+psycopg://app:Pg-S3cret-Passw0rd@127.0.0.1:1/shop"
    adapter = TerminateLongQueries()
    result = adapter.execute(adapter.parse({"url": bad, "timeout_s": 2}), RunOptions())
    assert not result.ok
    assert "Pg-S3cret-Passw0rd" not in result.model_dump_json()
    missing = adapter.execute(adapter.parse({"url_env": "NOT_SET_ANYWHERE"}), RunOptions(env={"X": "1"}))
    assert not missing.ok and "NOT_SET_ANYWHERE" in missing.detail


def test_exactly_one_url_source():
    with pytest.raises(InputError):
        TerminateLongQueries().parse({"min_seconds": 1})
    with pytest.raises(InputError):
        TerminateLongQueries().parse({"url": "postgresql://x", "url_env": "Y"})


def test_engine_url_helper_roundtrip(pg_url):
    with sa.create_engine(pg_url).connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
