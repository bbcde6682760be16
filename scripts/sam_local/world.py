"""The world the sample events in events/ are sent into: the stack's resources provisioned from
template.yaml in a moto server, the opted-in source database and its automated snapshot named by
the snapshot event, the opted-in Aurora PostgreSQL cluster and its automated cluster snapshot
named by the cluster snapshot event, yesterday's drill 3f9a2c71d0b84e5fa613 that the advance,
check and notify samples are about (restore requested, its password in SSM, a real PostgreSQL
behind its endpoint), an orphaned drill instance for the sweeper, the restore testing job the
restore-test sample names (its instance restored and tagged as restore testing does), and a
Slack receiver."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moto.rds.models import rds_backends
from moto.server import ThreadedMotoServer
from restoredrill.adapters.aws import DynamoRunStore, RdsAdapter, SsmPasswordVault
from restoredrill.domain.runstate import transition
from restoredrill.ports.records import (
    INSTANCE_PREFIX,
    OWNER_TAG,
    RUN_ID_TAG,
    SOURCE_DB_TAG,
    PhaseTiming,
    RunRecord,
    RunState,
    SnapshotInfo,
)

from localcloud.backup import LocalBackup, RestoreJob
from localcloud.clinic import create_master_user, load_clinic
from localcloud.postgres import PostgresServer, init_cluster, make_parent_dir
from localcloud.provision import Stack, local_client, provision
from localcloud.rds import emulate_account_attributes, emulate_aws_backup_restores
from localcloud.slack import SlackReceiver

STACK_NAME = "restoredrill"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
SOURCE_DB = "clinic-db"
MASTER_USER = "clinic_admin"
OPT_IN_TAGS = {"restoredrill:drill": "enabled", "team": "clinic"}
SNAPSHOT_ID = "rds:clinic-db-2026-11-27-03-10"
RESTORE_TEST_SAMPLE = "validate_restore/restore-test-completed.json"
SNAPSHOT_TIME = datetime(2026, 11, 27, 3, 10, 14)  # moto keeps naive UTC times
# The recovery point of events/start_drill/backup-job-completed.json: AWS Backup names the RDS
# snapshots it takes awsbackup:job-<backup job id>.
BACKUP_SNAPSHOT_ID = "awsbackup:job-5c1a2b3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
# The Aurora cluster of events/start_drill/automated-cluster-snapshot-created.json.
SOURCE_CLUSTER = "orders-aurora"
CLUSTER_SNAPSHOT_ID = "rds:orders-aurora-2026-11-27-03-10"
# The drill the advance, check_runner, checker and notify samples are about.
SAMPLE_RUN_ID = "3f9a2c71d0b84e5fa613"
# The run's password in SSM, the one the checker sample carries (RDS would have it set).
SAMPLE_RUN_PASSWORD = "example-not-a-real-password"  # noqa: S105
SAMPLE_RUN_HOST = f"{INSTANCE_PREFIX}{SAMPLE_RUN_ID}.abcdefghij.us-east-1.rds.amazonaws.com"
# A drill instance whose run record is gone: the sweeper's to delete.
ORPHAN_RUN_ID = "0ff1ce5eed0ff1ce5eed"
DRILL_FINISHED_QUEUE = "sam-local-drill-finished"
# What `sam deploy` would be told; the settle time keeps freshly started drills in SECURING
# until their "Reset master credentials" event, which never comes here.
PARAMETERS = {
    "DBSubnetGroupName": "restoredrill-private",
    "DrillSecurityGroupId": "sg-0123456789abcdef0",
    "CheckerSecurityGroupId": "sg-0fedcba9876543210",
    "CheckerSubnetIds": "subnet-0aaaaaaaaaaaaaaaa",
    "CredentialsSettleSeconds": "900",
    "CheckerTimeoutSeconds": "120",
    # The samples start five drills side by side (snapshot, request, AWS Backup recovery point,
    # point in time, Aurora) and each case expects its restore requested; queueing behind the
    # cap is the e2e tests' subject (tests/e2e/test_admission.py), not the samples'.
    "MaxConcurrentDrills": "5",
}


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class World:
    bridge: str
    project_root: Path
    moto: ThreadedMotoServer | None = None
    moto_url: str = ""
    stack: Stack | None = None
    slack: SlackReceiver | None = None
    postgres: PostgresServer | None = None
    backup: LocalBackup | None = None
    _pg_parent: Path | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        port = free_port(self.bridge)
        # moto has no DescribeAccountAttributes; admission asks for the quota headroom first.
        emulate_account_attributes()
        # moto restores automated and manual snapshots only: the backup-job sample's is AWS Backup's
        emulate_aws_backup_restores()
        # nor AWS Backup's restore jobs, which the restore-test sample's validator reads.
        self.backup = LocalBackup(ACCOUNT_ID, REGION)
        self.backup.install()
        self.moto = ThreadedMotoServer(ip_address=self.bridge, port=port, verbose=False)
        self.moto.start()
        self.moto_url = f"http://{self.bridge}:{port}"
        self.slack = SlackReceiver(host=self.bridge)
        self.slack.start()
        self.stack = provision(
            self.project_root / "template.yaml",
            moto_url=self.moto_url,
            stack_name=STACK_NAME,
            region=REGION,
            account_id=ACCOUNT_ID,
            parameter_overrides=PARAMETERS,
        )

    def stop(self) -> None:
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.destroy()
            self.postgres = None
        if self._pg_parent is not None:
            shutil.rmtree(self._pg_parent, ignore_errors=True)
        if self.slack is not None:
            self.slack.stop()
        if self.moto is not None:
            self.moto.stop()
        if self.backup is not None:
            self.backup.uninstall()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = local_client(service, endpoint_url=self.moto_url)
        return self._clients[service]

    # -- the stack's names -------------------------------------------------------------------

    def physical(self, logical_id: str) -> str:
        assert self.stack is not None
        return str(self.stack.physical_id(logical_id))

    def environment(self, logical_id: str) -> dict[str, str]:
        assert self.stack is not None
        return dict(self.stack.functions[logical_id].environment)

    def runs(self) -> DynamoRunStore:
        return DynamoRunStore(self.client("dynamodb"), self.physical("RunTable"), 400)

    def run(self, run_id: str) -> RunRecord | None:
        return self.runs().get(run_id)

    # -- seeding ---------------------------------------------------------------------------

    def seed(self) -> None:
        """Everything the samples refer to, in the state the first of them expects."""
        self._account()
        self._source_and_snapshot()
        self._source_cluster_and_snapshot()
        self._sample_run()
        self._orphan()
        self._restore_test()
        self._sample_database()

    def _account(self) -> None:
        """What the operator sets up before `sam deploy`, and what moto cannot provision."""
        assert self.stack is not None and self.slack is not None
        subnet = self.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
        self.client("rds").create_db_subnet_group(
            DBSubnetGroupName=PARAMETERS["DBSubnetGroupName"],
            DBSubnetGroupDescription="private subnets for restore drills",
            SubnetIds=[subnet],
        )
        self.client("ssm").put_parameter(
            Name="/restoredrill/slack-webhook-url",
            Value=self.slack.url,
            Type="SecureString",
            Overwrite=True,
        )
        # The local cloud answers EventBridge itself; here moto holds the bus, and a rule on it
        # copies every Drill Finished into a queue the outcome checks read.
        events, sqs = self.client("events"), self.client("sqs")
        bus = self.physical("DrillBus")
        events.create_event_bus(Name=bus)
        queue_url = sqs.create_queue(QueueName=DRILL_FINISHED_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="sam-local-drill-finished",
            EventBusName=bus,
            EventPattern='{"source": ["restoredrill"], "detail-type": ["Drill Finished"]}',
        )
        events.put_targets(
            Rule="sam-local-drill-finished",
            EventBusName=bus,
            Targets=[{"Id": "capture", "Arn": queue_arn}],
        )

    def _source_and_snapshot(self) -> None:
        """clinic-db, opted in, and its automated snapshot with the id the sample event names
        (moto would name one after the current minute)."""
        self.client("rds").create_db_instance(
            DBInstanceIdentifier=SOURCE_DB,
            Engine="postgres",
            EngineVersion="15.5",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername=MASTER_USER,
            MasterUserPassword="source-password-never-used",
            BackupRetentionPeriod=7,
            CopyTagsToSnapshot=True,
            Tags=[{"Key": key, "Value": value} for key, value in OPT_IN_TAGS.items()],
        )
        backend = rds_backends[ACCOUNT_ID][REGION]
        for snapshot_id, snapshot in list(backend.database_snapshots.items()):
            if snapshot.snapshot_type == "automated":
                del backend.database_snapshots[snapshot_id]
        snapshot = backend.create_db_snapshot(SOURCE_DB, SNAPSHOT_ID, snapshot_type="automated")
        snapshot.created = SNAPSHOT_TIME
        snapshot.status = "available"
        backup = backend.create_db_snapshot(
            SOURCE_DB, BACKUP_SNAPSHOT_ID, snapshot_type="awsbackup"
        )
        backup.created = SNAPSHOT_TIME
        backup.status = "available"

    def _source_cluster_and_snapshot(self) -> None:
        """orders-aurora, opted in, and its automated cluster snapshot with the id the sample
        event names."""
        self.client("rds").create_db_cluster(
            DBClusterIdentifier=SOURCE_CLUSTER,
            Engine="aurora-postgresql",
            EngineVersion="16.4",
            MasterUsername="orders_admin",
            MasterUserPassword="source-password-never-used",
            BackupRetentionPeriod=7,
            Tags=[{"Key": key, "Value": value} for key, value in OPT_IN_TAGS.items()],
        )
        backend = rds_backends[ACCOUNT_ID][REGION]
        for snapshot_id, snapshot in list(backend.cluster_snapshots.items()):
            if snapshot.snapshot_type == "automated":
                del backend.cluster_snapshots[snapshot_id]
        backend.create_db_cluster_snapshot(
            SOURCE_CLUSTER, CLUSTER_SNAPSHOT_ID, snapshot_type="automated"
        )

    def cluster_ids(self) -> set[str]:
        found = self.client("rds").describe_db_clusters()["DBClusters"]
        return {str(each["DBClusterIdentifier"]) for each in found}

    def _rds_adapter(self) -> RdsAdapter:
        return RdsAdapter(
            self.client("rds"),
            stack_name=STACK_NAME,
            db_subnet_group_name=PARAMETERS["DBSubnetGroupName"],
            security_group_id=PARAMETERS["DrillSecurityGroupId"],
        )

    def _sample_run(self) -> None:
        """Drill 3f9a2c71d0b84e5fa613 of the snapshot, as far as start_drill takes one when RDS
        has not finished the restore: RESTORING, restore requested, its password in SSM."""
        described = self._rds_adapter().describe_snapshot(SNAPSHOT_ID)
        if described is None:
            raise RuntimeError(f"snapshot {SNAPSHOT_ID} was not seeded")
        snapshot, _ = described
        environment = self.environment("StartDrillFunction")
        run = seeded_restoring_run(
            run_id=SAMPLE_RUN_ID,
            source_db=SOURCE_DB,
            snapshot=snapshot,
            instance_class=environment["DRILL_INSTANCE_CLASS"],
            password_parameter=f"{environment['PASSWORD_PARAMETER_PREFIX']}/{SAMPLE_RUN_ID}",
            deadline=datetime.now(UTC)
            + timedelta(minutes=float(environment["DRILL_DEADLINE_MINUTES"])),
        )
        self._rds_adapter().restore(run)
        assert run.password_parameter is not None
        self.client("ssm").put_parameter(
            Name=run.password_parameter,
            Value=SAMPLE_RUN_PASSWORD,
            Type="SecureString",
            Overwrite=True,
        )
        if not self.runs().create(run):
            raise RuntimeError(f"run {SAMPLE_RUN_ID} already exists in a world just created")

    def _orphan(self) -> None:
        """A drill instance of this stack that no run owns (its run record is gone)."""
        self.client("rds").restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=f"{INSTANCE_PREFIX}{ORPHAN_RUN_ID}",
            DBSnapshotIdentifier=SNAPSHOT_ID,
            DBInstanceClass="db.t4g.micro",
            DBSubnetGroupName=PARAMETERS["DBSubnetGroupName"],
            Tags=[
                {"Key": OWNER_TAG, "Value": STACK_NAME},
                {"Key": RUN_ID_TAG, "Value": ORPHAN_RUN_ID},
                {"Key": SOURCE_DB_TAG, "Value": SOURCE_DB},
            ],
        )

    def _restore_test(self) -> None:
        """The completed restore testing job of the restore-test sample and the instance it
        restored (tagged as restore testing tags it). No checking credential is stored: the
        validator finds the job and the instance, then declines, telling why."""
        assert self.backup is not None
        sample = self.project_root / "events" / RESTORE_TEST_SAMPLE
        detail = json.loads(sample.read_text())["detail"]
        instance_id = str(detail["createdResourceArn"]).rsplit(":", 1)[1]
        self.client("rds").restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=instance_id,
            DBSnapshotIdentifier=SNAPSHOT_ID,
            DBInstanceClass="db.t4g.micro",
            Tags=[{"Key": "awsbackup-restore-test", "Value": str(detail["restoreJobId"])}],
        )
        self.backup.add_job(
            RestoreJob(
                restore_job_id=str(detail["restoreJobId"]),
                created_resource_arn=str(detail["createdResourceArn"]),
                source_resource_arn=f"arn:aws:rds:{REGION}:{ACCOUNT_ID}:db:{SOURCE_DB}",
                recovery_point_arn=str(json.loads(sample.read_text())["resources"][0]),
                recovery_point_created_at=datetime(2026, 11, 28, 3, 10, tzinfo=UTC),
                restore_testing_plan_arn=str(detail["restoreTestingPlanArn"]),
            )
        )

    def _sample_database(self) -> None:
        """A real PostgreSQL (TLS, scram) with the clinic's data, as the restored instance of
        the sample run: its master user and password are the ones the samples name."""
        self._pg_parent = make_parent_dir("restoredrill-sam-local-pg-")
        server = init_cluster(self._pg_parent, "restored")
        server.start()
        self.postgres = server
        admin = server.admin_connect()
        try:
            create_master_user(admin, MASTER_USER, SAMPLE_RUN_PASSWORD)
            # RDS's master user holds rds_superuser (CREATE EXTENSION amcheck); plain
            # PostgreSQL has no such role.
            admin.run(f'ALTER ROLE "{MASTER_USER}" SUPERUSER')
            load_clinic(admin, patients=200, owner=MASTER_USER)
        finally:
            admin.close()

    # -- reading the outcome ---------------------------------------------------------------

    def instance_ids(self) -> set[str]:
        found = self.client("rds").describe_db_instances()["DBInstances"]
        return {str(each["DBInstanceIdentifier"]) for each in found}

    def password_stored(self, name: str) -> bool:
        return SsmPasswordVault(self.client("ssm")).get(name) is not None

    def report_keys(self) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=self.physical("ReportBucket"))
        return [str(each["Key"]) for each in listed.get("Contents", [])]

    def drill_finished_events(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=DRILL_FINISHED_QUEUE)["QueueUrl"]
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(each["Body"]) for each in received.get("Messages", [])]


def seeded_restoring_run(
    *,
    run_id: str,
    source_db: str,
    snapshot: SnapshotInfo,
    instance_class: str,
    password_parameter: str,
    deadline: datetime,
) -> RunRecord:
    """The record start_drill writes, moved on by the step that requests the restore."""
    now = datetime.now(UTC)
    requested = RunRecord(
        run_id=run_id,
        source_db=source_db,
        snapshot=snapshot,
        instance_id=f"{INSTANCE_PREFIX}{run_id}",
        instance_class=instance_class,
        trigger="Drill Requested",
        requested_by="alice@example.com",
        created_at=now,
        deadline=deadline,
        password_parameter=password_parameter,
        phases={RunState.REQUESTED: PhaseTiming(started_at=now)},
    )
    return transition(requested, RunState.RESTORING, now, restore_requested_at=now)
