"""postmortem.html in a real browser (Debian's chromium, driven by Playwright): no horizontal
overflow at 1280 px, the summary on screen, and every chart drawn."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from test_report_support import build_record
from warroom.incident import Evidence, Finding
from warroom.report import write_reports

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH = 1280


@pytest.fixture(scope="module")
def browser() -> Browser:
    with tempfile.TemporaryDirectory(prefix="warroom-chromium-") as profile, sync_playwright() as play:
        # a fresh profile each run; nothing leaves loopback (every report is a local file)
        context = play.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": WIDTH, "height": 900}
        )
        yield context  # type: ignore[misc]
        context.close()


def wide_record():  # type: ignore[no-untyped-def]
    """The seed run with the things that push a page wide: unbroken tokens, long queries, many values."""
    record = build_record()
    report = record.phases[0].steps[0].report
    assert report is not None
    token = "x" * 400
    report.findings.append(
        Finding(
            title=f"finding {token}",
            confidence=0.5,
            kind="bottleneck",
            evidence=[
                Evidence(
                    source="logs",
                    query=f"service=checkout template='{token}'",
                    values={f"key_{i}": i * 1.5 for i in range(40)},
                    samples=[f"2024-01-15T14:20:00Z ERROR {token}"],
                )
            ],
        )
    )
    record.context["postmortem"]["contributing_factors"].append(f"factor {token}")
    return record


def test_postmortem_fits_1280_px_and_shows_its_charts(browser: Browser, tmp_path: Path) -> None:
    write_reports(wide_record(), tmp_path)
    page = browser.new_page()
    page.goto((tmp_path / "postmortem.html").as_uri())
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert client == WIDTH and scroll <= client, f"page is {scroll} px wide at a {client} px viewport"
    wider = page.evaluate(
        f"[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {WIDTH} + 1)"
        ".map(e => e.tagName)"
    )
    assert wider == []
    assert 5 <= page.locator("ul.summary > li").count() <= 15
    charts = page.locator("figure.chart svg")
    assert charts.count() >= 1
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    page.screenshot(path=str(tmp_path / "postmortem.png"), full_page=True)
    assert (tmp_path / "postmortem.png").stat().st_size > 10_000
    page.close()
