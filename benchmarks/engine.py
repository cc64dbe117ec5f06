"""Engine overhead per step and resume time, on SQLite.

A 500-step workflow (10 phases × 50 parallel no-op steps) runs through the real engine and store;
the agents do nothing, so the time per step is the engine's own: scheduling, the interpreter,
and one committed transaction per step with its timeline events. Then the same workflow is
interrupted half-way and resumed, and the resume is timed.

    .venv/bin/python benchmarks/engine.py [--repeat 3] [--processes]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support_bundle import write_bundle
from warroom.agents.base import AgentContext, AgentSpec
from warroom.incident import AgentReport, Evidence, Finding
from warroom.sources.bundle import load_bundle
from warroom.sources.contract import BundleSpec
from warroom.store.repository import Store
from warroom.workflow.engine import Engine, RunOptions, SilentProgress
from warroom.workflow.spec import PhaseSpec, WorkflowSpec

PHASES, WIDTH = 10, 50


class NoOp:
    """Returns at once with one finding, like the smallest real agent."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="noop", purpose="benchmark: no work")

    def run(self, ctx: AgentContext) -> AgentReport:
        return AgentReport(
            agent="noop",
            summary="ok",
            outputs={str(ctx.params["phase"]): 1},
            findings=[Finding(id="f", title="nothing", confidence=0.1, evidence=[Evidence(source="bench", query="-")])],
        )


def workflow() -> WorkflowSpec:
    phases = [
        {"id": f"p{p}", "parallel": [{"agent": "engine:NoOp", "id": f"s{i}"} for i in range(WIDTH)]}
        for p in range(PHASES)
    ]
    return WorkflowSpec.model_validate({"name": "bench", "phases": phases})


class StopAfter(SilentProgress):
    """Interrupts the run when phase `n` starts: a crash half-way."""

    def __init__(self, n: int) -> None:
        self.n = n

    def phase_started(self, phase: PhaseSpec) -> None:
        if phase.id == f"p{self.n}":
            raise KeyboardInterrupt


def once(workdir: Path, bundle: Path, processes: bool) -> dict[str, float]:
    spec = workflow()
    options = RunOptions(source=BundleSpec(path=str(bundle)), processes=processes, workers=2)
    store = Store(f"sqlite:///{workdir / 'bench.db'}")
    loaded = load_bundle(bundle)
    engine = Engine(store)
    _, run_id = engine.start(loaded, spec, options)
    started = time.perf_counter()
    result = engine.run(run_id)
    full = time.perf_counter() - started
    assert result.status == "succeeded", result
    steps = len(store.steps(run_id))

    _, run_id = Engine(store, StopAfter(PHASES // 2)).start(loaded, spec, options)
    with contextlib.suppress(KeyboardInterrupt):  # the simulated crash
        Engine(store, StopAfter(PHASES // 2)).run(run_id)
    recorded_before = len(store.steps(run_id))
    started = time.perf_counter()
    Engine(store).run(run_id)
    resume = time.perf_counter() - started
    store.close()
    return {
        "steps": steps,
        "total_s": full,
        "per_step_ms": 1000 * full / steps,
        "resume_s": resume,
        "resumed_from_steps": recorded_before,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", action="store_true", help="run steps in worker processes (default: threads)")
    args = parser.parse_args(argv)
    sys.modules.setdefault("engine", sys.modules[__name__])  # so "engine:NoOp" resolves in this process
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            bundle = write_bundle(Path(tmp) / "bundle")
            runs.append(once(Path(tmp), bundle, args.processes))
    summary = {
        "runner": "processes" if args.processes else "threads",
        "steps": runs[0]["steps"],
        "median_per_step_ms": round(statistics.median(r["per_step_ms"] for r in runs), 3),
        "median_total_s": round(statistics.median(r["total_s"] for r in runs), 3),
        "median_resume_s": round(statistics.median(r["resume_s"] for r in runs), 3),
        "resumed_from_steps": runs[0]["resumed_from_steps"],
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in runs],
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
