"""A workflow as a Markdown document: each phase, its agents, their prompts with the incident's
facts filled in, outputs, the context for the next phase, and coordination notes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined

from warroom.workflow.spec import PhaseSpec, StepSpec, WorkflowSpec

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
    autoescape=False,  # Markdown output; values are plain text
)


class _Placeholder(Undefined):
    """An unknown fact renders as `[name]`, the way the seed document writes placeholders."""

    def __str__(self) -> str:
        return f"[{self._undefined_name}]"


_PROMPTS = Environment(undefined=_Placeholder, autoescape=False)


@dataclass
class StepView:
    spec: StepSpec
    prompt: str


@dataclass
class PhaseView:
    spec: PhaseSpec
    kind: str
    steps: list[StepView]


def render_workflow(spec: WorkflowSpec, facts: dict[str, Any] | None = None) -> str:
    """Render the workflow; `facts` (symptoms, classification, services, alert, revenue …) fill
    the prompts, and any fact not given stays a visible `[placeholder]`."""
    values = facts or {}
    phases = [
        PhaseView(
            spec=phase,
            kind=phase.kind.value,
            steps=[
                StepView(step, " ".join(_PROMPTS.from_string(step.prompt).render(**values).split()))
                for step in phase.steps
            ],
        )
        for phase in spec.phases
    ]
    incident = values.get("incident_header")
    text = _ENV.get_template("workflow.md.j2").render(spec=spec, phases=phases, incident=incident)
    # one blank line around headings and between blocks, whatever the template's control blocks left
    lines: list[str] = []
    for line in (raw.rstrip() for raw in text.splitlines()):
        heading = line.startswith("#")
        after_heading = bool(lines) and lines[-1].startswith("#")
        if line and lines and lines[-1] and (heading or after_heading):
            lines.append("")
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip() + "\n"
