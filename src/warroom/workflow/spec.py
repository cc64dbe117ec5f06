"""Workflow YAML: schema, normalisation and validation with file/line/field errors."""

from __future__ import annotations

import ast
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warroom.errors import NotFoundError, WorkflowSpecError
from warroom.incident import ApprovalPolicy, Status
from warroom.yamlfile import line_of, read_yaml, validation_error

BUILTIN_DIR = Path(__file__).parent / "builtin"
CONDITION_ROOTS = frozenset({"signals", "incident", "context"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepSpec(Strict):
    """One agent invocation inside a phase."""

    agent: str
    id: str = ""
    prompt: str = ""
    outputs: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=120.0, gt=0)
    retries: int = Field(default=0, ge=0, le=10)
    approval: ApprovalPolicy | None = None  # gate the actions proposed so far before this step runs
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_id(self) -> StepSpec:
        if not self.id:
            self.id = self.agent
        return self


class PathSpec(StepSpec):
    """A branch of a `decide` phase: taken when `when` holds (first match wins) or by default."""

    path: str
    when: str | None = None
    default: bool = False
    rationale: str = ""

    @field_validator("when")
    @classmethod
    def _valid_condition(cls, value: str | None) -> str | None:
        if value is not None:
            check_condition(value)
        return value

    @model_validator(mode="after")
    def _when_or_default(self) -> PathSpec:
        if self.when is None and not self.default:
            raise ValueError(f"path '{self.path}' needs a 'when' condition or 'default: true'")
        if not self.id or self.id == self.agent:
            self.id = self.path
        return self


class PhaseKind(StrEnum):
    AGENT = "agent"
    SEQUENCE = "sequence"
    PARALLEL = "parallel"
    DECIDE = "decide"


class PhaseSpec(Strict):
    id: str
    title: str = ""
    description: str = ""
    # exactly one of these four says what the phase does
    agent: str | None = None
    sequence: list[StepSpec] | None = None
    parallel: list[StepSpec] | None = None
    decide: list[PathSpec] | None = None
    # step options for the `agent:` shorthand
    prompt: str = ""
    outputs: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=120.0, gt=0)
    retries: int = Field(default=0, ge=0, le=10)
    approval: ApprovalPolicy | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    context_for_next: list[str] = Field(default_factory=list)
    status: Status | None = None  # incident status the phase moves the incident into when it starts
    status_when: str | None = None  # only if this condition holds over the context so far

    @field_validator("status_when")
    @classmethod
    def _valid_status_condition(cls, value: str | None) -> str | None:
        if value is not None:
            check_condition(value)
        return value

    @field_validator("sequence", "parallel", mode="before")
    @classmethod
    def _names_to_steps(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"agent": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("sequence", "parallel")
    @classmethod
    def _not_empty(cls, value: list[StepSpec] | None) -> list[StepSpec] | None:
        if value is not None and not value:
            raise ValueError("needs at least one step")
        return value

    @field_validator("decide")
    @classmethod
    def _one_default_last(cls, value: list[PathSpec] | None) -> list[PathSpec] | None:
        if value is None:
            return value
        defaults = [p for p in value if p.default]
        if len(defaults) != 1:
            raise ValueError("'decide' needs exactly one path with 'default: true'")
        if value[-1] is not defaults[0]:
            raise ValueError("the default path must come last in 'decide' (first match wins)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> PhaseSpec:
        given = [name for name in ("agent", "sequence", "parallel", "decide") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a phase needs exactly one of 'agent', 'sequence', 'parallel', 'decide'")
        if not self.title:
            self.title = self.id.replace("-", " ").capitalize()
        return self

    @property
    def kind(self) -> PhaseKind:
        if self.decide is not None:
            return PhaseKind.DECIDE
        if self.parallel is not None:
            return PhaseKind.PARALLEL
        if self.sequence is not None:
            return PhaseKind.SEQUENCE
        return PhaseKind.AGENT

    @property
    def steps(self) -> list[StepSpec]:
        """Every step the phase may run (for decide: one per path)."""
        if self.decide is not None:
            return list(self.decide)
        if self.parallel is not None:
            return list(self.parallel)
        if self.sequence is not None:
            return list(self.sequence)
        assert self.agent is not None
        return [
            StepSpec(
                agent=self.agent,
                prompt=self.prompt,
                outputs=self.outputs,
                timeout_s=self.timeout_s,
                retries=self.retries,
                approval=self.approval,
                params=self.params,
            )
        ]


class WorkflowSpec(Strict):
    name: str
    title: str = ""
    description: str = ""
    pattern: str = "sequential"
    extends: str | None = None  # informational: the workflow this one varies
    phases: list[PhaseSpec]
    coordination_notes: list[str] = Field(default_factory=list)

    @field_validator("phases")
    @classmethod
    def _some_phases(cls, value: list[PhaseSpec]) -> list[PhaseSpec]:
        if not value:
            raise ValueError("a workflow needs at least one phase")
        return value

    def agents(self) -> list[str]:
        return [step.agent for phase in self.phases for step in phase.steps]


def check_condition(expression: str) -> None:
    """Reject anything that is not a plain comparison over signals/incident/context values."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition is not a valid expression: {exc.msg}") from None
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.Compare,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.In,
        ast.NotIn,
        ast.Attribute,
        ast.Name,
        ast.Load,
        ast.Constant,
        ast.List,
        ast.Tuple,
        ast.BinOp,
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.Div,
    )
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"condition may not use {type(node).__name__} (only comparisons of values)")
        if isinstance(node, ast.Name) and node.id not in CONDITION_ROOTS | {"True", "False", "None"}:
            raise ValueError(f"unknown name '{node.id}' in condition (use {', '.join(sorted(CONDITION_ROOTS))})")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ValueError("condition may not use private attributes")


def condition_paths(expression: str) -> list[str]:
    """The dotted value paths a condition reads, e.g. ['signals.db_cpu']."""
    paths: list[str] = []

    def dotted(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit(node: ast.AST) -> None:
        path = dotted(node)
        if path is not None:
            if path not in paths:
                paths.append(path)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(expression, mode="eval"))
    return paths


def duplicate_ids(spec: WorkflowSpec) -> tuple[list[int | str], str] | None:
    """The first phase id, or step id within a phase, used twice: its location and a message."""
    seen: set[str] = set()
    for p_index, phase in enumerate(spec.phases):
        if phase.id in seen:
            return ["phases", p_index, "id"], f"duplicate phase id '{phase.id}'"
        seen.add(phase.id)
        steps: set[str] = set()
        for s_index, step in enumerate(phase.steps):
            if step.id in steps:
                field = phase.kind.value
                return ["phases", p_index, field, s_index], f"duplicate step id '{step.id}' in phase '{phase.id}'"
            steps.add(step.id)
    return None


def load_workflow(
    path: Path,
    known_agent: Callable[[str], bool] | None = None,
) -> WorkflowSpec:
    """Load and validate a workflow file; errors name the file, line and field."""
    data, node = read_yaml(path, WorkflowSpecError)
    if not isinstance(data, dict):
        raise WorkflowSpecError("expected a mapping at the top level", file=path, line=1)
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path, node, WorkflowSpecError) from None
    duplicate = duplicate_ids(spec)
    if duplicate is not None:
        where, message = duplicate
        raise WorkflowSpecError(message, file=path, line=line_of(node, where), field=".".join(map(str, where)))
    if known_agent is not None:
        for p_index, phase in enumerate(spec.phases):
            for s_index, step in enumerate(phase.steps):
                if not known_agent(step.agent):
                    field = phase.kind.value if phase.kind != PhaseKind.AGENT else "agent"
                    loc: list[int | str] = ["phases", p_index, field]
                    if phase.kind != PhaseKind.AGENT:
                        loc += [s_index, "agent"]
                    raise WorkflowSpecError(
                        f"unknown agent '{step.agent}' (see `warroom agents list`)",
                        file=path,
                        line=line_of(node, loc),
                        field=".".join(str(x) for x in loc),
                    )
    return spec


def builtin_workflows() -> dict[str, Path]:
    return {path.stem: path for path in sorted(BUILTIN_DIR.glob("*.yaml"))}


def resolve_workflow(name_or_path: str) -> Path:
    """A built-in workflow by name, or a YAML file by path."""
    builtins = builtin_workflows()
    if name_or_path in builtins:
        return builtins[name_or_path]
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise NotFoundError("workflow file not found", file=candidate)
        return candidate
    raise NotFoundError(
        f"unknown workflow '{name_or_path}' (built-in: {', '.join(builtins)}; or a path to a YAML file)"
    )
