"""Prometheus and OpenMetrics text exposition: what `/metrics` answers, saved as scrape files.

Parsed with prometheus_client's own parsers (OpenMetrics when the text ends with `# EOF`; several
OpenMetrics scrapes may follow each other in one file). `# TYPE` lines say what each family is.
Samples with timestamps keep them; a scrape written without them is one scrape at one time: the
time in the file name (ISO 8601, or epoch seconds or milliseconds), else the file's modification
time, which the notes say. What a service exposes carries no `job` label (Prometheus adds it when it
scrapes): series without one get the file's name, less any time in it, as their job
(`checkout-2024-05-27T15-00-00Z.prom` → job="checkout"), as a scrape job named after the file would.

One file is one source of samples: a counter's rate needs two scrapes of it in the same file
(samples with timestamps, or OpenMetrics scrapes one after another); a folder of single scrapes
gives their gauges.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from warroom.errors import BundleError
from warroom.sources.mapping.samples import SID, Samples, SeriesType, from_label_sets
from warroom.sources.raw.compressed import content, head_text, suffix
from warroom.sources.raw.prometheus_read import samples_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import decoded, decoded_head

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

_SAMPLE_LINE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?\s+(NaN|[+-]?Inf|[-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)(\s+[-+]?[0-9.]+)?\s*$"
)
# `2024-05-27T15:21:30Z`, or with dashes in the time as file names often have (`T15-21-30Z`).
_ISO_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}[:\-]\d{2}[:\-]\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?")
_EPOCH_IN_NAME = re.compile(r"(?<!\d)(\d{10}(?:\d{3})?)(?!\d)")
SKIP_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet", ".yaml", ".yml", ".log")
DECLARED: dict[str, SeriesType] = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
}


def _families(text: str) -> Iterator[Metric]:
    # The parsers load only for a bundle that holds a scrape: every read probes this format.
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
    from prometheus_client.parser import text_string_to_metric_families as text_families

    if re.search(r"^# EOF\s*$", text, re.MULTILINE):
        for scrape in re.split(r"^# EOF\s*$\n?", text, flags=re.MULTILINE):
            if scrape.strip():
                yield from openmetrics_families(scrape + "# EOF\n")
    else:
        yield from text_families(text)


def _scrape_time(path: Path) -> tuple[datetime, str]:
    """When a scrape without timestamps was taken, and how that was told."""
    iso = _ISO_IN_NAME.search(path.name)
    if iso:
        day, clock, zone = iso.groups()
        when = datetime.fromisoformat(f"{day}T{clock.replace('-', ':')}{(zone or '').replace('Z', '+00:00')}")
        return (when if when.tzinfo else when.replace(tzinfo=UTC)), "the time in its name"
    epoch = _EPOCH_IN_NAME.search(path.name)
    if epoch:
        number = int(epoch.group(1))
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC), "the epoch time in its name"
    return datetime.fromtimestamp(path.stat().st_mtime, UTC), "the file's modification time"


def job_of(path: Path) -> str:
    """The job a scrape file stands for: its name without suffixes and without a time in it."""
    stem = path.name.split(".", 1)[0]
    stem = _EPOCH_IN_NAME.sub("", _ISO_IN_NAME.sub("", stem))
    return stem.strip("-_ ") or "scrape"


def _bad_line(text: str) -> int | None:
    """The first line that does not parse on its own (the parsers' messages name no line)."""
    from prometheus_client.parser import text_string_to_metric_families as text_families

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            list(text_families(line + "\n"))
        except ValueError:
            return number
    return None


def text_samples(path: Path) -> tuple[Samples, str | None]:
    """The samples of an exposition file, and how the time of a scrape without timestamps was told."""
    text = decoded(content(path), path)
    label_sets: list[dict[str, str]] = []
    index: dict[tuple[tuple[str, str], ...], int] = {}
    sids: list[int] = []
    stamps: list[float | None] = []
    values: list[float] = []
    declared: dict[str, SeriesType] = {}
    try:
        for family in _families(text):
            if family.type in DECLARED:
                declared[family.name] = DECLARED[family.type]
            for sample in family.samples:
                key = (("metric", sample.name), *sorted(sample.labels.items()))
                sid = index.setdefault(key, len(label_sets))
                if sid == len(label_sets):
                    label_sets.append(dict(key))
                sids.append(sid)
                stamps.append(float(sample.timestamp) if sample.timestamp is not None else None)
                values.append(float(sample.value))
    except ValueError as exc:
        message = str(exc)
        raise BundleError(f"not a valid exposition ({message[:160]})", file=path, line=_bad_line(text)) from None
    job = job_of(path)
    for labels in label_sets:
        labels.setdefault("job", job)
    told = None
    if any(s is None for s in stamps):
        when, told = _scrape_time(path)
        stamps = [s if s is not None else when.timestamp() for s in stamps]
    points = pl.DataFrame(
        {
            "sid": pl.Series(sids, dtype=SID),
            "timestamp": (pl.Series(stamps, dtype=pl.Float64) * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC")),
            "value": pl.Series(values, dtype=pl.Float64),
        }
    )
    samples = from_label_sets(label_sets, points)
    samples.declared = declared
    return samples, told


class PrometheusText:
    name = "Prometheus text exposition"

    def sniff(self, path: Path, head: bytes) -> bool:
        if suffix(path) in SKIP_SUFFIXES:
            return False
        # leniently: the head may end inside a character, and a bad byte is named when the file is read
        text = decoded_head(head_text(path, head))
        lines = [line.strip() for line in text.splitlines()[:200] if line.strip()]
        if any(line.startswith(("# TYPE ", "# HELP ")) for line in lines):
            return True
        samples = [line for line in lines if not line.startswith("#")]
        return bool(samples) and sum(bool(_SAMPLE_LINE.match(line)) for line in samples) >= 0.9 * len(samples)

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        samples, told = text_samples(path)
        read = samples_read(samples, path, options, "Prometheus text exposition")
        if told:
            read.notes.insert(1, f"a scrape without timestamps: stamped with {told}")
        return read
