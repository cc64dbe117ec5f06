"""Calibration: the engine's raw probability (a hypothesis' softmax share) → a probability that the
answer is right, fitted on the benchmark corpora.

The map is Platt scaling with one term for what the data lacks, p = σ(a · logit(raw) + b + c · m),
where m is the number of modalities (logs, traces, metrics) the incident has none of: the same share
of the evidence is worth less when one modality could not confirm or contradict it (a Nezha code
fault without its logs). It is fitted by maximum likelihood (with a weak ridge on a, b and c so that
a corpus with few misses cannot push them to infinity). Its parameters are
read from `analysis/data/calibration.yaml` (the corpora and the command that fitted them beside
them); without that file the map is the identity. `warroom bench calibrate` (warroom/bench/
calibrate.py) refits it from benchmark results with `fit`, and reports the error of `out_of_sample`
(each group — dataset, or fault type — predicted by a map fitted on the other groups, so the error
it reports is not fitted on what it scores).

Below `threshold` the answer is "inconclusive": the top hypotheses are reported with what is missing
to decide between them, and no hypothesis is presented as the cause.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np
import yaml
from pydantic import BaseModel, Field

DATA_FILE = "data/calibration.yaml"
EPS = 1e-6
RIDGE = 0.01


class CalibrationMap(BaseModel):
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0  # per missing modality
    threshold: float = Field(0.5, gt=0, lt=1)  # below: inconclusive
    fitted_on: list[str] = Field(default_factory=list)
    cases: int = 0
    command: str = ""
    out_of_sample_ece: float | None = None

    def apply(self, raw: float, missing: int = 0) -> float:
        return _sigmoid(self.a * _logit(raw) + self.b + self.c * missing)

    def raw_of(self, confidence: float, missing: int = 0) -> float:
        """The raw probability this map turned into `confidence` (the inverse of `apply`)."""
        return _sigmoid((_logit(confidence) - self.b - self.c * missing) / self.a) if self.a else confidence


class Bin(BaseModel):
    low: float
    high: float
    cases: int
    mean_confidence: float
    accuracy: float


def _logit(p: float) -> float:
    p = min(max(p, EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@cache
def shipped() -> CalibrationMap:
    """The map in the data file (the identity when the file is absent)."""
    path = resources.files("warroom.analysis").joinpath(DATA_FILE)
    if not path.is_file():
        return CalibrationMap()
    return CalibrationMap.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))


def fit(
    raw: Sequence[float], correct: Sequence[bool], missing: Sequence[int] | None = None
) -> tuple[float, float, float]:
    """Platt's a, b and the missing-modality term c by maximum likelihood (ridge-regularised towards
    the identity map)."""
    from scipy.optimize import minimize  # a refit's only: a diagnosis never loads it

    x = np.asarray([_logit(p) for p in raw], dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    m = np.asarray(missing if missing is not None else [0] * len(raw), dtype=np.float64)
    if x.size == 0:
        return 1.0, 0.0, 0.0

    def loss(theta: np.ndarray) -> float:
        z = theta[0] * x + theta[1] + theta[2] * m
        # log(1 + e^z) − y·z, computed stably
        nll = np.logaddexp(0.0, z) - y * z
        return float(nll.sum() + RIDGE * ((theta[0] - 1.0) ** 2 + theta[1] ** 2 + theta[2] ** 2))

    best = minimize(loss, np.asarray([1.0, 0.0, 0.0]), method="L-BFGS-B")
    return float(best.x[0]), float(best.x[1]), float(best.x[2])


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[Bin]:
    """Cases per confidence bin with their mean confidence and their accuracy."""
    out = []
    for k in range(bins):
        low, high = k / bins, (k + 1) / bins
        members = [
            (c, ok)
            for c, ok in zip(confidence, correct, strict=True)
            if low <= c < high or (k == bins - 1 and c == 1.0)
        ]
        if not members:
            continue
        out.append(
            Bin(
                low=low,
                high=high,
                cases=len(members),
                mean_confidence=round(sum(c for c, _ in members) / len(members), 4),
                accuracy=round(sum(1 for _, ok in members if ok) / len(members), 4),
            )
        )
    return out


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Σ over bins of (cases in bin / cases) × |accuracy − mean confidence|."""
    table = reliability(confidence, correct, bins)
    total = sum(b.cases for b in table)
    if total == 0:
        return 0.0
    return round(sum(b.cases / total * abs(b.accuracy - b.mean_confidence) for b in table), 4)


def out_of_sample(
    raw: Sequence[float], correct: Sequence[bool], groups: Sequence[str], missing: Sequence[int] | None = None
) -> list[float]:
    """Each case's calibrated confidence from a map fitted on the other groups only (leave one group
    out); with a single group, the identity map (nothing else to fit on)."""
    lacking = list(missing) if missing is not None else [0] * len(raw)
    names = sorted(set(groups))
    out = [0.0] * len(raw)
    for name in names:
        train = [i for i, g in enumerate(groups) if g != name]
        a, b, c = (
            fit([raw[i] for i in train], [correct[i] for i in train], [lacking[i] for i in train])
            if train
            else (1.0, 0.0, 0.0)
        )
        model = CalibrationMap(a=a, b=b, c=c)
        for i, g in enumerate(groups):
            if g == name:
                out[i] = model.apply(raw[i], lacking[i])
    return out
