"""The HTML drill report: what a person sees first (verdict, database, snapshot, recovery), the
phases on a time axis, failures before passes, names from restored databases escaped, and a
page that fetches nothing. Reports are real ones, built by driving drills through the domain."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import restoredrill
from markupsafe import escape
from pydantic import ValidationError
from restoredrill.checksuite.results import CheckResult, CheckStatus
from restoredrill.domain.report.html import TEMPLATE_DIR, TEMPLATE_NAME, render_report_html
from restoredrill.domain.report.text import duration_text

from tests.unit.test_report_schema import (
    DRILLS,
    KMS_KEY,
    SNAPSHOT,
    checked,
    connect_passed,
    finished_drill,
    given_an_opted_in_database,
    outcome_of,
    suite,
)

FINGERPRINT = "3b" * 32
PREVIOUS_SHA256 = "9f" * 32
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
VOID_ELEMENTS = {"meta", "br", "col", "img", "input", "link", "hr", "wbr", "source"}
NO_CHECK_DRILLS = [
    "failed restore, no checks",
    "refused restore, no checks",
    "checker error",
    "timed out",
]
# What restored databases may name their objects: markup, quotes, any script, and identifiers as
# long as PostgreSQL allows (63 bytes).
HOSTILE_DATABASE = "\"'><script>alert('db')</script>"
HOSTILE_OBJECT = "<img src=x onerror=alert(1)>" + "z" * 35
HOSTILE_UNICODE = "données_患者_🦄‮"


class Page(HTMLParser):
    """The parts of a rendered page the tests look at: the text of every element with an id,
    the attributes of every element, and the rows of the checks table."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, str | None]] = []
        self.text_by_id: dict[str, str] = {}
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.rows: list[dict[str, Any]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        if tag == "tr" and "data-status" in attributes and self.inside("checks"):
            self.rows.append({"status": attributes["data-status"], "cells": []})
        if tag == "td" and self.rows and self.inside("checks"):
            self.rows[-1]["cells"].append("")
        if tag in VOID_ELEMENTS:
            return
        element_id = attributes.get("id")
        if element_id is not None:
            self.text_by_id[element_id] = ""
        self.open.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            open_tag, _ = self.open.pop()
            if open_tag == tag:
                return

    def handle_data(self, data: str) -> None:
        # Each text node apart, as a browser lays out adjacent cells and spans.
        for _, element_id in self.open:
            if element_id is not None:
                self.text_by_id[element_id] += " " + data
        if self.rows and self.inside("checks") and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += " " + data

    def inside(self, element_id: str) -> bool:
        return any(open_id == element_id for _, open_id in self.open)

    def text(self, element_id: str) -> str:
        return " ".join(self.text_by_id[element_id].split())

    def attributes(self, element_id: str) -> dict[str, str]:
        return next(attrs for _, attrs in self.elements if attrs.get("id") == element_id)

    def bars(self) -> list[dict[str, str]]:
        return [
            attrs
            for tag, attrs in self.elements
            if tag == "rect" and "bar" in attrs.get("class", "").split()
        ]


def rendered(name: str, **options: Any) -> tuple[dict[str, Any], str, Page]:
    _, _, report = finished_drill(name)
    html = render_report_html(report, **options)
    return report, html, Page(html)


def drill_with(*checks: CheckResult) -> dict[str, Any]:
    """The report of a drill whose checker returned exactly these checks."""
    w = given_an_opted_in_database()
    checked(w, lambda run_id: outcome_of(run_id, suite(*checks)))
    (report,) = w.reports.documents.values()
    return report


def a_check(status: CheckStatus, name: str = "catalog", **fields: Any) -> CheckResult:
    return CheckResult(
        name=name, level=1, status=status, message=f"{name} {status.value}", **fields
    )


# ------------------------------------------------------------------------------ at a glance

VERDICT_CLASSES = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "TIMED_OUT": "timed-out",
}


@pytest.mark.parametrize("name", list(DRILLS))
def test_the_verdict_banner_names_verdict_database_snapshot_and_reason(name: str) -> None:
    # Given a drill that ended this way
    _, expected = DRILLS[name]
    # When its report is rendered
    report, _, page = rendered(name)
    # Then the banner says the verdict, coloured as that verdict, for this database and snapshot
    banner = page.text("verdict")
    assert banner.startswith(f"{expected.value} clinic-db")
    assert page.attributes("verdict")["class"] == VERDICT_CLASSES[expected.value]
    assert SNAPSHOT in banner
    # And why it is not PASSED, or that every check passed
    if report["reason"]:
        assert " ".join(report["reason"].split()) in banner
    else:
        assert f"all {report['check_summary']['total']} checks passed" in banner


def test_a_passed_drill_with_a_warning_does_not_claim_every_check_passed() -> None:
    # Given a drill that PASSED although one check only warned
    report = drill_with(connect_passed(), a_check(CheckStatus.WARN, "schema_fingerprint"))
    assert report["verdict"] == "PASSED"
    # When it is rendered
    banner = Page(render_report_html(report)).text("verdict")
    # Then the banner counts the passed checks instead of saying all passed
    assert "1 of 2 checks passed and none failed" in banner
    assert "all 2 checks passed" not in banner


def test_the_page_shows_where_the_backup_came_from_and_the_measured_recovery() -> None:
    # Given a drill of an encrypted snapshot that restored in 12 minutes, RPO 754.25 s
    report, _, page = rendered("passed with checks")
    # Then the database's region, account and engine version are shown
    database = page.text("database")
    assert "us-east-1" in database and "123456789012" in database and "postgres 15.5" in database
    # And the snapshot's id, time, encryption and key
    snapshot = page.text("snapshot")
    assert SNAPSHOT in snapshot and "2026-11-27 02:45:00 UTC" in snapshot
    assert "encrypted yes" in snapshot and KMS_KEY in snapshot
    # And the RTO and RPO as durations, with the check that measured the RPO
    assert page.text("rto") == "12m00s" == duration_text(report["recovery"]["rto_seconds"])
    assert page.text("rpo") == "12m34s"
    assert "freshness[clinic/appointments]" in page.text("recovery")
    # And what started the drill
    assert "RDS-EVENT-0091 automated snapshot created" in page.text("run")


# ------------------------------------------------------------------------------ the timeline


def test_each_phase_is_a_bar_on_one_time_axis_labelled_with_its_duration() -> None:
    # Given a drill: restore 12 min, secure 0 s, check 20 s, teardown 6 min
    report, _, page = rendered("passed with checks")
    phases = report["timings"]["phases"]
    # When the chart is read
    bars = page.bars()
    labels = page.text("phase-chart")
    # Then there is one bar per phase, in order, each labelled with its name and duration
    assert [bar["data-phase"] for bar in bars] == [phase["phase"] for phase in phases]
    for phase in phases:
        assert f"{phase['phase']} {duration_text(phase['seconds'])}" in labels
    # And the bars follow each other in time, sized by duration (restore twice the teardown)
    by_phase = {bar["data-phase"]: bar for bar in bars}
    starts = [float(bar["x"]) for bar in bars]
    assert starts == sorted(starts)
    restore, teardown = float(by_phase["restore"]["width"]), float(by_phase["teardown"]["width"])
    assert restore == pytest.approx(2 * teardown, rel=0.01)
    assert float(by_phase["check"]["width"]) < teardown / 10
    # And a phase of no duration still shows a bar
    assert float(by_phase["secure"]["width"]) > 0


def test_a_phase_that_never_ended_is_drawn_and_said_so() -> None:
    # Given a report whose last phase has no end
    _, _, report = finished_drill("timed out")
    report["timings"]["phases"][-1].update(ended_at=None, seconds=None)
    # When it is rendered
    page = Page(render_report_html(report))
    # Then that phase still has a bar, marked open, and its label says it did not end
    last = page.bars()[-1]
    assert "open" in last["class"].split() and float(last["width"]) > 0
    assert "did not end" in page.text("phase-chart")


# ------------------------------------------------------------------------------ the checks


def test_failed_checks_come_before_passed_ones_with_their_evidence() -> None:
    # Given a drill where the connection passed and four checks failed after it
    _, _, page = rendered("failed by checks")
    # Then the failures are listed first, in the order the checker ran them, the pass last
    assert [row["status"] for row in page.rows] == ["fail", "fail", "fail", "fail", "pass"]
    names = [row["cells"][0].strip() for row in page.rows]
    assert names == [
        "row_counts[clinic]",
        "freshness[clinic/appointments]",
        "assertion[clinic/at least a million patients]",
        "amcheck_btree[clinic]",
        "connect",
    ]
    # And each row says what the evidence shows, with the whole evidence as JSON beside it
    row_counts = page.rows[0]["cells"][-1]
    assert '"clinic"."prescriptions": 300 → 200 rows (-100)' in row_counts
    assert '"baseline_rows": 300' in row_counts


def test_every_status_is_listed_in_the_order_fail_error_warn_skipped_pass() -> None:
    # Given checks that ended in every status, the worst ones last
    report = drill_with(
        connect_passed(),
        a_check(CheckStatus.SKIPPED, "amcheck_heap"),
        a_check(CheckStatus.WARN, "schema_fingerprint"),
        a_check(CheckStatus.ERROR, "roles"),
        a_check(CheckStatus.FAIL, "row_counts"),
        a_check(CheckStatus.PASS, "tls"),
    )
    # When the report is rendered
    page = Page(render_report_html(report))
    # Then the table reads from the worst to the best
    assert [row["status"] for row in page.rows] == [
        "fail",
        "error",
        "warn",
        "skipped",
        "pass",
        "pass",
    ]
    assert [row["cells"][0].strip() for row in page.rows][-2:] == ["connect", "tls"]


@pytest.mark.parametrize("name", NO_CHECK_DRILLS)
def test_a_drill_without_checks_says_that_nothing_was_checked(name: str) -> None:
    # Given a drill that ended before the checker returned anything
    report, html, page = rendered(name)
    assert report["checks"] is None
    # Then the page says no checks ran, and why, instead of showing an empty table
    assert "No checks ran" in page.text("no-checks")
    assert " ".join(report["reason"].split()) in page.text("no-checks")
    assert 'id="checks"' not in html and page.rows == []


def test_names_from_restored_databases_are_shown_escaped_never_as_markup() -> None:
    # Given a failing check on objects named with markup, quotes, scripts and unicode, whose
    # message and evidence repeat them
    assert len(HOSTILE_OBJECT.encode()) == 63
    hostile = CheckResult(
        name="assertion",
        level=2,
        status=CheckStatus.FAIL,
        database=HOSTILE_DATABASE,
        object=HOSTILE_OBJECT,
        message=f"</td></pre><script>alert('message')</script> in {HOSTILE_UNICODE}",
        evidence={
            "expect": "</details><script>",
            "value": HOSTILE_UNICODE,
            HOSTILE_OBJECT: "<style>body{display:none}</style>",
        },
    )
    report = drill_with(connect_passed(), hostile)
    # When the report is rendered
    html = render_report_html(report)
    page = Page(html)
    # Then no markup from the names made it into the page: no script, image or style element
    assert re.search(r"<\s*script", html, re.IGNORECASE) is None
    tags = [tag for tag, _ in page.elements]
    assert "img" not in tags and tags.count("style") == 1
    # And the names are shown whole, as text, in the first (failing) row
    first = page.rows[0]
    assert first["status"] == "fail"
    assert first["cells"][0].strip() == f"assertion[{HOSTILE_DATABASE}/{HOSTILE_OBJECT}]"
    assert str(escape(HOSTILE_OBJECT)) in html
    assert HOSTILE_UNICODE in first["cells"][3]
    assert "<style>body{display:none}</style>" in first["cells"][-1]


# ------------------------------------------------------------------------------ self-contained


@pytest.mark.parametrize("name", list(DRILLS))
def test_the_page_holds_no_script_loads_nothing_and_links_only_to_its_console_pages(
    name: str,
) -> None:
    # Given any drill's rendered report
    report, html, page = rendered(name, report_sha256=FINGERPRINT)
    # Then it has no script and loads nothing from anywhere
    assert "<script" not in html.lower()
    assert "http://" not in html
    assert not any("src" in attrs for _, attrs in page.elements)
    assert "url(" not in html and "@import" not in html
    # And its only links (navigation, not loads) are the S3 console's pages of the report and
    # of this page, exactly as the report names them
    location = report["location"]
    links = [attrs["href"] for tag, attrs in page.elements if "href" in attrs]
    assert tag_names_of_links(page) == {"a"}
    assert links == [location["console_url"], location["html_console_url"]]
    # And its Content-Security-Policy forbids loading anything but its own inline styles
    policies = [
        attrs["content"]
        for tag, attrs in page.elements
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies == [CSP]


def tag_names_of_links(page: Page) -> set[str]:
    return {tag for tag, attrs in page.elements if "href" in attrs}


def test_the_page_prints_with_its_colours_and_without_split_rows() -> None:
    # Given a failed drill's page
    _, html, _ = rendered("failed by checks")
    # Then its print stylesheet keeps the verdict's colour and keeps each check row whole
    print_css = html[html.index("@media print") :]
    assert "print-color-adjust: exact" in html[: html.index("@media print")]
    assert re.search(r"#checks tr \{ break-inside: avoid; \}", print_css)


# ------------------------------------------------------------------------------ integrity


def test_the_fingerprint_of_the_json_report_is_shown_when_given() -> None:
    # Given the SHA-256 of the stored JSON report
    # When the page is rendered with and without it
    _, _, with_it = rendered("passed with checks", report_sha256=FINGERPRINT)
    _, _, without = rendered("passed with checks")
    # Then the page shows exactly that fingerprint, or says none was given
    assert with_it.text("report-sha256") == FINGERPRINT
    assert "report-sha256" not in without.text_by_id
    assert "not given" in without.text("integrity")


def test_the_chain_names_the_previous_report_and_its_sha256() -> None:
    # Given a report linked to the previous report of the same database
    _, _, report = finished_drill("passed with checks")
    previous = {
        "run_id": "0123456789abcdef0123",
        "key": "reports/us-east-1/clinic-db/2026/11/26/0123456789abcdef0123.json",
        "sha256": PREVIOUS_SHA256,
    }
    linked = copy.deepcopy(report) | {"chain": {"algorithm": "sha256", "previous": previous}}
    first = copy.deepcopy(report) | {"chain": {"algorithm": "sha256", "previous": None}}
    # When each is rendered
    # Then the linked one names the previous run, its key and its SHA-256
    chain = Page(render_report_html(linked)).text("chain")
    assert previous["run_id"] in chain and previous["key"] in chain and PREVIOUS_SHA256 in chain
    # And a first report says it has no previous one
    assert "first report of this database" in Page(render_report_html(first)).text("chain")


def test_the_page_says_where_the_report_is_and_which_schema_it_follows() -> None:
    # Given a report
    report, _, page = rendered("passed with checks")
    location = report["location"]
    # Then the S3 location of the JSON report and the schema version are on the page
    assert f"s3://{location['bucket']}/{location['key']}" in page.text("location")
    assert f"restoredrill.drill-report {report['schema_version']}" in page.text("location")
    assert report["run"]["run_id"] in page.text("generation-note")


def test_rendering_is_pure_the_same_page_every_time_and_the_report_untouched() -> None:
    # Given a failed drill's report (whose checks the page reorders)
    _, _, report = finished_drill("failed by checks")
    before = copy.deepcopy(report)
    # When it is rendered twice
    first = render_report_html(report, report_sha256=FINGERPRINT)
    second = render_report_html(report, report_sha256=FINGERPRINT)
    # Then both pages are the same, and the report still holds its checks in the checker's order
    assert first == second
    assert report == before


def test_a_document_that_is_not_a_current_report_is_refused_not_half_rendered() -> None:
    # Given a report whose location was lost, and one that claims an older schema version
    _, _, report = finished_drill("passed with checks")
    without_location = {key: value for key, value in report.items() if key != "location"}
    older = copy.deepcopy(report) | {"schema_version": "1.2"}
    # Then the page's reader (the report's model) refuses each, naming what is wrong
    with pytest.raises(ValidationError, match="location"):
        render_report_html(without_location)
    with pytest.raises(ValidationError, match="schema_version"):
        render_report_html(older)


def test_the_template_is_inside_the_package_the_layer_ships() -> None:
    # Given the restoredrill package, which the Lambda layer and an install carry whole
    package = Path(restoredrill.__file__).parent
    # Then the template is read from inside that package's directory
    assert (TEMPLATE_DIR / TEMPLATE_NAME).is_file()
    assert TEMPLATE_DIR.parent.samefile(package)
