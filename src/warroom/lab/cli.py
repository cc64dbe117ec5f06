"""`warroom lab …`: the Typer sub-app (glue only: parse, call the lab modules, print)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from warroom.lab import capture as lab_capture
from warroom.lab import faults, monitoring, processes, serve_config
from warroom.lab import repo as shop_repo
from warroom.lab.cgroup import remove_group
from warroom.lab.client import LabClient
from warroom.lab.loadgen import default_traffic, write_traffic
from warroom.lab.topology import LabError, LabPaths, LabSettings, load_settings, read_state, save_settings

lab_app = typer.Typer(no_args_is_help=True, help="A small real system on loopback that breaks for real.")
console = Console()
DirOption = Annotated[Path, typer.Option("--dir", help="The lab's directory.")]
DEFAULT_DIR = Path(".lab")


def _parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", text.strip())
    if not match:
        raise LabError("expected a duration like 90s, 30m or 2h", field="--since")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def _wait_until_ready(paths: LabPaths, daemon: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(paths)
        if state and state.ready:
            return
        if state and state.error:
            raise LabError(f"the lab did not start: {state.error}", file=paths.logs / "supervisor.log")
        if daemon.poll() is not None:
            raise LabError(
                f"the lab supervisor exited with code {daemon.returncode}", file=paths.logs / "supervisor.stderr.log"
            )
        time.sleep(0.5)
    raise LabError(f"the lab was not ready within {timeout:.0f} s", file=paths.logs / "supervisor.log")


@lab_app.command("up")
def up(
    directory: DirOption = DEFAULT_DIR,
    products: Annotated[
        int, typer.Option("--products", help="Rows of the products table (first up only).")
    ] = 1_000_000,
    timeline: Annotated[str, typer.Option("--timeline", help="normal (5 s scrapes) or compressed (tests).")] = "normal",
    alert_webhook: Annotated[
        str | None,
        typer.Option("--alert-webhook", help="Where Alertmanager posts (default: the intake of serve's port)."),
    ] = None,
    serve_port: Annotated[
        int | None, typer.Option("--serve-port", help="Port of warroom serve in DIR/warroom.toml (default 8000).")
    ] = None,
    rate: Annotated[float, typer.Option("--rate", help="Shoppers' requests per second (first up only).")] = 10.0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the lab to be ready.")] = 600,
) -> None:
    """Start the lab: PostgreSQL, the services, Prometheus, Alertmanager, the OTLP receiver, the load."""
    paths = LabPaths(directory.resolve())
    if read_state(paths):
        raise LabError(f"a lab is already running in {paths.root}")
    monitoring.binaries()
    paths.ensure()
    settings = load_settings(paths)
    if settings is None:
        settings = LabSettings(products=products, timeline=timeline, alert_webhook=alert_webhook, load_rate=rate)
    else:
        settings = settings.model_copy(update={"timeline": timeline, "alert_webhook": alert_webhook})
    if serve_port is not None:
        settings = settings.model_copy(update={"serve_port": serve_port})
    settings = LabSettings.model_validate(settings.model_dump())
    save_settings(paths, settings)
    serve_config.write_alertmanager_token(paths)
    processes.sweep(paths.pids)  # whatever a killed lab left behind
    started = time.monotonic()
    shop_repo.create(paths.repo)
    if not paths.traffic.exists():
        write_traffic(paths.traffic, default_traffic(settings.load_rate, settings.products))
    with (paths.logs / "supervisor.stderr.log").open("ab") as errors:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "warroom.lab.daemon", str(paths.root)],
            stdin=subprocess.DEVNULL,
            stdout=errors,
            stderr=errors,
            start_new_session=True,
        )
    try:
        _wait_until_ready(paths, daemon, timeout)
    except LabError:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(60)
        processes.sweep(paths.pids)
        raise
    client = LabClient(paths)
    serve_config.write(paths, settings, client.state)
    console.print(f"lab up in {time.monotonic() - started:.1f} s ({paths.root})")
    _print_status(client)
    console.print(
        f"warroom serve against it: set -a; . {paths.serve_env}; set +a; warroom serve --config {paths.serve_config}"
    )


def _print_status(client: LabClient) -> None:
    status = client.status()
    table = Table("service", "port", "pid", "version", "replicas", "restarts")
    for name, slot in status["services"].items():
        table.add_row(
            name,
            str(slot["port"]),
            str(slot["pid"] or "-"),
            slot["version"] or "-",
            str(slot["replicas"]),
            str(slot["restarts"]),
        )
    console.print(table)
    ports = status["ports"]
    console.print(
        f"Prometheus http://127.0.0.1:{ports['prometheus']}  Alertmanager http://127.0.0.1:{ports['alertmanager']}  "
        f"OTLP http://127.0.0.1:{ports['otlp']}  PostgreSQL 127.0.0.1:{ports['postgres']}  "
        f"timeline {status['timeline']}"
    )


@lab_app.command("status")
def status(directory: DirOption = DEFAULT_DIR) -> None:
    """Show the running lab's services and tools."""
    _print_status(LabClient(LabPaths(directory.resolve())))


@lab_app.command("break")
def break_(
    fault: Annotated[str, typer.Argument(help=f"One of: {', '.join(faults.registry())}")],
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Inject a fault through the lab's own change path (a commit deployed, or a traffic change)."""
    paths = LabPaths(directory.resolve())
    truth = faults.inject(paths, fault)
    what = f"commit {truth.commit[:12]} deployed to {truth.service}" if truth.commit else truth.description
    console.print(f"{fault}: {what} at {truth.onset.isoformat(timespec='seconds')}")


@lab_app.command("end")
def end(
    fault: Annotated[str, typer.Argument(help="A fault in force (see `lab break`).")],
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Take a fault out as the team would once the incident is over (revert its commit, stop the attack)."""
    truth = faults.end(LabPaths(directory.resolve()), fault)
    console.print(f"{fault}: {truth.ended_by} at {truth.ended.isoformat(timespec='seconds') if truth.ended else '?'}")


ServiceArgument = Annotated[str, typer.Argument(help="gateway, catalog, checkout, payment or auth.")]
ByOption = Annotated[str, typer.Option("--by", help="Who makes the change (the deploy log's deployed_by).")]


def _print_change(record: dict[str, object]) -> None:
    console.print(
        f"{record['kind']} of {record['service']}: {record['previous_version'] or '-'} → {record['version']} "
        f"({record['description']})"
    )


@lab_app.command("deploy")
def deploy_(
    service: ServiceArgument,
    commit: Annotated[str, typer.Argument(help="A commit of the shop repository.")] = "HEAD",
    directory: DirOption = DEFAULT_DIR,
    by: ByOption = "oncall",
) -> None:
    """Deploy a commit of the shop repository to a service (keeps its socket; a deploy log record)."""
    _print_change(LabClient(LabPaths(directory.resolve())).deploy(service, commit, deployed_by=by))


@lab_app.command("rollback")
def rollback(
    service: ServiceArgument,
    to: Annotated[
        str | None, typer.Option("--to", help="Commit to go back to (default: the previous version).")
    ] = None,
    directory: DirOption = DEFAULT_DIR,
    by: ByOption = "oncall",
) -> None:
    """Roll a service back to the version it ran before (or to --to)."""
    _print_change(LabClient(LabPaths(directory.resolve())).rollback(service, deployed_by=by, to=to))


@lab_app.command("revert")
def revert(
    commit: Annotated[str, typer.Argument(help="The commit to undo.")],
    service: Annotated[str, typer.Option("--service", help="The service to deploy the revert to.")],
    directory: DirOption = DEFAULT_DIR,
    by: ByOption = "oncall",
) -> None:
    """Commit the revert of a commit (a config revert, a code revert) and deploy it to a service."""
    _print_change(LabClient(LabPaths(directory.resolve())).revert(commit, service, deployed_by=by))


@lab_app.command("restart")
def restart(service: ServiceArgument, directory: DirOption = DEFAULT_DIR, by: ByOption = "oncall") -> None:
    """Restart a service's worker at the version it runs (new worker first, then the old one stops)."""
    _print_change(LabClient(LabPaths(directory.resolve())).restart(service, deployed_by=by))


@lab_app.command("scale")
def scale(
    service: ServiceArgument,
    replicas: Annotated[int, typer.Argument(help="0 (stopped) or 1.")],
    directory: DirOption = DEFAULT_DIR,
    by: ByOption = "oncall",
) -> None:
    """Scale a service to 0 or 1 workers without a commit (the next deploy follows its release again)."""
    _print_change(LabClient(LabPaths(directory.resolve())).scale(service, replicas, deployed_by=by))


@lab_app.command("capture")
def capture(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the capture into.")],
    directory: DirOption = DEFAULT_DIR,
    since: Annotated[str, typer.Option("--since", help="Window ending now: 90s, 30m, 2h.")] = "30m",
    gzip: Annotated[bool, typer.Option("--gzip", help="Write the JSONL and log files gzip-compressed.")] = False,
) -> None:
    """Write the last window of the running lab as a folder of its raw exports (truth beside it)."""
    paths = LabPaths(directory.resolve())
    result = lab_capture.capture(paths, out.resolve(), _parse_duration(since), compress=gzip)
    size = sum(path.stat().st_size for path in result.folder.rglob("*") if path.is_file())
    console.print(
        f"captured {result.start.isoformat(timespec='seconds')} → {result.end.isoformat(timespec='seconds')} "
        f"into {result.folder} ({size / 1e6:.1f} MB, {result.series} series, {result.samples} samples)"
    )
    if result.began_after:
        console.print(f"begins after {result.began_after} (one incident a capture)")
    if result.truth:
        console.print(f"truth: {result.truth}")


@lab_app.command("down")
def down(directory: DirOption = DEFAULT_DIR) -> None:
    """Stop everything the lab started."""
    paths = LabPaths(directory.resolve())
    state = read_state(paths)
    if state is not None:
        try:
            httpx.post(
                f"http://127.0.0.1:{state.control_port}/stop",
                headers={"authorization": f"Bearer {state.token}"},
                timeout=10,
            ).raise_for_status()
        except httpx.HTTPError:
            os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and read_state(paths) is not None:
            time.sleep(0.3)
        remove_group(f"warroom-lab-{state.supervisor_pid}")
    left = processes.sweep(paths.pids)
    console.print(f"lab down ({len(left)} leftover process(es) ended)" if left else "lab down")
