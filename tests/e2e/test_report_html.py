"""The HTML drill report as a browser shows it: a PASSED and a FAILED drill through the local
cloud, their pages read from S3 (stored beside the JSON reports) and opened in headless Chromium
(Debian's chromium, driven over the DevTools protocol by drillharness.browser)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import RunRecord

from drillharness.browser import HeadlessChromium
from drillharness.invariants import check_nothing_running
from drillharness.screenshots import passed_then_failed, read_html_report
from localcloud.cloud import LocalCloud
from localcloud.postgres import running_servers

pytestmark = pytest.mark.e2e

ROWS = "[...document.querySelectorAll('#checks tbody tr')]"
BARS = "[...document.querySelectorAll('#phase-chart rect.bar')]"


@dataclass(frozen=True)
class Drill:
    run: RunRecord
    report: dict[str, Any]
    report_bytes: bytes
    html: str


@dataclass(frozen=True)
class Drills:
    passed: Drill
    failed: Drill


def stored(cloud: LocalCloud, run: RunRecord) -> Drill:
    assert cloud.aws is not None
    body = (
        cloud.aws.client("s3")
        .get_object(Bucket=cloud.aws.output("ReportBucketName"), Key=report_key(run))["Body"]
        .read()
    )
    return Drill(
        run=run,
        report=cloud.report(report_key(run)),
        report_bytes=body,
        html=read_html_report(cloud, run),
    )


@pytest.fixture(scope="module")
def drills() -> Drills:
    """A PASSED drill of the clinic database, then a FAILED one after a third of the
    prescriptions were deleted; the cloud is stopped before the pages are looked at."""
    servers_before = set(map(id, running_servers()))
    cloud = LocalCloud(patients=300)
    cloud.start()
    try:
        passed, failed = passed_then_failed(cloud)
        found = Drills(passed=stored(cloud, passed), failed=stored(cloud, failed))
    finally:
        cloud.stop()
    assert [s for s in running_servers() if id(s) not in servers_before] == []
    assert check_nothing_running(cloud) == []
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[HeadlessChromium]:
    with HeadlessChromium(width=1200) as chromium:
        yield chromium


def test_a_passed_drill_shows_its_verdict_database_phases_and_checks(
    drills: Drills, browser: HeadlessChromium
) -> None:
    # Given a drill that PASSED, whose HTML report the publish step stored in S3
    phases = drills.passed.report["timings"]["phases"]
    # When the page is opened in Chromium
    browser.load(drills.passed.html)
    # Then the verdict banner says PASSED for the clinic database
    verdict = browser.evaluate("document.getElementById('verdict').innerText")
    assert "PASSED" in verdict and "clinic-db" in verdict
    # And the phase chart is drawn, one visible bar per phase, in the report's order
    chart = browser.evaluate(
        "(() => { const box = document.getElementById('phase-chart').getBoundingClientRect();"
        " return [box.width, box.height]; })()"
    )
    assert chart[0] > 600 and chart[1] > 100
    bars = browser.evaluate(
        f"{BARS}.map(bar => {{ const box = bar.getBoundingClientRect();"
        " return [bar.dataset.phase, box.width, box.height]; })"
    )
    assert [name for name, _, _ in bars] == [phase["phase"] for phase in phases]
    assert all(width > 0 and height > 0 for _, width, height in bars)
    # And every check the checker ran has a row, all passed
    statuses = browser.evaluate(f"{ROWS}.map(row => row.dataset.status)")
    assert len(statuses) == len(drills.passed.report["checks"]["checks"]) > 5
    assert set(statuses) == {"pass"}


def test_a_failed_drill_shows_the_failing_check_first_in_red(
    drills: Drills, browser: HeadlessChromium
) -> None:
    # Given a drill that FAILED on row counts, and the PASSED one before it
    browser.load(drills.passed.html)
    passed_colour = browser.evaluate(
        "getComputedStyle(document.getElementById('verdict')).backgroundColor"
    )
    # When the FAILED drill's page is opened
    browser.load(drills.failed.html)
    # Then its banner says FAILED and why, on red, not on the PASSED page's colour
    verdict = browser.evaluate("document.getElementById('verdict').innerText")
    assert "FAILED" in verdict and "row_counts[clinic]" in verdict
    colour = browser.evaluate(
        "getComputedStyle(document.getElementById('verdict')).backgroundColor"
    )
    red, green, blue = (int(part) for part in re.findall(r"\d+", colour)[:3])
    assert colour != passed_colour and red > 2 * max(green, blue)
    # And the first row of the checks table is the failing check, with the lost rows in it
    first = browser.evaluate(
        f"(() => {{ const row = {ROWS}[0]; return [row.dataset.status, row.innerText]; }})()"
    )
    assert first[0] == "fail"
    assert "row_counts[clinic]" in first[1] and '"clinic"."prescriptions"' in first[1]
    statuses = browser.evaluate(f"{ROWS}.map(row => row.dataset.status)")
    assert statuses.count("fail") == 1 and set(statuses[1:]) <= {"pass", "warn"}


@pytest.mark.parametrize("which", ["passed", "failed"])
def test_the_page_asks_for_nothing_but_itself(
    drills: Drills, browser: HeadlessChromium, which: str
) -> None:
    # Given a drill's HTML report
    html = getattr(drills, which).html
    # When Chromium opens it
    url = browser.load(html)
    # Then the only request the page made was for the page itself: no font, image or style
    assert browser.requests() == [url]


def test_the_page_shows_the_fingerprint_of_the_stored_json_and_links_the_previous_report(
    drills: Drills, browser: HeadlessChromium
) -> None:
    # Given the FAILED drill, the second report of the clinic database
    # When its page is opened
    browser.load(drills.failed.html)
    # Then it shows the SHA-256 of the JSON report exactly as S3 holds it
    shown = browser.evaluate("document.getElementById('report-sha256').innerText")
    assert shown == hashlib.sha256(drills.failed.report_bytes).hexdigest()
    # And its chain names the PASSED drill's report and that report's SHA-256
    chain = browser.evaluate("document.getElementById('chain').innerText")
    assert drills.passed.run.run_id in chain
    assert hashlib.sha256(drills.passed.report_bytes).hexdigest() in chain


def test_the_page_prints_to_pdf(drills: Drills, browser: HeadlessChromium) -> None:
    # Given the FAILED drill's page
    browser.load(drills.failed.html)
    # When Chromium prints it
    pdf = browser.print_pdf()
    # Then it is a PDF document of at least one page
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 1


def test_chromium_and_its_profile_are_gone_once_the_browser_is_closed(drills: Drills) -> None:
    # Given a browser that opened a report and is running its processes
    with HeadlessChromium() as chromium:
        chromium.load(drills.passed.html)
        assert chromium.processes() != []
        pid, profile = chromium.pid, chromium.profile_dir
        assert pid is not None and profile is not None and profile.is_dir()
    # When its context has exited
    # Then none of its processes is alive and its profile directory is removed
    assert chromium.processes() == []
    assert not Path(f"/proc/{pid}").exists()
    assert not profile.exists()
