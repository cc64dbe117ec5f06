"""Hypotheses: (service, fault type, optional change), scored in log-odds.

    log-odds = log prior(fault type)
             + Σ over the observations it owns:    weight × worth(observation)
             + Σ over the symptoms it explains:    propagated_weight × worth(observation)
             − Σ over contradicting observations:  weight × worth(observation)
             + the change's log-likelihood ratio (attribution.py), when a change is attributed

with worth = effect × min(softplus(strength − noise), cap) (see `Worth`). The registry
(`analysis/data/fault_types.yaml`) holds every weight and prior. When nothing clears the noise the
ranking still follows the strongest evidence, and the calibrated probability says how little that is.
A hypothesis is formed only when one of its fault type's required signals was observed on its
service: what makes it this fault and not another that shares the symptoms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from warroom.analysis.diagnosis.attribution import Attribution
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.diagnosis.graph import CallGraph, Claim
from warroom.analysis.faults import FaultType, Registry

SELF_TIME = "self_time.up"  # a service's own span time (not in its callees)
POOL_WAIT = "db_pool_wait_ms.up"  # time a request waited for a connection of the service's pool
CALL_GAP = "call_gap"  # a call's time outside the callee's span (on the wire, or queued before it)
CODE_FAMILY = "code"  # fault types of our own code (exceptions, wrong results)
GAP_IN = "call_gap.in"  # … as evidence on the callee: a fault type supporting it puts time there
FORM_MIN = 0.1  # nats: softplus(excess) of 0.1 is an observation 2.2 z below its noise level


class EvidenceUse(BaseModel):
    """One observation counted for a hypothesis, and what it added."""

    observation: str
    service: str  # where it was observed
    signal: str
    relation: str  # local | callers | callees | contradicts
    llr: float


class Hypothesis(BaseModel):
    service: str
    fault_type: str
    log_prior: float
    uses: list[EvidenceUse] = Field(default_factory=list)
    contradictions: list[EvidenceUse] = Field(default_factory=list)
    change: Attribution | None = None
    mechanism: str | None = None  # the fault type whose signature it shows (a config change's pool exhaustion)
    # evidence of absence: the fault type's harm signals were measured on the service and none moved
    # (the registry's `harms`), worth the model's `unharmed_llr`; 0 otherwise
    unharmed_llr: float = 0.0
    onset: datetime | None = None
    probability: float = 0.0  # softmax share against the other hypotheses and "none of them"
    confidence: float = 0.0  # calibrated probability that this is the answer

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.fault_type)

    @property
    def evidence_llr(self) -> float:
        return sum(u.llr for u in self.uses) - sum(u.llr for u in self.contradictions)

    @property
    def log_odds(self) -> float:
        return (
            self.log_prior
            + self.unharmed_llr
            + self.evidence_llr
            + (self.change.llr if self.change is not None else 0.0)
        )

    def local_uses(self) -> list[EvidenceUse]:
        return [u for u in self.uses if u.relation == "local"]


class Worth:
    """What one observation is worth before its weight: effect × min(softplus(excess), cap).

    softplus makes evidence far above its noise level count by its excess and evidence just below
    it count a little. A symptom signal (latency, errors, generic error lines) says something is
    wrong there or below, never which fault, and it is worth at most the log of one over how often
    the incident's services show it: when every service is slower, one more slow service localises
    nothing (the model's `symptom_cap` bounds it when few do)."""

    def __init__(self, registry: Registry, observations: Iterable[Observation], services: int) -> None:
        self.registry = registry
        showing: dict[str, set[str]] = {}
        for o in observations:
            if o.above_noise:
                for signal, where in o.roles.items():
                    showing.setdefault(signal, set()).add(where)
        n = max(services, 1)
        self.symptom_caps = {
            name: min(registry.model.symptom_cap, -math.log((len(showing.get(name, ())) + 1) / (n + 2)))
            for name, info in registry.signals.items()
            if info.symptom
        }

    def __call__(self, observation: Observation, signal: str, *, as_symptom: bool = True) -> float:
        x = observation.excess
        soft = x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))
        cap = self.symptom_caps.get(signal, self.registry.model.cap) if as_symptom else self.registry.model.cap
        return observation.effect * min(soft, cap)


def form(
    observations: Iterable[Observation],
    registry: Registry,
    worth: Worth,
    external: set[str],
    servers: set[str],
    measured: Mapping[str, set[str]] | None = None,
) -> list[Hypothesis]:
    """Every (service, fault type) one of whose required signals (and all of its jointly required
    ones) was observed on the service, with a value of at least FORM_MIN: near its noise level and
    of a material size (a 1 % CPU move does not make a CPU hypothesis). A fault of the work a client
    sends (scope "client") is not hypothesised on a database server that has clients in view
    (`servers`), nor is a fault of code (family "code"): the server's code is not ours, and its
    clients' failed statements (a session it ended as told) are theirs."""
    seen: dict[str, set[str]] = {}
    above: dict[str, set[str]] = {}  # … and those above their noise level
    for observation in observations:
        for signal, service in observation.roles.items():
            if worth(observation, signal) >= FORM_MIN:
                seen.setdefault(service, set()).add(signal)
            if observation.above_noise:
                above.setdefault(service, set()).add(signal)
    out = []
    for service, signals in sorted(seen.items()):
        for fault in registry.fault_types.values():
            if service in servers and (fault.scope == "client" or fault.family == CODE_FAMILY):
                continue
            if fault.scope not in ("client", "any") and (fault.scope == "external") != (service in external):
                continue
            if signals.isdisjoint(fault.requires) or not signals.issuperset(fault.requires_all):
                continue
            unharmed = _unharmed(fault.harms, service, above.get(service, set()), measured or {})
            out.append(
                Hypothesis(
                    service=service,
                    fault_type=fault.name,
                    log_prior=fault.log_prior,
                    unharmed_llr=registry.model.unharmed_llr if unharmed else 0.0,
                )
            )
    return out


def _unharmed(harms: list[str], service: str, moved: set[str], measured: Mapping[str, set[str]]) -> bool:
    """The service's own requests were measured by one of the fault's harm signals and none of them
    moved above its noise level."""
    return bool(harms) and moved.isdisjoint(harms) and any(service in measured.get(h, ()) for h in harms)


def claims(
    observations: Iterable[Observation],
    hypotheses: Iterable[Hypothesis],
    graph: CallGraph,
    registry: Registry,
    worth: Worth,
    base: Mapping[tuple[str, str], float],
    external: set[str],
) -> list[Claim]:
    """Every way each observation could count: locally for a hypothesis on a service it speaks about
    whose fault type the signal supports, or as a symptom for a hypothesis on a service whose fault
    type explains it over the call graph. `base`: per hypothesis its prior and change evidence. A
    fault type's own symptoms count uncapped only on an `external` service (its latency is all we see
    of it); a service we see inside has its own evidence of what is slow (its self time)."""
    by_service: dict[str, list[FaultType]] = {}
    for h in hypotheses:
        by_service.setdefault(h.service, []).append(registry.fault_types[h.fault_type])
    out: list[Claim] = []
    propagated = registry.model.propagated_weight
    locating = set(registry.localisation)
    observations = list(observations)
    waits = Waiting(observations, graph, registry.model.onset_tolerance_minutes)
    for observation in observations:
        noisy = observation.above_noise
        for signal, where in observation.roles.items():
            each = worth(observation, signal)
            generic = signal in locating or registry.signals[signal].symptom
            # A symptom of a caller waiting on a slower callee is the callee's, whatever its kind; one
            # of a caller whose calls are delayed on the way is a cause's that delays them there.
            waited = {
                cause: how
                for cause, faults in by_service.items()
                if (how := waits.on(where, cause, observation)) is not None
                and any(f.explains_on("callers", signal) for f in faults)
            }
            for fault in by_service.get(where, []):
                weight = fault.support.get(signal, 0.0)
                if weight > 0:
                    own_symptom = signal in fault.own_symptoms and where in external
                    own = worth(observation, signal, as_symptom=False) if own_symptom else each
                    specific = not waited and (not generic or own_symptom or signal in fault.signature)
                    start = base[(where, fault.name)]
                    out.append(
                        Claim(
                            observation.id,
                            where,
                            fault.name,
                            signal,
                            "local",
                            weight * own,
                            noisy,
                            start,
                            specific,
                            registry.signals[signal].symptom,
                        )
                    )
            for cause, faults in by_service.items():
                relation = graph.relation(where, cause) if cause != where else None
                if relation is None or relation == "local":
                    continue
                for fault in faults:
                    if fault.explains_on(relation, signal):
                        how = waited.get(cause)
                        full = how == Waiting.SLOWER or (how == Waiting.DELAYED and fault.support.get(GAP_IN, 0.0) > 0)
                        value = (1.0 if full else propagated) * each
                        start = base[(cause, fault.name)]
                        out.append(
                            Claim(observation.id, cause, fault.name, signal, relation, value, noisy, start, False)
                        )
    return out


class Waiting:
    """Which callers wait on which slower callee: the callee's own span time (`self_time.up`) rose
    above noise (SLOWER), or the caller's calls to it spend longer outside its spans (DELAYED:
    `call_gap`, on the wire or queued before it; the callee whose gap grew most of the caller's);
    the caller's own time did not rise (its requests' extra time is spent in the call, not in its
    own work) — or did only as time waiting for a connection of its own pool (`db_pool_wait_ms.up`
    from the callee's slowdown on: a request waits for a connection that others hold across the
    slower call, outside any child span), or by no more than its calls' gaps grew (a caller without
    client spans counts the time on the wire as its own) — and the callee's slowdown began before
    (or with) the caller's symptom. A caller's pool held across the slower call saturates, its calls
    time out and it is the deepest service that errs: all of it is the callee's doing, so these
    symptoms count fully for a cause on the callee (when DELAYED, one whose fault type puts time
    outside the callee's spans: `call_gap.in` supports it) and say nothing of what failed on the
    caller."""

    SLOWER = "slower"  # the callee's own work slowed
    DELAYED = "delayed"  # the calls to it are delayed outside its spans

    def __init__(self, observations: Iterable[Observation], graph: CallGraph, tolerance_minutes: float) -> None:
        self.graph = graph
        self.tolerance = timedelta(minutes=tolerance_minutes)
        self.slowed: dict[str, datetime | None] = {}
        self.pool_waits: dict[str, datetime | None] = {}
        self.own_rise: dict[str, float] = {}  # a caller's self-time rise (ms)
        self.gaps: dict[tuple[str, str], datetime | None] = {}  # (caller, callee) → the gap's onset
        self.gap_rises: dict[tuple[str, str], float] = {}  # (caller, callee) → the gap's rise (ms)
        for o in observations:
            if not o.above_noise:
                continue
            if o.signal == SELF_TIME:
                self.slowed[o.service] = o.onset
                self.own_rise[o.service] = _rise(o)
            elif o.signal == POOL_WAIT:
                self.pool_waits[o.service] = o.onset
            elif o.signal == CALL_GAP and o.peer is not None:
                self.gaps[(o.peer, o.service)] = o.onset
                self.gap_rises[(o.peer, o.service)] = _rise(o)

    def _largest_gap(self, caller: str) -> float:
        """The largest rise of a call gap among the caller's calls (ms)."""
        return max((rise for (c, _), rise in self.gap_rises.items() if c == caller), default=0.0)

    def _after(self, began: datetime | None, onset: datetime | None) -> bool:
        return began is None or onset is None or began <= onset + self.tolerance

    def on(self, caller: str, callee: str, symptom: Observation) -> str | None:
        """How `caller` waits on `callee` for `symptom` (SLOWER or DELAYED), None when it does not."""
        if caller == callee or caller not in self.graph.callers_of(callee):
            return None
        if symptom.signal == CALL_GAP:
            return None  # a gap is the measure of a wait, counted once where it points
        if callee in self.slowed:
            how, began = self.SLOWER, self.slowed[callee]
        elif (caller, callee) in self.gaps and self.gap_rises[(caller, callee)] >= self._largest_gap(caller):
            how, began = self.DELAYED, self.gaps[(caller, callee)]  # the caller's call that slowed most
        else:
            return None
        # the caller's own time rose: waiting on its pool since the callee slowed, time on the wire
        # it counts as its own, or work of its own
        if caller in self.slowed and not (
            (caller in self.pool_waits and self._after(began, self.pool_waits[caller]))
            or self.own_rise[caller] <= self._largest_gap(caller)
        ):
            return None
        return how if self._after(began, symptom.onset) else None


def _rise(o: Observation) -> float:
    return max((o.value or 0.0) - (o.baseline or 0.0), 0.0)


def score(
    hypotheses: list[Hypothesis],
    observations: Mapping[str, Observation],
    owned: Iterable[Claim],
    registry: Registry,
    worth: Worth,
) -> None:
    """Fill each hypothesis' evidence: the claims it keeps (local or as explained symptoms) and the
    observations on its service that contradict it."""
    by_key = {h.key: h for h in hypotheses}
    for h in hypotheses:
        h.uses, h.contradictions = [], []
    for claim in owned:
        owner = by_key.get(claim.hypothesis)
        if owner is not None and claim.value > 0:
            owner.uses.append(
                EvidenceUse(
                    observation=claim.observation,
                    service=observations[claim.observation].roles[claim.signal],
                    signal=claim.signal,
                    relation=claim.relation,
                    llr=claim.value,
                )
            )
    by_service: dict[str, list[Hypothesis]] = {}
    for h in hypotheses:
        by_service.setdefault(h.service, []).append(h)
    for observation in observations.values():
        for signal, where in observation.roles.items():
            for h in by_service.get(where, []):
                weight = registry.fault_types[h.fault_type].contradict.get(signal, 0.0)
                if weight > 0:
                    h.contradictions.append(
                        EvidenceUse(
                            observation=observation.id,
                            service=where,
                            signal=signal,
                            relation="contradicts",
                            llr=weight * worth(observation, signal),
                        )
                    )
    for h in hypotheses:
        timed = [u for u in h.local_uses() if observations[u.observation].onset is not None]
        h.onset = observations[max(timed, key=lambda u: u.llr).observation].onset if timed else None


def adopt_mechanisms(hypotheses: list[Hypothesis], registry: Registry) -> None:
    """A fault type that shows another's signature (a bad config whose symptom is a pool exhaustion,
    an attack that saturates the CPU like any surge) adds the evidence of the strongest such
    hypothesis on its service to its own: each observation counts once, at the larger of its two
    worths, and the signature's contradictions apply too. Which signature it shows stays named."""
    by_key = {h.key: h for h in hypotheses}
    for h in hypotheses:
        mechanisms = registry.fault_types[h.fault_type].mechanisms
        shown = [m for name in mechanisms if (m := by_key.get((h.service, name))) is not None]
        best = max(shown, key=lambda m: (m.evidence_llr, m.fault_type), default=None)
        if best is None:
            continue
        h.uses = _merged(h.uses, best.uses)
        h.contradictions = _merged(h.contradictions, best.contradictions)
        h.mechanism = best.fault_type
        h.onset = h.onset or best.onset


def _merged(a: list[EvidenceUse], b: list[EvidenceUse]) -> list[EvidenceUse]:
    best: dict[tuple[str, str, str], EvidenceUse] = {}
    for use in [*a, *b]:
        key = (use.observation, use.signal, use.relation)
        if key not in best or use.llr > best[key].llr:
            best[key] = use
    return list(best.values())


def normalise(hypotheses: list[Hypothesis]) -> None:
    """Each hypothesis' share of the probability against all others and against "none of them"
    (log-odds 0): the raw probability the calibration map turns into a confidence."""
    if not hypotheses:
        return
    top = max(max(h.log_odds for h in hypotheses), 0.0)
    total = math.exp(-top) + sum(math.exp(h.log_odds - top) for h in hypotheses)
    for h in hypotheses:
        h.probability = math.exp(h.log_odds - top) / total
