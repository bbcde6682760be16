"""The local cloud: template.yaml deployed onto moto, the real handlers, a real PostgreSQL per
restored instance, a Slack receiver, and the fault knobs. Used by `restoredrill demo` and e2e tests.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from restoredrill.drill import run_id_for
from restoredrill.models import RunRecord

from localcloud.aws import EventFaults, LocalAws
from localcloud.clinic import create_master_user, load_clinic
from localcloud.postgres import PostgresServer, init_cluster, make_parent_dir
from localcloud.rds import LocalRds, RdsFaults

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "restoredrill-local"
OPT_IN = {"restoredrill:drill": "enabled", "team": "clinic"}
MASTER_USER = "clinic_admin"
SLACK_PARAMETER = "/restoredrill/slack-webhook-url"

# Local values for what `sam deploy` would ask: the network ids are moto's, the timings short so
# a drill takes seconds, and the deadline short enough that a stuck drill ends within the demo.
LOCAL_PARAMETERS = {
    "DBSubnetGroupName": "restoredrill-local",
    "DrillSecurityGroupId": "sg-0d0d0d0d0d0d0d0d0",
    "CheckerSecurityGroupId": "sg-0c0c0c0c0c0c0c0c0",
    "CheckerSubnetIds": "subnet-0a0a0a0a0a0a0a0a0",
    "PollDelaySeconds": "2",
    "CredentialsSettleSeconds": "1",
    "CheckerTimeoutSeconds": "120",
    "DrillDeadlineMinutes": "5",
    "SlackWebhookParameterName": SLACK_PARAMETER,
    "LogLevel": "INFO",
}


def _is_rds_instance_event(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.rds" and event.get("detail-type") == "RDS DB Instance Event"


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    events: EventFaults = field(default_factory=EventFaults)
    rds: RdsFaults = field(default_factory=RdsFaults)


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "lose-rds-events",
            "every RDS instance event is lost: the drill advances on its poll fallback alone",
            events=EventFaults(drop=_is_rds_instance_event),
        ),
        Fault(
            "duplicate-events",
            "every event is delivered three times (at-least-once delivery at its worst)",
            events=EventFaults(duplicate=3),
        ),
        Fault(
            "fail-restore",
            "the restore ends in incompatible-restore: the backup does not restore",
            rds=RdsFaults(fail_restore=True),
        ),
    )
}


@dataclass
class SourceDatabase:
    instance_id: str
    server: PostgresServer
    row_counts: dict[str, int]


class LocalCloud:
    def __init__(
        self,
        *,
        fault: str | None = None,
        work_dir: Path | None = None,
        parameter_overrides: dict[str, str] | None = None,
        patients: int = 2000,
        policy_file: Path | None = None,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        self.fault = FAULTS[fault] if fault else Fault("none", "no fault")
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="restoredrill-local-"))
        self.parameters = {**LOCAL_PARAMETERS, **(parameter_overrides or {})}
        self.patients = patients
        self.policy_file = policy_file or PROJECT_ROOT / "policy" / "drill-policy.yaml"
        self.aws: LocalAws | None = None
        self.rds: LocalRds | None = None
        self.sources: list[SourceDatabase] = []
        self._pg_dir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._pg_dir = make_parent_dir()
        self.aws = LocalAws(
            template_path=PROJECT_ROOT / "template.yaml",
            project_root=PROJECT_ROOT,
            work_dir=self.work_dir,
            stack_name=STACK_NAME,
            parameter_overrides=self.parameters,
            event_faults=self.fault.events,
            # Lambda extracts the policy layer to /opt; locally the functions read it in place.
            function_env={"DRILL_POLICY_FILE": str(self.policy_file)},
            visibility_timeout_override=5,
            schedule_period_seconds=10,
            async_retry_delay_seconds=0.5,
        )
        try:
            self.aws.start()
            self.rds = LocalRds(
                state_dir=self._pg_dir,
                account_id=self.aws.account_id,
                region=self.aws.region,
                emit_event=self.aws.emit,
                faults=self.fault.rds,
            )
            self.rds.install()
            self._prepare_account()
        except BaseException:
            self.stop()
            raise

    def _prepare_account(self) -> None:
        """What an operator sets up before deploying: the subnet group and the Slack webhook."""
        assert self.aws is not None
        ec2 = self.aws.client("ec2")
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        self.aws.client("rds").create_db_subnet_group(
            DBSubnetGroupName=self.parameters["DBSubnetGroupName"],
            DBSubnetGroupDescription="private subnets for restore drills",
            SubnetIds=[subnet],
        )
        self.aws.client("ssm").put_parameter(
            Name=SLACK_PARAMETER, Value=self.aws.slack.url, Type="SecureString", Overwrite=True
        )

    def stop(self) -> None:
        if self.aws is not None:
            self.aws.stop()
        if self.rds is not None:
            self.rds.shutdown()
            self.rds.uninstall()
        for source in self.sources:
            source.server.destroy()
        self.sources.clear()
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- the world a drill happens in ----------------------------------------------------

    def create_source_database(self, instance_id: str = "clinic-db") -> SourceDatabase:
        """A production-like PostgreSQL with the clinic's data, opted in to drills."""
        assert self.rds is not None and self._pg_dir is not None
        server = init_cluster(self._pg_dir, instance_id)
        server.start()
        password = "source-" + run_id_for(instance_id)
        admin = server.admin_connect()
        try:
            create_master_user(admin, MASTER_USER, password)
            # RDS's master user holds rds_superuser, which may CREATE EXTENSION amcheck and read
            # what the checks read; plain PostgreSQL has no such role, so it is a superuser here.
            admin.run(f'ALTER ROLE "{MASTER_USER}" SUPERUSER')
            admin.run(f'CREATE DATABASE clinic OWNER "{MASTER_USER}"')
        finally:
            admin.close()
        clinic = server.admin_connect("clinic")
        try:
            counts = load_clinic(clinic, patients=self.patients, owner=MASTER_USER)
            # Live traffic: the newest booking was made minutes before the snapshot.
            clinic.run(
                "UPDATE clinic.appointments SET created_at = now() - interval '10 minutes'"
                " WHERE appointment_id = (SELECT max(appointment_id) FROM clinic.appointments)"
            )
        finally:
            clinic.close()
        self.rds.register_source_instance(
            db_instance_identifier=instance_id,
            server=server,
            master_username=MASTER_USER,
            master_password=password,
            tags=OPT_IN,
            db_name="clinic",
        )
        source = SourceDatabase(instance_id=instance_id, server=server, row_counts=counts)
        self.sources.append(source)
        return source

    def take_automated_snapshot(self, instance_id: str) -> dict[str, Any]:
        """Snapshot the source and deliver RDS-EVENT-0091, as AWS does. Returns the event."""
        assert self.rds is not None and self.aws is not None
        event = self.rds.create_automated_snapshot(instance_id)
        self.aws.emit(event)
        return event

    @staticmethod
    def run_id_for_snapshot_event(event: dict[str, Any]) -> str:
        return run_id_for(f"snapshot:{event['detail']['SourceArn']}")

    # -- looking at the outcome ----------------------------------------------------------

    def run(self, run_id: str) -> RunRecord | None:
        assert self.aws is not None
        item = (
            self.aws.client("dynamodb")
            .get_item(
                TableName=self.aws.physical_id("RunTable"),
                Key={"run_id": {"S": run_id}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        if item is None:
            return None
        return RunRecord.model_validate_json(TypeDeserializer().deserialize(item["record"]))

    def all_runs(self) -> list[RunRecord]:
        assert self.aws is not None
        items = self.aws.client("dynamodb").scan(TableName=self.aws.physical_id("RunTable"))
        return [
            RunRecord.model_validate_json(TypeDeserializer().deserialize(item["record"]))
            for item in items["Items"]
        ]

    def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float = 120,
        on_change: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord | None:
        """Wait until the run is finished; `on_change` sees every new version."""
        deadline = time.monotonic() + timeout
        seen_version = -1
        run = None
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run is not None and run.version != seen_version:
                seen_version = run.version
                if on_change is not None:
                    on_change(run)
                if run.is_finished:
                    return run
            time.sleep(0.1)
        return run

    def wait_for_slack(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        assert self.aws is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.aws.slack.messages) < count:
            time.sleep(0.1)
        return list(self.aws.slack.messages)

    def report(self, key: str) -> dict[str, Any]:
        assert self.aws is not None
        bucket = self.aws.output("ReportBucketName")
        body = self.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return dict(json.loads(body))

    def instance_exists(self, instance_id: str) -> bool:
        assert self.aws is not None
        found = self.aws.client("rds").describe_db_instances()["DBInstances"]
        return any(instance["DBInstanceIdentifier"] == instance_id for instance in found)

    def drill_servers_running(self) -> int:
        assert self.rds is not None
        return len(self.rds.running_servers())

    def queue_depth(self, logical_id: str) -> int:
        assert self.aws is not None
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.aws.physical_id(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def drill_finished_events(self) -> list[dict[str, Any]]:
        assert self.aws is not None
        return [
            envelope
            for _, envelope in self.aws.events_log
            if envelope.get("detail-type") == "Drill Finished"
        ]
