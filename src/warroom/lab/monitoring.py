"""Prometheus, Alertmanager and the exporters: their configuration files and command lines.

The tools are Debian's packages (`make lab` installs them); the lab writes their configuration
from templates so the scrape, evaluation and alert timings follow the lab's timeline.
"""

from __future__ import annotations

import shutil
import subprocess

from jinja2 import Environment, PackageLoader, StrictUndefined

from warroom.lab.topology import SERVICES, LabError, LabPaths, LabSettings

TOOLS = {
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "postgres_exporter": "prometheus-postgres-exporter",
    "node_exporter": "prometheus-node-exporter",
}
REQUIRED = ("prometheus", "alertmanager")
_env = Environment(loader=PackageLoader("warroom.lab", "templates/monitoring"), undefined=StrictUndefined)


def binaries() -> dict[str, str]:
    """The installed tools by role; raises when a required one is missing."""
    found = {role: shutil.which(name) for role, name in TOOLS.items()}
    missing = [TOOLS[role] for role in REQUIRED if not found[role]]
    if missing:
        raise LabError(
            f"{', '.join(missing)} not installed: run `make lab` (or apt-get install -y {' '.join(TOOLS.values())})"
        )
    return {role: path for role, path in found.items() if path}


def write_configs(paths: LabPaths, settings: LabSettings, ports: dict[str, int]) -> None:
    context = {
        "t": settings.timing,
        "ports": ports,
        "services": SERVICES,
        "webhook": settings.webhook,
        "webhook_token": paths.alertmanager_token,
    }
    paths.monitoring.mkdir(parents=True, exist_ok=True)
    for name in ("prometheus.yml", "rules.yml", "alertmanager.yml"):
        (paths.monitoring / name).write_text(_env.get_template(f"{name}.j2").render(context))


def check_configs(paths: LabPaths) -> None:
    """promtool and amtool (shipped with the Debian packages) check what the lab wrote."""
    checks = [
        ("promtool", ["check", "config", str(paths.monitoring / "prometheus.yml")]),
        ("amtool", ["check-config", str(paths.monitoring / "alertmanager.yml")]),
    ]
    for tool, args in checks:
        found = shutil.which(tool)
        if not found:
            continue
        result = subprocess.run([found, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stdout + result.stderr).strip().splitlines()[-1:]
            raise LabError(f"{tool} rejects the configuration: {detail}", file=args[-1])


def prometheus_command(paths: LabPaths, bins: dict[str, str], port: int) -> list[str]:
    return [
        bins["prometheus"],
        f"--config.file={paths.monitoring / 'prometheus.yml'}",
        f"--storage.tsdb.path={paths.prometheus_data}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]


def alertmanager_command(paths: LabPaths, bins: dict[str, str], port: int) -> list[str]:
    return [
        bins["alertmanager"],
        f"--config.file={paths.monitoring / 'alertmanager.yml'}",
        f"--storage.path={paths.alertmanager_data}",
        f"--web.listen-address=127.0.0.1:{port}",
        # One Alertmanager, no gossip port.
        "--cluster.listen-address=",
    ]


def postgres_exporter_command(bins: dict[str, str], port: int) -> list[str]:
    # pg_settings_* (one series per server setting) would outnumber everything else in a capture.
    return [bins["postgres_exporter"], f"--web.listen-address=127.0.0.1:{port}", "--disable-settings-metrics"]


def node_exporter_command(bins: dict[str, str], port: int) -> list[str]:
    # The host's CPU, memory, load and pressure: enough to see a saturated machine.
    return [
        bins["node_exporter"],
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.cpu",
        "--collector.meminfo",
        "--collector.loadavg",
        "--collector.pressure",
    ]
