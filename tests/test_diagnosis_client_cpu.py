"""A statement that runs slower from a CPU-starved client is the client's CPU, not a missing index:
an async client's call ends when its event loop gets to it, so every statement it sends reads
slower while the database does nothing new (the ninth live run's cpu_consumption capture replayed
as catalog's missing index: one familiar statement at 7.6 ms against 1.1 ms, catalog's CPU 190
sigma up, and nothing on the database side)."""

from __future__ import annotations

from support_diagnosis import ranked_without_changes
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.faults import registry

CALLS = {"gateway": ["catalog"], "catalog": ["postgresql"]}


def _obs(signal: str, service: str, z: float, effect: float = 1.0) -> Observation:
    return Observation(
        id=f"{signal}-{service}", detector="test", modality="metrics", signal=signal, service=service,
        strength=z, noise=3.5, effect=effect, query=f"{signal} of {service}",
    )  # fmt: skip


SLOWER_STATEMENT = [_obs("db_statement.slow", "catalog", 13.0), _obs("latency.up", "catalog", 40.0)]


def test_a_cpu_starved_client_s_slower_statement_is_its_cpu() -> None:
    # the capture's values: catalog's CPU went from 2 % to 46 % of a core (effect 0.44)
    cpu = [_obs("cpu_utilization.up", "catalog", 194.0, 0.44), _obs("cpu_per_request.up", "catalog", 458.0, 0.44)]
    ranked = ranked_without_changes([*SLOWER_STATEMENT, *cpu], CALLS)
    assert ranked[0].service == "catalog" and registry().fault_types[ranked[0].fault_type].family == "cpu"
    index = next(h for h in ranked if h.fault_type == "missing_index")
    assert [u.observation for u in index.contradictions] == ["cpu_utilization.up-catalog"]


def test_a_slower_statement_from_an_idle_client_is_still_the_query() -> None:
    top = ranked_without_changes(SLOWER_STATEMENT, CALLS)[0]
    assert (top.service, top.fault_type) == ("catalog", "missing_index")
