"""The store's idea of the newest schema revision is alembic's head, so an up-to-date store
skips the migration step and a store behind it is still upgraded; a new store, created from the
models without alembic, has the schema the migrations build (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text

from warroom.store.repository import MIGRATIONS, SCHEMA_HEAD, Store


def test_schema_head_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_a_store_behind_the_head_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Store(url).engine.dispose()
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
        assert not inspect(connection).has_table("alerts")
    engine.dispose()
    Store(url).engine.dispose()
    with create_engine(url).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        assert inspect(connection).has_table("alerts")


def _schema(url: str) -> dict[str, object]:
    """Every table's columns, keys, unique constraints and indexes, as the database reports them."""
    engine = create_engine(url)
    found = inspect(engine)
    schema: dict[str, object] = {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
            found.get_pk_constraint(table),
            sorted((fk["referred_table"], fk["constrained_columns"]) for fk in found.get_foreign_keys(table)),
            sorted((u["name"], u["column_names"]) for u in found.get_unique_constraints(table)),
            sorted((i["name"], i["column_names"], i["unique"]) for i in found.get_indexes(table)),
        )
        for table in found.get_table_names()
    }
    engine.dispose()
    return schema


def _databases(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two empty databases of the backend: one for a new store, one for the migrations."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'new.db'}", f"sqlite:///{tmp_path / 'migrated.db'}"
    server = make_url(request.getfixturevalue("postgres_url"))
    with create_engine(server, isolation_level="AUTOCOMMIT").connect() as connection:
        for name in ("schema_new", "schema_migrated"):
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    return (
        server.set(database="schema_new").render_as_string(hide_password=False),
        server.set(database="schema_migrated").render_as_string(hide_password=False),
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_new_store_has_the_schema_the_migrations_build(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    new, migrated = _databases(kind, tmp_path, request)
    Store(new).engine.dispose()  # created at the head without alembic
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(migrated)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()
    assert _schema(new) == _schema(migrated)
    engine = create_engine(new)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
    engine.dispose()
