"""Use cases behind the CLI: respond to an incident, resume, approve, and write the reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warroom.agents import registry
from warroom.errors import InputError, NotFoundError
from warroom.record import RunRecord
from warroom.report.metrics import compute_metrics
from warroom.report.writer import write_reports
from warroom.sources.bundle import BundleSource
from warroom.sources.contract import SourceSpec
from warroom.sources.incident_telemetry import read_incident
from warroom.sources.registry import open_source
from warroom.store.records import build_record
from warroom.store.repository import Store
from warroom.workflow.engine import Approver, Engine, Progress, RunOptions, RunResult, runner_for
from warroom.workflow.runner import share_telemetry
from warroom.workflow.spec import ApprovalPolicy, WorkflowSpec, load_workflow, resolve_workflow


@dataclass
class Response:
    result: RunResult
    record: RunRecord
    files: dict[str, Path]


# Worker processes give each step its own interpreter but also their own copy of the telemetry;
# above this size on disk (a few GB in memory per copy) steps share one copy on threads instead.
SHARED_MEMORY_ABOVE = 200 * 1024 * 1024


def bundle_bytes(bundle_dir: Path) -> int:
    """The size of the bundle's telemetry on disk (the code repository does not count)."""
    if not bundle_dir.is_dir():
        return 0
    skip = {"repo", "repo.bundle", ".git"}
    return sum(
        path.stat().st_size
        for path in bundle_dir.rglob("*")
        if path.is_file() and not skip & set(path.relative_to(bundle_dir).parts)
    )


def load_spec(name_or_path: str) -> WorkflowSpec:
    return load_workflow(resolve_workflow(name_or_path), known_agent=registry.is_known)


def respond(
    store: Store,
    source: SourceSpec,
    workflow: str,
    out_dir: Path | None,
    *,
    grant: ApprovalPolicy = ApprovalPolicy.NONE,
    execute: bool = False,
    processes: bool | None = None,
    progress: Progress | None = None,
    approver: Approver | None = None,
) -> Response:
    spec = load_spec(workflow)
    if processes is None:
        processes = bundle_bytes(Path(source.path)) <= SHARED_MEMORY_ABOVE
    options = RunOptions(
        source=source,
        execute=execute,
        grant=grant,
        out_dir=str(out_dir.resolve()) if out_dir else None,
        processes=processes,
    )
    runner = runner_for(options)
    runner.warm()  # workers start and read the telemetry while it is validated here
    try:
        telemetry = read_incident(open_source(source))  # validate before anything is recorded
        engine = Engine(store, progress, approver)
        _, run_id = engine.start(telemetry, spec, options)
        if processes:
            del telemetry  # the workers hold their own copies
        else:
            share_telemetry(source, telemetry)  # steps on threads read this one copy
        result = engine.run(run_id, runner)
    finally:
        runner.close()
    return _finish(store, result, out_dir)


def resume(
    store: Store,
    incident_id: str,
    *,
    out_dir: Path | None = None,
    grant: ApprovalPolicy | None = None,
    progress: Progress | None = None,
    approver: Approver | None = None,
) -> Response:
    run = store.latest_run(incident_id)
    options = RunOptions.model_validate(run.options)
    if not Path(options.source.path).is_dir():
        raise NotFoundError("the run's incident bundle is no longer there", file=options.source.path)
    if grant is not None or out_dir is not None:
        options = options.model_copy(
            update={
                "grant": grant if grant is not None else options.grant,
                "out_dir": str(out_dir.resolve()) if out_dir else options.out_dir,
            }
        )
        with store.transaction() as session:
            store.set_run_options(session, run.id, options.model_dump(mode="json"))
    if run.status in ("succeeded", "completed_with_failures"):
        result = RunResult(incident_id, run.id, run.status, [])
    else:
        result = Engine(store, progress, approver).run(run.id)
    return _finish(store, result, Path(options.out_dir) if options.out_dir else None)


def approve(store: Store, incident_id: str, action_id: str, actor: str) -> None:
    Engine(store).approve(incident_id, action_id, actor)


def _finish(store: Store, result: RunResult, out_dir: Path | None) -> Response:
    record = build_record(store, result.incident_id, result.run_id)
    record.metrics = compute_metrics(record)
    files: dict[str, Path] = {}
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output directory ({exc.strerror})", file=out_dir) from None
        files = write_reports(record, out_dir)
    return Response(result, record, files)


def workflow_facts(bundle_dir: Path) -> dict[str, Any]:
    """The incident's facts that fill a rendered workflow's prompts, from a quick assessment."""
    from warroom.agents.base import AgentContext
    from warroom.agents.commander import IncidentCommander

    telemetry = read_incident(BundleSource(bundle_dir))
    report = IncidentCommander().run(AgentContext(telemetry=telemetry, incident_id="(not opened)"))
    incident = report.outputs["incident"]
    manifest = telemetry.manifest
    services = ", ".join(incident["affected_services"]) or "none measured"
    revenue = manifest.business.revenue_per_minute
    return {
        "symptoms": ", ".join(manifest.symptoms) or manifest.alert.summary,
        "alert": f"Alert: {manifest.alert.summary or manifest.alert.name}",
        "classification": f"{incident['severity']} ({incident['severity_rule']}); affected systems: {services}",
        "services": services,
        "revenue": f"{revenue:,.0f} {manifest.business.currency} per minute at risk"
        if revenue
        else "revenue at risk unknown",
        "incident_header": {"title": manifest.title, "severity": incident["severity"], "affected": services},
    }
