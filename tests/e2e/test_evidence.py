"""The evidence an auditor reads, end to end through the local cloud: the compliance summary of a
stack whose databases passed, failed, timed out and were never drilled, and the hash chain of
one database's reports, intact and then tampered with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import RunRecord, Verdict

from drillharness.browser import HeadlessChromium
from drillharness.invariants import check_nothing_running
from localcloud.cloud import LocalCloud
from localcloud.postgres import running_servers
from restoredrill_cli.main import main
from restoredrill_cli.target import write_state_file

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Stack:
    cloud: LocalCloud
    state_file: Path
    passed: RunRecord
    failed: RunRecord
    timed_out: RunRecord


def finished(cloud: LocalCloud, run_id: str, verdict: Verdict) -> RunRecord:
    run = cloud.wait_for_run(run_id, timeout=180)
    assert run is not None and run.is_finished and run.verdict is verdict, run
    return run


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """clinic-db drilled three times (PASSED, FAILED on lost rows, TIMED_OUT on a restore that
    never finishes), billing-db opted in and never drilled."""
    servers_before = set(map(id, running_servers()))
    cloud = LocalCloud(patients=300)
    cloud.start()
    try:
        source = cloud.create_source_database("clinic-db")
        passed = finished(cloud, cloud.start_drill("clinic-db"), Verdict.PASSED)
        with source.server.admin_connect("clinic") as conn:
            conn.run("DELETE FROM clinic.prescriptions WHERE prescription_id % 3 = 0")
        failed = finished(cloud, cloud.start_drill("clinic-db"), Verdict.FAILED)
        timed_out = finished(
            cloud, cloud.start_drill("clinic-db", "restore-stuck"), Verdict.TIMED_OUT
        )
        cloud.create_source_database("billing-db")
        state_file = tmp_path_factory.mktemp("local") / "local.json"
        write_state_file(state_file, cloud.target_description())
        yield Stack(cloud, state_file, passed, failed, timed_out)
    finally:
        cloud.stop()
    assert [s for s in running_servers() if id(s) not in servers_before] == []
    assert check_nothing_running(cloud) == []


def cli(stack: Stack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([*args, "--local", str(stack.state_file)])
    return code, capsys.readouterr().out


def since_yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def test_the_summary_shows_passed_failed_timed_out_and_never_drilled(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the stack's drills and its never-drilled database
    # When the compliance summary is asked for as JSON
    code, out = cli(stack, capsys, "report", "--since", since_yesterday(), "--format", "json")
    summary = json.loads(out)
    databases = {db["db_instance_identifier"]: db for db in summary["databases"]}
    # Then clinic-db shows its three drills, one of each verdict, the pass rate and the last
    # passing drill; its last drill (TIMED_OUT) marks it failing
    assert code == 0
    clinic = databases["clinic-db"]
    assert clinic["drills"] == 3
    assert clinic["verdicts"] == {"passed": 1, "failed": 1, "error": 0, "timed_out": 1}
    assert clinic["pass_rate"] == pytest.approx(1 / 3)
    assert clinic["last_passing"]["run_id"] == stack.passed.run_id
    assert clinic["last_drill"]["run_id"] == stack.timed_out.run_id
    assert clinic["coverage"] == "covered" and clinic["failing"] is True
    assert [point["run_id"] for point in clinic["rto_trend"]] == [
        stack.passed.run_id,
        stack.failed.run_id,
    ]
    # And billing-db, opted in but never drilled, is called out
    assert databases["billing-db"]["coverage"] == "never_drilled"
    assert summary["totals"]["never_drilled"] == 1
    # And clinic-db's cost is the sum of its three reports' estimates, in this month's row
    costs = [
        stack.cloud.report(report_key(run))["cost"]["total_usd"]
        for run in (stack.passed, stack.failed, stack.timed_out)
    ]
    assert clinic["drills_costed"] == 3 and databases["billing-db"]["drills_costed"] == 0
    assert clinic["estimated_cost_usd"] == pytest.approx(sum(costs), abs=1e-6)
    month = stack.passed.created_at.strftime("%Y-%m")
    assert clinic["cost_by_month"] == {month: pytest.approx(sum(costs), abs=1e-6)}
    assert summary["cost_by_month"] == [
        {"month": month, "usd": pytest.approx(sum(costs), abs=1e-6), "drills_costed": 3}
    ]


def test_the_markdown_summary_names_all_four_outcomes(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the summary is asked for as markdown
    code, out = cli(stack, capsys, "report", "--since", since_yesterday(), "--format", "md")
    # Then a reader sees each outcome and the database that was never drilled
    assert code == 0
    (clinic,) = [line for line in out.splitlines() if line.startswith("| us-east-1 | clinic-db")]
    (billing,) = [line for line in out.splitlines() if line.startswith("| us-east-1 | billing-db")]
    assert "3 (1 passed, 1 failed, 1 timed out)" in clinic and "TIMED_OUT" in clinic
    assert "never drilled" in billing
    assert "## Never drilled\n\n- us-east-1 / billing-db" in out


def test_the_html_summary_renders_in_chromium_with_the_gaps_called_out(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given the summary written as HTML
    page = tmp_path / "summary.html"
    code, _ = cli(
        stack, capsys, "report", "--since", since_yesterday(), "--format", "html", "-o", str(page)
    )
    assert code == 0
    # When headless Chromium renders it
    with HeadlessChromium() as browser:
        browser.load(page)
        rows = browser.evaluate(
            "[...document.querySelectorAll('#databases tr[data-db]')]"
            ".map(r => [r.dataset.db, r.dataset.coverage, r.innerText])"
        )
        gaps = browser.evaluate("document.querySelector('#coverage-gaps').innerText")
        chart_height = browser.evaluate(
            "document.querySelector('svg.trend.rto').getBoundingClientRect().height"
        )
        fetched = browser.requests()
    # Then each database has its row with its coverage, the never-drilled one is called out,
    # the RTO trend is drawn, and nothing outside the file was fetched
    coverage = {db: state for db, state, _ in rows}
    assert coverage == {"us-east-1/clinic-db": "covered", "us-east-1/billing-db": "never_drilled"}
    assert "billing-db" in gaps
    assert chart_height > 0
    assert all(url.startswith("file://") for url in fetched)


def test_an_untouched_chain_verifies_and_a_tampered_report_breaks_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the three reports of clinic-db as the drills stored them
    code, out = cli(stack, capsys, "verify-chain", "clinic-db")
    # Then the chain is intact: three reports, two links, three digests from the run table
    assert code == 0, out
    assert "chain intact: 3 reports, 2 links and 3 run-table digests checked" in out
    # When someone rewrites the FAILED drill's report as PASSED
    assert stack.cloud.aws is not None
    s3 = stack.cloud.aws.client("s3")
    bucket = stack.cloud.aws.output("ReportBucketName")
    key = report_key(stack.failed)
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    original = json.dumps(document, indent=2, sort_keys=True).encode("ascii")
    document["verdict"], document["reason"] = "PASSED", None
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=2, sort_keys=True))
    try:
        code, out = cli(stack, capsys, "verify-chain", "clinic-db")
        as_json = json.loads(cli(stack, capsys, "verify-chain", "clinic-db", "--json")[1])
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)
    # Then verify-chain fails, naming the report: its successor and the run table both recorded
    # other bytes, and the bucket's first version of it still holds them
    (first_version,) = [
        version
        for version in s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
        if s3.get_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])["Body"].read()
        == original
        and version["VersionId"] != s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    ]
    assert code == 1
    assert "CHAIN BROKEN" in out and key in out
    found = {(f["kind"], f["key"], f["original_version"]) for f in as_json["findings"]}
    assert found == {
        ("tampered", key, first_version["VersionId"]),
        ("anchor_mismatch", key, first_version["VersionId"]),
    }
    assert as_json["intact"] is False
    # And once the original bytes are put back the chain holds again, with a warning that the
    # report was written over in between
    code, out = cli(stack, capsys, "verify-chain", "clinic-db")
    assert code == 0 and "WARNING: rewritten" in out and key in out
