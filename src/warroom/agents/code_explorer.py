"""code-explorer: trace the incident to the change, then to the file, line and commit — the diff between
the last good and the bad version in the bundle's repository, the code evidence it carries (see
docs/code-evidence.md), and the other places in the repository with the same pattern."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate
from warroom.agents.investigation import outputs as diagnosis_outputs
from warroom.agents.outputs import DATABASE, DIAGNOSIS, SUSPECT_CHANGE, read, read_list
from warroom.agents.specialist_common import EvidenceIds, suspect_service
from warroom.analysis.changes import RankedChange, previous_change
from warroom.analysis.code import (
    CodeAnalysis,
    CodeFinding,
    GitError,
    analyse_change,
    of_another_service,
    system_services,
)
from warroom.analysis.faults import registry
from warroom.incident import AgentReport, Evidence, Finding, RecommendedAction, RiskLevel, RootCauseCandidate

FAULT_OF_KIND = {
    "resource_leak": "db_pool_exhaustion",
    "unindexed_query": "missing_index",
    "unbounded_retry": "retry_storm",
    "unbounded_growth": "memory_leak",
    "cpu_heavy": "cpu_consumption",
    "lock_held": "lock_contention",
    "config_change": "bad_config",
    "destructive_migration": "data_loss_migration",
}
MAX_SAME_PATTERN = 25


def _preferred_kind(context: Mapping[str, Any]) -> str | None:
    """The code pattern the diagnosed fault type's changes carry (the registry's first), if any."""
    database = read(context, DATABASE)
    fault = registry().canonical(_top_fault(context) or (database.fault_type if database else None) or "")
    kinds = registry().fault_types[fault].change.code if fault else []
    return kinds[0] if kinds else None


def _top_fault(context: Mapping[str, Any]) -> str:
    diagnosis = read_list(context, DIAGNOSIS)
    return diagnosis[0].fault_type if diagnosis else ""


def _finding_dict(finding: CodeFinding, role: str, offending: bool) -> dict[str, Any]:
    data = finding.model_dump(mode="json")
    data.update(role=role, offending=offending, in_change=finding.in_diff, statement=finding.statement())
    return data


def _change_from_context(context: Mapping[str, Any]) -> RankedChange | None:
    change = read(context, SUSPECT_CHANGE)
    if change is None or not change.id:
        return None
    return RankedChange.model_validate(change.model_dump(include=set(RankedChange.model_fields)))


class CodeExplorer(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="code-explorer",
        purpose="Find the offending change and code: diff the last good and the bad version, locate leaked "
        "resources, CPU-heavy code, unindexed queries, locks held across slow calls, unbounded growth and "
        "retries, destructive migrations and changed settings (file, line, commit of the range), and list "
        "the other places with the same pattern.",
        inputs=("suspect_service", "suspect_change", "diagnosis", "database", "incident"),
        outputs=("suspect_change", "code_findings", "change_ranking", "code_commits"),
        aliases=("code-analyst",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry = ctx.telemetry
        service = suspect_service(ctx)
        limitations: list[str] = []
        ids = EvidenceIds("ev-code")
        outputs: dict[str, Any] = {}
        findings: list[Finding] = []

        context: Mapping[str, Any] = ctx.context
        if "diagnosis" not in context:
            # Run without an investigating step before it: read the shared diagnosis (memoised) itself.
            context = {**diagnosis_outputs(investigate(telemetry)), **context}
        change = _change_from_context(context)
        fault = registry().canonical(_top_fault(context))
        if change is None:
            # The diagnosis attributes no change: either its fault is not one a change brings in (load,
            # a third party, the network, a certificate, an attack), or no change fits it. No change
            # is made up to point at.
            brought = fault is not None and bool(registry().fault_types[fault].change.kinds)
            reason = (
                f"no change of the kinds that bring in {fault} fits the onset"
                if brought
                else f"the diagnosis ({fault or 'none'}) is not brought in by a change"
            )
            return AgentReport(
                agent=self.spec.name,
                summary=f"{reason[0].upper()}{reason[1:]}: no code to trace",
                outputs={"code_findings": [], **outputs},
                limitations=[f"{reason}: code not inspected"],
            )
        change_dict = change.as_context()
        outputs["suspect_change"] = change_dict
        if telemetry.repo is None:
            limitations.append("the bundle has no code repository: code not inspected")
        elif not change.commit:
            limitations.append(f"change {change.id} ({change.kind}) names no commit: code not inspected")
        if telemetry.repo is None or not change.commit:
            outputs["code_findings"] = []
            return AgentReport(
                agent=self.spec.name,
                summary=f"Suspect change {change.id} ({change.kind} of {change.service}); no code to inspect",
                outputs=outputs,
                limitations=limitations,
            )
        prior = previous_change(telemetry.changes, change)
        good = str(prior["commit"]) if prior and prior.get("commit") else None
        try:
            analysis = analyse_change(
                telemetry.repo,
                change.commit,
                good,
                focus=change.service or service,
                prefer_kind=_preferred_kind(context),
            )
        except (GitError, OSError) as exc:
            limitations.append(f"repository not readable: {exc}")
            outputs["code_findings"] = []
            return AgentReport(
                agent=self.spec.name,
                summary=f"Suspect change {change.id}; repository not readable",
                outputs=outputs,
                limitations=limitations,
            )
        limitations += analysis.limitations
        # The diagnosis already weighed the diff's findings against the fault: its location leads,
        # and a neighbour's files that the shared deploy range carried come last.
        weighed = read(context, SUSPECT_CHANGE)
        located = (weighed.code_file, weighed.code_line) if weighed is not None else (None, None)
        services = system_services(telemetry.changes, telemetry.topology)
        owner = change.service or service or ""
        analysis.findings.sort(
            key=lambda f: ((f.file, f.line) != located, bool(owner) and of_another_service(f.file, owner, services))
        )
        return self._report(change, change_dict, analysis, ids, outputs, findings, limitations)

    def _report(
        self,
        change: RankedChange,
        change_dict: dict[str, Any],
        analysis: CodeAnalysis,
        ids: EvidenceIds,
        outputs: dict[str, Any],
        findings: list[Finding],
        limitations: list[str],
    ) -> AgentReport:
        diff_ev = ids.add(
            Evidence(
                source="code",
                query=f"git diff {analysis.good[:12] if analysis.good else '(root)'}..{analysis.bad[:12]}",
                values={
                    "commits": len(analysis.commits),
                    "files_changed": len(analysis.files),
                    "lines_added": sum(f.added for f in analysis.files),
                    "lines_removed": sum(f.removed for f in analysis.files),
                },
                samples=[f"{f.status} {f.path} +{f.added} -{f.removed}" for f in analysis.files[:8]]
                + [f"{c.commit[:12]} {c.subject}" for c in analysis.commits[:5]],
            )
        )
        code_findings: list[dict[str, Any]] = []
        candidates: list[RootCauseCandidate] = []
        primary = analysis.primary
        for index, item in enumerate(analysis.findings):
            ev = ids.add(item.evidence())
            code_findings.append(_finding_dict(item, "offending" if index == 0 else "in_change", index == 0))
            findings.append(
                Finding(
                    id=f"f-code-{index + 1}",
                    title=f"{item.kind.replace('_', ' ')} at {item.file}:{item.line}",
                    detail=item.statement(),
                    confidence=item.strength,
                    service=change.service,
                    kind="root_cause" if index == 0 else "observation",
                    evidence=[ev, diff_ev],
                )
            )
        others = analysis.same_pattern[:MAX_SAME_PATTERN]
        for item in others:
            code_findings.append(_finding_dict(item, "same_pattern", False))
        if others:
            findings.append(
                Finding(
                    id="f-code-same-pattern",
                    title=f"{len(analysis.same_pattern)} other place(s) with the same pattern",
                    detail="; ".join(f"{o.file}:{o.line} ({o.kind.replace('_', ' ')})" for o in others[:10]),
                    confidence=round(sum(o.strength for o in others) / len(others), 3),
                    kind="observation",
                    evidence=[ids.add(o.evidence()) for o in others[:5]],
                )
            )
        if primary is not None:
            change_dict.update(
                code_commit=primary.commit,
                code_file=primary.file,
                code_line=primary.line,
                code_pattern=primary.kind,
                code_subkind=primary.subkind,
                code_strength=primary.strength,
                code_on_request_path=primary.on_request_path,
            )
            candidates.append(
                RootCauseCandidate(
                    rank=1,
                    service=change.service,
                    fault_type=FAULT_OF_KIND.get(primary.kind, primary.kind),
                    indicator=f"{primary.kind} at {primary.file}:{primary.line}",
                    confidence=primary.strength,
                    change_id=change.id,
                    reason=primary.statement(),
                    evidence_ids=[e.id for e in ids.items[:3]],
                )
            )
            summary = f"{primary.statement()}. Change {change.id} ({change.kind} of {change.service})."
            if others:
                summary += f" {len(analysis.same_pattern)} other place(s) in the repository have the same pattern."
            actions = [
                RecommendedAction(
                    id="code-fix-forward",
                    title=f"Fix {primary.kind.replace('_', ' ')} at {primary.file}:{primary.line}",
                    kind="fix_forward",
                    target=change.service,
                    risk=RiskLevel.MEDIUM,
                    priority="follow_up",
                    rationale=primary.detail,
                    parameters={
                        "file": primary.file,
                        "line": primary.line,
                        "end_line": primary.end_line,
                        "commit": primary.commit,
                    },
                    rollback="revert the fix commit",
                )
            ]
        else:
            summary = (
                f"Change {change.id} ({len(analysis.files)} file(s) in {len(analysis.commits)} commit(s)) "
                "shows none of the known code patterns: "
                "not enough evidence at code level"
            )
            actions = []
        # Per commit of the deploy range: what its diff touches and which finding kinds it carries.
        code_commits = [c.model_dump(mode="json") for c in analysis.commits]
        outputs.update(suspect_change=change_dict, code_findings=code_findings, code_commits=code_commits)
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs=outputs,
            candidates=candidates,
            actions=actions,
            limitations=limitations,
        )
