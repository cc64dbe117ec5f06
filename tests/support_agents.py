"""Agents for engine tests: they follow the agent contract and record when they really ran."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.incident import (
    ActionOutcome,
    AgentReport,
    Evidence,
    Finding,
    RecommendedAction,
    RiskLevel,
    RootCauseCandidate,
)


def _mark(ctx: AgentContext, name: str) -> None:
    """Append one line per real execution, so tests can count re-runs across processes."""
    marks = os.environ.get("WARROOM_TEST_MARKS")
    if marks:
        with Path(marks).open("a", encoding="utf-8") as handle:
            handle.write(f"{ctx.params.get('phase')}/{name}\n")


class Sleeper:
    """Sleeps `params.seconds` (default 0.4) and reports the signals it was given."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="sleeper", purpose="test: waits, then reports")

    def run(self, ctx: AgentContext) -> AgentReport:
        _mark(ctx, "sleeper")
        time.sleep(float(ctx.params.get("seconds", 0.4)))
        key = str(ctx.params.get("output", "slept"))
        return AgentReport(
            agent=self.spec.name,
            summary=f"slept in pid {os.getpid()}",
            outputs={key: {"pid": os.getpid(), "seen": sorted(ctx.context)}},
            findings=[
                Finding(
                    id=f"f-{key}", title=f"{key} done", confidence=0.5, evidence=[Evidence(source="test", query=key)]
                )
            ],
        )


class Signals:
    """Emits the signals given in params (to drive `decide`)."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="signals", purpose="test: emits signals", outputs=("signals",))

    def run(self, ctx: AgentContext) -> AgentReport:
        _mark(ctx, "signals")
        return AgentReport(
            agent=self.spec.name,
            summary="signals",
            outputs={
                "signals": dict(ctx.params["signals"]),
                "incident": {"severity": "P1", "severity_rule": "test rule"},
            },
        )


class Failing:
    spec: ClassVar[AgentSpec] = AgentSpec(name="failing", purpose="test: raises")

    def run(self, ctx: AgentContext) -> AgentReport:
        _mark(ctx, "failing")
        raise RuntimeError("analysis blew up")


class FlakyOnce:
    """Fails on its first attempt (per marker file), succeeds after: exercises retries."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="flaky", purpose="test: fails once")

    def run(self, ctx: AgentContext) -> AgentReport:
        flag = Path(str(ctx.params["flag"]))
        if not flag.exists():
            flag.write_text("tried")
            raise RuntimeError("transient")
        return AgentReport(agent=self.spec.name, summary="second time lucky")


class Planner:
    """Proposes one low-risk and one high-risk action."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="planner", purpose="test: proposes actions")

    def run(self, ctx: AgentContext) -> AgentReport:
        _mark(ctx, "planner")
        return AgentReport(
            agent=self.spec.name,
            summary="plan",
            actions=[
                RecommendedAction(id="recycle-pool", title="Recycle the pool", kind="recycle_pool", risk=RiskLevel.LOW),
                RecommendedAction(id="rollback", title="Roll back checkout", kind="rollback", risk=RiskLevel.HIGH),
            ],
        )


class Executor:
    """Reports which actions it was allowed to run."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="executor", purpose="test: executes approved actions")

    def run(self, ctx: AgentContext) -> AgentReport:
        _mark(ctx, "executor")
        approved = [a["action_id"] for a in ctx.params.get("approved_actions", [])]
        status = "executed" if ctx.params.get("execute") else "dry_run"
        return AgentReport(
            agent=self.spec.name,
            summary=f"ran {approved}",
            outputs={"mitigation": {"approved": approved, "recovered_by": approved[0] if approved else None}},
            outcomes=[ActionOutcome(action_id=a, status=status) for a in approved],
        )


class Crasher:
    """Kills its own worker process, like a segfault or an OOM kill would."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="crasher", purpose="test: the worker dies")

    def run(self, ctx: AgentContext) -> AgentReport:
        os._exit(1)


class Reviser:
    """Proposes the planner's rollback again, reassessed as low risk."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="reviser", purpose="test: revises a proposal")

    def run(self, ctx: AgentContext) -> AgentReport:
        return AgentReport(
            agent=self.spec.name,
            summary="revised plan",
            actions=[
                RecommendedAction(id="rollback", title="Roll back checkout to v1", kind="rollback", risk=RiskLevel.LOW)
            ],
        )


class Diagnoser:
    """Names a root cause (the `diagnosis` context value), or flags it inconclusive (params.inconclusive)."""

    spec: ClassVar[AgentSpec] = AgentSpec(name="diagnoser", purpose="test: names a cause", outputs=("diagnosis",))

    def run(self, ctx: AgentContext) -> AgentReport:
        _mark(ctx, "diagnoser")
        candidate = RootCauseCandidate(
            rank=1,
            service="checkout",
            fault_type="db_pool_exhaustion",
            indicator="db_pool_utilization",
            confidence=0.8,
            inconclusive=bool(ctx.params.get("inconclusive", False)),
        )
        return AgentReport(agent=self.spec.name, summary="cause", outputs={"diagnosis": [candidate.model_dump()]})
