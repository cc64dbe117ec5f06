"""Live terminal progress of a run: phases, each parallel branch with its own spinner, decisions."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from warroom.record import Decision
from warroom.workflow.runner import StepOutcome
from warroom.workflow.spec import PhaseSpec


class ConsoleProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars: Progress | None = None
        self._tasks: dict[str, tuple[TaskID, str]] = {}

    def phase_started(self, phase: PhaseSpec) -> None:
        self.console.print(f"[bold cyan]▶ {escape(phase.title)}[/] [dim]({phase.id}, {phase.kind.value})[/]")

    def steps_started(self, phase: PhaseSpec, agents: list[tuple[str, str]]) -> None:
        self._bars = Progress(
            TextColumn("   "),
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            # Spinners redrawn only where someone sees them: into a pipe or a file the redraw thread
            # was a tenth of a run's CPU, and only the final lines are written there anyway.
            auto_refresh=self.console.is_terminal,
        )
        self._tasks = {key: (self._bars.add_task(escape(agent), total=1), agent) for key, agent in agents}
        self._bars.start()

    def step_finished(self, outcome: StepOutcome) -> None:
        if self._bars is None or outcome.key not in self._tasks:
            return
        task, agent = self._tasks.pop(outcome.key)
        seconds = (outcome.finished_at - outcome.started_at).total_seconds()
        if outcome.status == "succeeded":
            summary = str((outcome.report or {}).get("summary", ""))[:110]
            text = f"[green]✓[/] {escape(agent)} [dim]{seconds:.1f}s[/] {escape(summary)}"
        else:
            text = (
                f"[red]✗[/] {escape(agent)} {outcome.status} [dim]{seconds:.1f}s[/] {escape(outcome.error or '')[:110]}"
            )
        self._bars.update(task, completed=1, description=text)
        if not self._tasks:
            self._bars.stop()
            self._bars = None

    def decided(self, phase: PhaseSpec, decision: Decision) -> None:
        self.console.print(
            f"   [magenta]◆ decision:[/] path [bold]{escape(decision.path)}[/] → {escape(decision.agent)} "
            f"[dim]({escape(decision.rationale)})[/]"
        )

    def phase_finished(self, phase: PhaseSpec) -> None:
        pass

    def waiting(self, pending: list[dict[str, Any]]) -> None:
        for action in pending:
            self.console.print(
                f"   [yellow]⏸ awaiting approval:[/] {escape(action['id'])} "
                f"({escape(str(action.get('risk')))} risk) {escape(str(action.get('title', '')))}"
            )
