"""The RDS adapter's Aurora calls against moto: a drill cluster restored from a cluster snapshot,
its instance created into it, the cluster's password, teardown and the ownership checks."""

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_rds import RDSClient
from restoredrill.adapters.aws import NotOurInstance, RdsAdapter
from restoredrill.ports.records import (
    OWNER_TAG,
    RUN_ID_TAG,
    SOURCE_DB_TAG,
    PointInTimeRestore,
    RunRecord,
)

from tests.adapters.conftest import REGION
from tests.unit.fakes import START

STACK = "restoredrill-test"
RUN_ID = "0123456789abcdef0123"
CLUSTER = f"restoredrill-{RUN_ID}"
INSTANCE = f"{CLUSTER}-writer"


@pytest.fixture
def rds(aws: None) -> RDSClient:
    client = boto3.client("rds", region_name=REGION)
    client.create_db_cluster(
        DBClusterIdentifier="orders-aurora",
        Engine="aurora-postgresql",
        EngineVersion="16.4",
        MasterUsername="orders_admin",
        MasterUserPassword="not-a-secret-1",
        Tags=[{"Key": "restoredrill:drill", "Value": "enabled"}],
    )
    client.create_db_cluster_snapshot(
        DBClusterIdentifier="orders-aurora", DBClusterSnapshotIdentifier="orders-snap-1"
    )
    subnet = boto3.client("ec2", region_name=REGION).describe_subnets()["Subnets"][0]["SubnetId"]
    client.create_db_subnet_group(
        DBSubnetGroupName="private", DBSubnetGroupDescription="drills", SubnetIds=[subnet]
    )
    return client


def adapter(client: RDSClient) -> RdsAdapter:
    return RdsAdapter(
        client, stack_name=STACK, db_subnet_group_name="private", security_group_id="sg-1"
    )


def a_cluster_run(gateway: RdsAdapter) -> RunRecord:
    described = gateway.describe_cluster_snapshot("orders-snap-1")
    assert described is not None
    snapshot, source = described
    assert source == "orders-aurora"
    return RunRecord(
        run_id=RUN_ID,
        source_db=source,
        snapshot=snapshot,
        instance_id=INSTANCE,
        cluster_id=CLUSTER,
        instance_class="db.t4g.medium",
        trigger="test",
        created_at=START,
        deadline=START + timedelta(hours=4),
    )


def sent_by(client: RDSClient, operation: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        f"provide-client-params.rds.{operation}", lambda params, **_: sent.append(dict(params))
    )
    return sent


def test_the_source_cluster_and_its_snapshot_are_described_for_eligibility(
    rds: RDSClient,
) -> None:
    gateway = adapter(rds)
    source = gateway.describe_source_cluster("orders-aurora")
    assert source is not None and source.engine == "aurora-postgresql"
    assert source.tags["restoredrill:drill"] == "enabled"
    assert gateway.describe_source_cluster("no-such-cluster") is None
    assert gateway.describe_cluster_snapshot("no-such-snapshot") is None
    run = a_cluster_run(gateway)
    assert run.snapshot.engine == "aurora-postgresql" and run.snapshot.engine_version == "16.4"
    assert ":cluster-snapshot:orders-snap-1" in run.snapshot.snapshot_arn


def test_restore_cluster_sends_the_drill_settings_and_is_idempotent(rds: RDSClient) -> None:
    sent = sent_by(rds, "RestoreDBClusterFromSnapshot")
    gateway = adapter(rds)
    run = a_cluster_run(gateway)
    # When the cluster is restored
    gateway.restore_cluster(run)
    # Then the request asks for the snapshot's engine and version, the drill network, the
    # drill port, no deletion protection and the drill tags only
    assert len(sent) == 1
    request = sent[0]
    assert request["Engine"] == "aurora-postgresql" and request["EngineVersion"] == "16.4"
    assert request["DBSubnetGroupName"] == "private"
    assert request["VpcSecurityGroupIds"] == ["sg-1"]
    assert request["Port"] == 5432 and request["DeletionProtection"] is False
    # An Aurora cluster cannot keep no backups: the least it can, one day
    assert request["BackupRetentionPeriod"] == 1
    # Provisioned: no Serverless v2 capacity range
    assert "ServerlessV2ScalingConfiguration" not in request
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags == {OWNER_TAG: STACK, RUN_ID_TAG: RUN_ID, SOURCE_DB_TAG: "orders-aurora"}
    # And one cluster exists, tagged as this drill's
    view = gateway.describe_drill_cluster(CLUSTER)
    assert view is not None and view.owned_by(STACK, RUN_ID)


def test_a_point_in_time_cluster_restore_asks_for_the_time_with_the_same_drill_settings(
    rds: RDSClient,
) -> None:
    snapshot_sent = sent_by(rds, "RestoreDBClusterFromSnapshot")
    sent = sent_by(rds, "RestoreDBClusterToPointInTime")
    gateway = adapter(rds)
    # Given the same drill restored from a snapshot, and a point-in-time drill of the source
    snapshot_run = a_cluster_run(gateway)
    gateway.restore_cluster(snapshot_run.model_copy(update={"cluster_id": CLUSTER + "-s"}))
    source = gateway.describe_restorable_cluster("orders-aurora")
    assert source is not None and source.latest_restorable_time is not None
    assert source.arn.endswith(":cluster:orders-aurora") and source.engine == "aurora-postgresql"
    assert gateway.describe_restorable_cluster("no-such-cluster") is None
    requested = START - timedelta(minutes=5)
    run = snapshot_run.model_copy(
        update={"point_in_time": PointInTimeRestore(restore_time=requested)}
    )
    # When the point-in-time drill restores its cluster
    gateway.restore_cluster(run)
    # Then it asks for exactly that time (a full copy) of the source cluster, into the drill's
    assert len(sent) == 1
    request = sent[0]
    assert request["SourceDBClusterIdentifier"] == "orders-aurora"
    assert request["DBClusterIdentifier"] == CLUSTER
    assert request["RestoreToTime"] == requested and request["RestoreType"] == "full-copy"
    assert "UseLatestRestorableTime" not in request
    # And with the snapshot restore's settings (network, port, backups, tags), nothing else
    (snapshot_request,) = snapshot_sent
    shared = {
        k: v
        for k, v in snapshot_request.items()
        if k not in ("DBClusterIdentifier", "SnapshotIdentifier", "Engine", "EngineVersion")
    }
    mine = {
        k: v
        for k, v in request.items()
        if k
        not in ("DBClusterIdentifier", "SourceDBClusterIdentifier", "RestoreToTime", "RestoreType")
    }
    assert mine == shared
    assert mine["BackupRetentionPeriod"] == 1 and mine["Port"] == 5432
    # And the source cluster is left as it was
    found = rds.describe_db_clusters(DBClusterIdentifier="orders-aurora")["DBClusters"][0]
    assert {t["Key"] for t in found["TagList"]} == {"restoredrill:drill"}


def test_a_repeated_cluster_restore_finds_the_cluster_already_there(rds: RDSClient) -> None:
    # Given RDS answering a restore with DBClusterAlreadyExistsFault (an earlier attempt of a
    # retried trigger got through; moto does not refuse a duplicate restore itself)
    gateway = adapter(rds)
    run = a_cluster_run(gateway)
    with Stubber(rds) as stub:
        stub.add_client_error(
            "restore_db_cluster_from_snapshot",
            service_error_code="DBClusterAlreadyExistsFault",
            http_status_code=400,
        )
        # When the restore is repeated, then it is not an error
        gateway.restore_cluster(run)
        stub.assert_no_pending_responses()


def test_the_instance_goes_into_the_drill_cluster_and_teardown_is_instance_then_cluster(
    rds: RDSClient,
) -> None:
    gateway = adapter(rds)
    run = a_cluster_run(gateway)
    gateway.restore_cluster(run)
    created = sent_by(rds, "CreateDBInstance")
    # When the instance is created (twice: a retried trigger)
    gateway.create_cluster_instance(run)
    gateway.create_cluster_instance(run)
    # Then it is a private instance of the drill cluster with the drill tags
    request = created[0]
    assert request["DBClusterIdentifier"] == CLUSTER
    assert request["DBInstanceClass"] == "db.t4g.medium"
    assert request["Engine"] == "aurora-postgresql" and request["PubliclyAccessible"] is False
    instance = gateway.describe_drill_instance(INSTANCE)
    assert instance is not None and instance.cluster_id == CLUSTER
    cluster = gateway.describe_drill_cluster(CLUSTER)
    assert cluster is not None and cluster.members == (INSTANCE,)
    # When the password is reset on the cluster
    reset = sent_by(rds, "ModifyDBCluster")
    gateway.set_cluster_master_password(run, "Fresh-Password-123")
    assert reset[0]["DBClusterIdentifier"] == CLUSTER and reset[0]["ApplyImmediately"] is True
    # When the instance, then the cluster are deleted
    deleted = sent_by(rds, "DeleteDBCluster")
    gateway.delete_drill_instance(RUN_ID, INSTANCE)
    gateway.delete_drill_cluster(RUN_ID, CLUSTER)
    gateway.delete_drill_cluster(RUN_ID, CLUSTER)  # already gone: nothing to do
    # Then the cluster went without a final snapshot, and both are gone
    assert deleted[0]["SkipFinalSnapshot"] is True
    assert gateway.describe_drill_instance(INSTANCE) is None
    assert gateway.describe_drill_cluster(CLUSTER) is None


def test_clusters_not_tagged_as_this_drills_are_never_changed(rds: RDSClient) -> None:
    gateway = adapter(rds)
    run = a_cluster_run(gateway)
    rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER,
        Engine="aurora-postgresql",
        MasterUsername="someone",
        MasterUserPassword="not-a-secret-2",
        Tags=[{"Key": OWNER_TAG, "Value": "another-stack"}, {"Key": RUN_ID_TAG, "Value": RUN_ID}],
    )
    with pytest.raises(NotOurInstance):
        gateway.delete_drill_cluster(RUN_ID, CLUSTER)
    with pytest.raises(NotOurInstance):
        gateway.set_cluster_master_password(run, "Fresh-Password-123")
    with pytest.raises(NotOurInstance):
        gateway.create_cluster_instance(run)
    assert gateway.describe_drill_cluster(CLUSTER) is not None
    # And the orphan scan lists only this stack's drill clusters
    assert gateway.list_drill_clusters() == []


def test_a_serverless_v2_drill_restores_the_cluster_with_its_capacity_range(
    rds: RDSClient,
) -> None:
    sent = sent_by(rds, "RestoreDBClusterFromSnapshot")
    gateway = adapter(rds)
    run = a_cluster_run(gateway).model_copy(
        update={"instance_class": "db.serverless", "acu_range": (0.5, 4.0)}
    )
    gateway.restore_cluster(run)
    assert sent[0]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4.0}
