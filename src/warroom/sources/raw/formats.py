"""The shipped readers, in the order they are asked (more specific shapes first), and recognition."""

from __future__ import annotations

import json
from pathlib import Path

from warroom.sources.raw.alertmanager import AlertmanagerPayload
from warroom.sources.raw.compressed import content, suffix
from warroom.sources.raw.deploy_log import DeployLog
from warroom.sources.raw.git_changes import GitChanges
from warroom.sources.raw.kubectl import KubectlRolloutHistory
from warroom.sources.raw.logs_json import JsonLogs
from warroom.sources.raw.logs_logfmt import LogfmtLogs
from warroom.sources.raw.logs_plain import PlainLogs
from warroom.sources.raw.loki_responses import LokiResponses
from warroom.sources.raw.manifest_alert import ManifestAlert
from warroom.sources.raw.mysql_log import MysqlLog
from warroom.sources.raw.otlp_logs import OtlpLogs
from warroom.sources.raw.otlp_traces import OtlpTraces
from warroom.sources.raw.postgres_log import PostgresLog
from warroom.sources.raw.prometheus_api import PrometheusApiAnswer
from warroom.sources.raw.prometheus_samples import PrometheusSamples
from warroom.sources.raw.prometheus_text import PrometheusText
from warroom.sources.raw.reader import SNIFF_BYTES, RawReader
from warroom.sources.raw.sdk_spans import SdkSpans
from warroom.sources.raw.v1 import CanonicalTable

# Prometheus shapes first (a samples file is also JSON lines with a time and a value); database
# server logs before the generic log shapes (a PostgreSQL jsonlog line is also a JSON log line, a
# stderr line also a plain one); span records and deploy entries before JSON logs (all may carry a
# time and a message).
READERS: tuple[RawReader, ...] = (
    AlertmanagerPayload(),
    ManifestAlert(),
    LokiResponses(),  # a Loki answer has the same envelope as Prometheus' (status, data.result)
    PrometheusApiAnswer(),
    PrometheusSamples(),
    PrometheusText(),
    GitChanges(),
    KubectlRolloutHistory(),
    OtlpTraces(),
    OtlpLogs(),
    PostgresLog(),
    MysqlLog(),
    SdkSpans(),
    DeployLog(),
    JsonLogs(),
    LogfmtLogs(),
    PlainLogs(),
    CanonicalTable(),
)


def recognise(path: Path) -> RawReader | None:
    """The reader for this file, or None when no reader knows its shape."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    return next((reader for reader in READERS if reader.sniff(path, head)), None)


# A file named as JSON no reader took is parsed (up to this size) to say where it is broken.
JSON_CHECK_BYTES = 1 << 20
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def why_unrecognised(path: Path) -> str:
    """Why no reader took the file: one named as JSON that does not parse says where (a truncated
    alert payload is not 'a shape no reader knows'); anything else, that its shape is unknown."""
    if suffix(path) in JSON_SUFFIXES and path.stat().st_size <= JSON_CHECK_BYTES:
        text = content(path).decode("utf-8", errors="replace")
        documents = [(1, text)] if suffix(path) == ".json" else enumerate(text.splitlines(), start=1)
        for number, document in documents:
            try:
                if document.strip():
                    json.loads(document)
            except json.JSONDecodeError as exc:
                line = number + exc.lineno - 1
                # json's messages end in "at" before a position ("Unterminated string starting at")
                return f"not JSON (line {line}, column {exc.colno}: {exc.msg.removesuffix(' at').lower()})"
    return "no reader knows this file's shape"
