"""`warroom bench lab`: the live closed loop, fault by fault, scored against the lab's truth.

For each fault: break it through the lab's change path, wait for warroom serve (started with the
lab's DIR/warroom.toml) to open the incident from Alertmanager's notification, wait for the
diagnosis, approve the first proposed action over the REST API with a commander token (as a
person would), wait until serve verifies recovery (or says it did not recover), then read the
truth (DIR/truth/, only here) and score. Between faults the lab goes back to its healthy version
through the same change path (`lab end`: the fault's commit reverted and deployed, the attack's
traffic stopped; an index an action created is dropped) and the alerts clear.

Times are engine (wall-clock) seconds measured by this process, which polls serve every
POLL_S: alert → diagnosis from the moment the incident shows in the API, which Alertmanager's
delivery opened. CPU and memory are of the lab's process tree (the supervisor and every child)
and of serve's, sampled every SAMPLE_S.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import httpx
import psutil
from pydantic import BaseModel

from warroom.analysis.faults import canonical_fault
from warroom.errors import InputError
from warroom.lab import capture as lab_capture
from warroom.lab import deploy as lab_deploy
from warroom.lab import faults, processes, serve_config
from warroom.lab import truth as lab_truth
from warroom.lab.client import LabClient
from warroom.lab.topology import TIMELINES, LabError, LabPaths, Timeline, load_settings, read_state
from warroom.sources.config import parse_duration

POLL_S = 0.5
# How long the lab runs healthy before a break: the live read's reference period before the fault
# (the engine compares the incident's window with what came before it). After a start the shop
# needs about 40 s to reach its level (load ramping in, pools and caches filling); the window opens
# a minute before the onset; the reference is the settled level between the two, which needs a
# few dozen scrapes of its own to be judged (2 s scrapes compressed). On the normal timeline, where
# one fault follows another, it also covers the live read's whole lookback: a read reaching back
# into the previous fault's tail takes that tail for the reference and a change in it for the
# onset. Compressed, a run breaks one fault after `up`, and what the lookback reaches before the
# lab began holds nothing.
WARM_UP_S = {
    "normal": max(300.0, parse_duration(serve_config.LOOKBACK["normal"]).total_seconds()),
    "compressed": 150.0,
}
SAMPLE_S = 2.0
LINE_TOLERANCE = 3
# What each of the truth's mitigations is among the runbooks' action kinds.
MITIGATION_KINDS: dict[str, set[str]] = {
    "rollback": {"rollback"},
    "config_revert": {"revert_config"},
    "restart": {"restart", "scale_out"},
    "terminate_query": {"kill_long_queries"},
    "create_index": {"create_index"},
    "rate_limit": {"block_sources"},  # earlier captures' mitigation of the credential stuffing
    "block_sources": {"block_sources"},
}
PLANNER = "incident-resolution-coordinator"  # the agent whose plan comes from the runbooks
WAITING = ("proposed", "awaiting_approval")
# Outcomes of an action that end the wait for recovery without it (actions/loop.py's statuses).
NOT_RECOVERED = {"failed", "undone", "timed_out", "skipped"}

T = TypeVar("T")


class BenchError(InputError):
    """The benchmark cannot go on (serve did not start, the lab is not there)."""


class Score(BaseModel):
    service: bool
    fault_type: bool
    change: bool | None  # None: the fault was not a change (a traffic fault)
    location: bool | None  # None: the truth names no file
    first_action: bool


class Usage(BaseModel):
    cpu_seconds: float
    peak_rss_mb: float


class FaultRun(BaseModel):
    fault: str
    incident: str | None = None
    service: str | None = None
    fault_type: str | None = None
    change: str | None = None
    location: str | None = None  # file:line the diagnosis points at
    first_action: str | None = None  # its kind
    score: Score | None = None
    alert_to_diagnosis_s: float | None = None
    alert_to_recovery_s: float | None = None
    recovery: str | None = None  # the first action's final status
    updates_sent: int = 0
    lab: Usage | None = None  # this fault's share: CPU from its warm-up to its restore, peak memory then
    serve: Usage | None = None
    capture: str | None = None  # the capture folder of the incident (--capture)
    error: str | None = None


class LabBenchResult(BaseModel):
    command: str
    timeline: str
    runs: list[FaultRun]
    lab: Usage
    serve: Usage
    wall_seconds: float


def score(
    truth: lab_truth.Truth, candidate: dict[str, Any] | None, suspect: dict[str, Any], first_kind: str | None
) -> Score:
    """How the diagnosis and the first action compare with what the lab injected (pure)."""
    candidate = candidate or {}
    change = suspect.get("id") or candidate.get("change_id")
    change_right: bool | None = None
    if truth.commit is not None:
        # A change is named by the deploy log's id (kind-service-version: a 12-hex version) or a commit.
        change_right = bool(change) and (truth.commit[:12] in str(change) or truth.commit.startswith(str(change)))
    location_right: bool | None = None
    if truth.file is not None:
        line = suspect.get("code_line")
        wanted = [n for n in (truth.defect_line, *(truth.lines or ())) if n is not None]
        location_right = (
            suspect.get("code_file") == truth.file
            and isinstance(line, int)
            and (
                any(abs(line - n) <= LINE_TOLERANCE for n in wanted)
                or (truth.lines is not None and truth.lines[0] <= line <= truth.lines[1])
            )
        )
    accepted = set().union(*(MITIGATION_KINDS[a] for a in (truth.mitigation.action, *truth.mitigation.alternatives)))
    return Score(
        service=candidate.get("service") == truth.service,
        fault_type=canonical_fault(candidate.get("fault_type")) == canonical_fault(truth.fault_type),
        change=change_right,
        location=location_right,
        first_action=first_kind in accepted,
    )


class _Sampler(threading.Thread):
    """CPU seconds and peak resident memory of process trees, sampled until stopped."""

    def __init__(self, roots: dict[str, Callable[[], int | None]]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.cpu: dict[str, dict[int, float]] = {name: {} for name in roots}
        self.peak: dict[str, float] = dict.fromkeys(roots, 0.0)
        self.whole: dict[str, float] = {}  # the peak of the whole run, over the faults' peaks
        self.done = threading.Event()

    def sample(self) -> None:
        for name, root in self.roots.items():
            pid = root()
            if pid is None:
                continue
            try:
                top = psutil.Process(pid)
                tree = [top, *top.children(recursive=True)]
            except psutil.Error:
                continue
            rss = 0.0
            for process in tree:
                try:
                    times = process.cpu_times()
                    # Keyed by pid and start: a restarted worker's time adds to the one it replaced.
                    self.cpu[name][hash((process.pid, process.create_time()))] = times.user + times.system
                    rss += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak[name] = max(self.peak[name], rss / 1e6)

    def run(self) -> None:
        while not self.done.wait(SAMPLE_S):
            self.sample()

    def usage(self, name: str, baseline: dict[int, float], peak: float | None = None) -> Usage:
        spent = sum(value - baseline.get(key, 0.0) for key, value in self.cpu[name].items())
        return Usage(cpu_seconds=round(spent, 1), peak_rss_mb=round(self.peak[name] if peak is None else peak, 1))

    def mark(self) -> tuple[dict[str, dict[int, float]], dict[str, float]]:
        """The CPU so far, and a fresh peak from now on (a fault's own share of the run)."""
        self.sample()
        cpu = {name: dict(values) for name, values in self.cpu.items()}
        peaks, self.peak = self.peak, dict.fromkeys(self.roots, 0.0)
        self.whole = {name: max(self.whole.get(name, 0.0), value) for name, value in peaks.items()}
        return cpu, peaks


def _wait(what: str, timeout: float, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(POLL_S)


def start_recorded(
    paths: LabPaths, name: str, argv: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """A process of the bench that ends with it even when the bench is killed (no cleanup runs
    then), and is among the processes `lab down` ends (run/pids): a serve left running holds the
    lab's serve port and keeps answering its Alertmanager."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=processes.die_with_parent,
        )
    processes.record(paths.pids, process.pid, name)
    return process


class _Serve:
    """warroom serve on the lab's warroom.toml, and a commander's REST client for it."""

    def __init__(self, paths: LabPaths, log: Path) -> None:
        env = {**os.environ, **serve_config.read_env(paths)}
        self.token = serve_config.issue_token(paths, "commander", "bench")
        port = _serve_port(paths)
        self.base = f"http://127.0.0.1:{port}/api/v1"
        argv = [sys.executable, "-m", "warroom", "serve", "--config", str(paths.serve_config)]
        self.process = start_recorded(paths, "bench-serve", argv, env, log)
        self.http = httpx.Client(headers={"authorization": f"Bearer {self.token}"}, timeout=30, trust_env=False)
        _wait("warroom serve to answer", 120, self._ready)

    def _ready(self) -> bool | None:
        if self.process.poll() is not None:
            raise BenchError(f"warroom serve exited with code {self.process.returncode}")
        try:
            return True if self.http.get(f"{self.base}/incidents").status_code == 200 else None
        except httpx.HTTPError:
            return None

    def get(self, path: str) -> Any:
        answer = self.http.get(f"{self.base}{path}")
        answer.raise_for_status()
        return answer.json()

    def get_or_none(self, path: str) -> Any:
        """The answer, or None while it does not exist yet (404: no diagnosis recorded so far)."""
        answer = self.http.get(f"{self.base}{path}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.json()

    def approve(self, incident: str, action: str) -> None:
        self.http.post(f"{self.base}/incidents/{incident}/actions/{action}/approve").raise_for_status()

    def reject_others(self, incident: str, kept: str) -> None:
        """Reject every action still waiting but `kept`: the plan's first action is tried alone."""
        for action in self.get(f"/incidents/{incident}/actions"):
            if action["action_id"] != kept and action.get("status") in WAITING:
                reason = {"reason": "benchmark: the plan's first action is tried alone"}
                answer = self.http.post(
                    f"{self.base}/incidents/{incident}/actions/{action['action_id']}/reject", json=reason
                )
                if answer.status_code != 409:  # decided meanwhile
                    answer.raise_for_status()

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _serve_port(paths: LabPaths) -> int:
    settings = load_settings(paths)
    return settings.serve_port if settings else 8000


def _timeline(paths: LabPaths) -> str:
    settings = load_settings(paths)
    return settings.timeline if settings else "normal"


# From the alert's first firing evaluation to the incident in serve: a few evaluations, scrape lag,
# Alertmanager's delivery and serve's intake.
PAGE_SLACK_S = 120.0


def page_within_s(timing: Timeline) -> float:
    """How long the lab's slowest alert may take to page after a break: a memory trend is trusted only
    once the restarted process has run `trend_settled_after_s`, then must hold for `alert_for`
    before Alertmanager's `group_wait`."""
    held = parse_duration(timing.alert_for) + parse_duration(timing.group_wait)
    return timing.trend_settled_after_s + held.total_seconds() + PAGE_SLACK_S


def _indexes(paths: LabPaths) -> set[str]:
    import psycopg

    with psycopg.connect(LabClient(paths).database_url(), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def _drop_indexes(paths: LabPaths, names: set[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(LabClient(paths).database_url(), autocommit=True) as conn:
        for name in sorted(names):
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))


def _firing(paths: LabPaths) -> list[dict[str, Any]]:
    state = read_state(paths)
    if state is None:
        return []
    answer = httpx.get(f"http://127.0.0.1:{state.ports['alertmanager']}/api/v2/alerts", params={"active": "true"})
    return [a for a in answer.json() if a.get("status", {}).get("state") == "active"]


def _first_action(serve: _Serve, incident: str) -> dict[str, Any] | None:
    """The first action of the resolution plan (the runbook's first step) once it waits for a decision;
    specialists' own proposals from before the diagnosis are not the plan."""
    events = serve.get(f"/incidents/{incident}/timeline")["events"]
    planned = [
        e["data"]["action_id"]
        for e in events
        if e["kind"] == "action_proposed" and e["source"] == PLANNER and (e.get("data") or {}).get("action_id")
    ]
    if not planned:
        return None
    waiting = {a["action_id"]: a for a in serve.get(f"/incidents/{incident}/actions") if a.get("status") in WAITING}
    return waiting.get(planned[0])


def _suspect(paths: LabPaths, incident: str) -> dict[str, Any]:
    import json

    context = paths.serve / "reports" / incident / "context.json"
    if not context.exists():
        return {}
    return dict(json.loads(context.read_text()).get("suspect_change") or {})


def run_fault(serve: _Serve, paths: LabPaths, name: str, timeout: float, healthy_since: float) -> FaultRun:
    """One fault, from its break to the restored lab; `healthy_since` (epoch seconds) is when the lab
    was last known healthy: the break waits until it has run healthy for WARM_UP_S, so that the
    live read has a baseline before the fault."""
    run = FaultRun(fault=name)
    before = {i["id"] for i in serve.get("/incidents")}
    time.sleep(max(0.0, healthy_since + WARM_UP_S[_timeline(paths)] - time.time()))
    healthy = HealthyLab(_indexes(paths), lab_deploy.current_versions(paths))  # both at the break
    truth = faults.inject(paths, name)
    try:
        incident = _wait(
            "an incident from Alertmanager",
            max(timeout, page_within_s(TIMELINES[_timeline(paths)])),
            lambda: next((i["id"] for i in serve.get("/incidents") if i["id"] not in before), None),
        )
        opened = time.monotonic()
        run.incident = incident

        def diagnosed() -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
            # The diagnosis is done when it names candidates, or when the run has gone on to
            # propose actions without any (then nothing was diagnosed: scored as wrong).
            candidates = (serve.get_or_none(f"/incidents/{incident}/diagnosis") or {}).get("candidates") or []
            first = _first_action(serve, incident)
            return (candidates, first) if candidates or first else None

        candidates, first = _wait("the diagnosis", timeout, diagnosed)
        run.alert_to_diagnosis_s = round(time.monotonic() - opened, 1) if candidates else None
        if candidates:
            top = candidates[0]
            run.service, run.fault_type, run.change = top.get("service"), top.get("fault_type"), top.get("change_id")
        else:
            run.error = "no root-cause candidate: the run proposed actions without a diagnosis"
        if first is None:
            first = _wait("the plan's first action", timeout, lambda: _first_action(serve, incident))
        run.first_action = first.get("kind")
        serve.approve(incident, first["action_id"])
        serve.reject_others(incident, first["action_id"])

        def settled() -> str | None:
            serve.reject_others(incident, first["action_id"])  # later gates propose more
            # The engine's outcome events: action_verified carries the live recovery check's answer.
            for event in serve.get(f"/incidents/{incident}/timeline")["events"]:
                data = event.get("data") or {}
                if data.get("action_id") != first["action_id"]:
                    continue
                if event["kind"] == "action_verified":
                    return "verified" if data.get("verified") else str(data.get("status") or "not_recovered")
                if event["kind"] == "action_executed" and data.get("status") in NOT_RECOVERED:
                    return str(data["status"])
            return None

        run.recovery = _wait("the recovery check", timeout * 2, settled)
        if run.recovery == "verified":
            run.alert_to_recovery_s = round(time.monotonic() - opened, 1)
    except (TimeoutError, httpx.HTTPError) as exc:
        run.error = str(exc)
    finally:
        if run.incident:
            try:
                run.updates_sent = len(serve.get(f"/incidents/{run.incident}/comms")["events"])
            except httpx.HTTPError as exc:
                run.error = run.error or f"cannot read the updates sent: {exc}"
        suspect = _suspect(paths, run.incident) if run.incident else {}
        if suspect.get("code_file"):
            run.location = f"{suspect['code_file']}:{suspect.get('code_line')}"
        scored_truth = lab_truth.open_fault(paths, name) or truth
        top_candidate = {"service": run.service, "fault_type": run.fault_type, "change_id": run.change}
        run.score = score(scored_truth, top_candidate, suspect, run.first_action)
        restore(paths, name, healthy, timeout)
    return run


def capture_incident(paths: LabPaths, run: FaultRun, captures: Path, healthy_since: float) -> None:
    """The fault's incident, from the start of its warm-up to the restored lab, as captures/<fault>
    (its truth beside it); a failed capture is the run's error, its score stands."""
    folder = captures / run.fault
    try:
        lab_capture.capture(paths, folder, time.time() - healthy_since)
        run.capture = str(folder)
    except (LabError, httpx.HTTPError) as exc:
        run.error = run.error or f"capture failed: {exc}"


class HealthyLab(NamedTuple):
    """What the bench puts back after a fault: the lab's indexes and every service's version as
    they were just before the break."""

    indexes: set[str]
    versions: dict[str, str]


def versions_to_put_back(before: dict[str, str], now: dict[str, str], name: str) -> dict[str, str]:
    """The services other than the fault's whose version changed while the fault ran, each with the
    version it had before (the fault's own service is restored by ending the fault)."""
    fault_service = faults.get(name).service
    return {
        service: before[service]
        for service, commit in now.items()
        if service != fault_service and service in before and commit != before[service]
    }


def restore(paths: LabPaths, name: str, healthy: HealthyLab, timeout: float) -> None:
    """Back to the healthy lab through the change path — the fault taken out, the indexes and
    every other service's version as they were before the break — then wait for the
    alerts to clear. The response's own changes to other services (a rollback of the wrong one,
    after a wrong diagnosis) are not the fault's, and ending the fault does not undo them: left in
    place, they would be the next fault's incident too (live, a wrong rollback of checkout put back
    its lock-holding task, which then stood in the next fault's window)."""
    if lab_truth.open_fault(paths, name) is not None:
        faults.end(paths, name)
    client = LabClient(paths)
    for service, commit in versions_to_put_back(healthy.versions, lab_deploy.current_versions(paths), name).items():
        client.deploy(service, commit, deployed_by="lab", description=f"{service} back after {name}")
    _drop_indexes(paths, _indexes(paths) - healthy.indexes)
    try:
        _wait("the alerts to clear", timeout, lambda: True if not _firing(paths) else None)
    except TimeoutError:
        return  # the next fault's incident may then join; its run says so


def _refuse_unfinished(paths: LabPaths) -> None:
    """A store that still holds runs of an interrupted earlier session is refused: serve would resume
    them on the bench's one worker (the first fault's diagnosis then waits for an old incident's),
    and their open incidents take in the new fault's alerts of the same group."""
    database = paths.serve / "warroom.db"
    if not database.exists():
        return
    from warroom.store.repository import Store

    store = Store(serve_config.store_url(paths))
    try:
        left = sorted({run.incident_id for run in store.runs_with_status(("running", "waiting_approval"))})
    finally:
        store.engine.dispose()
    if left:
        raise BenchError(
            f"serve's store holds unfinished runs of {', '.join(left)} (an earlier session): resolve or cancel "
            f"them, or move {paths.serve} aside and restart the lab (`lab down`, `lab up`: up issues "
            "Alertmanager's token)",
            file=database,
        )


def run_lab_bench(
    paths: LabPaths,
    names: list[str],
    timeout: float,
    command: str,
    captures: Path | None = None,
    on_fault: Callable[[FaultRun], None] | None = None,
) -> LabBenchResult:
    """Every fault in turn on the running lab; `on_fault` gets each fault's result as it is done
    (a run of two hours that is cut short still has the rows of the faults it finished)."""
    state = read_state(paths)
    if state is None or not state.ready:
        raise BenchError(f"no lab is ready in {paths.root} (warroom lab up --dir {paths.root})")
    unknown = [n for n in names if n not in faults.registry()]
    if unknown:
        raise BenchError(f"unknown fault {unknown[0]!r}; the lab knows {', '.join(faults.registry())}", field="--fault")
    _refuse_unfinished(paths)
    taken = [n for n in names if captures is not None and (captures / n).exists()]
    if captures is not None and taken:  # said before a fault runs, not after its incident
        raise BenchError(f"capture folder exists: {captures / taken[0]}", field="--capture")
    started = time.monotonic()
    paths.serve.mkdir(parents=True, exist_ok=True)
    serve = _Serve(paths, paths.logs / "tools" / "bench-serve.log")
    sampler = _Sampler({"lab": lambda: state.supervisor_pid, "serve": lambda: serve.process.pid})
    sampler.sample()
    baseline = {name: dict(values) for name, values in sampler.cpu.items()}
    sampler.start()
    runs: list[FaultRun] = []
    # healthy since the lab started, or since the last fault (of an earlier run too) was taken out
    ended = [t.ended.timestamp() for t in lab_truth.all_truths(paths) if t.ended is not None]
    healthy_since = max([state.started_at.timestamp(), *ended])
    # A run interrupted before its restore left its fault in force (and a lab started later runs
    # the faulty version again): taken out first, through the change path.
    for fault in {t.fault for t in lab_truth.all_truths(paths) if t.ended is None}:
        faults.end(paths, fault)
        healthy_since = time.time()
    if _firing(paths):  # a lab reused while something is wrong: healthy from when its alerts clear
        _wait("the lab's alerts to clear", timeout, lambda: True if not _firing(paths) else None)
        healthy_since = time.time()
    try:
        for name in names:
            before, _ = sampler.mark()
            run = run_fault(serve, paths, name, timeout, healthy_since)
            if captures is not None:
                capture_incident(paths, run, captures, healthy_since)
            _, peaks = sampler.mark()
            run.lab = sampler.usage("lab", before["lab"], peaks["lab"])
            run.serve = sampler.usage("serve", before["serve"], peaks["serve"])
            runs.append(run)
            if on_fault is not None:
                on_fault(run)
            healthy_since = time.time()
    finally:
        sampler.mark()
        sampler.done.set()
        serve.stop()
    return LabBenchResult(
        command=command,
        timeline=_timeline(paths),
        runs=runs,
        lab=sampler.usage("lab", baseline["lab"], sampler.whole["lab"]),
        serve=sampler.usage("serve", baseline["serve"], sampler.whole["serve"]),
        wall_seconds=round(time.monotonic() - started, 1),
    )
