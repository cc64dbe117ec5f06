"""Security evidence: failed logins from many more distinct client addresses than the reference saw
(credential stuffing replays leaked credentials from thousands of addresses), as a Poisson tail of
the window's distinct failing sources against the reference's per minute (`analysis.security`
measures them)."""

from __future__ import annotations

import numpy as np

from warroom.analysis import surprise
from warroom.analysis.diagnosis.detectors.result import DetectorResult
from warroom.analysis.diagnosis.evidence import Observation, critical_z
from warroom.analysis.diagnosis.periods import Periods
from warroom.analysis.security import failed_logins


def detect(periods: Periods) -> DetectorResult:
    result = DetectorResult("security")
    found = failed_logins(periods.current.logs, periods.baseline.logs, periods.start, periods.end)
    if found is None or found.service is None or found.reference_minutes is None:
        return result
    expected = (found.reference_distinct_ips + 0.5) * found.minutes / found.reference_minutes
    strength = float(surprise.burst_z(np.asarray([float(found.distinct_ips)]), np.asarray([expected]))[0])
    result.tests = 1
    if strength <= 0:
        return result
    result.add(
        Observation(
            detector="security.failed_logins",
            modality="logs",
            signal="failed_login_sources.up",
            service=found.service,
            strength=strength,
            noise=critical_z(1),
            effect=found.new_ip_share,
            baseline=float(found.reference_distinct_ips),
            value=float(found.distinct_ips),
            peak=float(found.distinct_ips),
            unit="distinct client addresses",
            query="request logs with auth.result failed or http.status_code 401/403: distinct client.ip",
            start=periods.start,
            end=periods.end,
            samples=found.samples,
            data={
                "failures": found.failures,
                "reference_failures": found.reference_failures,
                "new_ip_share": found.new_ip_share,
                "top_ip_share": found.top_ip_share,
                "targeted_users": found.targeted_users,
            },
        )
    )
    return result
