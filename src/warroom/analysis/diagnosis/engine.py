"""The diagnosis engine: telemetry of two periods in, a typed diagnosis out.

    detectors → observations (strength against noise) → hypotheses (service, fault type) formed from
    the registry → each observation owned by the cause that explains it best over the call graph →
    log-odds → change attribution (time, then code) → probabilities → calibration → inconclusive or not

Pure: frames in, models out. The one outside call it may make is `code`, given by the caller, which
reads a change's diff (the agents pass `warroom.analysis.code`); without it, changes are attributed
by time and kind alone.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from warroom.analysis.attrs import has_key
from warroom.analysis.diagnosis import attribution as attr_mod
from warroom.analysis.diagnosis import hypotheses as hyp_mod
from warroom.analysis.diagnosis.calibration import CalibrationMap, shipped
from warroom.analysis.diagnosis.detectors import detect_all
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.diagnosis.graph import CallGraph, assign
from warroom.analysis.diagnosis.hypotheses import Hypothesis
from warroom.analysis.diagnosis.periods import Periods
from warroom.analysis.faults import Registry, registry
from warroom.incident import Evidence, Finding, RootCauseCandidate
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry

MAX_CANDIDATES = 10
MAX_HYPOTHESES = 25
CODE_HYPOTHESES = 6  # hypotheses whose candidate changes get their diffs read
CODE_CHANGES = 3  # … at most this many changes each
# a service reporting these is one of ours (or a database we run), not an external dependency
OWN_SIGNALS = (cv.CPU_UTILIZATION, cv.MEMORY_UTILIZATION, cv.DB_CPU_UTILIZATION, cv.DB_CONNECTIONS)
SERVER_SIGNALS = (cv.DB_CPU_UTILIZATION, cv.DB_CONNECTIONS)  # a service reporting these is a database server


class Diagnosis(BaseModel):
    """What the engine concluded, with everything it rests on."""

    hypotheses: list[Hypothesis] = Field(default_factory=list)  # best first
    candidates: list[RootCauseCandidate] = Field(default_factory=list)  # best hypothesis per service
    observations: list[Observation] = Field(default_factory=list)
    explained: list[str] = Field(default_factory=list)  # observation ids the top hypothesis accounts for
    unexplained: list[str] = Field(default_factory=list)  # above-noise observations it does not
    inconclusive: bool = True
    decide: list[str] = Field(default_factory=list)  # what would decide between the top hypotheses
    limitations: list[str] = Field(default_factory=list)
    graph: dict[str, list[str]] = Field(default_factory=dict)
    onset: datetime
    threshold: float = 0.5

    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    def observation(self, obs_id: str) -> Observation | None:
        return next((o for o in self.observations if o.id == obs_id), None)

    def evidence(self) -> list[Evidence]:
        return [o.evidence() for o in self.observations]

    def findings(self, modality: str) -> list[Finding]:
        """The above-noise observations of one modality, and those the top hypothesis rests on even
        below noise (what the answer stands on is shown, however weak), as findings (strongest first)."""
        top = self.top()
        used = {u.observation for u in top.uses} if top else set()
        chosen = sorted(
            (o for o in self.observations if o.modality == modality and (o.above_noise or o.id in used)),
            key=lambda o: (-o.excess, o.id),
        )
        return [
            Finding(
                id=f"finding-{o.id}",
                title=o.headline(),
                detail=o.query,
                confidence=round(min(max(o.excess, 0.0) / 10.0, 1.0), 2),
                service=o.service,
                kind="bottleneck" if o.signal.startswith(("self_time", "call_gap", "span_duration")) else "observation",
                evidence=[o.evidence()],
            )
            for o in chosen[:12]
        ]


def diagnose(
    current: Telemetry,
    baseline: Telemetry | None,
    *,
    alert_time: datetime,
    window_start: datetime,
    window_end: datetime,
    onset: datetime | None = None,
    topology: dict[str, list[str]] | None = None,
    code: attr_mod.CodeLookup | None = None,
    calibration: CalibrationMap | None = None,
) -> Diagnosis:
    """Rank hypotheses for the window from the telemetry (and the change log in `current.changes`)."""
    reg = registry()
    records = attr_mod.change_records(current.changes)
    pairs = attr_mod.undo_pairs(records)
    # A replayed record may run on past the response's first revert or rollback: the data after it
    # shows the remedy (a fault of two minutes averaged with six recovered ones reads as no fault).
    remedy = attr_mod.first_remedy(pairs, alert_time)
    start = min(window_start, alert_time)
    end = min(window_end, remedy) if remedy is not None and remedy > start else window_end
    # … and a window may open well before the fault (a lookback, a capture's margin): what ran before
    # the measured onset was healthy, and a median over a healthy half and a faulty half barely moves.
    if onset is not None and start < onset < end:
        start = onset
    periods = Periods(current, baseline or Telemetry(), start, end, topology or {})
    found, edges = detect_all(periods, reg.signals, reg.log_patterns)
    graph = CallGraph(edges)
    observations = {o.id: o for o in found.observations}
    worth = hyp_mod.Worth(reg, observations.values(), len(periods.services()))
    external = _external(periods, graph)
    hypotheses = hyp_mod.form(observations.values(), reg, worth, external, _servers(periods, graph), found.measured)
    started = onset or alert_time
    # Before any hypothesis claims evidence: a fault only a change brings in needs a candidate change.
    options, hypotheses = _change_options(
        hypotheses, (records, pairs), reg, observations, (started, alert_time), external
    )
    base = {
        h.key: h.log_prior + h.unharmed_llr + max((a.time_llr for a in options[h.key]), default=0.0)
        if options[h.key] and (reg.fault_types[h.fault_type].change.required or options[h.key][0].time_llr > 0)
        else h.log_prior + h.unharmed_llr
        for h in hypotheses
    }
    owned = assign(hyp_mod.claims(observations.values(), hypotheses, graph, reg, worth, base, external))
    hyp_mod.score(hypotheses, observations, owned, reg, worth)
    hyp_mod.adopt_mechanisms(hypotheses, reg)
    _attribute(hypotheses, options, reg, code)
    hyp_mod.normalise(hypotheses)
    cal = calibration or shipped()
    missing = sum(1 for frame in (current.logs, current.traces, current.metrics) if frame is None or frame.height == 0)
    for h in hypotheses:
        h.confidence = round(cal.apply(h.probability, missing), 4)
    hypotheses.sort(key=lambda h: (-h.log_odds, h.key))
    top = hypotheses[0] if hypotheses else None
    explained = sorted({u.observation for u in top.uses}) if top else []
    unexplained = sorted(o.id for o in observations.values() if o.above_noise and o.id not in set(explained))
    inconclusive = top is None or top.confidence < cal.threshold
    limitations = list(found.limitations)
    return Diagnosis(
        hypotheses=hypotheses[:MAX_HYPOTHESES],
        candidates=_candidates(hypotheses, observations, inconclusive),
        observations=_cited(observations, hypotheses[:MAX_HYPOTHESES], unexplained),
        explained=explained,
        unexplained=unexplained,
        inconclusive=inconclusive,
        decide=_what_decides(hypotheses[:3], observations, reg, limitations) if inconclusive else [],
        limitations=limitations,
        graph=graph.as_dict(),
        onset=started,
        threshold=cal.threshold,
    )


def _external(periods: Periods, graph: CallGraph) -> set[str]:
    """Services seen only from the outside: called by others, calling nobody, with neither resource
    series (CPU, memory, database server) nor log lines of their own (a third-party API, a managed
    service)."""
    own: set[str] = set()
    for frame, column in ((periods.current.metrics, "metric"), (periods.current.logs, None)):
        if frame is None or "service" not in frame.columns:
            continue
        rows = frame.filter(frame[column].is_in(OWN_SIGNALS)) if column else frame
        own.update(str(s) for s in rows.get_column("service").unique().drop_nulls())
    called = {s for s in graph.services() if graph.callers_of(s)}
    return {s for s in called if s not in own and not graph.calls(s)}


def _servers(periods: Periods, graph: CallGraph) -> set[str]:
    """Database servers with clients in view: services reporting database-server series, or named
    as the database of their callers' client spans (`db.system`), that other services call. A fault
    of the statements sent to them is the sender's, and their code is not ours."""
    reporting: set[str] = set()
    metrics = periods.current.metrics
    if metrics is not None and "service" in metrics.columns:
        rows = metrics.filter(metrics["metric"].is_in(SERVER_SIGNALS))
        reporting |= {str(s) for s in rows.get_column("service").unique().drop_nulls()}
    traces = periods.current.traces
    if traces is not None and {"service", "attributes"} <= set(traces.columns):
        # the sources give a database client span to the database it names (`warroom.caller` keeps the sender)
        called = traces.filter(has_key("db.system") & has_key("warroom.caller"))
        reporting |= {str(s) for s in called.get_column("service").unique().drop_nulls()}
    return {s for s in reporting if graph.callers_of(s)}


def _change_options(
    hypotheses: list[Hypothesis],
    changes: tuple[list[attr_mod.ChangeRecord], list[tuple[attr_mod.ChangeRecord, attr_mod.ChangeRecord]]],
    reg: Registry,
    observations: dict[str, Observation],
    times: tuple[datetime, datetime],
    external: set[str],
) -> tuple[dict[tuple[str, str], list[attr_mod.Attribution]], list[Hypothesis]]:
    """Per hypothesis the changes that could have brought its fault in (by kind and time, before the
    onset of its service's strongest observation, else the incident's); the hypotheses whose fault
    only a change brings in (on that service: `external` ones have no change of ours) and that have
    none are dropped. `changes` are the change log's records and their undo pairs; `times` the
    incident's onset and its alert: a revert or rollback made after the alert was the response's (a
    replayed change log holds them) and did not cause what was already alerted on."""
    onset, alerted = times
    records, pairs = changes
    # undone before the onset, or the response's own undoing: neither is a candidate
    restoring = {undo.id for _, undo in pairs}
    undone = attr_mod.undone_before(pairs, onset) | attr_mod.remediations_after(pairs, alerted)
    # A service's onset: that of its strongest above-noise observation (a weak series' first blip is
    # not when the fault began).
    strongest: dict[str, Observation] = {}
    for o in observations.values():
        if o.onset is not None and o.above_noise:
            for where in o.roles.values():
                if where not in strongest or o.excess > strongest[where].excess:
                    strongest[where] = o
    firsts = {where: o.onset for where, o in strongest.items() if o.onset is not None}
    options: dict[tuple[str, str], list[attr_mod.Attribution]] = {}
    kept: list[Hypothesis] = []
    for h in hypotheses:
        fault = reg.fault_types[h.fault_type]
        found = (
            attr_mod.candidates(records, h.service, fault, firsts.get(h.service, onset), reg.model, undone, restoring)
            if records
            else []
        )
        if fault.change.needed(h.service in external) and not found:
            continue
        options[h.key] = found
        kept.append(h)
    return options, kept


def _attribute(
    hypotheses: list[Hypothesis],
    options: dict[tuple[str, str], list[attr_mod.Attribution]],
    reg: Registry,
    code: attr_mod.CodeLookup | None,
) -> None:
    """Attach the best change to every hypothesis a change can explain. The diffs of the leading
    hypotheses' candidate changes are read (each change once)."""
    for h in hypotheses:
        h.change = _best(options[h.key], reg.fault_types[h.fault_type].change.required)
    if code is None:
        return
    memo: dict[str, list[attr_mod.CodeEvidence]] = {}

    def lookup(change: attr_mod.ChangeRecord) -> list[attr_mod.CodeEvidence]:
        if change.id not in memo:
            memo[change.id] = code(change)
        return memo[change.id]

    # The leading hypotheses' candidate changes, and every hypothesis that stands only on a change:
    # its diff is what says whether the change could have done it.
    leading = sorted(hypotheses, key=lambda h: -h.log_odds)[:CODE_HYPOTHESES]
    leading += [h for h in hypotheses if reg.fault_types[h.fault_type].change.required and h not in leading]
    for h in leading:
        fault = reg.fault_types[h.fault_type]
        read = [attr_mod.with_code(a, fault, lookup, reg.model) for a in options[h.key][:CODE_CHANGES]]
        read += options[h.key][CODE_CHANGES:]
        h.change = _best(read, fault.change.required)


def _best(found: list[attr_mod.Attribution], required: bool) -> attr_mod.Attribution | None:
    """The strongest attribution; for a fault a change only may bring, even a weak one (its hypothesis
    carries the doubt), otherwise only one that adds evidence."""
    if not found:
        return None
    best = max(found, key=lambda a: (a.llr, -a.minutes_before_onset))
    return best if required or best.llr > 0 else None


def _candidates(
    hypotheses: list[Hypothesis], observations: dict[str, Observation], inconclusive: bool
) -> list[RootCauseCandidate]:
    """The best hypothesis per service, ranked: the answer to "which service, which fault, which change"
    (every one flagged inconclusive when the top is below the threshold: none is then the cause)."""
    out: list[RootCauseCandidate] = []
    seen: set[str] = set()
    for h in hypotheses:
        if h.service in seen:
            continue
        seen.add(h.service)
        local = sorted(h.local_uses(), key=lambda u: -u.llr)
        indicator = local[0].signal.split(".")[0] if local else (h.uses[0].signal.split(".")[0] if h.uses else "")
        out.append(
            RootCauseCandidate(
                rank=len(out) + 1,
                service=h.service,
                fault_type=h.fault_type,
                indicator=indicator,
                confidence=round(min(max(h.confidence, 0.0), 1.0), 3),
                change_id=h.change.change.id if h.change else None,
                reason=_reason(h, observations),
                evidence_ids=[u.observation for u in sorted(h.uses, key=lambda u: -u.llr)][:6],
                inconclusive=inconclusive,
            )
        )
        if len(out) == MAX_CANDIDATES:
            break
    return out


def _reason(h: Hypothesis, observations: dict[str, Observation]) -> str:
    parts = [f"log-odds {h.log_odds:.1f} (prior {h.log_prior:.1f})"]
    if h.mechanism:
        parts.append(f"shows as {h.mechanism.replace('_', ' ')}")
    if h.unharmed_llr:
        parts.append(f"its own requests were measured and none slowed or failed {h.unharmed_llr:.1f}")
    for use in sorted(h.uses, key=lambda u: -u.llr)[:3]:
        o = observations[use.observation]
        where = "" if use.relation == "local" else f" [symptom on its {use.relation}]"
        parts.append(f"{o.headline()}{where} +{use.llr:.1f}")
    for use in sorted(h.contradictions, key=lambda u: -u.llr)[:1]:
        parts.append(f"against: {observations[use.observation].headline()} −{use.llr:.1f}")
    if h.change is not None:
        parts.append("; ".join(h.change.reasons) + f" +{h.change.llr:.1f}")
    return "; ".join(parts)


def _cited(
    observations: dict[str, Observation], hypotheses: list[Hypothesis], unexplained: list[str]
) -> list[Observation]:
    """The observations the reported hypotheses use, plus the unexplained ones (the rest is noise)."""
    wanted = set(unexplained)
    for h in hypotheses:
        wanted.update(u.observation for u in h.uses)
        wanted.update(u.observation for u in h.contradictions)
    return [o for oid, o in observations.items() if oid in wanted]


def _what_decides(
    top: list[Hypothesis], observations: dict[str, Observation], reg: Registry, limitations: list[str]
) -> list[str]:
    """For each leading hypothesis, its strongest signals that were not seen: what to query next."""
    if not top:
        return ["no hypothesis could be formed: " + ("; ".join(limitations) or "no observation above noise")]
    out = []
    for h in top:
        fault = reg.fault_types[h.fault_type]
        seen = {u.signal for u in h.uses if observations[u.observation].above_noise}
        missing = [s for s, w in sorted(fault.support.items(), key=lambda kv: -kv[1]) if w >= 0.8 and s not in seen]
        hints = "; ".join(reg.signals[s].decides for s in missing[:3])
        out.append(
            f"{h.fault_type} on {h.service} (p {h.confidence:.2f}): "
            + (f"would be confirmed by {hints}" if hints else "its own signals are all below noise")
        )
    return out
