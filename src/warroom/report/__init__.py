"""Reports of a run: postmortem (Markdown, HTML), timeline, executed workflow, JSON files, metrics."""

from warroom.report.metrics import compute_metrics, derive_metrics
from warroom.report.postmortem import ReportPolicy
from warroom.report.writer import (
    REPORT_FILES,
    diagnosis_payload,
    findings_payload,
    metrics_payload,
    write_reports,
)

__all__ = [
    "REPORT_FILES",
    "ReportPolicy",
    "compute_metrics",
    "derive_metrics",
    "diagnosis_payload",
    "findings_payload",
    "metrics_payload",
    "write_reports",
]
