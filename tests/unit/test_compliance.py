"""The compliance summary behind ``restoredrill report``: drills, pass rates, last (passing)
drills, RTO/RPO trends and coverage per opted-in database across regions, and its JSON,
markdown and HTML renderings."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from restoredrill_cli.compliance import (
    ComplianceSummary,
    DatabaseSummary,
    OptedInDatabase,
    build_summary,
    render_summary,
    sparkline,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_1_1 = ROOT / "schemas" / "drill-report" / "1.1.json"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 20, tzinfo=UTC)
DRILL_MINUTES = 40
ACCOUNT = "123456789012"
US, EU = "us-east-1", "eu-west-1"
HOSTILE = "<script>alert(1)</script>|x"
HOSTILE_REASON = "checker said <b>no</b> | really\n## not a heading"


# ------------------------------------------------------------------------------ synthetic reports


def drill_report(
    db: str,
    created_at: datetime,
    *,
    region: str | None = US,
    verdict: str = "PASSED",
    rto: float | None = 600.0,
    rpo: float | None = 120.0,
    policy: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A minimal drill report as build_report writes it (schema 1.1): the drill lasted
    DRILL_MINUTES; a FAILED drill failed its row_counts check; a TIMED_OUT one never restored."""
    key_region = region or "unknown-region"
    run_id = hashlib.sha256(f"{key_region}/{db}/{created_at}".encode()).hexdigest()[:20]
    finished_at = created_at + timedelta(minutes=DRILL_MINUTES)
    key = f"reports/{key_region}/{db}/{created_at:%Y/%m/%d}/{run_id}.json"
    checked = verdict in ("PASSED", "FAILED")
    check_status = "pass" if verdict == "PASSED" else "fail"
    checks = (
        {
            "verdict": verdict,
            "checks": [
                {
                    "name": "row_counts",
                    "level": 2,
                    "status": check_status,
                    "message": "counts match" if verdict == "PASSED" else "orders lost rows",
                    "evidence": {},
                    "database": "app",
                    "object": None,
                }
            ],
        }
        if checked
        else None
    )
    failed = (
        [{"name": "row_counts[app]", "status": "fail", "message": "orders lost rows"}]
        if verdict == "FAILED"
        else []
    )
    restored = verdict != "TIMED_OUT"
    rto = rto if restored else None
    return {
        "schema_version": "1.1",
        "kind": "restoredrill.drill-report",
        "run": {
            "run_id": run_id,
            "trigger": "RDS-EVENT-0091 automated snapshot created",
            "requested_by": None,
            "created_at": created_at.isoformat(),
            "finished_at": finished_at.isoformat(),
            "deadline": (created_at + timedelta(hours=4)).isoformat(),
        },
        "verdict": verdict,
        "reason": None if verdict == "PASSED" else (reason or f"the drill {verdict}"),
        "source": {
            "db_instance_identifier": db,
            "engine": "postgres",
            "engine_version": "16.3",
            "region": region,
            "account_id": ACCOUNT,
        },
        "snapshot": {
            "snapshot_id": f"rds:{db}-{created_at:%Y-%m-%d-%H-%M}",
            "snapshot_arn": f"arn:aws:rds:{key_region}:{ACCOUNT}:snapshot:rds:{db}",
            "snapshot_type": "automated",
            "created_at": (created_at - timedelta(minutes=5)).isoformat(),
            "encrypted": False,
            "kms_key_id": None,
            "allocated_storage_gib": 20,
        },
        "restored_instance": {
            "db_instance_identifier": f"restoredrill-{run_id}",
            "instance_class": "db.t4g.micro",
            "deleted": True,
        },
        "timings": {
            "phases": [
                {
                    "phase": "request",
                    "started_at": created_at.isoformat(),
                    "ended_at": finished_at.isoformat(),
                    "seconds": DRILL_MINUTES * 60.0,
                }
            ],
            "restore_seconds": rto,
            "total_seconds": DRILL_MINUTES * 60.0,
        },
        "recovery": {
            "rto_seconds": rto,
            "rpo_seconds": rpo if checked else None,
            "rpo_measured_by": (
                {
                    "seconds": rpo,
                    "check": "freshness[app/orders.created_at]",
                    "column": '"public"."orders"."created_at"',
                    "newest": "2026-11-27 02:41:00+00",
                    "reference": "2026-11-27 02:45:00+00",
                    "reference_is": "snapshot time",
                }
                if checked and rpo is not None
                else None
            ),
            "freshness_checks": 1 if checked else 0,
        },
        "policy": policy if policy is not None else {"level": 2},
        "checks": checks,
        "check_summary": (
            {"total": 1, "by_status": {check_status: 1}, "failed": failed} if checked else None
        ),
        "location": {"bucket": "drill-reports", "key": key},
    }


def at(day: int, hour: int = 3, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def daily_passes() -> list[dict[str, Any]]:
    """orders-db in us-east-1 passed every day of the window, RTO and RPO growing a little."""
    return [
        drill_report("orders-db", at(day), rto=600.0 + 30 * n, rpo=120.0 + n)
        for n, day in enumerate(range(20, 28))
    ]


def scenario_reports() -> list[dict[str, Any]]:
    passes = daily_passes()
    malformed = copy.deepcopy(passes[3])
    del malformed["run"]["created_at"]
    malformed["recovery"]["rto_seconds"] = "fast"
    malformed["location"]["key"] = "reports/us-east-1/orders-db/2026/11/23/broken.json"
    return [
        # A: daily passes, plus one before the window (not counted in it)
        drill_report("orders-db", at(30, month=10), rto=9999.0),
        *passes,
        # B: passed before the window, failed the last two drills
        drill_report("billing-db", at(10)),
        drill_report("billing-db", at(26), verdict="FAILED", rto=700.0, rpo=90.0),
        drill_report("billing-db", at(27), verdict="FAILED", rto=710.0, rpo=95.0),
        # C: timed out; the drill finished exactly three days before now
        drill_report(
            "legacy-db",
            NOW - timedelta(days=3, minutes=DRILL_MINUTES),
            verdict="TIMED_OUT",
        ),
        # E: the same name as A, in another region, written by the 1.2 stack
        {
            **drill_report("orders-db", at(27, hour=2), region=EU, rto=3000.0, rpo=30.0),
            "schema_version": "1.2",
            "chain": {"algorithm": "sha256", "previous": None},
        },
        # no longer opted in, with a name and a reason no renderer may trust
        drill_report(HOSTILE, at(25), verdict="ERROR", reason=HOSTILE_REASON),
        malformed,
        # one central bucket listed through two regions' stacks: the same report twice
        copy.deepcopy(passes[-1]),
    ]


def opted_in() -> list[OptedInDatabase]:
    return [
        OptedInDatabase(region=US, db_instance_identifier="orders-db", account_id=ACCOUNT),
        OptedInDatabase(region=US, db_instance_identifier="billing-db"),
        OptedInDatabase(region=US, db_instance_identifier="legacy-db"),
        OptedInDatabase(region=US, db_instance_identifier="new-db", engine_version="16.4"),
        OptedInDatabase(region=EU, db_instance_identifier="orders-db"),
    ]


@pytest.fixture(scope="module")
def summary() -> ComplianceSummary:
    return build_summary(scenario_reports(), opted_in(), since=SINCE, now=NOW)


def database(summary: ComplianceSummary, region: str, db: str) -> DatabaseSummary:
    (found,) = [
        item
        for item in summary.databases
        if item.region == region and item.db_instance_identifier == db
    ]
    return found


# ------------------------------------------------------------------------------ the model


def test_the_synthetic_reports_are_drill_reports_as_the_schema_describes() -> None:
    # Given the scenario's well-formed 1.1 reports
    reports = [
        report
        for report in scenario_reports()
        if report["schema_version"] == "1.1" and "created_at" in report["run"]
    ]
    # When validated against the drill report schema
    validator = Draft202012Validator(json.loads(SCHEMA_1_1.read_text(encoding="utf-8")))
    problems = [error.message for report in reports for error in validator.iter_errors(report)]
    # Then they are what the drill writes, so the summary is tested on real shapes
    assert len(reports) == 15
    assert problems == []


def test_totals_count_the_opted_in_databases_and_only_the_drills_of_the_window(
    summary: ComplianceSummary,
) -> None:
    # Given A covered, B failing, C overdue, D never drilled, E in a second region, a database
    # no longer opted in, a malformed report and one report listed twice
    # When the summary is built (the fixture)
    totals = summary.totals
    # Then A's 8 + B's 2 + C's 1 + E's 1 + 1 = 13 drills ran in the window, 9 passed
    assert (totals.drills, totals.passed) == (13, 9)
    assert totals.pass_rate == pytest.approx(9 / 13)
    assert totals.databases == 6
    assert (totals.opted_in, totals.covered, totals.overdue, totals.never_drilled) == (5, 3, 1, 1)
    assert (totals.not_opted_in, totals.failing) == (1, 3)
    assert totals.regions == [EU, US]
    assert (totals.unreadable, totals.duplicates_ignored) == (1, 1)
    assert (summary.since, summary.now, summary.generated_at) == (SINCE, NOW, NOW)


def test_a_database_drilled_daily_is_covered_with_its_window_pass_rate_and_trends(
    summary: ComplianceSummary,
) -> None:
    # Given orders-db passed every day of the window and once before it
    # When summarised
    orders = database(summary, US, "orders-db")
    # Then only the window's drills count, in time order, each with its RTO and RPO
    assert orders.coverage == "covered" and not orders.failing
    assert (orders.drills, orders.verdicts.passed, orders.pass_rate) == (8, 8, 1.0)
    assert [point.seconds for point in orders.rto_trend] == [600.0 + 30 * n for n in range(8)]
    assert [point.seconds for point in orders.rpo_trend] == [120.0 + n for n in range(8)]
    assert orders.last_drill is not None and orders.last_passing is not None
    assert orders.last_drill.finished_at == at(27) + timedelta(minutes=DRILL_MINUTES)
    assert orders.last_passing.report_key == orders.last_drill.report_key
    assert orders.last_drill.report_key is not None
    assert orders.last_drill.report_key.startswith("reports/us-east-1/orders-db/2026/11/27/")
    assert orders.last_drill_age_seconds == pytest.approx((8 * 60 + 20) * 60)
    assert orders.account_id == ACCOUNT


def test_the_same_name_in_two_regions_stays_two_databases(summary: ComplianceSummary) -> None:
    # Given orders-db in us-east-1 and another orders-db in eu-west-1
    # When summarised
    home, abroad = database(summary, US, "orders-db"), database(summary, EU, "orders-db")
    # Then each keeps its own drills and trend
    assert (home.drills, abroad.drills) == (8, 1)
    assert [point.seconds for point in abroad.rto_trend] == [3000.0]
    assert abroad.coverage == "covered"
    assert (home.key, abroad.key) == ("us-east-1/orders-db", "eu-west-1/orders-db")


def test_the_last_passing_drill_is_found_before_the_window_and_flagged_as_such(
    summary: ComplianceSummary,
) -> None:
    # Given billing-db passed on 10 November, before the window, and failed twice in it
    # When summarised
    billing = database(summary, US, "billing-db")
    # Then the window's pass rate is 0, the old pass is still the last passing drill (flagged),
    # and the database is failing with the checks that failed
    assert (billing.drills, billing.verdicts.failed, billing.pass_rate) == (2, 2, 0.0)
    assert billing.failing and billing.coverage == "covered"
    assert billing.last_passing is not None and billing.last_drill is not None
    assert billing.last_passing.finished_at == at(10) + timedelta(minutes=DRILL_MINUTES)
    assert billing.last_passing.before_window
    assert billing.last_drill.verdict == "FAILED" and not billing.last_drill.before_window
    assert [check.name for check in billing.last_drill_failed_checks] == ["row_counts[app]"]


def test_a_drill_older_than_the_policy_interval_is_overdue_and_says_how_old(
    summary: ComplianceSummary,
) -> None:
    # Given legacy-db's last drill timed out three days ago and the interval is 36 hours
    # When summarised
    legacy = database(summary, US, "legacy-db")
    # Then it is overdue by its age and limit, failing, with no RTO measured
    assert legacy.coverage == "overdue" and legacy.failing
    assert legacy.last_drill_age_seconds == pytest.approx(3 * 86400)
    assert (legacy.max_hours_between_drills, legacy.max_hours_from) == (36.0, "default")
    assert legacy.verdicts.timed_out == 1 and legacy.rto_trend == []
    assert legacy.last_passing is None


def test_an_opted_in_database_without_reports_is_never_drilled(summary: ComplianceSummary) -> None:
    # Given new-db is opted in and no report names it
    # When summarised
    new = database(summary, US, "new-db")
    # Then it is called never drilled, with nothing to rate
    assert new.coverage == "never_drilled" and not new.failing
    assert (new.drills, new.pass_rate, new.last_drill, new.last_passing) == (0, None, None, None)
    assert new.engine_version == "16.4"


def test_a_database_with_reports_that_is_no_longer_opted_in_is_kept_as_information(
    summary: ComplianceSummary,
) -> None:
    # Given a report of a database that is not opted in (any more)
    # When summarised
    gone = database(summary, US, HOSTILE)
    # Then it is listed, counted in the drills, but not as opted in
    assert gone.coverage == "not_opted_in" and not gone.opted_in
    assert gone.drills == 1 and gone.verdicts.error == 1 and gone.failing


def test_a_malformed_report_is_counted_with_its_key_and_why(summary: ComplianceSummary) -> None:
    # Given a report without run.created_at and with a text RTO
    # When summarised (the fixture did not crash)
    (unreadable,) = summary.unreadable_reports
    # Then it is named by its key with both problems, and left out of every count
    assert unreadable.key == "reports/us-east-1/orders-db/2026/11/23/broken.json"
    assert "run.created_at" in unreadable.reason
    assert "recovery.rto_seconds" in unreadable.reason
    assert database(summary, US, "orders-db").drills == 8


@pytest.mark.parametrize(
    ("breakage", "named"),
    [
        (lambda report: report.pop("verdict"), "verdict"),
        (lambda report: report.update(verdict="MAYBE"), "verdict"),
        (lambda report: report["run"].update(finished_at="2026-11-27T03:40:00"), "finished_at"),
        (lambda report: report["run"].update(created_at=1764212400), "created_at"),
        (lambda report: report["recovery"].update(rto_seconds=True), "rto_seconds"),
        (lambda report: report["recovery"].update(rpo_seconds=-5), "rpo_seconds"),
        (lambda report: report.update(source=None), "source"),
        (lambda report: report["source"].update(db_instance_identifier=""), "db_instance"),
        (lambda report: report["policy"].update(max_hours_between_drills="36h"), "max_hours"),
        (lambda report: report["check_summary"].update(failed="row_counts"), "failed"),
    ],
)
def test_a_report_with_a_missing_or_mistyped_field_is_unreadable_not_fatal(
    breakage: Any, named: str
) -> None:
    # Given one good report and one broken in a field the summary reads
    good, broken = drill_report("orders-db", at(26)), drill_report("orders-db", at(27))
    breakage(broken)
    # When summarised
    result = build_summary([good, broken], [], since=SINCE, now=NOW)
    # Then the broken one is set aside, naming the field, and the good one still counts
    (unreadable,) = result.unreadable_reports
    assert named in unreadable.reason and unreadable.index == 1
    assert unreadable.key == broken["location"]["key"]
    assert result.totals.drills == 1


def test_a_document_that_is_not_an_object_is_unreadable() -> None:
    # Given a list where a report should be
    # When summarised
    result = build_summary([["not", "a", "report"]], [], since=SINCE, now=NOW)  # type: ignore[list-item]
    # Then it is counted as unreadable and nothing else appears
    assert result.totals.unreadable == 1 and result.databases == []
    assert "not a JSON object" in result.unreadable_reports[0].reason


def test_a_run_passed_twice_counts_once() -> None:
    # Given the same report listed twice (through two regions' stacks sharing one bucket)
    report = drill_report("orders-db", at(27))
    # When summarised
    result = build_summary([report, copy.deepcopy(report)], [], since=SINCE, now=NOW)
    # Then it is one drill
    assert result.totals.drills == 1 and result.totals.duplicates_ignored == 1


def test_the_interval_in_the_last_report_policy_overrides_the_database_and_the_default() -> None:
    # Given a drill 72 hours ago, the database's limit 48 hours, its last report's policy 100
    report = drill_report(
        "orders-db",
        NOW - timedelta(hours=72, minutes=DRILL_MINUTES),
        policy={"level": 2, "max_hours_between_drills": 100},
    )
    database_48 = OptedInDatabase(
        region=US, db_instance_identifier="orders-db", max_hours_between_drills=48
    )
    # When summarised, with and without the report's policy naming an interval
    with_policy = build_summary([report], [database_48], since=SINCE, now=NOW)
    report["policy"] = {"level": 2}
    without_policy = build_summary([report], [database_48], since=SINCE, now=NOW)
    # Then the report's interval covers it; without it the database's 48 hours make it overdue
    (covered,), (overdue,) = with_policy.databases, without_policy.databases
    assert (covered.coverage, covered.max_hours_from) == ("covered", "report policy")
    assert covered.max_hours_between_drills == 100
    assert (overdue.coverage, overdue.max_hours_from) == ("overdue", "database")


def test_the_default_interval_applies_when_the_database_names_none() -> None:
    # Given a drill 30 hours ago and a database opted in without an interval of its own
    report = drill_report("orders-db", NOW - timedelta(hours=30, minutes=DRILL_MINUTES))
    database_default = OptedInDatabase(region=US, db_instance_identifier="orders-db")
    # When summarised with a default of 24 hours
    result = build_summary(
        [report],
        [database_default],
        since=SINCE,
        now=NOW,
        default_max_hours_between_drills=24,
    )
    # Then the 24 hours apply (not the model's 36) and it is overdue
    (orders,) = result.databases
    assert (orders.coverage, orders.max_hours_between_drills) == ("overdue", 24)


def test_a_report_whose_source_names_no_region_takes_it_from_its_key() -> None:
    # Given a report whose snapshot ARN named no region, stored under reports/eu-west-1/...
    report = drill_report("orders-db", at(27), region=EU)
    report["source"]["region"] = None
    # When summarised with the database opted in in eu-west-1
    result = build_summary(
        [report],
        [OptedInDatabase(region=EU, db_instance_identifier="orders-db")],
        since=SINCE,
        now=NOW,
    )
    # Then the report belongs to that database, which is covered
    (orders,) = result.databases
    assert (orders.region, orders.coverage, orders.drills) == (EU, "covered", 1)


def test_a_window_without_a_utc_offset_or_running_backwards_is_refused() -> None:
    # Given a naive start, and a start after the end
    # When / Then the summary refuses to guess
    with pytest.raises(ValueError, match="UTC offset"):
        build_summary([], [], since=SINCE.replace(tzinfo=None), now=NOW)
    with pytest.raises(ValueError, match="before now"):
        build_summary([], [], since=NOW, now=SINCE)


# ------------------------------------------------------------------------------ JSON


def test_json_round_trips_into_the_model_in_a_stable_order(summary: ComplianceSummary) -> None:
    # Given the scenario's summary
    # When rendered as JSON
    text = render_summary(summary, "json")
    # Then it reads back into an equal model, keys in the model's order, indented by 2
    assert ComplianceSummary.model_validate_json(text) == summary
    document = json.loads(text)
    assert list(document)[:4] == ["kind", "since", "now", "generated_at"]
    assert text.startswith('{\n  "kind": "restoredrill.compliance-summary"')
    assert render_summary(summary, "json") == text
    assert document["totals"]["pass_rate"] == pytest.approx(9 / 13)


# ------------------------------------------------------------------------------ markdown


def markdown_row(markdown: str, region: str, db: str) -> str:
    (row,) = [line for line in markdown.splitlines() if line.startswith(f"| {region} | {db} |")]
    return row


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_shows_every_outcome_and_calls_out_the_gaps(summary: ComplianceSummary) -> None:
    # Given the scenario's summary
    # When rendered as markdown
    markdown = render_summary(summary, "md")
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", markdown, re.S | re.M))
    # Then the table shows passed, failed, timed out and never drilled, with the window's rates
    assert markdown.startswith("# restoredrill compliance summary\n")
    assert "2026-11-20 00:00 UTC → 2026-11-27 12:00 UTC" in markdown
    orders = markdown_row(markdown, US, "orders-db")
    assert "covered" in orders and "100.0%" in orders and "2026-11-27 03:40 UTC PASSED" in orders
    assert "▁" in orders and "█" in orders
    billing = markdown_row(markdown, US, "billing-db")
    assert "FAILED" in billing and "0.0%" in billing
    assert "2026-11-10 03:40 UTC (before the window)" in billing
    assert "TIMED_OUT" in markdown_row(markdown, US, "legacy-db")
    assert "never drilled" in markdown_row(markdown, US, "new-db")
    assert "| 69.2% |" in sections["Totals"]
    # and each call-out names exactly its databases
    assert "new-db" in sections["Never drilled"] and "legacy-db" not in sections["Never drilled"]
    assert "legacy-db: last drill 3d00h ago" in sections["Overdue"]
    assert "limit 36h00m" in sections["Overdue"]
    assert "billing-db" in sections["Failing"] and "orders-db" not in sections["Failing"]
    assert "broken.json" in sections["Unreadable reports"]


def test_markdown_escapes_hostile_names_and_keeps_the_table_columns(
    summary: ComplianceSummary,
) -> None:
    # Given a database named <script>alert(1)</script>|x whose reason holds a newline and a pipe
    # When rendered as markdown
    markdown = render_summary(summary, "md")
    table = [line for line in markdown.splitlines() if line.startswith("| region | database")]
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {US} |")]
    # Then no tag survives, the name is shown escaped, and every row has the header's cells
    assert "<script>" not in markdown and "<b>" not in markdown
    assert r"\<script\>alert\(1\)\</script\>\|x" in markdown
    assert r"really ## not a heading" not in markdown
    assert r"\| really \#\# not a heading" in markdown
    assert {unescaped_pipes(row) for row in rows} == {unescaped_pipes(table[0])}
    assert len(rows) == 5


def test_sparkline_scales_each_value_between_the_smallest_and_the_largest() -> None:
    # Given rising, flat and empty series / When drawn / Then bars follow the values
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([10, 80, 10]) == "▁█▁"
    assert sparkline([5, 5]) == "▄▄"
    assert sparkline([]) == ""


# ------------------------------------------------------------------------------ HTML


class Page(HTMLParser):
    """What the tests look at in the HTML: elements by id, the database rows and their charts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.rows: dict[str, dict[str, Any]] = {}
        self.row: dict[str, Any] | None = None
        self.svg: list[str] | None = None
        self.meta: list[dict[str, str | None]] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        self.attributes.extend(attrs)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "meta":
            self.meta.append(attributes)
        if tag == "tr" and "data-db" in attributes:
            self.row = {"coverage": attributes["data-coverage"], "charts": {}, "text": []}
            self.rows[str(attributes["data-db"])] = self.row
        if tag == "svg" and self.row is not None:
            self.svg = []
            self.row["charts"][attributes["class"]] = self.svg
        if tag == "circle" and self.svg is not None:
            self.svg.append(str(attributes.get("class")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.row = None
        if tag == "svg":
            self.svg = None

    def handle_data(self, data: str) -> None:
        if self.row is not None and data.strip():
            self.row["text"].append(data.strip())


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def row_text(page: Page, key: str) -> str:
    return " ".join(page.rows[key]["text"])


def test_html_is_self_contained_without_script_or_external_references(
    summary: ComplianceSummary,
) -> None:
    # Given the scenario's summary
    # When rendered as HTML
    html = render_summary(summary, "html")
    page = parse(html)
    # Then it carries the CSP, has no script, no URL to fetch, and a print stylesheet
    assert html.startswith("<!DOCTYPE html>")
    csp = [meta for meta in page.meta if meta.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [
        {
            "http-equiv": "Content-Security-Policy",
            "content": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        }
    ]
    assert "<script" not in html.lower() and "script" not in page.tags
    assert re.search(r"https?://", html) is None
    assert "url(" not in html and "@import" not in html
    assert not [name for name, _ in page.attributes if name.startswith("on")]
    assert {"link", "img", "iframe", "object"}.isdisjoint(page.tags)
    assert "@media print" in html


def test_html_shows_every_outcome_and_the_coverage_gaps(summary: ComplianceSummary) -> None:
    # Given the scenario's summary
    # When rendered as HTML
    page = parse(html := render_summary(summary, "html"))
    # Then the databases table has one row per database with its coverage
    assert {"totals", "databases", "coverage-gaps", "failing", "unreadable"} <= page.ids
    assert {key: row["coverage"] for key, row in page.rows.items()} == {
        "eu-west-1/orders-db": "covered",
        "us-east-1/billing-db": "covered",
        "us-east-1/legacy-db": "overdue",
        "us-east-1/new-db": "never_drilled",
        "us-east-1/orders-db": "covered",
        f"us-east-1/{HOSTILE}": "not_opted_in",
    }
    # and shows passed, failed, timed out and never drilled
    assert "PASSED" in row_text(page, "us-east-1/orders-db")
    assert "FAILED" in row_text(page, "us-east-1/billing-db")
    assert "(before the window)" in row_text(page, "us-east-1/billing-db")
    assert "TIMED_OUT" in row_text(page, "us-east-1/legacy-db")
    assert "never drilled" in row_text(page, "us-east-1/new-db")
    # and the coverage gaps name the never-drilled and the overdue database, no other
    gaps = html.split('id="coverage-gaps"')[1].split("</section>")[0]
    assert re.findall(r'data-db="([^"]+)"', gaps) == ["us-east-1/new-db", "us-east-1/legacy-db"]
    assert "3d00h ago" in gaps and "limit 36h00m" in gaps


def test_html_draws_one_chart_point_per_drill_and_says_no_data_when_there_is_none(
    summary: ComplianceSummary,
) -> None:
    # Given orders-db with 8 drills in the window, legacy-db timed out before restoring
    # When rendered as HTML
    page = parse(render_summary(summary, "html"))
    orders, legacy = page.rows["us-east-1/orders-db"], page.rows["us-east-1/legacy-db"]
    billing = page.rows["us-east-1/billing-db"]
    # Then each chart has a point per measured drill, coloured by verdict, or says no data
    assert orders["charts"]["trend rto"] == ["v-PASSED"] * 8
    assert orders["charts"]["trend rpo"] == ["v-PASSED"] * 8
    assert billing["charts"]["trend rto"] == ["v-FAILED"] * 2
    assert legacy["charts"]["trend rto empty"] == []
    assert "no data" in row_text(page, "us-east-1/legacy-db")
    assert "latest 13m30s" in row_text(page, "us-east-1/orders-db")


def test_html_escapes_hostile_names_and_reasons(summary: ComplianceSummary) -> None:
    # Given a database named <script>alert(1)</script>|x with a reason holding <b>
    # When rendered as HTML
    html = render_summary(summary, "html")
    page = parse(html)
    # Then the name and reason are text, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|x" in html
    assert "&lt;b&gt;no&lt;/b&gt;" in html
    assert "b" not in page.tags
    assert HOSTILE in row_text(page, f"us-east-1/{HOSTILE}")


def test_a_point_in_time_drill_is_marked_as_such_in_every_format() -> None:
    # Given a database whose last drill was a point-in-time drill (report 1.6's point_in_time)
    snapshot_drill = drill_report("orders-db", at(25))
    point_in_time = drill_report("orders-db", at(27))
    point_in_time["point_in_time"] = {
        "requested_time": at(27).isoformat(),
        "newest_data": "2026-11-27 02:59:58+00",
        "rpo_seconds": 2.0,
        "max_rpo_seconds": None,
    }
    # When summarised
    result = build_summary([snapshot_drill, point_in_time], [], since=SINCE, now=NOW)
    (db,) = result.databases
    # Then the last drill is flagged point-in-time
    assert db.last_drill is not None and db.last_drill.point_in_time is True
    assert db.last_drill.run_id == point_in_time["run"]["run_id"]
    # And the markdown and the HTML page say so
    assert "(point-in-time)" in render_summary(result, "md")
    assert "(point-in-time)" in render_summary(result, "html")
    # And a summary of the snapshot drill alone does not
    alone = build_summary([snapshot_drill], [], since=SINCE, now=NOW)
    last = alone.databases[0].last_drill
    assert last is not None and last.point_in_time is False
    assert "(point-in-time)" not in render_summary(alone, "md")
