"""The lab's PostgreSQL: the server binaries of the pgserver wheel, run as a supervised process.

The cluster is initialised once per lab directory and loaded with the shop's schema and seed
data from the services' own repository (`db/schema.sql`, `db/seed.sql`). PostgreSQL writes its
own log as jsonlog (one JSON object per line) with slow statements and lock waits in it.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import time
from pathlib import Path

import psycopg

from warroom.lab.topology import LabError, LabPaths

DATABASE = "shop"
# PostgreSQL refuses to run as root; pgserver's own convention is a `pgserver` system user.
SYSTEM_USER = "pgserver"


def run_as() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def _server_config(paths: LabPaths, slow_statement_ms: int) -> str:
    return "\n".join(
        [
            "# written by warroom lab",
            "listen_addresses = '127.0.0.1'",
            "max_connections = 100",
            "shared_buffers = '128MB'",
            "logging_collector = on",
            "log_destination = 'jsonlog'",
            f"log_directory = '{paths.postgres_logs}'",
            "log_filename = 'postgresql-%Y-%m-%d_%H%M%S.log'",
            "log_rotation_age = '1d'",
            f"log_min_duration_statement = {slow_statement_ms}",
            "log_lock_waits = on",
            "deadlock_timeout = '1s'",
            "log_autovacuum_min_duration = -1",
            "log_timezone = 'UTC'",
            "timezone = 'UTC'",
            "",
        ]
    )


def _binaries() -> Path:
    # Imported when used: importing pgserver asks platformdirs for a runtime directory, which
    # warns on stderr without XDG_RUNTIME_DIR — in every warroom command, as the CLI loads the lab.
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _prepare_permissions(paths: LabPaths, user: str) -> None:
    from pgserver import utils as pgserver_utils

    entry = pgserver_utils.ensure_user_exists(user)
    assert entry is not None
    pgserver_utils.ensure_prefix_permissions(paths.pgdata.parent)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    pgserver_utils.ensure_folder_permissions(_binaries(), read | execute)
    pgserver_utils.ensure_folder_permissions(_binaries().parent / "lib", read)
    for folder in (paths.pgdata.parent, paths.postgres_logs):
        os.chown(folder, entry.pw_uid, entry.pw_gid)


def initialise(paths: LabPaths, slow_statement_ms: int) -> bool:
    """initdb the cluster when the lab has none yet; True when it was created now."""
    paths.pgdata.parent.mkdir(parents=True, exist_ok=True)
    paths.postgres_logs.mkdir(parents=True, exist_ok=True)
    user = run_as()
    if user:
        _prepare_permissions(paths, user)
    created = not (paths.pgdata / "PG_VERSION").exists()
    if created:
        result = subprocess.run(
            [
                str(_binaries() / "initdb"),
                "-D",
                str(paths.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            ],
            user=user,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}", file=paths.pgdata)
    conf = paths.pgdata / "postgresql.auto.conf"
    conf.write_text(_server_config(paths, slow_statement_ms))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(conf, entry.pw_uid, entry.pw_gid)
    return created


def server_command(paths: LabPaths, port: int) -> list[str]:
    # The Unix socket goes in the data directory: the lab has no shared /var/run/postgresql.
    return [str(_binaries() / "postgres"), "-D", str(paths.pgdata), "-p", str(port), "-k", str(paths.pgdata)]


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url(port, "postgres"), connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            time.sleep(0.2)
    raise LabError(f"PostgreSQL on port {port} did not accept connections within {timeout:.0f} s: {last}")


def load_shop(port: int, repo: Path, products: int) -> None:
    """Create the shop database from the repository's schema and seed (set-based, in the server)."""
    with psycopg.connect(url(port, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists:
            return
        admin.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(url(port)) as conn:
        conn.execute((repo / "db" / "schema.sql").read_text())
        conn.execute("SELECT set_config('shop.seed_products', %s, false)", (str(products),))
        conn.execute((repo / "db" / "seed.sql").read_text())
        conn.commit()
