"""The RDS adapter and AWS Backup's recovery points (moto): an RDS recovery point is a DB snapshot
of the type awsbackup, which DescribeDBSnapshots returns only when asked for that type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.rds.models import rds_backends
from restoredrill.adapters.aws import RdsAdapter
from restoredrill.ports.records import RunRecord

from localcloud.rds import emulate_aws_backup_restores
from tests.adapters.conftest import REGION

ACCOUNT = "123456789012"
RECOVERY_POINT = "awsbackup:job-5c1a2b3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
RUN_ID = "0123456789abcdef0123"


@pytest.fixture
def rds(aws: None) -> Any:
    """clinic-db with an automated-looking manual snapshot and an AWS Backup recovery point
    (AWS Backup creates those itself: moto's API would refuse the name)."""
    client = boto3.client("rds", region_name=REGION)
    client.create_db_instance(
        DBInstanceIdentifier="clinic-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="clinic_admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    client.create_db_snapshot(DBInstanceIdentifier="clinic-db", DBSnapshotIdentifier="snap-1")
    backend = rds_backends[ACCOUNT][REGION]
    backend.create_db_snapshot("clinic-db", RECOVERY_POINT, snapshot_type="awsbackup")
    return client


def adapter(client: Any) -> RdsAdapter:
    return RdsAdapter(
        client,
        stack_name="restoredrill-test",
        db_subnet_group_name="private",
        security_group_id="sg-1",
    )


def test_a_recovery_point_is_described_as_an_awsbackup_snapshot(rds: Any) -> None:
    sent: list[dict[str, Any]] = []
    rds.meta.events.register(
        "provide-client-params.rds.DescribeDBSnapshots",
        lambda params, **_: sent.append(dict(params)),
    )
    # When the drill describes the recovery point by the id its event named
    described = adapter(rds).describe_snapshot(RECOVERY_POINT)
    # Then it is found, with its ARN (the drill's key) and its type
    assert described is not None
    info, source = described
    assert source == "clinic-db" and info.snapshot_type == "awsbackup"
    arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{RECOVERY_POINT}"
    assert info.snapshot_id == RECOVERY_POINT and info.snapshot_arn == arn
    # Asked for as the awsbackup type: without it RDS returns automated and manual ones only
    assert [params.get("SnapshotType") for params in sent] == ["awsbackup"]


def test_other_snapshots_are_described_as_before_without_a_type(rds: Any) -> None:
    sent: list[dict[str, Any]] = []
    rds.meta.events.register(
        "provide-client-params.rds.DescribeDBSnapshots",
        lambda params, **_: sent.append(dict(params)),
    )
    described = adapter(rds).describe_snapshot("snap-1")
    assert described is not None and described[0].snapshot_id == "snap-1"
    assert adapter(rds).describe_snapshot("awsbackup:job-gone") is None
    assert "SnapshotType" not in sent[0] and sent[1]["SnapshotType"] == "awsbackup"


def test_the_sam_local_world_restores_a_recovery_point_as_the_local_cloud_does(rds: Any) -> None:
    # Given plain moto taught to restore AWS Backup's snapshots (scripts/sam_local's world)
    emulate_aws_backup_restores()
    emulate_aws_backup_restores()  # once is enough; twice changes nothing
    ec2 = boto3.client("ec2", region_name=REGION)
    boto3.client("rds", region_name=REGION).create_db_subnet_group(
        DBSubnetGroupName="private",
        DBSubnetGroupDescription="drills",
        SubnetIds=[ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
    )
    gateway = adapter(rds)
    described = gateway.describe_snapshot(RECOVERY_POINT)
    assert described is not None
    run = RunRecord(
        run_id=RUN_ID,
        source_db="clinic-db",
        snapshot=described[0],
        instance_id=f"restoredrill-{RUN_ID}",
        instance_class="db.t4g.micro",
        trigger="Backup Job State Change COMPLETED (AWS Backup recovery point)",
        created_at=datetime(2026, 11, 27, tzinfo=UTC),
        deadline=datetime(2026, 11, 27, 4, tzinfo=UTC),
    )
    # When the drill restores the recovery point
    gateway.restore(run)
    # Then the drill instance exists, and the snapshot is still AWS Backup's
    assert gateway.describe_drill_instance(run.instance_id) is not None
    again = gateway.describe_snapshot(RECOVERY_POINT)
    assert again is not None and again[0].snapshot_type == "awsbackup"
