"""warroom serve against the lab: the warroom.toml `lab up` writes, its secrets and serve's tokens.

Every `up` rewrites DIR/warroom.toml (the ports and the control API's token change): the lab's
live sources, one live route that executes approved actions, the shop's runbooks with the variables
they need, the loopback webhook and SMTP server the supervisor runs for stakeholder updates, and
a cadence suited to the timeline. Secrets stay out of the file: the control API's bearer token is
in DIR/run/warroom.env under the variable the runbooks name (`headers_env`), and Alertmanager's
responder token for serve's intake in DIR/run/alertmanager.token (`credentials_file`).
"""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from warroom.lab import postgres
from warroom.lab.topology import LabPaths, LabSettings, LabState

AUTH_ENV = "WARROOM_LAB_AUTHORIZATION"  # "Bearer <the control API's token>"
DATABASE_ENV = "WARROOM_LAB_DATABASE_URL"

# How long a live recovery check waits, how long it re-queries and how often, and how long it
# watches for a regression: the normal timeline needs a rate window (1 m) of the new version's
# samples before the alert's series can be back; the compressed one needs 20 s.
RECOVERY = {
    "normal": {"settle": "60s", "verify_timeout": "5m", "verify_every": "15s", "watch": "2m"},
    "compressed": {"settle": "10s", "verify_timeout": "90s", "verify_every": "3s", "watch": "0s"},
}
# Minutes between stakeholder updates by severity, in incident time: short enough that an
# incident of a few minutes sends several (the lab's alerts are critical = P1, warning = P3).
CADENCE = {
    "normal": {"P0": 1.0, "P1": 1.0, "P2": 2.0, "P3": 3.0},
    "compressed": {"P0": 0.25, "P1": 0.25, "P2": 0.5, "P3": 0.5},
}
STEP = {"normal": ("5s", "1m"), "compressed": ("2s", "20s")}
# How far before the alert a live read reaches: the healthy period the lab runs before a break
# (`bench lab`'s warm-up: 5 min, 150 s compressed) and the time from the onset to the alert (the
# rules' `for:` and the ramp). Longer reaches back into the previous fault, which then stands in
# the incident's reference period, and every minute more is read, written and parsed again by
# each worker (about 3 MB a minute of OTLP at the default load).
LOOKBACK = {"normal": "8m", "compressed": "5m"}


def runbooks_folder() -> Path:
    with resources.as_file(resources.files("warroom.lab") / "data" / "runbooks") as folder:
        return Path(folder)


def store_url(paths: LabPaths) -> str:
    return f"sqlite:///{paths.serve / 'warroom.db'}"


def _toml(value: Any) -> str:
    """A TOML value (strings, numbers, booleans, lists and inline tables are all this file needs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _table(name: str, values: dict[str, Any], array: bool = False) -> list[str]:
    header = f"[[{name}]]" if array else f"[{name}]"
    return [header, *(f"{key} = {_toml(value)}" for key, value in values.items()), ""]


def document(paths: LabPaths, settings: LabSettings, state: LabState) -> str:
    """The text of DIR/warroom.toml for the running lab."""
    ports = state.ports
    timeline = settings.timeline
    step, rate_window = STEP[timeline]
    control = f"http://127.0.0.1:{state.control_port}"
    lines = [
        f"# warroom serve against the lab in {paths.root} (written by `warroom lab up` at "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}; rewritten at every up).",
        f"# Secrets: `set -a; . {paths.serve_env}; set +a` before `warroom serve --config {paths.serve_config}`.",
        "",
        *_table("sources", {"service_label": "service", "lookback": LOOKBACK[timeline]}),
        *_table(
            "sources.prometheus",
            {"url": f"http://127.0.0.1:{ports['prometheus']}", "step": step, "rate_window": rate_window},
        ),
        *_table("sources.otlp", {"spool": str(paths.otlp)}),
        *_table("sources.git", {"path": str(paths.repo)}, array=True),
        *_table("sources.deploy_log", {"path": str(paths.deploy_log)}),
        *_table(
            "serve",
            {
                "host": "127.0.0.1",
                "port": settings.serve_port,
                "db": store_url(paths),
                "reports_dir": str(paths.serve / "reports"),
                "execute": True,
                "workers": 1,
            },
        ),
        # A new fault a few minutes after the last one is its own incident, not part of the last storm.
        *_table("serve.routes", {"name": "lab", "source": "live", "storm_window_s": 60}, array=True),
        *_table(
            "actions",
            {"policy": "risky", "runbooks": [str(runbooks_folder())], **RECOVERY[timeline]},
        ),
        *_table(
            "actions.vars",
            {"lab_control_url": control, "lab_auth_env": AUTH_ENV, "database_url_env": DATABASE_ENV},
        ),
        *_table("comms", {"retries": 1, "backoff_s": 0.5}),
        *_table("comms.cadence_minutes", CADENCE[timeline]),
        *_table("comms.channels", {"type": "webhook", "name": "status-webhook", "url": f"{control}/comms"}, True),
        *_table(
            "comms.channels",
            {
                "type": "email",
                "name": "oncall-mail",
                "host": "127.0.0.1",
                "port": ports["smtp"],
                "from": "incidents@shop.example",
                "to": ["oncall@shop.example", "leadership@shop.example"],
            },
            array=True,
        ),
    ]
    return "\n".join(lines)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write(paths: LabPaths, settings: LabSettings, state: LabState) -> None:
    """DIR/warroom.toml and the environment file with the secrets its `_env` names point at."""
    paths.serve_config.write_text(document(paths, settings, state))
    env = {
        AUTH_ENV: f"Bearer {state.token}",
        DATABASE_ENV: postgres.url(state.ports["postgres"]),
        "WARROOM_CONFIG": str(paths.serve_config),
    }
    _write_private(paths.serve_env, "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()))


def read_env(paths: LabPaths) -> dict[str, str]:
    """The variables of DIR/run/warroom.env (what a shell's `. FILE` would set)."""
    found: dict[str, str] = {}
    for line in paths.serve_env.read_text().splitlines():
        key, _, value = line.partition("=")
        if key:
            found[key] = shlex.split(value)[0] if value else ""
    return found


def issue_token(paths: LabPaths, role: str, holder: str) -> str:
    """A new token of serve's store (DIR/serve/warroom.db) for `holder` (names are unique: stamped)."""
    from warroom.store.repository import Store
    from warroom.store.tokens import create_token

    paths.serve.mkdir(parents=True, exist_ok=True)
    store = Store(store_url(paths), create=True)
    try:
        name = f"{holder}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
        return create_token(store, name, role, created_by="warroom lab")
    finally:
        store.engine.dispose()


def write_alertmanager_token(paths: LabPaths) -> None:
    """Alertmanager's responder token for serve's intake (read by Alertmanager at each notification)."""
    _write_private(paths.alertmanager_token, issue_token(paths, "responder", "lab-alertmanager") + "\n")
