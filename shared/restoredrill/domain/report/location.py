"""Where a drill's report is stored: its S3 key (one chain of keys per database), the HTML
page's key beside it, their content types, and the S3 console's pages of both."""

from __future__ import annotations

from restoredrill.domain.report.model import ReportLocation, s3_console_url
from restoredrill.ports.records import RunRecord

REPORT_CONTENT_TYPE = "application/json"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


def report_key(run: RunRecord) -> str:
    """``reports/<region>/<db>/<yyyy>/<mm>/<dd>/<run id>.json``: the region keeps databases of the
    same name apart when every region's stack writes to one central bucket."""
    day = run.created_at.strftime("%Y/%m/%d")
    return f"{reports_prefix(region_of(run), run.source_db)}{day}/{run.run_id}.json"


def reports_prefix(region: str, source_db: str) -> str:
    """Where every report of one database is: the chain of that database."""
    return f"reports/{region}/{source_db}/"


def region_of(run: RunRecord) -> str:
    snapshot = run.snapshot
    if snapshot.region:
        return snapshot.region
    parts = snapshot.snapshot_arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else "unknown-region"


def html_report_key(key: str) -> str:
    """The HTML rendering is stored beside the JSON report, under the same name."""
    return key.removesuffix(".json") + ".html"


def partition_of(run: RunRecord) -> str:
    """The AWS partition the snapshot is in (``aws``, ``aws-cn``, ``aws-us-gov``), from its ARN."""
    parts = run.snapshot.snapshot_arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def report_location(run: RunRecord, *, bucket: str, key: str) -> ReportLocation:
    """Where the report and its HTML page are, with the S3 console's page of each in the
    report's region (the region its key names)."""
    html_key = html_report_key(key)
    region, partition = region_of(run), partition_of(run)
    return ReportLocation(
        bucket=bucket,
        key=key,
        html_key=html_key,
        console_url=s3_console_url(bucket, key, region, partition),
        html_console_url=s3_console_url(bucket, html_key, region, partition),
    )
