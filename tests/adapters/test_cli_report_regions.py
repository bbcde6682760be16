"""`restoredrill report` across two regions' stacks writing to one central bucket (moto): each
region's databases are summarised once, same-named databases stay apart, and a database opted in
but never drilled is called out."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from restoredrill.domain.report.document import build_report, report_bytes
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import PhaseTiming, RunRecord, RunState, SnapshotInfo, Verdict

from restoredrill_cli.main import main
from tests.adapters.conftest import rds_instance

CENTRAL_BUCKET = "acme-drill-reports"
REGIONS = {"prod": "us-east-1", "prod-dr": "us-west-2"}
OPT_IN = {"restoredrill:drill": "enabled"}


def stack_template(region: str) -> str:
    return json.dumps(
        {
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {
                "DrillBusName": {"Value": f"drills-{region}"},
                "RunTableName": {"Value": f"runs-{region}"},
                "ReportBucketName": {"Value": CENTRAL_BUCKET},
            },
        }
    )


def published(db: str, region: str, hours_ago: float, verdict: Verdict) -> tuple[str, bytes]:
    created = datetime.now(UTC) - timedelta(hours=hours_ago)
    run_id = hashlib.sha256(f"{db}/{region}/{hours_ago}".encode()).hexdigest()[:20]
    run = RunRecord(
        run_id=run_id,
        state=RunState.FINISHED,
        source_db=db,
        snapshot=SnapshotInfo(
            snapshot_id=f"rds:{db}-{run_id}",
            snapshot_arn=f"arn:aws:rds:{region}:123456789012:snapshot:rds:{db}-{run_id}",
            master_username="postgres",
            region=region,
            account_id="123456789012",
        ),
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="RDS-EVENT-0091 automated snapshot created",
        created_at=created,
        deadline=created + timedelta(hours=4),
        phases={
            RunState.REQUESTED: PhaseTiming(started_at=created, ended_at=created),
            RunState.RESTORING: PhaseTiming(
                started_at=created, ended_at=created + timedelta(minutes=14)
            ),
            RunState.SECURING: PhaseTiming(started_at=created + timedelta(minutes=14)),
        },
        verdict=verdict,
        reason=None if verdict is Verdict.PASSED else "failed checks: row_counts[app]",
        finished_at=created + timedelta(minutes=30),
    )
    key = report_key(run)
    return key, report_bytes(build_report(run, bucket=CENTRAL_BUCKET, key=key))


@pytest.fixture
def two_regions(aws: None, tmp_path: Path) -> Path:
    """prod (us-east-1) and prod-dr (us-west-2), both writing to one bucket in us-east-1; an
    orders-db in each region, and ledger-db opted in in us-west-2 but never drilled."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=CENTRAL_BUCKET)
    for region in REGIONS.values():
        boto3.client("cloudformation", region_name=region).create_stack(
            StackName="restoredrill-prod", TemplateBody=stack_template(region)
        )
        databases = ["orders-db"] + (["ledger-db"] if region == "us-west-2" else [])
        for db in databases:
            rds_instance(db, tags=OPT_IN, region=region)
    reports = [
        published("orders-db", "us-east-1", 50, Verdict.PASSED),
        published("orders-db", "us-east-1", 26, Verdict.PASSED),
        published("orders-db", "us-east-1", 2, Verdict.FAILED),
        published("orders-db", "us-west-2", 3, Verdict.PASSED),
    ]
    for key, body in reports:
        s3.put_object(Bucket=CENTRAL_BUCKET, Key=key, Body=body)
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        "version = 0.1\n"
        + "".join(
            f'[{env}.global.parameters]\nstack_name = "restoredrill-prod"\n'
            f'[{env}.deploy.parameters]\nregion = "{region}"\n'
            for env, region in REGIONS.items()
        )
    )
    return samconfig


def test_the_summary_covers_every_region_once_and_keeps_same_named_databases_apart(
    two_regions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two regions' stacks sharing one central report bucket
    since = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
    # When the summary is asked of both environments
    code = main(
        [
            "report",
            "--since",
            since,
            "--format",
            "json",
            "--samconfig",
            str(two_regions),
            "--config-env",
            "prod",
            "--config-env",
            "prod-dr",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    by_db = {(db["region"], db["db_instance_identifier"]): db for db in summary["databases"]}
    # Then each region's orders-db is its own line, each report counted once (the shared
    # bucket is read per region), and the never-drilled ledger-db is called out
    assert code == 0
    assert set(by_db) == {
        ("us-east-1", "orders-db"),
        ("us-west-2", "orders-db"),
        ("us-west-2", "ledger-db"),
    }
    east, west = by_db["us-east-1", "orders-db"], by_db["us-west-2", "orders-db"]
    assert (east["drills"], east["verdicts"]["passed"], east["verdicts"]["failed"]) == (3, 2, 1)
    assert east["failing"] is True and east["coverage"] == "covered"
    assert (west["drills"], west["pass_rate"], west["failing"]) == (1, 1.0, False)
    assert by_db["us-west-2", "ledger-db"]["coverage"] == "never_drilled"
    assert summary["totals"]["drills"] == 4 and summary["totals"]["never_drilled"] == 1


def test_a_bad_since_or_an_unknown_environment_is_one_clear_line(
    two_regions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the summary is asked with an environment samconfig.toml does not have
    code = main(["report", "--samconfig", str(two_regions), "--config-env", "staging"])
    # Then it exits 2 with one line naming the environment, and no traceback
    err = capsys.readouterr().err
    assert code == 2
    assert "staging" in err and "Traceback" not in err
    # And a date that is not one is refused by the argument parser
    with pytest.raises(SystemExit) as refused:
        main(["report", "--since", "last tuesday", "--samconfig", str(two_regions)])
    assert refused.value.code == 2
    assert "not a date" in capsys.readouterr().err
