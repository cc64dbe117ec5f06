"""Generate one scenario's incident bundle: plan the variant, write the repository and the change
log, simulate the main, baseline and after-mitigation periods, and write everything to disk."""

from __future__ import annotations

import shutil
import tempfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from warroom.errors import InputError
from warroom.scenarios.base import SCALES, Change, PeriodContext, Plan, PlanContext, Scale, Scenario
from warroom.scenarios.code import base_tree
from warroom.scenarios.history import assemble, ordinary_history, unrelated_changes
from warroom.scenarios.load import Period, front_door_rps
from warroom.scenarios.repo import write_bundle_file, write_checkout, write_repository
from warroom.scenarios.simulate import simulate
from warroom.scenarios.system import System, ecommerce
from warroom.scenarios.telemetry import (
    Instances,
    Population,
    build_logs,
    build_metrics,
    build_traces,
    request_identity,
)
from warroom.scenarios.writer import write_manifest, write_table
from warroom.sources.canonical import TABLES
from warroom.sources.tables import FORMATS

REPO_MODES = ("bundle", "checkout", "both")

# What a mitigation looks like in the change log of its after/ folder.
ACTION_CHANGE_KIND = {
    "rollback": "rollback", "fix_forward": "deploy", "restart": "restart", "recycle_pool": "operation",
    "raise_pool_size": "config", "scale_out": "scale", "kill_long_queries": "operation", "revert_config": "config",
    "failover_dependency": "config", "renew_certificate": "certificate", "block_sources": "firewall",
    "restore_backup": "operation",
}  # fmt: skip


def _rng(seed: int, *labels: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


def _floor(at_s: float, step_s: float) -> float:
    return float(np.floor(at_s / step_s) * step_s)


def simulate_period(
    scenario: Scenario | None,
    plan: Plan,
    system: System,
    period: Period,
    scale: Scale,
    seed: int,
    label: str,
    changes: list[Change],
    action: str | None,
    action_s: float | None,
    generation_base: dict[str, int],
    folder: Path,
    changes_table: pl.DataFrame | None,
) -> dict[str, int]:
    """Simulate one period and write its tables into `folder` one at a time (so that a large
    period never holds its metrics, logs and traces in memory together); return the pod
    generation each service ends the period with."""
    rng = _rng(seed, label)
    times = period.times
    rps = front_door_rps(rng, times, system.peak_rps)
    per_request = system.calls_per_request()
    service_rps = {name: rps * per_request[name] for name in system.services}
    ctx = PeriodContext(system, times, period.step_s, service_rps, action, action_s, rng, generation_base)
    effects = scenario.effects(plan, ctx) if scenario is not None else ctx.new_effects()
    # Ordinary client errors of a healthy day: mistyped passwords, declined cards.
    steps = times.size
    effects.client_errors.setdefault("auth:Login", (np.full(steps, 0.04), 401, "invalid credentials"))
    effects.client_errors.setdefault("payment:Charge", (np.full(steps, 0.02), 402, "card declined by issuer"))
    # Every deploy inside the period replaces that service's pods.
    for change in changes:
        if change.kind in ("deploy", "rollback", "restart") and times[0] <= change.time_s < times[-1] + period.step_s:
            effects.rollouts.setdefault(change.service, []).append(ctx.step_of(change.time_s))
    spans = simulate(system, effects, times, period.step_s, rps, scale.per_step, rng)
    instances = Instances(system, effects, times.size, salt=f"{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    write_table(folder / "metrics.parquet", build_metrics(system, effects, spans, times, period.step_s, instances, rng))
    identity = request_identity(system, effects, spans, Population(scale.users, seed), rng)
    logs = build_logs(system, effects, spans, identity, instances, times, period.step_s, rng, scale.info_fraction)
    write_table(folder / "logs.parquet", logs)
    del logs
    write_table(folder / "traces.parquet", build_traces(spans, identity, instances, rng, scale.trace_fraction))
    if changes_table is not None and changes_table.height:
        write_table(folder / "changes.parquet", changes_table)
    return {
        name: effects.generation_base.get(name, 0) + len(effects.rollouts.get(name, [])) for name in system.services
    }


# What a previous run may have left in the output directory.
_OWNED = ("baseline", "after", "repo", "repo.bundle", "incident.yaml", "topology.yaml", "ground_truth.json")


def _clear(out: Path) -> None:
    """Remove what an earlier generation wrote into `out` (and nothing else)."""
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", file=out, field="out")
    out.mkdir(parents=True, exist_ok=True)
    names = [*_OWNED, *(f"{table}{ext}" for table in TABLES for ext in FORMATS)]
    for name in names:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def changes_frame(changes: list[Change], shas: dict[str, str]) -> pl.DataFrame:
    rows = [
        {
            "id": c.id,
            "time": datetime.fromtimestamp(round(c.time_s), tz=UTC),
            "service": c.service,
            "kind": c.kind,
            "version": c.version,
            "commit": shas.get(c.commit_label) if c.commit_label else None,
            "author": c.author,
            "description": c.description,
        }
        for c in changes
    ]
    schema: dict[str, pl.DataType] = {
        name: pl.String() for name in ("id", "service", "kind", "version", "commit", "author", "description")
    }
    schema["time"] = pl.Datetime("us", "UTC")
    columns = ["id", "time", "service", "kind", "version", "commit", "author", "description"]
    return pl.DataFrame(rows, schema={name: schema[name] for name in columns}).sort("time")


def generate_bundle(scenario: Scenario, seed: int, out: Path, scale_name: str, repo_mode: str) -> Path:
    if scale_name not in SCALES:
        raise InputError(f"unknown scale {scale_name!r} (expected one of {', '.join(SCALES)})", field="scale")
    if repo_mode not in REPO_MODES:
        raise InputError(f"unknown repo mode {repo_mode!r} (expected one of {', '.join(REPO_MODES)})", field="repo")
    scale = SCALES[scale_name]
    rng = _rng(seed, scenario.name, "plan")
    system = ecommerce(large=scale.large)
    day = datetime(2024, 3, 4, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 90)))
    onset_target = _floor((day + timedelta(hours=float(rng.uniform(10.0, 19.0)))).timestamp(), scale.step_s)
    base = base_tree(system)
    # The history has its own random stream, so a seed picks the same variant at every scale.
    history_rng = _rng(seed, scenario.name, "history")
    ordinary, history_changes, tree = ordinary_history(
        system, base, history_rng, scale.history_commits, end_s=onset_target - 3 * 3600.0
    )
    plan = scenario.plan(PlanContext(rng, system, tree, onset_target, scale))
    near = unrelated_changes(system, history_rng, plan.onset_s, exclude=plan.service)
    commits, changes = assemble(ordinary, history_changes + near, plan, plan.code, history_rng, system)

    with tempfile.TemporaryDirectory(prefix="warroom-scenario-") as tmp:
        repo_dir = Path(tmp) / "repo.git"
        shas_list = write_repository(commits, repo_dir)
        shas = {commit.label: sha for commit, sha in zip(commits, shas_list, strict=True)}

        _clear(out)
        start_s = _floor(min(plan.onset_s - scale.pre_min * 60, plan.fault_start_s - 10 * 60), scale.step_s)
        action_s = _floor(plan.onset_s + scale.post_min * 60, scale.step_s)
        step = scale.step_s
        main_period = Period(datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(action_s, UTC), step)
        main_system = scenario.system_for(plan, system, None)
        visible = [c for c in changes if c.time_s >= start_s - 2 * 86_400 and c.time_s < action_s]
        generation_end = simulate_period(
            scenario, plan, main_system, main_period, scale, seed, "main", changes, None, None, {}, out,
            changes_frame(visible, shas),
        )  # fmt: skip
        baseline_period = main_period.shifted(timedelta(days=-7))
        simulate_period(
            None, plan, system, baseline_period, scale, seed, "baseline", [], None, None, {}, out / "baseline", None
        )
        after_period = Period(
            datetime.fromtimestamp(action_s, UTC),
            datetime.fromtimestamp(action_s + scale.after_min * 60, UTC),
            step,
        )
        for kind in scenario.mitigations(plan):
            after_system = scenario.system_for(plan, system, kind)
            record = Change(
                action_s, plan.service, ACTION_CHANGE_KIND.get(kind, "operation"),
                f"mitigation: {kind} on {plan.service}", author="on-call", id=f"ACT-{kind}",
            )  # fmt: skip
            simulate_period(
                scenario, plan, after_system, after_period, scale, seed, f"after/{kind}", [], kind, action_s,
                generation_end, out / "after" / kind, changes_frame([record], shas),
            )  # fmt: skip
        write_manifest(
            out,
            scenario=scenario,
            plan=plan,
            seed=seed,
            system=system,
            shas=shas,
            window=(min(plan.onset_s - 10 * 60, plan.fault_start_s - 5 * 60), action_s),
        )
        if repo_mode in ("bundle", "both"):
            write_bundle_file(repo_dir, out / "repo.bundle")
        if repo_mode in ("checkout", "both"):
            write_checkout(repo_dir, out / "repo")
    return out
