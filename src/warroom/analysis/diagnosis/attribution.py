"""Change attribution: which change brought a hypothesis' fault in, as a log-likelihood ratio.

For a hypothesis (service S, fault type F) the candidates are the changes of S (and platform-wide
changes) of a kind F's registry entry says can bring it in, applied before F's onset (up to the
onset tolerance after it) within the lookback. Their evidence:

- time: a change that caused a fault shows its effect after a typical delay (F's `lead_minutes`, τ);
  an unrelated change is anywhere in the lookback L. With the delay exponential under "caused it" and
  uniform under "unrelated", the log-likelihood ratio of a change Δ minutes before the onset is
  log(L/τ) − Δ/τ: a config change two minutes before the errors is strong evidence, one from the
  morning counts against itself;
- code: the findings of `warroom.analysis.code` in the change's diff whose kind F lists (a leak for
  a pool exhaustion, a hot loop for CPU consumption, a changed setting for a bad config), each with
  its own log-likelihood ratio; the strongest counts and names the commit, file and line. Within a
  deploy of several commits this is the commit whose diff carries the defect, not the docs commit.

A config change of the callee therefore beats an unrelated deploy of the caller twice: it forms its
own hypothesis on the callee (whose fault explains the caller's symptoms over the call graph), and an
unrelated deploy carries no compatible finding and no timely onset. Only changes in the change log
are ever named: no action can be proposed against a change that does not exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.changes import ChangeRecord, RankedChange, is_config_kind
from warroom.analysis.faults import FaultType, ModelParameters


class CodeEvidence(BaseModel):
    """A code finding in a change's diff, as the engine weighs it."""

    kind: str  # resource_leak, cpu_heavy, unindexed_query, unbounded_growth, lock_held, config_change, …
    file: str
    line: int
    commit: str | None = None
    commit_subject: str | None = None
    author: str | None = None
    detail: str = ""
    llr: float  # log-likelihood ratio that the finding is a defect of its kind


CodeLookup = Callable[[ChangeRecord], list[CodeEvidence]]


class Attribution(BaseModel):
    change: ChangeRecord
    minutes_before_onset: float
    time_llr: float
    code_llr: float = 0.0
    code: CodeEvidence | None = None
    inspected: bool = False  # the change's diff was read
    # it put back what ran before it (a rollback, a revert): what its diff shows already ran
    restoring: bool = False
    reasons: list[str] = Field(default_factory=list)

    @property
    def llr(self) -> float:
        return self.time_llr + self.code_llr

    def as_ranked_change(self) -> RankedChange:
        """The attributed change in the shape the rest of the response reads (`suspect_change`)."""
        c = self.change
        return RankedChange(
            id=c.id,
            time=c.time,
            service=c.service,
            kind=c.kind,
            version=c.version,
            commit=c.commit,
            author=c.author,
            description=c.description,
            minutes_before_onset=round(self.minutes_before_onset, 2),
            relation="global" if c.is_global else "same_service",
            score=round(1.0 / (1.0 + math.exp(-self.llr)), 4),
            reasons=list(self.reasons),
        )


# git revert's subject line: Revert "<subject of the reverted commit>" (greedy: a revert of a revert nests)
_REVERT_SUBJECT = re.compile(r'^Revert "(.+)"')
_REVERTS_COMMIT = re.compile(r"this reverts commit ([0-9a-f]{7,40})")


def change_records(changes: pl.DataFrame | None) -> list[ChangeRecord]:
    if changes is None or changes.height == 0:
        return []
    records = []
    for row in changes.to_dicts():  # a change log is small (tens to thousands of rows)
        records.append(
            ChangeRecord(
                id=str(row["id"]),
                time=row["time"],
                service=str(row["service"]),
                kind=str(row["kind"]),
                version=_opt(row, "version"),
                commit=_opt(row, "commit"),
                author=_opt(row, "author"),
                description=_opt(row, "description"),
            )
        )
    return records


def _opt(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    return None if value is None else str(value)


def time_llr(minutes_before: float, fault: FaultType, params: ModelParameters) -> float:
    """log(L/τ) − Δ/τ: exponential delay under "it caused the fault", uniform over the lookback under
    "unrelated" (Δ < 0, a change stamped just after the measured onset, counts as Δ = 0)."""
    tau = fault.change.lead_minutes
    lookback = params.lookback_hours * 60.0
    return math.log(lookback / tau) - max(minutes_before, 0.0) / tau


def candidates(
    records: Iterable[ChangeRecord],
    service: str,
    fault: FaultType,
    onset: datetime,
    params: ModelParameters,
    undone: Collection[str] = (),
    restoring: Collection[str] = (),
) -> list[Attribution]:
    """The changes that could have brought the fault in, by time evidence, best first (none of the
    `undone` ones: see `undone_before`; the `restoring` ones, which put back what ran before them,
    weigh less)."""
    out: list[Attribution] = []
    lookback = timedelta(hours=params.lookback_hours)
    tolerance = timedelta(minutes=params.onset_tolerance_minutes)
    for change in records:
        if change.service != service and not change.is_global:
            continue
        if change.id in undone:
            continue
        if not fault.attributable(change.kind):
            continue
        if change.time > onset + tolerance or change.time < onset - lookback:
            continue
        minutes = (onset - change.time).total_seconds() / 60.0
        llr = time_llr(minutes, fault, params)
        reasons = [f"{change.kind} of {change.service} {max(minutes, 0.0):.1f} min before the onset"]
        if change.is_global:
            llr += math.log(params.global_change_share)
            reasons.append("a platform-wide change")
        if change.id in restoring:
            llr += params.restored_version_llr
            reasons.append("it put back what ran before it")
        out.append(
            Attribution(
                change=change,
                minutes_before_onset=minutes,
                time_llr=llr,
                restoring=change.id in restoring,
                reasons=reasons,
            )
        )
    out.sort(key=lambda a: (-a.time_llr, a.change.id))
    return out


def undo_pairs(records: Iterable[ChangeRecord]) -> list[tuple[ChangeRecord, ChangeRecord]]:
    """(change, the later change that undid it): a later change of the same service (and the same
    side: code or configuration) put back the version it replaced — a rollback, or a redeploy of the
    earlier version — or names its commit as the one it reverts."""
    pairs: list[tuple[ChangeRecord, ChangeRecord]] = []
    timelines: dict[tuple[str, bool], list[ChangeRecord]] = {}
    for change in sorted(records, key=lambda c: c.time):
        timelines.setdefault((change.service, is_config_kind(change.kind)), []).append(change)
    for timeline in timelines.values():
        for i, change in enumerate(timeline):
            replaced = next((c.version for c in reversed(timeline[:i]) if c.version), None)
            for later in timeline[i + 1 :]:
                if (replaced is not None and later.version == replaced) or _reverts(later, change):
                    pairs.append((change, later))
                    break
    return pairs


def undone_before(pairs: Iterable[tuple[ChangeRecord, ChangeRecord]], onset: datetime) -> set[str]:
    """The ids of changes already undone before the incident's `onset` (`pairs` from `undo_pairs`):
    whatever the incident is, it is not a change that was no longer running when it began. The
    incident's onset, not a service's: what the response did afterwards undoes nothing the diagnosis
    is about."""
    return {change.id for change, undo in pairs if undo.time < onset}


def remediations_after(pairs: Iterable[tuple[ChangeRecord, ChangeRecord]], alerted: datetime) -> set[str]:
    """The ids of the changes made after the alert that undid an earlier change (`pairs` from
    `undo_pairs`): the response's own reverts and rollbacks (a replayed change log holds them), never
    the incident's cause."""
    return {undo.id for _, undo in pairs if undo.time >= alerted}


def first_remedy(pairs: Iterable[tuple[ChangeRecord, ChangeRecord]], alerted: datetime) -> datetime | None:
    """When the response first undid a change after the alert (`pairs` from `undo_pairs`): the end
    of the incident's own period in a replayed record; what follows shows the remedy, not the fault."""
    return min((undo.time for _, undo in pairs if undo.time >= alerted), default=None)


def _reverts(later: ChangeRecord, change: ChangeRecord) -> bool:
    """`later` says it reverts `change`: it names its commit (git's "This reverts commit <sha>"), or
    its subject is git's `Revert "<the subject of change>"` (a deploy log that keeps only subjects)."""
    text = (later.description or "").lower()
    # only git's own sentence: a deploy's description also names the version it replaced ("from
    # <sha>") and may list an unrelated revert among the commits it brought
    named = _REVERTS_COMMIT.findall(text)
    if change.commit and any(str(change.commit).lower().startswith(sha) for sha in named):
        return True
    subject = _REVERT_SUBJECT.match(later.description or "")
    return bool(subject and change.description and change.description.startswith(subject.group(1)))


def with_code(
    attribution: Attribution, fault: FaultType, lookup: CodeLookup | None, params: ModelParameters
) -> Attribution:
    """The attribution with the strongest code finding of a kind the fault lists when the diff has
    one; when the diff was read and has none, the scanners' miss weighs against it (`code_miss_llr`)
    for a fault type whose changes carry a known pattern."""
    if lookup is None or not attribution.change.commit:
        return attribution
    findings = [f for f in lookup(attribution.change) if f.kind in fault.change.code]
    update: dict[str, Any] = {"inspected": True}
    if findings:
        best = max(findings, key=lambda f: (f.llr, -f.line))
        found = f"its diff has {best.kind.replace('_', ' ')} at {best.file}:{best.line}" + (
            f" (commit {best.commit[:12]})" if best.commit else ""
        )
        # A restoring change's diff is the undo of a change that ran: the lines it puts back already
        # ran without the fault (`restored_version_llr` weighs that), so they locate, not accuse.
        # Counting them too would let any revert of a setting outweigh its own restore.
        if attribution.restoring and best.llr > 0:
            update.update(code=best, code_llr=0.0)
            found += ", lines that ran before"
        else:
            update.update(code=best, code_llr=best.llr)
        update["reasons"] = [*attribution.reasons, found]
    elif fault.change.code:
        update["code_llr"] = params.code_miss_llr
        update["reasons"] = [*attribution.reasons, f"its diff shows no {' / '.join(fault.change.code)} pattern"]
    return attribution.model_copy(update=update)
