"""postmortem.html: everything escaped, self-contained, with sparklines when evidence has series."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from test_report_support import build_record
from warroom.incident import Evidence, Finding, TimelineKind
from warroom.report import write_reports

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


VOID = frozenset({"meta", "br", "rect", "line", "circle", "polyline"})


class TagCollector(HTMLParser):
    """Tags and attributes seen, and whether every element that was opened was closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append(tag)


def hostile_record():  # type: ignore[no-untyped-def]
    record = build_record()
    record.incident.title = f"Checkout {HOSTILE}"
    report = record.phases[0].steps[0].report
    assert report is not None
    report.findings.append(
        Finding(
            title=f"finding {HOSTILE}",
            confidence=0.5,
            kind="bottleneck",
            evidence=[Evidence(source="logs", query=f"query {HOSTILE}", samples=[f"line {HOSTILE}"])],
        )
    )
    record.timeline[0].summary = f"alert {HOSTILE}"
    record.context["impact"] = {f"key {HOSTILE}": f"value {HOSTILE}"}
    record.diagnosis[0].reason = f"reason {HOSTILE}"
    record.context["postmortem"]["contributing_factors"] = [f"factor {HOSTILE}"]
    return record


def test_html_escapes_everything(tmp_path: Path) -> None:
    write_reports(hostile_record(), tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;" in html
    parser = TagCollector()
    parser.feed(html)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not any(name.startswith("on") for name, _ in parser.attrs)
    # The hostile text appears escaped in each place it was planted.
    for where in ("Checkout", "finding", "query", "line", "alert", "Key", "value", "reason", "factor"):
        assert f"{where} &lt;script&gt;" in html, where


def test_html_is_self_contained(tmp_path: Path) -> None:
    write_reports(build_record(), tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    parser = TagCollector()
    parser.feed(html)
    assert "link" not in parser.tags and "script" not in parser.tags
    assert not [v for k, v in parser.attrs if k in ("src", "href") and v]
    assert "<style>" in html
    assert parser.open == [] and parser.mismatched == []


def test_html_has_every_section(tmp_path: Path) -> None:
    write_reports(build_record(), tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    headings = re.findall(r"<h2>(.+?)</h2>", html)
    for section in ("Summary", "Impact", "Timeline", "Root cause", "Contributing factors", "What went well"):
        assert section in headings
    for section in ("Challenges", "Action items", "Follow-up review", "Metrics", "Evidence"):
        assert section in headings


def test_sparklines_for_evidence_series(tmp_path: Path) -> None:
    write_reports(build_record(), tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    svgs = re.findall(r"<svg .*?</svg>", html)
    assert svgs, "evidence with series must be charted"
    # The pool series (8 points) comes first: it backs the leading candidate.
    first = svgs[0]
    points = re.search(r'points="([^"]+)"', first)
    assert points is not None and len(points.group(1).split()) == 8
    assert 'stroke-dasharray="3,3"' in first  # the baseline as a dashed line
    assert "E-pool · checkout-service/db_pool_utilization · series" in html
    assert "min 0.41, max 1, last 1" in html


def strip_values(record, keep) -> None:  # type: ignore[no-untyped-def]
    for phase in record.phases:
        for step in phase.steps:
            if step.report is not None:
                for finding in step.report.findings:
                    for e in finding.evidence:
                        e.values = {k: v for k, v in e.values.items() if keep(k, v)}
    record.context.pop("evidence")


def test_bars_for_evidence_with_aggregates_only(tmp_path: Path) -> None:
    record = build_record()
    strip_values(record, lambda k, v: not isinstance(v, list))
    write_reports(record, tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    # E-pool now has only baseline_mean 0.42 and peak 1.0: two bars, the peak full width.
    figure = html.split("E-pool · checkout-service/db_pool_utilization · baseline vs incident", 1)[0]
    svg = figure.rsplit("<svg", 1)[1]
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 2 and widths[1] == 234.0 and abs(widths[0] - 234.0 * 0.42) < 0.1
    assert "baseline_mean 0.42 → peak 1" in html


def test_no_chart_without_numbers_to_chart(tmp_path: Path) -> None:
    record = build_record()
    strip_values(record, lambda k, v: False)
    write_reports(record, tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    assert "<svg" not in html and "Key signals" not in html


def test_timeline_kinds_rendered_in_html(tmp_path: Path) -> None:
    write_reports(build_record(), tmp_path)
    html = (tmp_path / "postmortem.html").read_text()
    for kind in (TimelineKind.ALERT, TimelineKind.DECISION, TimelineKind.ACTION_APPROVED):
        assert f"<td>{kind.value}</td>" in html
    # Finding events belong to timeline.md, not to the postmortem's key-event table.
    assert "<td>finding</td>" not in html
