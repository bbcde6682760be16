"""`make screenshots`: the HTML drill report of a PASSED and of a FAILED drill, and the compliance
summary, as PNGs.

    python -m drillharness.screenshots [--out-dir docs/screenshots]

Both drills run through the local cloud, one after the other on the same source database: the
first passes and leaves its row counts as the baseline; then a third of the prescriptions are
deleted, and the next automated snapshot's drill fails on ``row_counts``. Each drill's HTML
report is read from S3, where the publish step stored it beside the JSON report, and rendered
full page, 1200 pixels wide, by headless Chromium (:mod:`drillharness.browser`). A third drill
times out (its restore never finishes) and a second database is opted in but never drilled, and
`restoredrill report --format html` renders the compliance summary of the four outcomes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import ClientError
from restoredrill.domain.report.location import html_report_key, report_key
from restoredrill.ports.records import RunRecord, Verdict

from drillharness.browser import HeadlessChromium
from localcloud.cloud import PROJECT_ROOT, LocalCloud
from restoredrill_cli.main import main as restoredrill
from restoredrill_cli.target import write_state_file

SOURCE_DB = "clinic-db"
SCREENSHOT_DIR = PROJECT_ROOT / "docs" / "screenshots"
SCREENSHOT_WIDTH = 1200
DRILL_TIMEOUT_SECONDS = 180.0
# A third of the prescriptions: far beyond the 5 % drop the default policy allows.
LOSE_ROWS_SQL = "DELETE FROM clinic.prescriptions WHERE prescription_id % 3 = 0"


class ScreenshotError(RuntimeError):
    """A drill did not end as the screenshot needs, or its HTML report is not in S3."""


def read_html_report(cloud: LocalCloud, run: RunRecord) -> str:
    """The HTML report the publish step stored beside the run's JSON report."""
    assert cloud.aws is not None
    bucket = cloud.aws.output("ReportBucketName")
    key = html_report_key(report_key(run))
    try:
        body = cloud.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("NoSuchKey", "404"):
            raise
        raise ScreenshotError(
            f"no HTML report at s3://{bucket}/{key}: the publish step must store "
            "render_report_html(report, report_sha256=...) beside the JSON report "
            f"(s3://{bucket}/{report_key(run)})"
        ) from error
    return bytes(body).decode("utf-8")


def finished_drill(cloud: LocalCloud, expected: Verdict) -> RunRecord:
    """Takes an automated snapshot of the source, waits for its drill to finish as expected."""
    event = cloud.take_automated_snapshot(SOURCE_DB)
    run_id = cloud.run_id_for_snapshot_event(event)
    run = cloud.wait_for_run(run_id, timeout=DRILL_TIMEOUT_SECONDS)
    if run is None or not run.is_finished:
        state = run.state.value if run else "never started"
        raise ScreenshotError(f"drill {run_id} did not finish in time ({state})")
    if run.verdict is not expected:
        raise ScreenshotError(
            f"drill {run_id} ended {run.verdict}, not {expected.value}: {run.reason}"
        )
    return run


def passed_then_failed(cloud: LocalCloud) -> tuple[RunRecord, RunRecord]:
    """A PASSED drill of the clinic database, then a FAILED one after rows were lost."""
    source = cloud.create_source_database(SOURCE_DB)
    passed = finished_drill(cloud, Verdict.PASSED)
    with source.server.admin_connect("clinic") as conn:
        conn.run(LOSE_ROWS_SQL)
    failed = finished_drill(cloud, Verdict.FAILED)
    return passed, failed


def compliance_summary_html(cloud: LocalCloud, work_dir: Path) -> str:
    """`restoredrill report --format html` over this cloud, as an operator would run it."""
    state_file = work_dir / "local.json"
    page = work_dir / "summary.html"
    write_state_file(state_file, cloud.target_description())
    code = restoredrill(["report", "--format", "html", "-o", str(page), "--local", str(state_file)])
    if code != 0:
        raise ScreenshotError(f"restoredrill report exited {code}")
    return page.read_text(encoding="utf-8")


def take_screenshots(out_dir: Path) -> list[Path]:
    with LocalCloud() as cloud:
        runs = passed_then_failed(cloud)
        pages = {f"drill-report-{run.verdict}": read_html_report(cloud, run) for run in runs}
        timed_out = cloud.wait_for_run(cloud.start_drill(SOURCE_DB, "restore-stuck"), timeout=120)
        if timed_out is None or timed_out.verdict is not Verdict.TIMED_OUT:
            raise ScreenshotError(f"the stuck restore did not time out: {timed_out}")
        cloud.create_source_database("billing-db")
        pages["compliance-summary"] = compliance_summary_html(cloud, cloud.work_dir)
    written = []
    with HeadlessChromium(width=SCREENSHOT_WIDTH) as browser:
        for name, html in pages.items():
            browser.load(html)
            path = out_dir / f"{name.lower()}.png"
            written.append(browser.screenshot(path, full_page=True))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drillharness.screenshots",
        description="Screenshots of a PASSED and a FAILED drill's HTML report.",
    )
    parser.add_argument("--out-dir", type=Path, default=SCREENSHOT_DIR, help="where the PNGs go")
    args = parser.parse_args(argv)
    try:
        written = take_screenshots(args.out_dir)
    except ScreenshotError as error:
        print(f"screenshots: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
