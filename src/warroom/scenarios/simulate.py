"""Request-level simulation: sampled front-door requests walk their endpoint's call tree; every
call becomes a span with its replica, start, duration, status and error cause.

Everything is vectorised over the requests of one endpoint: the recursion is over the (small)
call tree, never over requests. Metrics, logs and traces are all derived from these spans, so the
three modalities tell one consistent story.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from warroom.scenarios.effects import Effects, ServiceEffect
from warroom.scenarios.system import Call, Node, System

# Why a span failed.
OK, OWN_ERROR, OWN_HANG, DOWNSTREAM, TIMEOUT, BACKGROUND, CLIENT = 0, 1, 2, 3, 4, 5, 6


@dataclass
class SpanColumns:
    """Spans as parallel lists of array chunks (concatenated once at the end)."""

    request: list[np.ndarray] = field(default_factory=list)
    span: list[np.ndarray] = field(default_factory=list)
    parent: list[np.ndarray] = field(default_factory=list)
    service: list[np.ndarray] = field(default_factory=list)
    operation: list[np.ndarray] = field(default_factory=list)
    replica: list[np.ndarray] = field(default_factory=list)
    start_ms: list[np.ndarray] = field(default_factory=list)
    duration_ms: list[np.ndarray] = field(default_factory=list)
    cause: list[np.ndarray] = field(default_factory=list)
    http_status: list[np.ndarray] = field(default_factory=list)
    cause_service: list[np.ndarray] = field(default_factory=list)  # where the failure started
    attempt: list[np.ndarray] = field(default_factory=list)
    statement: list[np.ndarray] = field(default_factory=list)


@dataclass
class Spans:
    """All spans of a simulated period (numpy columns) and the request table."""

    request: np.ndarray
    span: np.ndarray
    parent: np.ndarray  # -1 for the root
    service: np.ndarray  # index into names.services
    operation: np.ndarray  # index into names.operations
    replica: np.ndarray
    start_ms: np.ndarray
    duration_ms: np.ndarray
    cause: np.ndarray
    http_status: np.ndarray
    cause_service: np.ndarray
    attempt: np.ndarray
    statement: np.ndarray  # index into names.statements, -1 if none
    services: list[str]
    operations: list[str]
    statements: list[str]
    # Per request:
    req_step: np.ndarray
    req_time_ms: np.ndarray
    req_endpoint: np.ndarray
    req_weight: np.ndarray  # front-door requests per second this sample stands for
    req_extra: np.ndarray  # bool: request belongs to extra (e.g. attack) traffic


class _Namer:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.items)
            self.items.append(name)
        return self.index[name]


class Simulator:
    """Runs one period's requests through the system under some Effects."""

    def __init__(self, system: System, effects: Effects, steps: int, rng: np.random.Generator) -> None:
        self.system = system
        self.effects = effects
        self.steps = steps
        self.rng = rng
        self.out = SpanColumns()
        self.next_span = 0
        self.services = _Namer()
        self.operations = _Namer()
        self.statements = _Namer()
        for name in system.services:
            self.services(name)
        self._effect_cache: dict[tuple[str, str], ServiceEffect | None] = {}
        self.extra_offset = 0
        self.extra_flags = np.zeros(0, dtype=bool)

    def _effect(self, service: str, operation: str) -> ServiceEffect | None:
        key = (service, operation)
        if key not in self._effect_cache:
            effect = self.effects.services.get(f"{service}:{operation}") or self.effects.services.get(service)
            if effect is not None and effect.operations is not None and operation not in effect.operations:
                effect = None
            self._effect_cache[key] = effect
        return self._effect_cache[key]

    def run_node(
        self,
        node: Node,
        req: np.ndarray,
        step: np.ndarray,
        start: np.ndarray,
        parent: np.ndarray,
        attempt: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Simulate `node` for the given requests; return duration, cause, HTTP status and the
        index of the service where a failure started."""
        n = req.size
        svc = self.system.services[node.service]
        rng = self.rng
        replica = rng.integers(0, svc.replicas, n)
        span_ids = np.arange(self.next_span, self.next_span + n)
        self.next_span += n
        median = np.full(n, svc.median_ms)
        add = np.zeros(n)
        p_error = np.full(n, svc.error_rate)
        p_hang = np.zeros(n)
        effect = self._effect(node.service, node.operation)
        if effect is not None:
            median = median * effect.lat_mult[replica, step]
            add = effect.lat_add_ms[replica, step]
            p_error = p_error + effect.p_error[replica, step]
            p_hang = effect.p_hang[replica, step]
        own = rng.lognormal(np.log(median), svc.sigma) + add
        draw = rng.random(n)
        hang = draw < p_hang
        fault_error = (~hang) & (draw < p_hang + p_error - svc.error_rate)
        background = (~hang) & (~fault_error) & (draw < p_hang + p_error)
        cause = np.where(hang, OWN_HANG, np.where(fault_error, OWN_ERROR, np.where(background, BACKGROUND, OK)))
        status = np.where(hang, effect.hang_status if effect else 503, 200)
        status = np.where(fault_error, effect.error_status if effect else 500, status)
        status = np.where(background, 500, status)
        key = f"{node.service}:{node.operation}"
        client = np.zeros(n, dtype=bool)
        client_status = 400
        if key in self.effects.client_errors:
            prob, client_status, _ = self.effects.client_errors[key]
            client = (cause == OK) & (rng.random(n) < prob[step])
        if key in self.effects.extra_failures and self.extra_flags.size:
            forced = self.extra_flags[req - self.extra_offset] & (cause == OK)
            client_status = self.effects.extra_failures[key][0]
            client = client | forced
        cause = np.where(client, CLIENT, cause)
        status = np.where(client, client_status, status)
        hang_ms = effect.hang_ms if effect else 5000.0
        own = np.where(hang, hang_ms * rng.uniform(1.0, 1.02, n), own)
        cause_service = np.where(cause != OK, self.services(node.service), -1)
        # A third of the own work happens before the first call (parsing, validation).
        cursor = start + np.where(cause == OK, own * 0.3, own)
        alive = cause == OK
        for call in node.calls:
            cursor, alive, cause, status, cause_service = self._call(
                node, call, req, step, cursor, span_ids, alive, cause, status, cause_service
            )
        end = cursor + np.where(cause == OK, own * 0.7, 0.0)
        end = np.where(np.isin(cause, (OWN_HANG, OWN_ERROR, BACKGROUND, CLIENT)), start + own, end)
        duration = end - start
        out = self.out
        out.request.append(req)
        out.span.append(span_ids)
        out.parent.append(parent)
        out.service.append(np.full(n, self.services(node.service), dtype=np.int32))
        out.operation.append(np.full(n, self.operations(node.operation), dtype=np.int32))
        out.replica.append(replica.astype(np.int32))
        out.start_ms.append(start)
        out.duration_ms.append(duration)
        out.cause.append(cause.astype(np.int8))
        out.http_status.append(status.astype(np.int16))
        out.cause_service.append(cause_service.astype(np.int32))
        out.attempt.append(np.full(n, attempt, dtype=np.int8))
        stmt = self.statements(node.statement) if node.statement else -1
        out.statement.append(np.full(n, stmt, dtype=np.int32))
        return duration, cause, status, cause_service

    def _call(
        self,
        node: Node,
        call: Call,
        req: np.ndarray,
        step: np.ndarray,
        cursor: np.ndarray,
        span_ids: np.ndarray,
        alive: np.ndarray,
        cause: np.ndarray,
        status: np.ndarray,
        cause_service: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        idx = np.flatnonzero(alive)
        if call.gate is not None:
            gate = self.effects.gates.get(call.gate)
            idx = idx[gate[step[idx]]] if gate is not None else idx[:0]
        if idx.size == 0:
            return cursor, alive, cause, status, cause_service
        cursor = cursor.copy()
        delay_series = self.effects.edge_delay_ms.get((node.service, call.node.service))
        timeout_series = self.effects.call_timeouts.get((node.service, call.node.service))
        remaining = idx
        for attempt in range(call.retries + 1):
            delay = delay_series[step[remaining]] if delay_series is not None else 0.0
            d, c, s, cs = self.run_node(
                call.node, req[remaining], step[remaining], cursor[remaining] + delay, span_ids[remaining],
                attempt,
            )  # fmt: skip
            observed = d + 2 * delay
            limit = timeout_series[step[remaining]] if timeout_series is not None else call.timeout_ms
            timed_out = observed > limit
            observed = np.minimum(observed, limit)
            failed = timed_out | (c != OK)
            cursor[remaining] += observed
            if not call.critical:
                return cursor, alive, cause, status, cause_service
            # Client errors (4xx) are final; timeouts and server errors are retried.
            retryable = timed_out | ((c != OK) & (c != CLIENT))
            final = ~retryable if attempt < call.retries else np.ones(remaining.size, dtype=bool)
            done = remaining[final]
            f_done = failed[final]
            bad = done[f_done]
            to = timed_out[final][f_done]
            cause = cause.copy()
            status = status.copy()
            cause_service = cause_service.copy()
            child_status = s[final][f_done]
            client_failure = (~to) & (c[final][f_done] == CLIENT)
            cause[bad] = np.where(to, TIMEOUT, np.where(client_failure, CLIENT, DOWNSTREAM))
            status[bad] = np.where(to, 504, np.where(child_status >= 400, child_status, 502))
            child = self.services(call.node.service)
            cause_service[bad] = np.where(to, child, cs[final][f_done])
            alive = alive.copy()
            alive[bad] = False
            remaining = remaining[~final]
            if remaining.size == 0:
                break
        return cursor, alive, cause, status, cause_service

    def finish(
        self, req_step: np.ndarray, req_time: np.ndarray, endpoint: np.ndarray, weight: np.ndarray, extra: np.ndarray
    ) -> Spans:
        out = self.out

        def cat(chunks: list[np.ndarray], dtype: type | None = None) -> np.ndarray:
            if not chunks:
                return np.zeros(0, dtype=dtype or np.float64)
            return np.concatenate(chunks)

        return Spans(
            request=cat(out.request),
            span=cat(out.span),
            parent=cat(out.parent),
            service=cat(out.service),
            operation=cat(out.operation),
            replica=cat(out.replica),
            start_ms=cat(out.start_ms),
            duration_ms=cat(out.duration_ms),
            cause=cat(out.cause),
            http_status=cat(out.http_status),
            cause_service=cat(out.cause_service),
            attempt=cat(out.attempt),
            statement=cat(out.statement),
            services=self.services.items,
            operations=self.operations.items,
            statements=self.statements.items,
            req_step=req_step,
            req_time_ms=req_time,
            req_endpoint=endpoint,
            req_weight=weight,
            req_extra=extra,
        )


def simulate(
    system: System,
    effects: Effects,
    times: np.ndarray,
    step_s: float,
    rps: np.ndarray,
    per_step: int,
    rng: np.random.Generator,
    min_per_endpoint: float = 2.0,
) -> Spans:
    """Sample `per_step` front-door requests per grid step (stratified by endpoint so that rare
    endpoints still get samples; each sample carries the traffic it stands for) and run them."""
    steps = times.size
    sim = Simulator(system, effects, steps, rng)
    req_steps: list[np.ndarray] = []
    req_times: list[np.ndarray] = []
    req_endpoints: list[np.ndarray] = []
    req_weights: list[np.ndarray] = []
    req_extra: list[np.ndarray] = []
    next_req = 0
    for index, endpoint in enumerate(system.endpoints):
        expected = max(min_per_endpoint, per_step * endpoint.share)
        counts = rng.poisson(expected, steps)
        extra_series = effects.extra_traffic.get(endpoint.path)
        extra_counts = np.zeros(steps, dtype=np.int64)
        thinning = 1.0
        if extra_series is not None:
            # Extra traffic (a multiple of the endpoint's normal traffic) is sampled at up to three
            # times the endpoint's normal sample count; each extra sample then stands for
            # `thinning` times the traffic of a normal one (memory stays bounded at any surge).
            thinning = max(1.0, float(np.max(extra_series)) / 3.0)
            extra_counts = rng.poisson(expected * extra_series / thinning)
        total = counts + extra_counts
        n = int(total.sum())
        if n == 0:
            continue
        step = np.repeat(np.arange(steps), total)
        is_extra = np.concatenate(
            [np.r_[np.zeros(c, dtype=bool), np.ones(e, dtype=bool)] for c, e in zip(counts, extra_counts, strict=True)]
        ) if extra_series is not None else np.zeros(n, dtype=bool)  # fmt: skip
        offset = rng.uniform(0.0, step_s, n)
        start = (times[step] + offset) * 1000.0
        req = np.arange(next_req, next_req + n)
        next_req += n
        weight = rps[step] * endpoint.share / expected
        if thinning > 1.0:
            weight = np.where(is_extra, weight * thinning, weight)
        sim.extra_offset, sim.extra_flags = next_req - n, is_extra
        sim.run_node(endpoint.root, req, step, start, np.full(n, -1))
        req_steps.append(step)
        req_times.append(start)
        req_endpoints.append(np.full(n, index, dtype=np.int32))
        req_weights.append(weight)
        req_extra.append(is_extra)
    return sim.finish(
        np.concatenate(req_steps),
        np.concatenate(req_times),
        np.concatenate(req_endpoints),
        np.concatenate(req_weights),
        np.concatenate(req_extra),
    )
