"""The boto3 adapters against moto: conditional writes, ownership checks, secrets, delays."""

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_rds import RDSClient
from restoredrill.adapters.aws import (
    DynamoRunStore,
    EventBridgeDrillEvents,
    NotOurInstance,
    RdsAdapter,
    S3ReportStore,
    SqsPollQueue,
    SsmPasswordVault,
)
from restoredrill.domain.runstate import transition
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.records import (
    OWNER_TAG,
    RUN_ID_TAG,
    PointInTimeRestore,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

from tests.adapters.conftest import REGION
from tests.unit.fakes import START

STACK = "restoredrill-test"
RUN_ID = "0123456789abcdef0123"


def a_run(run_id: str = RUN_ID, snapshot_id: str = "snap-1") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        source_db="clinic-db",
        snapshot=SnapshotInfo(
            snapshot_id=snapshot_id, snapshot_arn="arn:x", master_username="admin"
        ),
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="test",
        created_at=START,
        deadline=START + timedelta(hours=4),
    )


def test_run_store_creates_once_and_replaces_only_the_expected_version(run_table: str) -> None:
    store = DynamoRunStore(
        boto3.client("dynamodb", region_name=REGION), run_table, retention_days=30
    )
    run = a_run()
    # Given a stored run
    assert store.create(run) is True
    # When the same run is created again, or replaced from a stale version
    assert store.create(run) is False
    moved = transition(run, RunState.RESTORING, START)
    assert store.replace(moved, expected_version=0) is True
    stale = transition(run, RunState.RESTORING, START).model_copy(update={"reason": "stale"})
    # Then only the first write of each version wins
    assert store.replace(stale, expected_version=0) is False
    stored = store.get(RUN_ID)
    assert stored == moved


def test_run_store_lists_unfinished_runs_from_the_sparse_index(run_table: str) -> None:
    store = DynamoRunStore(
        boto3.client("dynamodb", region_name=REGION), run_table, retention_days=30
    )
    active, finished = a_run("a" * 20), a_run("b" * 20)
    store.create(active)
    store.create(finished)
    done = transition(finished, RunState.FINISHED, START).model_copy(
        update={"verdict": Verdict.PASSED}
    )
    store.replace(done, expected_version=0)
    assert [run.run_id for run in store.active_runs()] == ["a" * 20]
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=run_table, Key={"run_id": {"S": "b" * 20}}
    )
    assert "active" not in item["Item"] and item["Item"]["verdict"]["S"] == "PASSED"
    assert int(item["Item"]["expires_at"]["N"]) == int((START + timedelta(days=30)).timestamp())


@pytest.fixture
def rds(aws: None) -> RDSClient:
    client = boto3.client("rds", region_name=REGION)
    client.create_db_instance(
        DBInstanceIdentifier="clinic-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="clinic_admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        Tags=[{"Key": "restoredrill:drill", "Value": "enabled"}],
    )
    client.create_db_snapshot(DBInstanceIdentifier="clinic-db", DBSnapshotIdentifier="snap-1")
    subnet = boto3.client("ec2", region_name=REGION).describe_subnets()["Subnets"][0]["SubnetId"]
    client.create_db_subnet_group(
        DBSubnetGroupName="private", DBSubnetGroupDescription="drills", SubnetIds=[subnet]
    )
    return client


def adapter(client: RDSClient) -> RdsAdapter:
    return RdsAdapter(
        client, stack_name=STACK, db_subnet_group_name="private", security_group_id="sg-1"
    )


def test_restore_creates_a_private_tagged_instance_and_is_idempotent(rds: RDSClient) -> None:
    sent: list[dict[str, Any]] = []
    rds.meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **_: sent.append(dict(params)),
    )
    gateway = adapter(rds)
    run = a_run()
    gateway.restore(run)
    gateway.restore(run)  # a retried trigger
    # The request asks for a private, single-AZ, unprotected instance without backups
    assert len(sent) == 2
    for key, wanted in {
        "PubliclyAccessible": False,
        "MultiAZ": False,
        "DeletionProtection": False,
        "BackupRetentionPeriod": 0,
        # On the one port the security groups open, whatever port the source listens on
        "Port": 5432,
        # Keeping the snapshot's engine version, even past its end of standard support
        "EngineLifecycleSupport": "open-source-rds-extended-support",
        "VpcSecurityGroupIds": ["sg-1"],
        "DBSubnetGroupName": "private",
    }.items():
        assert sent[0][key] == wanted, key
    found = rds.describe_db_instances(DBInstanceIdentifier=run.instance_id)["DBInstances"][0]
    assert found["DBInstanceClass"] == "db.t4g.micro"
    tags = {t["Key"]: t["Value"] for t in found["TagList"]}
    assert tags == {OWNER_TAG: STACK, RUN_ID_TAG: RUN_ID, "restoredrill:source-db": "clinic-db"}
    view = gateway.describe_drill_instance(run.instance_id)
    assert (
        view is not None and view.owned_by(STACK, RUN_ID) and view.master_username == "clinic_admin"
    )


def test_a_point_in_time_restore_sends_the_snapshot_restores_settings_and_the_time_asked(
    rds: RDSClient,
) -> None:
    sent: list[dict[str, Any]] = []
    rds.meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceToPointInTime",
        lambda params, **_: sent.append(dict(params)),
    )
    snapshot_sent: list[dict[str, Any]] = []
    rds.meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **_: snapshot_sent.append(dict(params)),
    )
    gateway = adapter(rds)
    # Given the same drill restored from a snapshot, and a point-in-time drill of its source
    gateway.restore(a_run(run_id="f" * 20))
    requested = START - timedelta(minutes=5)
    run = a_run().model_copy(update={"point_in_time": PointInTimeRestore(restore_time=requested)})
    # When the point-in-time drill restores, twice (a retried trigger)
    gateway.restore(run)
    gateway.restore(run)
    # Then it asks for the requested time explicitly, from the source, into the drill's instance
    assert len(sent) == 2
    request = sent[0]
    assert request["SourceDBInstanceIdentifier"] == "clinic-db"
    assert request["TargetDBInstanceIdentifier"] == run.instance_id
    assert request["RestoreTime"] == requested
    assert "UseLatestRestorableTime" not in request
    # And with exactly the settings of the snapshot restore (private, drill network, drill port,
    # no backups, the drill tags, the class), nothing else
    (snapshot_request,) = snapshot_sent
    shared = {
        k: v
        for k, v in snapshot_request.items()
        if k not in ("DBInstanceIdentifier", "DBSnapshotIdentifier")
    }
    mine = {
        k: v
        for k, v in request.items()
        if k not in ("SourceDBInstanceIdentifier", "TargetDBInstanceIdentifier", "RestoreTime")
    }
    tags = {t["Key"]: t["Value"] for t in mine.pop("Tags")}
    assert tags == {OWNER_TAG: STACK, RUN_ID_TAG: RUN_ID, "restoredrill:source-db": "clinic-db"}
    shared.pop("Tags")
    assert mine == shared
    assert mine["BackupRetentionPeriod"] == 0 and mine["PubliclyAccessible"] is False
    # And the source is left as it was
    source = rds.describe_db_instances(DBInstanceIdentifier="clinic-db")["DBInstances"][0]
    assert source["DBInstanceStatus"] == "available"
    assert {t["Key"] for t in source["TagList"]} == {"restoredrill:drill"}


def test_the_source_of_a_point_in_time_drill_is_described_with_its_restorable_time(
    rds: RDSClient,
) -> None:
    # Given a source DB instance (moto shows a LatestRestorableTime for it)
    gateway = adapter(rds)
    # When the drill describes it
    source = gateway.describe_restorable_source("clinic-db")
    # Then it has what the report and the restore need
    assert source is not None
    assert source.arn == "arn:aws:rds:us-east-1:123456789012:db:clinic-db"
    assert (source.engine, source.master_username) == ("postgres", "clinic_admin")
    assert source.tags == {"restoredrill:drill": "enabled"}
    assert source.latest_restorable_time is not None
    assert source.latest_restorable_time.tzinfo is not None
    assert gateway.describe_restorable_source("missing") is None


def test_restore_of_a_missing_snapshot_is_rejected_for_good(rds: RDSClient) -> None:
    with pytest.raises(EffectRejected, match="DBSnapshotNotFound"):
        adapter(rds).restore(a_run(snapshot_id="gone"))


def test_snapshot_and_source_are_described_for_the_report(rds: RDSClient) -> None:
    gateway = adapter(rds)
    described = gateway.describe_snapshot("snap-1")
    assert described is not None
    info, source = described
    assert (source, info.master_username, info.engine) == ("clinic-db", "clinic_admin", "postgres")
    assert (info.region, info.account_id) == ("us-east-1", "123456789012")
    assert gateway.describe_snapshot("missing") is None
    source_db = gateway.describe_source("clinic-db")
    assert source_db is not None and source_db.tags == {"restoredrill:drill": "enabled"}


def test_an_instance_without_our_tags_is_never_modified_or_deleted(rds: RDSClient) -> None:
    # Given a production instance whose name looks like a drill instance
    rds.create_db_instance(
        DBInstanceIdentifier=f"restoredrill-{RUN_ID}",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="prod",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    gateway = adapter(rds)
    # When the drill tries to reset its password or delete it
    with pytest.raises(NotOurInstance):
        gateway.set_master_password(a_run(), "x" * 40)
    with pytest.raises(NotOurInstance):
        gateway.delete_drill_instance(RUN_ID, f"restoredrill-{RUN_ID}")
    # Then it still exists, untouched, and the sweeper does not list it
    assert rds.describe_db_instances(DBInstanceIdentifier=f"restoredrill-{RUN_ID}")["DBInstances"]
    assert gateway.list_drill_instances() == []


def test_delete_removes_our_instance_and_tolerates_repeats(rds: RDSClient) -> None:
    gateway = adapter(rds)
    run = a_run()
    gateway.restore(run)
    assert [v.instance_id for v in gateway.list_drill_instances()] == [run.instance_id]
    gateway.delete_drill_instance(RUN_ID, run.instance_id)
    gateway.delete_drill_instance(RUN_ID, run.instance_id)
    assert gateway.describe_drill_instance(run.instance_id) is None


def test_the_vault_creates_one_password_per_run_and_forgets_it(aws: None) -> None:
    vault = SsmPasswordVault(boto3.client("ssm", region_name=REGION))
    name = "/restoredrill/test/runs/" + RUN_ID
    first = vault.get_or_create(name)
    assert vault.get_or_create(name) == first  # concurrent triggers agree on one password
    assert len(first) >= 32 and not set(first) & set('/"@ ')
    stored = boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]
    assert stored["Type"] == "SecureString"
    vault.delete(name)
    vault.delete(name)
    assert vault.get_or_create(name) != first


def test_polls_are_delayed_messages_capped_at_the_sqs_limit(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    SqsPollQueue(sqs, url).schedule(RUN_ID, 0)
    SqsPollQueue(sqs, url).schedule(RUN_ID, 5000)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"run_id": RUN_ID}]  # the other is delayed


def test_reports_are_stored_byte_for_byte_with_their_sha256_checked_by_s3(aws: None) -> None:
    # Given a report's bytes
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="reports")
    body = json.dumps({"verdict": "PASSED"}, indent=2).encode()
    # When the store puts them
    uri = S3ReportStore(s3, "reports").put("reports/db/x.json", body, "application/json")
    # Then S3 holds exactly those bytes, with the SHA-256 it verified on receipt
    assert uri == "s3://reports/reports/db/x.json"
    stored = s3.get_object(Bucket="reports", Key="reports/db/x.json", ChecksumMode="ENABLED")
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "application/json"
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert stored["ChecksumSHA256"] == expected


def test_a_report_under_object_lock_cannot_be_deleted_or_overwritten_in_place(aws: None) -> None:
    # Given a bucket with Object Lock in compliance mode, as the template makes it
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket="locked",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 400}},
        },
    )
    store = S3ReportStore(s3, "locked")
    # When a report is stored, and then someone tries to delete it or write over it
    store.put("reports/db/x.json", b'{"verdict": "FAILED"}', "application/json")
    (original,) = s3.list_object_versions(Bucket="locked", Prefix="reports/")["Versions"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket="locked", Key="reports/db/x.json", VersionId=original["VersionId"])
    s3.put_object(Bucket="locked", Key="reports/db/x.json", Body=b'{"verdict": "PASSED"}')
    # Then the delete is refused, the original version is retained under compliance mode, and
    # an overwrite only adds a newer version beside it
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    head = s3.head_object(Bucket="locked", Key="reports/db/x.json", VersionId=original["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    first = s3.get_object(Bucket="locked", Key="reports/db/x.json", VersionId=original["VersionId"])
    assert first["Body"].read() == b'{"verdict": "FAILED"}'
    assert len(s3.list_object_versions(Bucket="locked", Prefix="reports/")["Versions"]) == 2


def test_the_latest_report_of_a_database_is_the_one_published_last(run_table: str) -> None:
    # Given runs of two databases: published in another order than they were created, one not
    # yet published, and the asking run itself
    store = DynamoRunStore(
        boto3.client("dynamodb", region_name=REGION), run_table, retention_days=30
    )

    def published(
        run_id: str, created: int, published: int, db: str = "clinic-db", digest: str = "a"
    ) -> RunRecord:
        run = a_run(run_id).model_copy(
            update={"created_at": START + timedelta(hours=created), "source_db": db}
        )
        store.create(run)
        done = transition(run, RunState.FINISHED, START + timedelta(hours=published)).model_copy(
            update={
                "verdict": Verdict.FAILED,
                "report_key": f"reports/us-east-1/{db}/{run_id}.json",
                "report_sha256": digest * 64,
            }
        )
        store.replace(done, expected_version=0)
        return done

    slow = published("1" * 20, created=1, published=9, digest="b")
    published("2" * 20, created=2, published=3)
    published("3" * 20, created=3, published=10, db="other-db")
    store.create(a_run("4" * 20).model_copy(update={"created_at": START + timedelta(hours=4)}))
    asking = published("5" * 20, created=5, published=11, digest="c")
    # When the report the next one must link to is looked up
    link = store.latest_report("clinic-db", excluding_run_id=asking.run_id)
    # Then it is the report of that database published last, created earlier or not
    assert link is not None
    assert (link.run_id, link.key, link.sha256) == (slow.run_id, slow.report_key, "b" * 64)
    assert store.latest_report("new-db", excluding_run_id=asking.run_id) is None


def test_drill_finished_goes_to_the_bus(aws: None) -> None:
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="drills")
    EventBridgeDrillEvents(events, "drills").drill_finished({"run_id": RUN_ID})
    with pytest.raises(Exception, match=r"ResourceNotFound|does not exist|not published"):
        EventBridgeDrillEvents(events, "no-such-bus").drill_finished({"run_id": RUN_ID})


def test_the_last_drill_of_a_database_skips_errors_timeouts_and_the_asking_run(
    run_table: str,
) -> None:
    # Given, newest first: the asking run, an ERROR, a TIMED_OUT, another database's run, a
    # FAILED one and an older PASSED one (more than a page of the query)
    store = DynamoRunStore(
        boto3.client("dynamodb", region_name=REGION), run_table, retention_days=30
    )

    def stored(run_id: str, hours: int, verdict: Verdict | None, db: str = "clinic-db") -> None:
        store.create(
            a_run(run_id).model_copy(
                update={
                    "created_at": START + timedelta(hours=hours),
                    "verdict": verdict,
                    "source_db": db,
                }
            )
        )

    stored("1" * 20, 1, Verdict.PASSED)
    stored("2" * 20, 2, Verdict.FAILED)
    stored("3" * 20, 3, None, db="other-db")
    stored("4" * 20, 4, Verdict.TIMED_OUT)
    stored("5" * 20, 5, Verdict.ERROR)
    stored("6" * 20, 6, None)
    # When the last drill that counts for the schedule is looked up for the asking run
    last = store.last_drill("clinic-db", excluding_run_id="6" * 20)
    # Then it is the FAILED one: it said something about the backup
    assert last is not None and last.run_id == "2" * 20
    # And a drill still under way counts for any other run; a database without runs has none
    under_way = store.last_drill("clinic-db", excluding_run_id="0" * 20)
    assert under_way is not None and under_way.run_id == "6" * 20
    assert store.last_drill("new-db", excluding_run_id="6" * 20) is None
