"""Use cases behind the CLI: respond to an incident, resume, approve, and write the reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from warroom.agents import registry
from warroom.errors import InputError, NotFoundError
from warroom.incident import RootCauseCandidate, Status
from warroom.record import ActionStatus, RunRecord
from warroom.report.metrics import compute_metrics
from warroom.report.writer import write_reports
from warroom.sources.bundle import BundleSource
from warroom.sources.config import parse_duration
from warroom.sources.contract import LiveSpec, SourceSpec
from warroom.sources.incident_telemetry import read_incident
from warroom.sources.registry import capture_source, open_source
from warroom.sources.snapshot import SnapshotInfo
from warroom.store.records import build_record
from warroom.store.repository import Store
from warroom.workflow.engine import Approver, Engine, Progress, RunOptions, RunResult, runner_for
from warroom.workflow.runner import StepRunner, share_telemetry
from warroom.workflow.spec import ApprovalPolicy, WorkflowSpec, load_workflow, resolve_workflow


class Outcome(StrEnum):
    """How a command ended, as `--json`'s `status` says it; `exit_code` is the process's exit code
    (docs/exit-codes.md)."""

    DIAGNOSED = "diagnosed"  # cause established; nothing was executed (a dry run)
    RECOVERED = "recovered"  # cause established, actions executed and the recovery validated
    BAD_INPUT = "bad_input"
    FAILED_STEPS = "failed_steps"  # the run finished, but some steps failed or timed out
    CAUSE_NOT_ESTABLISHED = "cause_not_established"  # no candidate, or the top one is inconclusive
    NOT_RECOVERED = "not_recovered"  # actions were executed, recovery was not validated
    WAITING_APPROVAL = "waiting_approval"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES = {
    Outcome.DIAGNOSED: 0,
    Outcome.RECOVERED: 0,
    Outcome.BAD_INPUT: 2,
    Outcome.FAILED_STEPS: 3,
    Outcome.CAUSE_NOT_ESTABLISHED: 3,
    Outcome.NOT_RECOVERED: 3,
    Outcome.WAITING_APPROVAL: 4,
    Outcome.INTERRUPTED: 5,
}


def cause_established(diagnosis: list[RootCauseCandidate]) -> bool:
    """The diagnosis names a cause: a top candidate exists and the diagnosis did not flag it inconclusive."""
    top = min(diagnosis, key=lambda c: c.rank) if diagnosis else None
    return top is not None and not top.inconclusive


# statuses of an action that was really run against a target (whatever came of it)
ATTEMPTED = frozenset(
    {ActionStatus.EXECUTED, ActionStatus.VERIFIED, ActionStatus.FAILED, ActionStatus.TIMED_OUT, ActionStatus.UNDONE}
)


def outcome(result: RunResult, record: RunRecord, executed: bool) -> Outcome:
    """A finished (or paused) run's outcome, worst first: the exit code must never claim more than happened."""
    if result.status == "waiting_approval":
        return Outcome.WAITING_APPROVAL
    if result.status != "succeeded":
        return Outcome.FAILED_STEPS
    if not cause_established(record.diagnosis):
        return Outcome.CAUSE_NOT_ESTABLISHED
    if executed and any(a.status in ATTEMPTED for a in record.actions):
        # The incident's own lifecycle says whether recovery was validated (the workflow moves it to
        # resolved only then); a dry run or a replay never counts as a recovery. A run with
        # --execute whose every action stayed a manual step changed nothing: it is a diagnosis.
        return (
            Outcome.RECOVERED if record.incident.status in (Status.RESOLVED, Status.CLOSED) else Outcome.NOT_RECOVERED
        )
    return Outcome.DIAGNOSED


@dataclass
class Response:
    result: RunResult
    record: RunRecord
    files: dict[str, Path]
    outcome: Outcome


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
    processes: bool = False,
    progress: Progress | None = None,
    approver: Approver | None = None,
) -> Response:
    """Open an incident from `source` and run `workflow` over it. Steps run on threads over one
    copy of the telemetry (the analyses release the GIL in Polars and NumPy, and the diagnosis is
    computed once for all the agents that read it); `processes` gives every step a worker process
    of its own instead, which a timeout can stop, at the price of a copy and a diagnosis per worker."""
    spec = load_spec(workflow)
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
    except BaseException:
        runner.terminate()  # bad input or an interrupt: do not wait for workers still loading or running
        raise
    runner.close()
    return _finish(store, result, out_dir, execute)


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
    return _finish(store, result, Path(options.out_dir) if options.out_dir else None, options.execute)


def continue_run(store: Store, run_id: str, runner: StepRunner) -> RunResult:
    """Drive a stored run to its end or its next approval gate, then write its reports (the
    service's background worker: the run's options say where)."""
    # A live source reads its systems into the run's snapshot here, once (a resumed run finds it
    # there); then the workers read the snapshot or recording, each once for all its steps.
    source = RunOptions.model_validate(store.get_run(run_id).options).source
    try:
        capture_source(source)
        runner.open(source)
    except InputError as exc:
        # Nothing to investigate from (no live source answered, the bundle is gone): the run ends
        # failed with the reason and the sources on its timeline, the incident open for a human.
        result = Engine(store).fail(run_id, exc.one_line(), {"sources": _unanswered(exc)})
    else:
        result = Engine(store).run(run_id, runner)
    options = RunOptions.model_validate(store.get_run(run_id).options)
    _finish(store, result, Path(options.out_dir) if options.out_dir else None, options.execute)
    return result


def _unanswered(exc: InputError) -> list[dict[str, str]]:
    """The sources a failed read names, each with why it did not answer."""
    from warroom.sources.live import LiveError  # only a live read names its sources

    if not isinstance(exc, LiveError):
        return []
    return [{"kind": s.kind, "location": s.location, "detail": s.detail} for s in exc.unanswered if not s.answered]


def approve(store: Store, incident_id: str, action_id: str, actor: str) -> None:
    Engine(store).approve(incident_id, action_id, actor)


def reject(store: Store, incident_id: str, action_id: str, actor: str, reason: str) -> None:
    Engine(store).reject(incident_id, action_id, actor, reason)


def skip(store: Store, incident_id: str, action_id: str, actor: str, reason: str) -> None:
    Engine(store).skip(incident_id, action_id, actor, reason)


def _finish(store: Store, result: RunResult, out_dir: Path | None, executed: bool) -> Response:
    record = build_record(store, result.incident_id, result.run_id)
    record.metrics = compute_metrics(record)
    files: dict[str, Path] = {}
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output directory ({exc.strerror})", file=out_dir) from None
        files = write_reports(record, out_dir)
    return Response(result, record, files, outcome(result, record, executed))


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


def live_source(
    config_path: Path | None, alert: Path | None, since: str | None, snapshot: Path, *, now: datetime | None = None
) -> LiveSpec:
    """Read the configured live sources into the snapshot folder and pin the incident's manifest
    (`respond --live`): done before a run starts, so that its workers and a resumed run reopen the
    same snapshot instead of reading the live sources again."""
    from warroom.config import load_config
    from warroom.sources.live import capture, pin_manifest, read_period

    config = load_config(config_path)
    end = now or datetime.now(UTC)
    lookback = _lookback(since or config.sources.lookback)
    start, end = read_period(end - lookback, end, alert)
    spec = LiveSpec(
        path=str(snapshot.resolve()),
        config=str(Path(config.path).resolve()) if config.path else None,
        alert=str(alert.resolve()) if alert else None,
        start=start,
        end=end,
    )
    capture(config.sources, snapshot, start, end, alert=alert, config_path=spec.config)
    pin_manifest(snapshot)
    return spec


def capture_snapshot(
    config_path: Path | None, alert: Path | None, since: str, out: Path, *, now: datetime | None = None
) -> SnapshotInfo:
    """`warroom capture`: the snapshot of the configured live sources, without investigating; the
    manifest is pinned when there is an alert (given, or firing in Prometheus)."""
    from warroom.config import load_config
    from warroom.sources.live import capture, pin_manifest, read_period

    config = load_config(config_path)
    end = now or datetime.now(UTC)
    start, end = read_period(end - _lookback(since), end, alert)
    info = capture(config.sources, out, start, end, alert=alert, config_path=config.path)
    if alert is not None or info.incident.alerts:
        pin_manifest(out)
    return info


def _lookback(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(str(exc), field="--since") from None
