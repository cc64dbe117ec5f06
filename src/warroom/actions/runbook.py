"""Runbooks: YAML files that map a diagnosis (fault type, indicator, service) to ordered actions.

Each step names an action kind, its risk, its order, its rollback procedure and — optionally — the
adapter that automates it, with parameters that may hold `{placeholders}` filled from the diagnosis
(`service`, `fault_type`, `indicator`, `change_id`) and from configured variables (`kube_context`,
`namespace`, `database_url_env`, `deploy_repo`, …). A step whose placeholders cannot all be filled
becomes a manual step that says which variables would automate it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from warroom.errors import InputError
from warroom.incident import RecommendedAction, RiskLevel, RootCauseCandidate
from warroom.yamlfile import load_model

ACTION_KINDS = (
    "kill_long_queries",
    "recycle_pool",
    "raise_pool_size",
    "restart",
    "scale_out",
    "rollback",
    "revert_config",
    "fix_forward",
    "failover_dependency",
    "renew_certificate",
    "block_sources",
    "restore_backup",
)
# Kinds that put back what ran before the incident's change: never undone by the loop by default.
RESTORING_KINDS = frozenset({"rollback", "revert_config"})


def normalize(name: str) -> str:
    """Fault-type spellings compare equal: 'Connection-Leak', 'connection leak', 'connection_leak'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunbookStep(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")
    kind: str
    title: str
    risk: RiskLevel
    priority: str = "immediate"
    rationale: str = ""
    rollback: str = ""  # the rollback procedure, in words (also when the adapter can undo by itself)
    adapter: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    # Whether the loop takes the action back when recovery is not seen. Default: yes, except for the
    # kinds that return the system to its earlier, known state (rollback, config revert): undoing one
    # would deploy again the change the diagnosis blames.
    undo_if_not_recovered: bool | None = None

    @property
    def undoes_if_not_recovered(self) -> bool:
        if self.undo_if_not_recovered is not None:
            return self.undo_if_not_recovered
        return self.kind not in RESTORING_KINDS

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in ACTION_KINDS:
            raise ValueError(f"unknown action kind '{value}' (known: {', '.join(ACTION_KINDS)})")
        return value

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str) -> str:
        if value not in ("immediate", "short_term", "follow_up"):
            raise ValueError("priority must be immediate, short_term or follow_up")
        return value


class Match(_Strict):
    fault_types: list[str] = Field(default_factory=list)
    indicators: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)  # empty: any service


class Runbook(_Strict):
    name: str
    description: str = ""
    match: Match
    recovery: str = ""  # the recovery criteria, in words
    steps: list[RunbookStep] = Field(min_length=1)
    _builtin: bool = PrivateAttr(default=False)

    @property
    def builtin(self) -> bool:
        return self._builtin

    @model_validator(mode="after")
    def _unique_ids(self) -> Runbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"duplicate step id '{step.id}'")
            seen.add(step.id)
        return self

    def score(self, fault_type: str, indicator: str, service: str) -> int:
        """How well this runbook fits a diagnosis: 0 none, 1 indicator only, 2 fault type, 3 both."""
        if self.match.services and service not in self.match.services:
            return 0
        fault = normalize(fault_type)
        by_fault = any(normalize(f) == fault for f in self.match.fault_types)
        by_indicator = bool(indicator) and any(normalize(i) == normalize(indicator) for i in self.match.indicators)
        return (2 if by_fault else 0) + (1 if by_indicator else 0)


def load_runbook(path: str | Path) -> Runbook:
    return load_model(Path(path), Runbook, InputError)


def builtin_runbooks() -> list[Runbook]:
    folder = resources.files("warroom.actions") / "runbooks"
    books: list[Runbook] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            with resources.as_file(entry) as path:
                book = load_runbook(path)
            book._builtin = True
            books.append(book)
    return books


def load_runbooks(paths: Iterable[str | Path] = (), *, include_builtin: bool = True) -> list[Runbook]:
    """Runbooks from files and folders (given ones first, so they win over the built-in ones)."""
    books: list[Runbook] = []
    for item in paths:
        path = Path(item)
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        books.extend(load_runbook(f) for f in files)
    if include_builtin:
        books.extend(builtin_runbooks())
    return books


def _candidate(raw: RootCauseCandidate | Mapping[str, Any]) -> RootCauseCandidate:
    return raw if isinstance(raw, RootCauseCandidate) else RootCauseCandidate.model_validate(dict(raw))


def select_runbook(
    diagnosis: Sequence[RootCauseCandidate | Mapping[str, Any]], runbooks: Sequence[Runbook]
) -> tuple[Runbook, RootCauseCandidate] | None:
    """The runbook for the best-ranked candidate that any runbook fits: a site runbook before a
    built-in one, then the better fit (fault type and indicator), then the first listed."""
    for raw in diagnosis:
        candidate = _candidate(raw)
        scored = [
            (book.score(candidate.fault_type, candidate.indicator, candidate.service), i, book)
            for i, book in enumerate(runbooks)
        ]
        fitting = [item for item in scored if item[0] > 0]
        if fitting:
            # A site's own runbook that fits beats any built-in one: it knows the site's systems.
            best = max(fitting, key=lambda item: (not item[2].builtin, item[0], -item[1]))
            return best[2], candidate
    return None


class _Formatter(string.Formatter):
    """str.format that records missing names instead of raising."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self.variables = variables
        self.missing: set[str] = set()

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, str) and key in self.variables and self.variables[key] not in (None, ""):
            return self.variables[key]
        self.missing.add(str(key))
        return "{" + str(key) + "}"


def _fill(value: Any, fmt: _Formatter) -> Any:
    if isinstance(value, str):
        filled = fmt.vformat(value, (), {})
        # A value that is exactly one placeholder keeps the variable's type (replicas: "{replicas}").
        match = re.fullmatch(r"\{(\w+)\}", value)
        if match and match.group(1) in fmt.variables and fmt.variables[match.group(1)] not in (None, ""):
            return fmt.variables[match.group(1)]
        return filled
    if isinstance(value, list):
        return [_fill(item, fmt) for item in value]
    if isinstance(value, dict):
        return {_fill(key, fmt) if isinstance(key, str) else key: _fill(item, fmt) for key, item in value.items()}
    return value


def plan_from_runbook(
    runbook: Runbook, candidate: RootCauseCandidate | None, variables: Mapping[str, Any] | None = None
) -> list[RecommendedAction]:
    """The runbook's steps as ordered actions, placeholders filled from the diagnosis and variables."""
    known: dict[str, Any] = {}
    if candidate is not None:
        known.update(
            service=candidate.service,
            fault_type=candidate.fault_type,
            indicator=candidate.indicator,
            change_id=candidate.change_id,
        )
    known.update(variables or {})
    actions: list[RecommendedAction] = []
    for step in runbook.steps:
        title_fmt = _Formatter(known)
        title = _fill(step.title, title_fmt)
        parameters: dict[str, Any] = {"runbook": runbook.name, "undo_if_not_recovered": step.undoes_if_not_recovered}
        rationale = _fill(step.rationale, _Formatter(known))
        if step.adapter is not None:
            params_fmt = _Formatter(known)
            params = _fill(step.params, params_fmt)
            if params_fmt.missing:
                missing = ", ".join(sorted(params_fmt.missing))
                parameters["manual_reason"] = f"set {missing} to automate with {step.adapter}"
                rationale = f"{rationale} (manual: set {missing} to automate)".strip()
            else:
                parameters.update(adapter=step.adapter, params=params)
        actions.append(
            RecommendedAction(
                id=step.id,
                title=str(title),
                kind=step.kind,
                target=candidate.service if candidate is not None else None,
                risk=step.risk,
                priority=step.priority,
                rationale=str(rationale),
                parameters=parameters,
                rollback=str(_fill(step.rollback, _Formatter(known))),
            )
        )
    return actions


def site_runbooks_and_vars() -> tuple[list[Runbook], dict[str, Any]]:
    """The runbooks and variables of the site's warroom.toml ([actions]), then the built-in runbooks."""
    from warroom.config import load_config

    settings = load_config().actions
    return load_runbooks(settings.runbooks), dict(settings.vars)


def plan_from_diagnosis(
    diagnosis: Sequence[RootCauseCandidate | Mapping[str, Any]],
    runbooks: Sequence[Runbook] | None = None,
    variables: Mapping[str, Any] | None = None,
    undo_kind: str | None = None,
) -> tuple[Runbook | None, list[RecommendedAction]]:
    """The ordered plan for a diagnosis; (None, []) when no runbook fits. Without explicit runbooks,
    the site's (warroom.toml [actions].runbooks, with its [actions].vars) come before the built-in ones.
    `undo_kind` (rollback, revert_config) is the step that would remove a change blamed for the
    incident: a built-in runbook without one gets it from another runbook."""
    if runbooks is None:
        runbooks, site_vars = site_runbooks_and_vars()
        variables = {**site_vars, **(variables or {})}
    chosen = select_runbook(diagnosis, runbooks)
    if chosen is None:
        return None, []
    runbook, candidate = chosen
    actions = plan_from_runbook(runbook, candidate, variables)
    donor = _undo_donor(runbook, runbooks, undo_kind) if undo_kind else None
    if donor is not None:
        actions.extend(plan_from_runbook(donor, candidate, variables))
    return runbook, actions


def _undo_donor(chosen: Runbook, runbooks: Sequence[Runbook], kind: str) -> Runbook | None:
    """A built-in runbook that cannot undo the change the diagnosis blames (the slow-dependency
    one has no revert) borrows the first step of that kind from the other runbooks (the site's
    first), as a one-step runbook; a site's runbook is its own authority and borrows nothing."""
    if not chosen.builtin or any(step.kind in RESTORING_KINDS for step in chosen.steps):
        return None
    for book in runbooks:
        step = next((step for step in book.steps if step.kind == kind), None)
        if step is not None:
            return book.model_copy(update={"steps": [step]})
    return None
