"""Importer for the public Nezha multimodal RCA dataset (FSE 2023): one incident bundle per fault.

It reads the dataset's own layout directly:

    rca_data/<date>/<date>-fault_list.json   {"HH": [{inject_time, inject_pod, inject_type, ...}]}
    rca_data/<date>/{log,trace}/HH_MM_*.csv  one file per minute (the inject minute and two after)
    rca_data/<date>/metric/<pod>_metric.csv  one row a minute for the whole day
    construct_data/<date>/...                 fault-free telemetry, same layout (the baseline)
    construct_data/root_cause_ts.json         inner-service labels (scoring only)

Clock: `inject_time` is UTC on the same clock as the data; `inject_timestamp` is wrong for code
faults and is never used. The application text inside each log line is in UTC+8, so the record's
own `TimeUnixNano` (UTC) is the timestamp we keep.

Labels go to `ground_truth.json` only; nothing the analysis reads (incident.yaml, telemetry, the
bundle's directory name) names the injected pod or the fault type.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

from warroom.errors import InputError

POD_HASH = r"-[a-z0-9]{6,10}-[a-z0-9]{5}$"  # Deployment pods: <name>-<replicaset hash>-<pod hash>
LOG_COLUMNS = ("Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID", "SpanID", "Log")
TRACE_COLUMNS = (
    "TraceID",
    "SpanID",
    "ParentID",
    "PodName",
    "OperationName",
    "StartTimeUnixNano",
    "EndTimeUnixNano",
    "Duration",
)
# Nezha metric column → (bundle metric name, scale). Names from sources/conventions.py where one
# exists; the rest keep their own snake_case name. Percentages become fractions, seconds become ms.
METRIC_MAP: dict[str, tuple[str, float]] = {
    "CpuUsage(m)": ("cpu_usage_millicores", 1.0),
    "CpuUsageRate(%)": ("cpu_utilization", 0.01),
    "MemoryUsage(Mi)": ("memory_usage_mib", 1.0),
    "MemoryUsageRate(%)": ("memory_utilization", 0.01),
    "SyscallRead": ("syscall_read", 1.0),
    "SyscallWrite": ("syscall_write", 1.0),
    "NetworkReceiveBytes": ("network_receive_bytes", 1.0),
    "NetworkTransmitBytes": ("network_transmit_bytes", 1.0),
    "PodClientLatencyP90(s)": ("client_latency_p90_ms", 1000.0),
    "PodServerLatencyP90(s)": ("latency_p90_ms", 1000.0),
    "PodClientLatencyP95(s)": ("client_latency_p95_ms", 1000.0),
    "PodServerLatencyP95(s)": ("latency_p95_ms", 1000.0),
    "PodClientLatencyP99(s)": ("client_latency_p99_ms", 1000.0),
    "PodServerLatencyP99(s)": ("latency_p99_ms", 1000.0),
    "PodWorkload(Ops)": ("request_rate", 1.0),
    "PodSuccessRate(%)": ("success_rate", 0.01),
    "NodeCpuUsageRate(%)": ("host_cpu_utilization", 0.01),
    "NodeMemoryUsageRate(%)": ("host_memory_utilization", 0.01),
    "NodeNetworkReceiveBytes": ("host_network_receive_bytes", 1.0),
}
FRONT_MAP: dict[str, tuple[str, float]] = {
    "SuccessRate(%)": ("success_rate", 0.01),
    "LatencyP50(s)": ("latency_p50_ms", 1000.0),
    "LatencyP90(s)": ("latency_p90_ms", 1000.0),
    "LatencyP95(s)": ("latency_p95_ms", 1000.0),
    "LatencyP99(s)": ("latency_p99_ms", 1000.0),
}
METRIC_HISTORY = timedelta(minutes=20)  # metric rows kept before the case's first minute
BASELINE_MARGIN = timedelta(minutes=1)
METRIC_STEP = timedelta(minutes=1)  # the dataset samples metrics once a minute


@dataclass(frozen=True)
class Fault:
    date: str
    inject_time: datetime
    pod: str
    fault_type: str

    @property
    def case_id(self) -> str:
        return f"nezha-{self.inject_time:%Y-%m-%dT%H-%M-%S}"


def service_of(pod: str) -> str:
    """The service a pod belongs to: the pod name without its ReplicaSet and pod hash suffixes."""
    return re.sub(POD_HASH, "", pod)


def _service_expr(column: str) -> pl.Expr:
    return pl.col(column).str.replace(POD_HASH, "")


def _read_csv(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    """Read a Nezha CSV as text; rows that do not parse (the dataset has a few concatenated
    lines) are skipped rather than failing the whole minute."""
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _row: "skip"),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}),
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=path)
    return frame


def _ns_to_ts(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int64, strict=False).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")


def read_logs(paths: list[Path]) -> pl.DataFrame | None:
    """Nezha log CSVs → bundle logs (timestamp, service, level, message, trace_id, instance, attributes)."""
    frames = [_read_csv(p, LOG_COLUMNS) for p in paths]
    frames = [f for f in frames if f.height]
    if not frames:
        return None
    raw = pl.concat(frames)
    text = pl.col("Log").str.json_path_match("$.log").fill_null(pl.col("Log"))
    out = (
        raw.with_columns(text.str.strip_chars_end().alias("_text"))
        .with_columns(
            _ns_to_ts("TimeUnixNano").alias("timestamp"),
            _service_expr("PodName").alias("service"),
            pl.col("_text")
            .str.extract(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b", 1)
            .fill_null("INFO")
            .alias("level"),
            # Drop the leading wall-clock time: it is UTC+8 and the record's own timestamp is kept.
            pl.col("_text").str.replace(r"^\d{2}:\d{2}:\d{2}\.\d+\s+", "").alias("message"),
            pl.col("TraceID").alias("trace_id"),
            pl.col("PodName").alias("instance"),
            pl.struct(span_id=pl.col("SpanID"), node=pl.col("Node")).struct.json_encode().alias("attributes"),
        )
        .filter(pl.col("timestamp").is_not_null() & (pl.col("message").str.len_chars() > 0))
        .select("timestamp", "service", "level", "message", "trace_id", "instance", "attributes")
    )
    return out.sort("timestamp") if out.height else None


def read_traces(paths: list[Path]) -> pl.DataFrame | None:
    """Nezha trace CSVs → bundle spans."""
    frames = [_read_csv(p, TRACE_COLUMNS) for p in paths]
    frames = [f for f in frames if f.height]
    if not frames:
        return None
    raw = pl.concat(frames)
    out = raw.select(
        pl.col("TraceID").alias("trace_id"),
        pl.col("SpanID").alias("span_id"),
        pl.when(pl.col("ParentID").is_in(["root", ""]))
        .then(None)
        .otherwise(pl.col("ParentID"))
        .alias("parent_span_id"),
        _service_expr("PodName").alias("service"),
        pl.col("OperationName").alias("operation"),
        _ns_to_ts("StartTimeUnixNano").alias("start_time"),
        _ns_to_ts("EndTimeUnixNano").alias("end_time"),
        pl.col("PodName").alias("instance"),
    ).filter(pl.col("start_time").is_not_null() & pl.col("end_time").is_not_null())
    return out.sort("start_time") if out.height else None


def _read_metric_file(path: Path, mapping: dict[str, tuple[str, float]], service_col: str) -> pl.DataFrame:
    raw = pl.read_csv(path, infer_schema=False)
    if "TimeStamp" not in raw.columns or service_col not in raw.columns:
        raise InputError(f"missing TimeStamp or {service_col} column", file=path)
    present = [c for c in mapping if c in raw.columns]
    base = raw.with_columns(
        pl.col("TimeStamp")
        .cast(pl.Int64, strict=False)
        .mul(1_000_000)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .alias("timestamp"),
        pl.col(service_col).alias("instance"),
    ).filter(pl.col("timestamp").is_not_null())
    long = base.select(
        "timestamp",
        "instance",
        *[(pl.col(c).cast(pl.Float64, strict=False) * mapping[c][1]).alias(mapping[c][0]) for c in present],
    ).unpivot(index=["timestamp", "instance"], variable_name="metric", value_name="value")
    return long.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())


def read_metrics(folder: Path) -> pl.DataFrame | None:
    """All per-pod metric files of a day plus the front-end file, in long format."""
    frames = []
    for path in sorted(folder.glob("*_metric.csv")):
        frames.append(_read_metric_file(path, METRIC_MAP, "PodName"))
    front = folder / "front_service.csv"
    if front.is_file():
        frames.append(_read_metric_file(front, FRONT_MAP, "ServiceName"))
    frames = [f for f in frames if f.height]
    if not frames:
        return None
    out = pl.concat(frames).with_columns(_service_expr("instance").alias("service"))
    return out.select("timestamp", "service", "metric", "value", "instance").sort("timestamp")


def read_fault_list(day_dir: Path, date: str) -> list[Fault]:
    path = day_dir / f"{date}-fault_list.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read fault list ({exc.__class__.__name__})", file=path) from None
    faults = []
    for entries in data.values() if isinstance(data, dict) else []:
        for entry in entries:
            try:
                when = datetime.strptime(entry["inject_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                faults.append(Fault(date, when, str(entry["inject_pod"]), str(entry["inject_type"])))
            except (KeyError, ValueError, TypeError):
                continue  # a malformed entry is not a case
    return sorted(faults, key=lambda f: f.inject_time)


def available_dates(root: Path) -> list[str]:
    base = root / "rca_data"
    if not base.is_dir():
        raise InputError("not a Nezha root (expected rca_data/<date>/ inside)", file=root)
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / f"{p.name}-fault_list.json").is_file())


def case_files(day_dir: Path, kind: str, when: datetime) -> list[Path]:
    """The per-minute files stored for a fault: the inject minute and the two after it."""
    names = [(when + timedelta(minutes=k)).strftime(f"%H_%M_{kind}.csv") for k in range(3)]
    return [day_dir / kind / n for n in names if (day_dir / kind / n).is_file()]


def _inner_labels(root: Path) -> dict[str, Any]:
    path = root / "construct_data" / "root_cause_ts.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


@dataclass
class _Baseline:
    logs: pl.DataFrame | None
    traces: pl.DataFrame | None
    metrics: pl.DataFrame | None


def _load_baseline(root: Path, date: str, day_metrics: pl.DataFrame | None) -> _Baseline:
    """Fault-free telemetry of the same day (construct_data), metrics cut to its time span."""
    folder = root / "construct_data" / date
    logs = read_logs(sorted((folder / "log").glob("*_log.csv"))) if (folder / "log").is_dir() else None
    traces = read_traces(sorted((folder / "trace").glob("*_trace.csv"))) if (folder / "trace").is_dir() else None
    metrics = None
    spans = [f for f in (logs, traces) if f is not None]
    if day_metrics is not None and spans:
        cols = ["timestamp" if "timestamp" in f.columns else "start_time" for f in spans]
        lo = min(f.get_column(c).min() for f, c in zip(spans, cols, strict=True))  # type: ignore[type-var]
        hi = max(f.get_column(c).max() for f, c in zip(spans, cols, strict=True))  # type: ignore[type-var]
        assert isinstance(lo, datetime) and isinstance(hi, datetime)
        metrics = day_metrics.filter(pl.col("timestamp").is_between(lo - BASELINE_MARGIN, hi + BASELINE_MARGIN))
    return _Baseline(logs, traces, metrics if metrics is not None and metrics.height else None)


def _write(frame: pl.DataFrame | None, path: Path) -> None:
    if frame is not None and frame.height:
        frame.write_parquet(path, compression="zstd")


def _span(frames: list[pl.DataFrame | None]) -> tuple[datetime, datetime] | None:
    lows: list[datetime] = []
    highs: list[datetime] = []
    for frame in frames:
        if frame is None or not frame.height:
            continue
        col = "timestamp" if "timestamp" in frame.columns else "start_time"
        lo, hi = frame.get_column(col).min(), frame.get_column(col).max()
        if isinstance(lo, datetime) and isinstance(hi, datetime):
            lows.append(lo)
            highs.append(hi)
    return (min(lows), max(highs)) if lows else None


def write_case(
    fault: Fault,
    day_dir: Path,
    out: Path,
    day_metrics: pl.DataFrame | None,
    baseline: _Baseline,
    labels: dict[str, Any],
) -> Path:
    """Write one fault as an incident bundle; raise InputError if its telemetry cannot be read."""
    log_files = case_files(day_dir, "log", fault.inject_time)
    trace_files = case_files(day_dir, "trace", fault.inject_time)
    if not log_files and not trace_files:
        raise InputError(f"no log or trace files for the fault at {fault.inject_time:%H:%M:%S}", file=day_dir)
    try:
        logs = read_logs(log_files) if log_files else None
        traces = read_traces(trace_files) if trace_files else None
    except (OSError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read case telemetry ({str(exc).splitlines()[0][:120]})", file=day_dir) from None
    span = _span([logs, traces])
    if span is None:
        raise InputError(f"empty telemetry for the fault at {fault.inject_time:%H:%M:%S}", file=day_dir)
    start, end = span
    metrics = None
    if day_metrics is not None:
        # A metric row aggregates the minute before its stamp: keep the one that closes the window.
        metrics = day_metrics.filter(pl.col("timestamp").is_between(start - METRIC_HISTORY, end + METRIC_STEP))
    bundle = out / fault.case_id
    if bundle.exists():
        shutil.rmtree(bundle)
    (bundle / "baseline").mkdir(parents=True)
    _write(logs, bundle / "logs.parquet")
    _write(traces, bundle / "traces.parquet")
    _write(metrics, bundle / "metrics.parquet")
    _write(baseline.logs, bundle / "baseline" / "logs.parquet")
    _write(baseline.traces, bundle / "baseline" / "traces.parquet")
    _write(baseline.metrics, bundle / "baseline" / "metrics.parquet")
    entry = None
    if traces is not None:
        roots = traces.filter(pl.col("parent_span_id").is_null()).get_column("service")
        entry = str(roots.mode().sort()[0]) if roots.len() else None
    window_end = max(end, fault.inject_time + timedelta(seconds=1))
    manifest: dict[str, Any] = {
        "version": 1,
        "title": f"Nezha TrainTicket fault at {fault.inject_time:%Y-%m-%d %H:%M:%S} UTC",
        "system": "TrainTicket (Nezha dataset)",
        "alert": {
            "name": "fault-injection-window",
            "fired_at": fault.inject_time.isoformat(),
            "summary": "A fault was injected somewhere in the system; find the root cause.",
            "labels": {"dataset": "nezha", "date": fault.date},
        },
        "symptoms": [],
        "window": {"start": fault.inject_time.isoformat(), "end": window_end.isoformat()},
    }
    if entry:
        manifest["entry_service"] = entry
    (bundle / "incident.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    service = service_of(fault.pod)
    label = labels.get(service, {}).get(fault.fault_type) if isinstance(labels.get(service), dict) else None
    truth = {
        "service": service,
        "pod": fault.pod,
        "fault_type": fault.fault_type,
        "inner_service_label": label,
        "inject_time": fault.inject_time.isoformat(),
    }
    (bundle / "ground_truth.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return bundle


@dataclass
class ImportResult:
    bundles: list[Path]
    failures: list[tuple[str, str]]  # (case id, reason)


def import_nezha_detailed(
    root: Path, out: Path, dates: list[str] | None = None, case: str | None = None
) -> ImportResult:
    """Import every fault (of the given dates, or the one case "YYYY-MM-DD HH:MM:SS"); a case whose
    files are missing or unreadable is reported in `failures`, not raised."""
    root = Path(root)
    known = available_dates(root)
    wanted = list(dates) if dates else known
    if case is not None:
        try:
            case_time = datetime.strptime(case, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise InputError(f"case {case!r} is not 'YYYY-MM-DD HH:MM:SS'", field="--case") from None
        wanted = [case_time.strftime("%Y-%m-%d")]
    else:
        case_time = None
    unknown = [d for d in wanted if d not in known]
    if unknown:
        raise InputError(
            f"date(s) {', '.join(unknown)} not in the dataset (have: {', '.join(known) or 'none'})", file=root
        )
    out.mkdir(parents=True, exist_ok=True)
    labels = _inner_labels(root)
    result = ImportResult([], [])
    for date in wanted:
        day_dir = root / "rca_data" / date
        faults = read_fault_list(day_dir, date)
        if case_time is not None:
            faults = [f for f in faults if f.inject_time == case_time]
            if not faults:
                raise InputError(f"no fault injected at {case} on {date}", file=day_dir)
        try:
            day_metrics = read_metrics(day_dir / "metric") if (day_dir / "metric").is_dir() else None
        except (OSError, pl.exceptions.PolarsError, InputError):
            day_metrics = None
        try:
            baseline = _load_baseline(root, date, day_metrics)
        except (OSError, pa.ArrowException, pl.exceptions.PolarsError, InputError):
            baseline = _Baseline(None, None, None)
        for fault in faults:
            try:
                result.bundles.append(write_case(fault, day_dir, out, day_metrics, baseline, labels))
            except (InputError, OSError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
                result.failures.append((fault.case_id, str(exc)))
    return result


def import_nezha(root: Path, out: Path, dates: list[str] | None = None, case: str | None = None) -> list[Path]:
    """Convert Nezha faults into incident bundles under `out`; return the bundle paths written."""
    return import_nezha_detailed(root, out, dates, case).bundles
