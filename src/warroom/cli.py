"""Command-line entry point: parses, calls the application layer, prints. No domain logic here."""

from __future__ import annotations

import gc
import getpass
import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer import _click as click
from typer.core import TyperGroup

from warroom import application
from warroom.agents.registry import is_known as is_known_agent
from warroom.agents.registry import specs as agent_specs
from warroom.application import Outcome, Response
from warroom.errors import InputError, Interrupted
from warroom.progress import ConsoleProgress
from warroom.redact import redact, redact_obj
from warroom.sources.bundle import validate_bundle
from warroom.sources.contract import BundleSpec, SourceSpec
from warroom.store.repository import ENV_VAR, Store, default_url
from warroom.workflow.engine import Approver
from warroom.workflow.render import render_workflow
from warroom.workflow.spec import ApprovalPolicy, builtin_workflows, load_workflow, resolve_workflow


class _Commands(TyperGroup):
    """The top-level commands. `lab` is loaded only when it is asked for (its own command or the
    help that lists it): it brings the lab's HTTP, PostgreSQL and process clients, a cost every
    other command (`respond` first) would pay at start for nothing."""

    LAZY = "lab"

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return names if self.LAZY in names else [*names, self.LAZY]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == self.LAZY and cmd_name not in self.commands:
            self.add_command(_lab_commands(), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_Commands, no_args_is_help=True, add_completion=False, help="warroom: incident response with evidence."
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn bad input into one line on stderr and exit code 2 (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            err_console.print(f"error: {exc.one_line()}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # any command, Ctrl-C or SIGTERM: exit 5, not click's "Aborted!"
            err_console.print(f"interrupted ({_signal_name(exc)})", markup=False, highlight=False)
            raise typer.Exit(Outcome.INTERRUPTED.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _signal_name(exc: KeyboardInterrupt) -> str:
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


def run_outcome(func: F) -> F:
    """For commands that run a workflow: the exit code and `--json`'s `status` say how it ended
    (docs/exit-codes.md), also when it ended on bad input or an interrupt. Inside `user_errors`."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            response = func(*args, **kwargs)
        except InputError as exc:
            if as_json:
                _print_json({"status": Outcome.BAD_INPUT.value, "error": exc.one_line()})
            raise
        except KeyboardInterrupt as exc:
            incident_id = exc.incident_id if isinstance(exc, Interrupted) else None
            resume_hint = f"; `warroom resume {incident_id}` carries on" if incident_id else ""
            if as_json:
                _print_json({"status": Outcome.INTERRUPTED.value, "incident_id": incident_id})
            err_console.print(f"interrupted ({_signal_name(exc)}){resume_hint}", markup=False, highlight=False)
            raise typer.Exit(Outcome.INTERRUPTED.exit_code) from None
        _print_response(response, as_json)
        raise typer.Exit(response.outcome.exit_code)

    return wrapper  # type: ignore[return-value]


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(redact_obj(payload), indent=2, default=str) + "\n")


# --- Nezha dataset: import and benchmark (issue 3) -------------------------------------------
import_app = typer.Typer(no_args_is_help=True, help="Import external datasets as incident bundles.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on public datasets.")
app.add_typer(import_app, name="import")
app.add_typer(bench_app, name="bench")


@import_app.command("nezha")
@user_errors
def import_nezha_cmd(
    root: str = typer.Argument(..., help="Nezha root (holds rca_data/ and construct_data/)"),
    out: str = typer.Option(..., "--out", help="Directory to write one bundle per fault into"),
    date: list[str] = typer.Option(None, "--date", help="Only this day (repeatable)"),
    case: str = typer.Option(None, "--case", help='Only the fault injected at "YYYY-MM-DD HH:MM:SS"'),
) -> None:
    """Convert each Nezha fault into an incident bundle plus ground_truth.json."""
    from pathlib import Path

    from warroom.sources.nezha import import_nezha_detailed

    result = import_nezha_detailed(Path(root), Path(out), list(date) if date else None, case)
    for path in result.bundles:
        console.print(str(path), markup=False, highlight=False)
    for case_id, reason in result.failures:
        err_console.print(f"skipped {case_id}: {reason}", markup=False, highlight=False)
    console.print(f"{len(result.bundles)} bundle(s) written, {len(result.failures)} case(s) skipped")


@bench_app.command("nezha")
@user_errors
def bench_nezha_cmd(
    root: str = typer.Argument(..., help="Nezha root (holds rca_data/ and construct_data/)"),
    date: list[str] = typer.Option(None, "--date", help="Only this day (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    workdir: str = typer.Option(None, "--workdir", help="Where to write the imported bundles"),
    drop: list[str] = typer.Option(None, "--drop", help="Remove this modality (logs, traces, metrics; repeatable)"),
) -> None:
    """Run every Nezha case through import → respond (the workflow included) and score the diagnosis."""
    import json
    import tempfile
    from pathlib import Path

    from rich.table import Table

    from warroom.bench.nezha import MODALITIES, run_nezha_bench

    unknown = sorted(set(drop or []) - set(MODALITIES))
    if unknown:
        raise typer.BadParameter(f"--drop {', '.join(unknown)}: expected one of {', '.join(MODALITIES)}")
    with tempfile.TemporaryDirectory(prefix="warroom-nezha-") as tmp:
        result = run_nezha_bench(Path(root), list(date) if date else None, Path(workdir or tmp), list(drop or []))
    if as_json:
        print(json.dumps(result))
        return
    table = Table("case", "truth", "rank", "top candidate", "fault (truth → top)", "s")
    for c in result["per_case"]:
        table.add_row(
            c["case"],
            c.get("truth_service", ""),
            str(c["rank"]) if c["rank"] is not None else "miss",
            c.get("top_service") or c.get("error", ""),
            f"{c.get('truth_fault', '')} → {c.get('top_fault', '')}",
            f"{c['seconds']:.2f}" if c.get("seconds") is not None else "-",
        )
    console.print(table)
    console.print(
        f"cases {result['cases']}  AC@1 {result['ac1']:.3f}  AC@3 {result['ac3']:.3f}  AC@5 {result['ac5']:.3f}  "
        f"fault type {result['fault_type_acc']:.3f}  inconclusive {result['inconclusive']}  "
        f"median {result['median_s']:.2f} s  "
        f"p95 {result['p95_s']:.2f} s  peak RSS {result['peak_rss_mb']:.0f} MB"
    )


# --- end Nezha ----------------------------------------------------------------------------------


# -- core: respond, resume, approve, incidents, timeline, workflows, agents, bundles -----------

DbOption = Annotated[
    str | None, typer.Option("--db", help=f"Store URL (default: ${ENV_VAR} or {default_url()}).", show_default=False)
]
AlertOption = Annotated[
    Path | None,
    typer.Option("--alert", help="The alert (an Alertmanager webhook payload) when the folder has no incident.yaml."),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="warroom.toml (its [sources] table); default $WARROOM_CONFIG or ./")
]
ApproveOption = Annotated[
    ApprovalPolicy,
    typer.Option(
        "--approve",
        help="Approve up front: none, risky (medium and high risk) or all actions.",
        case_sensitive=False,
    ),
]


def _store(db: str | None, *, create: bool = False) -> Store:
    """The store; only a command that opens incidents (`respond`) may create one."""
    return Store(db, create=create)


def _interactive_approver() -> Approver | None:
    if not sys.stdin.isatty():
        return None

    def ask(action: dict[str, Any]) -> bool:
        return typer.confirm(f"Approve {action['id']} ({action.get('risk')} risk): {action.get('title', '')}?")

    return ask


def _print_response(response: Response, as_json: bool) -> None:
    record = response.record
    if as_json:
        payload = {
            "status": response.outcome.value,
            "incident_id": record.incident.id,
            "run_status": response.result.status,
            "diagnosis": [c.model_dump(mode="json") for c in record.diagnosis],
            "metrics": record.metrics.model_dump(mode="json"),
            "pending_approval": [a["id"] for a in response.result.pending],
            "limitations": record.limitations,
            "files": {name: str(path) for name, path in response.files.items()},
        }
        _print_json(payload)
        return
    incident = record.incident
    console.print(
        f"\n[bold]{incident.id}[/] {escape(incident.title)} — {incident.severity.value}, "
        f"status {incident.status.value}, "
        f"run {response.result.status.replace('_', ' ')}: {response.outcome.value.replace('_', ' ')}"
    )
    for candidate in record.diagnosis[:3]:
        console.print(
            f"  #{candidate.rank} {escape(candidate.service)} · {escape(candidate.fault_type)} · "
            f"{escape(candidate.indicator)} (confidence {candidate.confidence:.2f})"
        )
    if response.result.pending:
        ids = " ".join(a["id"] for a in response.result.pending)
        console.print(
            f"[yellow]Waiting for approval of {ids}[/]: `warroom approve {incident.id} ACTION` then "
            f"`warroom resume {incident.id}`"
        )
    if response.files:
        folder = next(iter(response.files.values())).parent
        console.print(f"Reports in {folder}/: " + ", ".join(sorted(p.name for p in response.files.values())))


@app.command()
@user_errors
@run_outcome
def respond(
    bundle: Annotated[
        Path | None, typer.Argument(help="Incident bundle directory (canonical tables, raw exports, a snapshot).")
    ] = None,
    alert: AlertOption = None,
    live: Annotated[
        bool, typer.Option("--live", help="Investigate the live sources of warroom.toml's [sources].")
    ] = False,
    config: ConfigOption = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --live: how far back to read (default [sources] lookback).")
    ] = None,
    workflow: Annotated[
        str, typer.Option("--workflow", "-w", help="Built-in workflow name or YAML path.")
    ] = "critical-incident",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for the reports.")] = None,
    approve: ApproveOption = ApprovalPolicy.NONE,
    execute: Annotated[bool, typer.Option("--execute", help="Make real changes (default: dry run).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diagnosis and metrics as JSON.")] = False,
    processes: Annotated[
        bool,
        typer.Option("--processes", help="Run each step in a worker process (a timeout can stop it; costs memory)."),
    ] = False,
    db: DbOption = None,
) -> Response:
    """Open an incident from a bundle (or the live sources, --live) and run a response workflow over it."""
    if live == (bundle is not None):
        raise InputError("give a bundle directory or --live (one of them)", field="BUNDLE")
    source: SourceSpec
    if bundle is None:
        # the snapshot is written next to the reports (or under [sources] snapshots)
        source = application.live_source(config, alert, since, _snapshot_folder(config, out))
    else:
        source = BundleSpec(path=str(bundle.resolve()), alert=str(alert.resolve()) if alert else None)
    store = _store(db, create=True)
    progress = None if as_json else ConsoleProgress(err_console)
    return application.respond(
        store,
        source,
        workflow,
        out,
        grant=approve,
        execute=execute,
        processes=processes,
        progress=progress,
        approver=_interactive_approver(),
    )


def _snapshot_folder(config: Path | None, out: Path | None) -> Path:
    if out is not None:
        return out / "snapshot"
    from datetime import UTC, datetime

    from warroom.config import load_config

    where = load_config(config).sources.snapshots or "snapshots"
    return Path(where) / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@app.command()
@user_errors
def capture(
    out: Annotated[Path, typer.Option("--out", "-o", help="The snapshot folder to write (new or empty).")],
    since: Annotated[str, typer.Option("--since", help="How far back to read: 30m, 2h, 90s.")] = "30m",
    alert: Annotated[Path | None, typer.Option("--alert", help="The alert (an Alertmanager webhook payload).")] = None,
    config: ConfigOption = None,
) -> None:
    """Write a snapshot of the live sources (a bundle `respond` reads) without investigating."""
    info = application.capture_snapshot(config, alert, since, out)
    period = info.incident
    console.print(f"snapshot {escape(str(out))}: {period.start:%Y-%m-%d %H:%M:%S} .. {period.end:%H:%M:%S} UTC")
    for read in period.sources:
        mark = "read" if read.answered else "NOT READ"
        console.print(f"  {read.kind} {read.location}: {mark} — {read.detail}", markup=False)
    for item in period.limitations:
        console.print(f"  left out: {item}", markup=False, soft_wrap=True)
    if (out / "incident.yaml").is_file():
        console.print(f"  alert: {', '.join(period.alerts) or alert}; `warroom respond {out}` investigates it")
    else:
        console.print(f"  no alert given or firing: `warroom respond {out} --alert FILE` investigates it")


@app.command()
@user_errors
@run_outcome
def resume(
    incident_id: Annotated[str, typer.Argument(help="Incident id, e.g. INC-2026-001.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for the reports.")] = None,
    approve: Annotated[
        ApprovalPolicy | None, typer.Option("--approve", help="Approve up front: none, risky or all.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOption = None,
) -> Response:
    """Finish a run that was interrupted or is waiting for approval; completed steps are not repeated."""
    store = _store(db)
    progress = None if as_json else ConsoleProgress(err_console)
    return application.resume(
        store, incident_id, out_dir=out, grant=approve, progress=progress, approver=_interactive_approver()
    )


@app.command("approve")
@user_errors
def approve_action(
    incident_id: Annotated[str, typer.Argument()],
    action_id: Annotated[str, typer.Argument()],
    by: Annotated[str, typer.Option("--by", help="Who approves (recorded in the audit log).")] = getpass.getuser(),
    db: DbOption = None,
) -> None:
    """Approve a proposed action; `warroom resume ID` then carries on."""
    application.approve(_store(db), incident_id, action_id, by)
    console.print(f"approved {action_id} for {incident_id} (by {escape(by)}); run `warroom resume {incident_id}`")


ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log and on the timeline).")]


def _decline_command(name: str, past: str, decide: Callable[[Store, str, str, str, str], None], doc: str) -> None:
    """`warroom reject` and `warroom skip`: the same arguments, a different decision."""

    @app.command(name, help=doc)
    @user_errors
    def command(
        incident_id: Annotated[str, typer.Argument()],
        action_id: Annotated[str, typer.Argument()],
        reason: ReasonOption,
        by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the audit log).")] = getpass.getuser(),
        db: DbOption = None,
    ) -> None:
        decide(_store(db), incident_id, action_id, by, reason)
        console.print(f"{past} {action_id} for {incident_id} (by {escape(by)}); run `warroom resume {incident_id}`")


_decline_command(
    "reject",
    "rejected",
    application.reject,
    "Reject a proposed action: it is never taken; resume goes on with the next.",
)
_decline_command(
    "skip", "skipped", application.skip, "Set a proposed action aside; `warroom resume ID` goes on without it."
)


incidents_app = typer.Typer(no_args_is_help=True, help="Incidents in the store.")
app.add_typer(incidents_app, name="incidents")


@incidents_app.command("list")
@user_errors
def incidents_list(db: DbOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    items = _store(db).list_incidents()
    if as_json:
        sys.stdout.write(json.dumps([i.model_dump(mode="json") for i in items], indent=2) + "\n")
        return
    table = Table("id", "severity", "status", "title", "detected")
    for item in items:
        table.add_row(item.id, item.severity.value, item.status.value, escape(item.title), str(item.detected_at or ""))
    console.print(table)


@incidents_app.command("show")
@user_errors
def incidents_show(incident_id: str, db: DbOption = None) -> None:
    incident = _store(db).get_incident(incident_id)
    sys.stdout.write(json.dumps(redact_obj(incident.model_dump(mode="json")), indent=2) + "\n")


@app.command()
@user_errors
def timeline(incident_id: str, as_json: Annotated[bool, typer.Option("--json")] = False, db: DbOption = None) -> None:
    """The incident's append-only timeline."""
    events = _store(db).timeline(incident_id)
    if as_json:
        sys.stdout.write(json.dumps(redact_obj([e.model_dump(mode="json") for e in events]), indent=2) + "\n")
        return
    for item in events:
        console.print(
            f"{item.at:%Y-%m-%d %H:%M:%S} [bold]{item.kind.value:<18}[/] {escape(item.source):<36} "
            f"{escape(redact(item.summary))}",
            soft_wrap=True,
        )


workflow_app = typer.Typer(no_args_is_help=True, help="Response workflows.")
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("list")
@user_errors
def workflow_list() -> None:
    table = Table("name", "pattern", "phases", "title")
    for name in builtin_workflows():
        spec = application.load_spec(name)
        table.add_row(name, spec.pattern, str(len(spec.phases)), escape(spec.title))
    console.print(table)


@workflow_app.command("show")
@user_errors
def workflow_show(name: str) -> None:
    """Print a workflow's YAML."""
    sys.stdout.write(resolve_workflow(name).read_text(encoding="utf-8"))


@workflow_app.command("validate")
@user_errors
def workflow_validate(path: Path) -> None:
    spec = load_workflow(path, known_agent=is_known_agent)
    console.print(f"{path}: valid workflow '{spec.name}' ({len(spec.phases)} phases, {len(set(spec.agents()))} agents)")


@workflow_app.command("render")
@user_errors
def workflow_render(
    name: str,
    incident: Annotated[Path | None, typer.Option("--incident", help="Fill prompts from this bundle.")] = None,
) -> None:
    """The workflow as a Markdown document (prompts filled with the incident's facts)."""
    spec = application.load_spec(name)
    facts = application.workflow_facts(incident) if incident else None
    sys.stdout.write(render_workflow(spec, facts))


agents_app = typer.Typer(no_args_is_help=True, help="Specialist agents.")
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
@user_errors
def agents_list(
    profile: Annotated[
        str | None, typer.Option("--profile", help="Show which agents a workflow loads per phase.")
    ] = None,
) -> None:
    if profile:
        spec = application.load_spec(profile)
        table = Table("phase", "kind", "agents")
        for phase in spec.phases:
            table.add_row(phase.id, phase.kind.value, ", ".join(step.agent for step in phase.steps))
        console.print(table)
        return
    table = Table("agent", "aliases", "purpose", "reads", "writes")
    for item in agent_specs():
        table.add_row(
            item.name, ", ".join(item.aliases), escape(item.purpose), ", ".join(item.inputs), ", ".join(item.outputs)
        )
    console.print(table)


bundle_app = typer.Typer(no_args_is_help=True, help="Incident bundles.")
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("validate")
@user_errors
def bundle_validate(
    path: Path,
    alert: Annotated[
        Path | None, typer.Option("--alert", help="Alert file, when the folder has no incident.yaml.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read and check a bundle; report what it holds and what each file was read as."""
    summary = validate_bundle(path, alert=alert)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    rows = ", ".join(f"{k}: {v if v is not None else 'absent'}" for k, v in summary["rows"].items())
    console.print(f"{path}: valid bundle — {escape(summary['title'])}; {rows}; manifest: {summary['manifest']}")
    for entry in summary["files"]:
        notes = "; ".join([*entry["notes"], *(f"warning: {w}" for w in entry["warnings"])])
        console.print(f"  {entry['file']}: {entry['read_as']}" + (f" — {notes}" if notes else ""), markup=False)
    for warning in summary["warnings"]:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


@bench_app.command("scenarios")
@user_errors
def bench_scenarios(
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds, e.g. 1-20 or 1,2,5.")] = "1-20",
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="Only these scenarios.")] = None,
    scale: Annotated[str, typer.Option("--scale", help="small, default or large.")] = "default",
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Where bundles and the store go.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Generate every scenario per seed, respond to it, and score against its ground truth."""
    from warroom.bench.scenarios import parse_seeds, run_scenario_bench
    from warroom.scenarios import list_scenarios

    try:
        seed_list = parse_seeds(seeds)
    except ValueError:
        raise InputError(f"'{seeds}' is not a seed list (expected e.g. 1-20 or 1,3,5)", field="--seeds") from None
    known = {info.name for info in list_scenarios()}
    unknown = sorted(set(scenario or []) - known)
    if unknown:
        raise InputError(
            f"unknown scenario(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})", field="--scenario"
        )
    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as tmp:
        result = run_scenario_bench(seed_list, workdir or Path(tmp), scenario or None, scale)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return
    table = Table("scenario", "seed", "path", "service", "fault", "change", "code", "recovers", "s")
    for run in result["per_run"]:
        ok = run["correct"]
        table.add_row(
            run["scenario"],
            str(run["seed"]),
            *(
                "✓" if ok[k] else ("–" if ok[k] is None else "✗")
                for k in ("path", "service", "fault_type", "change", "code_location", "recovers")
            ),
            str(run.get("run_s", run.get("error", ""))),
        )
    console.print(table)
    console.print(f"runs {result['runs']}, accuracy {result['accuracy']}, median {result['median_s']} s")


@bench_app.command("lab")
@user_errors
def bench_lab(
    fault: Annotated[list[str] | None, typer.Option("--fault", help="Only these faults (default: all).")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="The lab's directory (started when not running).")] = Path(
        ".lab"
    ),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each step of a fault.")] = 480,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    capture: Annotated[
        Path | None,
        typer.Option("--capture", help="Capture each fault's incident into DIR/<fault> (its truth beside it)."),
    ] = None,
) -> None:
    """The live loop per fault: break, alert, diagnosis, approved first action, verified recovery; scored."""
    from warroom.bench.lab import run_lab_bench
    from warroom.lab.faults import registry
    from warroom.lab.topology import LabPaths, read_state

    paths = LabPaths(directory.resolve())
    unknown = sorted(set(fault or []) - set(registry()))
    if unknown:
        raise InputError(f"unknown fault {unknown[0]!r}; the lab knows {', '.join(registry())}", field="--fault")
    started_lab = read_state(paths) is None
    if started_lab:
        # Its progress goes to stderr: stdout is the result's (--json).
        up = [sys.executable, "-m", "warroom", "lab", "up", "--dir", str(paths.root)]
        subprocess.run(up, check=True, stdout=sys.stderr)
    names = list(fault or registry())
    command = "warroom bench lab " + " ".join(f"--fault {n}" for n in fault or []) + f" --dir {directory}"
    try:
        result = run_lab_bench(
            paths,
            names,
            timeout,
            command.replace("  ", " "),
            capture.resolve() if capture else None,
            # each fault's row on stderr as it is done, one JSON object a line (stdout is the result's)
            on_fault=lambda run: print(run.model_dump_json(), file=sys.stderr, flush=True),
        )
    finally:
        if started_lab:
            down = [sys.executable, "-m", "warroom", "lab", "down", "--dir", str(paths.root)]
            subprocess.run(down, check=False, stdout=sys.stderr)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return

    def mark(value: bool | None) -> str:
        return "–" if value is None else ("✓" if value else "✗")

    table = Table(
        "fault",
        "service",
        "fault type",
        "change",
        "file:line",
        "first action",
        "→diag s",
        "→recovered s",
        "updates",
        "CPU s lab/serve",
        "peak MB lab/serve",
    )
    for run in result.runs:
        ok = run.score
        table.add_row(
            run.fault,
            f"{mark(ok.service if ok else None)} {run.service or '-'}",
            f"{mark(ok.fault_type if ok else None)} {run.fault_type or '-'}",
            mark(ok.change if ok else None),
            f"{mark(ok.location if ok else None)} {run.location or '-'}",
            f"{mark(ok.first_action if ok else None)} {run.first_action or '-'}",
            "-" if run.alert_to_diagnosis_s is None else f"{run.alert_to_diagnosis_s:.1f}",
            "-" if run.alert_to_recovery_s is None else f"{run.alert_to_recovery_s:.1f}",
            str(run.updates_sent),
            f"{run.lab.cpu_seconds:.0f}/{run.serve.cpu_seconds:.0f}" if run.lab and run.serve else "-",
            f"{run.lab.peak_rss_mb:.0f}/{run.serve.peak_rss_mb:.0f}" if run.lab and run.serve else "-",
        )
        if run.error:
            table.add_row("", escape(run.error), *[""] * 9)
    console.print(table)
    console.print(
        f"{result.timeline} timeline, {result.wall_seconds:.0f} s: lab {result.lab.cpu_seconds:.0f} CPU s, "
        f"peak {result.lab.peak_rss_mb:.0f} MB; serve {result.serve.cpu_seconds:.0f} CPU s, "
        f"peak {result.serve.peak_rss_mb:.0f} MB"
    )


@bench_app.command("captures")
@user_errors
def bench_captures(
    root: Annotated[Path, typer.Argument(help="A folder of lab captures (NAME/ with NAME.truth.json beside it).")],
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Where the store goes.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Respond to every lab capture (real incidents) and score it against the lab's truth."""
    from warroom.bench.captures import FIELDS, run_capture_bench

    with tempfile.TemporaryDirectory(prefix="warroom-captures-") as tmp:
        result = run_capture_bench(root, workdir or Path(tmp))
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return
    table = Table("capture", "truth", "top candidate", "change", "file:line", "first action", *FIELDS, "s")
    for case in result["per_case"]:
        ok = case.get("correct") or {}
        table.add_row(
            case["case"],
            f"{case['truth_service']} {case['truth_fault']}",
            f"{case.get('top_service')} {case.get('top_fault')}" if "correct" in case else case.get("error", ""),
            str(case.get("change") or "-"),
            str(case.get("location") or "-"),
            str(case.get("first_action") or "-"),
            *("✓" if ok.get(k) else ("–" if ok.get(k) is None and ok else "✗") for k in FIELDS),
            str(case.get("seconds") or "-"),
        )
    console.print(table)
    console.print(
        f"cases {result['cases']}, all right {result['all_right']}, accuracy {result['accuracy']}, "
        f"inconclusive {result['inconclusive']}, median {result['median_s']} s"
    )


@bench_app.command("calibrate")
@user_errors
def bench_calibrate(
    results: Annotated[list[Path], typer.Argument(help="`bench nezha --json` / `bench scenarios --json` outputs.")],
    group_by: Annotated[str, typer.Option("--group-by", help="Hold out a dataset or a fault type.")] = "fault",
    threshold: Annotated[float, typer.Option("--threshold", help="Below it, inconclusive.")] = 0.5,
    out: Annotated[Path | None, typer.Option("--out", help="Write the fitted map here (calibration.yaml).")] = None,
) -> None:
    """Refit the diagnosis' confidence map on benchmark results; report its calibration error on held-out groups."""
    from warroom.analysis.diagnosis.calibration import shipped
    from warroom.bench.calibrate import GroupBy, read_cases, refit, write_map

    groupings: dict[str, GroupBy] = {"dataset": "dataset", "fault": "fault"}
    if group_by not in groupings:
        raise InputError(f"'{group_by}' is not a grouping (expected dataset or fault)", field="--group-by")
    grouping = groupings[group_by]
    if not 0.0 < threshold < 1.0:
        raise InputError(f"{threshold} is not a probability strictly between 0 and 1", field="--threshold")
    command = "warroom bench calibrate " + " ".join(p.name for p in results) + f" --group-by {group_by}"
    done = refit(read_cases(results, shipped()), grouping, threshold, command)
    table = Table("confidence", "cases", "mean confidence", "accuracy")
    for b in done.table:
        table.add_row(f"{b.low:.1f}–{b.high:.1f}", str(b.cases), f"{b.mean_confidence:.3f}", f"{b.accuracy:.3f}")
    console.print(table)
    console.print(
        f"{done.cases} cases; map a={done.fitted.a} b={done.fitted.b} c={done.fitted.c} (per missing modality); "
        f"ECE: current map {done.ece_before}, "
        f"fitted (in sample) {done.ece_fitted}, held out by {group_by} {done.ece_out_of_sample}; "
        f"inconclusive {done.inconclusive_before} → {done.inconclusive_after}"
    )
    if out is not None:
        write_map(done.fitted, out)
        console.print(f"written: {out}")


report_app = typer.Typer(no_args_is_help=True, help="Reports of a run.")
app.add_typer(report_app, name="report")


@report_app.command("lint")
@user_errors
def report_lint(directory: Annotated[Path, typer.Argument(help="A report directory (holds facts.json).")]) -> None:
    """Check the reports for holes, raw numbers, unordered timelines and claims the facts do not hold."""
    from warroom.report.lint import lint_reports

    problems = lint_reports(directory)
    for problem in problems:
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        err_console.print(f"{len(problems)} problem(s) in {directory}")
        raise typer.Exit(1)
    console.print(f"{directory}: no problems")


# --- Scenario generator (issue 4) -----------------------------------------------------------
scenario_app = typer.Typer(no_args_is_help=True, help="Generate incident bundles of the simulated shop.")
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
@user_errors
def scenario_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The scenarios the generator knows."""
    from dataclasses import asdict

    from warroom.scenarios import list_scenarios

    found = list_scenarios()
    if as_json:
        sys.stdout.write(json.dumps([asdict(info) for info in found], indent=2) + "\n")
        return
    table = Table("name", "fault type", "path", "summary")
    for info in found:
        table.add_row(info.name, info.fault_type, info.path, escape(info.summary))
    console.print(table)


@scenario_app.command("generate")
@user_errors
def scenario_generate(
    name: str,
    seed: Annotated[int, typer.Option("--seed", help="Variant and noise are fixed by the seed.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the bundle into.")] = Path("bundle"),
    scale: Annotated[str, typer.Option("--scale", help="small | default | large")] = "default",
    repo: Annotated[str, typer.Option("--repo", help="bundle (repo.bundle) | checkout (repo/) | both")] = "both",
) -> None:
    """Write a complete incident bundle (telemetry, baseline, after/<action>, repository, ground truth)."""
    from warroom.scenarios import generate

    written = generate(name, seed, out, scale=scale, repo=repo)
    console.print(f"wrote scenario {escape(name)} (seed {seed}, scale {escape(scale)}) to {escape(str(written))}")


# --- the service (issue 11) --------------------------------------------------------------------


@app.command()
@user_errors
def serve(
    config: Annotated[Path | None, typer.Option("--config", help="warroom.toml (its [serve] table).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on (default 8080).")] = None,
    db: DbOption = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Serve this bundle as if live: the telemetry of alerts' runs.")
    ] = None,
) -> None:
    """Run the service: Alertmanager intake, background investigations, REST API, incident room."""
    from warroom.config import load_config
    from warroom.serve.server import Stopped
    from warroom.serve.server import serve as run_server

    whole = load_config(config)
    overrides = {"host": host, "port": port, "db": db, "replay": str(replay.resolve()) if replay else None}
    settings = whole.serve.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    try:
        run_server(settings, whole)  # a store that cannot be opened is a StoreError: one line, exit 2
    except Stopped as stopped:  # a clean stop: one line, no traceback
        err_console.print(stopped.one_line(), markup=False, highlight=False)
        raise typer.Exit(Outcome.INTERRUPTED.exit_code) from None


token_app = typer.Typer(no_args_is_help=True, help="API tokens of the service (stored as digests).")
app.add_typer(token_app, name="token")


@token_app.command("create")
@user_errors
def token_create(
    role: Annotated[str, typer.Option("--role", help="viewer, responder, commander or admin.")],
    name: Annotated[str, typer.Option("--name", help="Who or what holds it (shown in the audit log).")],
    db: DbOption = None,
) -> None:
    """Create a token and print it once; only its digest is stored."""
    from warroom.serve.auth import Role
    from warroom.store.tokens import create_token

    try:
        role_name = Role.parse(role).label
    except ValueError as exc:
        raise InputError(str(exc), field="--role") from None
    if not name.strip():
        raise InputError("give the token a name", field="--name")
    token = create_token(_store(db, create=True), name.strip(), role_name, created_by=f"cli ({getpass.getuser()})")
    sys.stdout.write(token + "\n")


@token_app.command("list")
@user_errors
def token_list(db: DbOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    from warroom.store.tokens import list_tokens

    found = list_tokens(_store(db))
    if as_json:
        rows = [
            {**vars(t), "created_at": t.created_at.isoformat(), "revoked_at": t.revoked_at and t.revoked_at.isoformat()}
            for t in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("name", "role", "created", "by", "revoked")
    for t in found:
        table.add_row(
            escape(t.name),
            t.role,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            escape(t.created_by),
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    console.print(table)


@token_app.command("revoke")
@user_errors
def token_revoke(name: str, db: DbOption = None) -> None:
    """Revoke a token by name; requests with it get 401 from then on."""
    from warroom.store.tokens import revoke_token

    info = revoke_token(_store(db), name)
    console.print(f"revoked {escape(info.name)} ({info.role})")


def _terminate(signum: int, _frame: Any) -> None:
    # SIGTERM ends a run the way Ctrl-C does: workers stopped, the run marked interrupted, exit 5.
    raise Interrupted(signal.Signals(signum).name)


def _spawn_without_the_cli() -> None:
    """Spawned workers re-import the parent's `__main__`; for the `warroom` console script that is
    this whole CLI — seconds of imports before a worker can arm its parent-death signal or take a
    step. Described as the package's `__main__` (what `python -m warroom` is), multiprocessing skips
    it, and a worker imports only what its steps need."""
    entry = sys.modules.get("__main__")
    if entry is not None and getattr(entry, "__spec__", None) is None:
        entry.__spec__ = importlib.util.find_spec("warroom.__main__")


@app.command("otlp-receive")
@user_errors
def otlp_receive(
    directory: Annotated[Path, typer.Option("--dir", help="Spool directory for the OTLP/JSON lines.")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (4318 is OTLP/HTTP's usual one).")] = 4318,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    rotate: Annotated[int, typer.Option("--rotate", help="Start a new spool file every N seconds.")] = 3600,
) -> None:
    """Receive OTLP/HTTP traces and logs (POST /v1/traces, /v1/logs) and spool them as OTLP/JSON lines."""
    from warroom.sources.otlp_receiver import serve

    if rotate <= 0:
        raise InputError("must be a positive number of seconds", field="--rotate")
    serve(directory, host, port, rotate)


@cache  # once per process: its callbacks are wrapped in place
def _lab_commands() -> click.Command:
    from warroom.lab.cli import lab_app

    for command in lab_app.registered_commands:
        if command.callback is not None:
            command.callback = user_errors(command.callback)
    group = typer.main.get_group(lab_app)
    group.name = _Commands.LAZY
    return group


def main() -> None:
    _spawn_without_the_cli()
    signal.signal(signal.SIGTERM, _terminate)
    # The modules imported to get here live as long as the process: frozen, the collector's full
    # passes during the command (three or four in a `respond`) no longer walk them, ~0.2 s of it.
    gc.freeze()
    try:
        app()
    except KeyboardInterrupt as exc:  # before a command started (commands report it themselves)
        err_console.print(f"interrupted ({_signal_name(exc)})", markup=False, highlight=False)
        sys.exit(Outcome.INTERRUPTED.exit_code)
    finally:
        # The command is done and the process ends here. The interpreter's shutdown would collect
        # every object still alive (the analyses' modules and a whole run's data), which took
        # 0.2-0.4 s of every `respond`; frozen, they are left to the process's exit. Everything the
        # command wrote is already closed and committed; only cyclic garbage is not finalised.
        gc.freeze()
