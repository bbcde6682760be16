"""The local cloud: template.yaml deployed onto moto, the real handlers, a real PostgreSQL per
restored instance, a Slack receiver, and the fault knobs.

Faults are armed per drill run (:meth:`LocalCloud.start_drill` arms the fault for the run id the
drill will get, then delivers RDS-EVENT-0091), so one cloud can run drills with different faults
at once; ``LocalCloud(fault=NAME)`` arms NAME for every drill it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from restoredrill.domain.drill import run_id_for
from restoredrill.ports.records import INSTANCE_PREFIX, Lease, RunRecord, Verdict, drill_run_id

from localcloud import crash
from localcloud.aws import EventFaults, LocalAws
from localcloud.backup import LocalBackup, RecoveryPointJob, RestoreJob, recovery_point_event
from localcloud.clinic import create_master_user, load_clinic
from localcloud.dynamodb_isolation import isolate_transactions
from localcloud.postgres import PostgresServer, _pid_alive, init_cluster, make_parent_dir
from localcloud.rds import LocalRds, RdsFaults
from localcloud.s3faults import S3WriteFaults

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "restoredrill-local"
OPT_IN = {"restoredrill:drill": "enabled", "team": "clinic"}
# The demo's Aurora PostgreSQL source cluster (the same clinic data, served as a cluster).
AURORA_SOURCE = "clinic-aurora"
MASTER_USER = "clinic_admin"
# The read-only role restore testing's validation logs in with (store_checking_credential).
CHECKING_USER = "restoredrill_check"
# How restore testing names and tags what it restores (docs/restore-testing.md).
RESTORE_TEST_PREFIX = "awsbackup-restore-test-"
# The vault and backup plan of the recovery points LocalCloud.backup_job makes.
BACKUP_VAULT = "clinic-vault"
BACKUP_PLAN = "8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d"
RESTORE_TEST_TAG = "awsbackup-restore-test"
SLACK_PARAMETER = "/restoredrill/slack-webhook-url"

# Local values for what `sam deploy` would ask: the network ids are moto's, the timings short so
# a drill takes seconds. CheckerTimeoutSeconds is the template's MinValue (checker-hangs waits
# for it).
LOCAL_PARAMETERS = {
    "DBSubnetGroupName": "restoredrill-local",
    "DrillSecurityGroupId": "sg-0d0d0d0d0d0d0d0d0",
    "CheckerSecurityGroupId": "sg-0c0c0c0c0c0c0c0c0",
    "CheckerSubnetIds": "subnet-0a0a0a0a0a0a0a0a0",
    "PollDelaySeconds": "2",
    "CredentialsSettleSeconds": "1",
    "CheckerTimeoutSeconds": "30",
    "DrillDeadlineMinutes": "5",
    # The fault matrix runs all its drills at once; the admission tests and the soak set a cap.
    "MaxConcurrentDrills": "25",
    "SlackWebhookParameterName": SLACK_PARAMETER,
    "LogLevel": "INFO",
}
# Timings below what the template allows, given to every function's environment (the settings
# accept them, see restoredrill.ports.config): a stuck drill ends within ~1.5 minutes, a lost
# checker result is given up 30 s after the checker's timeout, and a crashed trigger's claim on an
# effect expires after 15 s (locally no advance runs anywhere near that long).
LOCAL_FUNCTION_ENV = {
    "DRILL_DEADLINE_MINUTES": "1.5",
    "CHECKER_RESULT_GRACE_SECONDS": "30",
    "CLAIM_LEASE_SECONDS": "15",
}


def _is_rds_instance_event(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.rds" and event.get("detail-type") == "RDS DB Instance Event"


def _is_rds_cluster_event(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.rds" and event.get("detail-type") == "RDS DB Cluster Event"


def run_id_of_event(envelope: dict[str, Any]) -> str | None:
    """The drill run an event is about: its instance, its snapshot, or its detail's run_id."""
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        return None
    if envelope.get("source") == "aws.rds":
        snapshot_events = ("RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event")
        if envelope.get("detail-type") in snapshot_events and detail.get("SourceArn"):
            return run_id_for(f"snapshot:{detail['SourceArn']}")
        identifier = str(detail.get("SourceIdentifier") or "").removeprefix("rds:")
        return drill_run_id(identifier)
    run_id = detail.get("run_id")
    return run_id if isinstance(run_id, str) else None


@dataclass(frozen=True)
class Fault:
    """One row of the fault matrix: what goes wrong, and the verdict the drill must still reach.

    Whatever the fault, every drill must also keep the other promises (see
    :mod:`drillharness.invariants`): instance and password deleted, report written, one Drill
    Finished event, one Slack message, nothing left running.
    """

    name: str
    description: str
    verdict: Verdict = Verdict.PASSED
    drop_instance_events: bool = False  # every RDS instance event of the run is lost
    drop_cluster_events: bool = False  # every RDS cluster event of the run is lost (Aurora)
    copies: int = 1  # every event of the run is delivered this many times
    reorder_instance_events: bool = False  # the run's RDS instance events swapped in pairs
    rds: RdsFaults | None = None
    crash_after: str | None = None  # a key of localcloud.crash.OPERATIONS
    slack_failures: int = 0  # the run's first N Slack requests fail ...
    slack_status: int = 500  # ... with this status ...
    slack_retry_after: int | None = None  # ... and Retry-After ...
    slack_hang_seconds: float = 0.0  # ... or hang this long, then go unanswered
    s3_write_failures: int = 0  # the run's first N report PutObject calls answer 500
    poison: bool = False  # garbage on the poll and checker-results queues when the run starts
    # function environment for a cloud that runs this fault alone (the demo), e.g. a short
    # deadline; clouds running many faults use LOCAL_FUNCTION_ENV
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return f"{self.description} (expected verdict: {self.verdict.value})"


NO_FAULT = Fault("none", "no fault")

FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "lose-rds-events",
            "every RDS instance event is lost: the drill advances on its poll fallback alone",
            drop_instance_events=True,
        ),
        Fault(
            "duplicate-events",
            "every event is delivered three times (at-least-once delivery at its worst)",
            copies=3,
        ),
        Fault(
            "reorder-events",
            "RDS instance events arrive out of order: each is held back until the next one "
            "has been delivered (the restore's after the credentials reset's), so they are "
            "late and stale: the poll moves the drill on, stale events change nothing",
            reorder_instance_events=True,
        ),
        Fault(
            "crash-after-restore",
            "the handler dies right after RestoreDBInstanceFromDBSnapshot succeeded, before it "
            "recorded the restore; EventBridge retries it",
            crash_after="restore",
        ),
        Fault(
            "crash-after-password-reset",
            "the handler dies right after ModifyDBInstance set the password, before it recorded "
            "it; the trigger is retried and the same password (from SSM) is set again",
            crash_after="password-reset",
        ),
        Fault(
            "crash-after-checker-invoke",
            "the handler dies right after invoking the checker (through the check runner, "
            "asynchronously), before it recorded the invoke; the result still arrives and is used",
            crash_after="checker-invoke",
        ),
        Fault(
            "crash-after-report-write",
            "the handler dies right after writing the report to S3, before deleting the password "
            "and announcing; the claim expires and the publish is done again, once",
            crash_after="report-write",
        ),
        Fault(
            "crash-after-delete",
            "the handler dies right after DeleteDBInstance succeeded; the verdict it had reached "
            "is not lost",
            crash_after="delete",
        ),
        Fault(
            "fail-restore",
            "the restore ends in incompatible-restore: the backup does not restore",
            verdict=Verdict.FAILED,
            rds=RdsFaults(fail_restore=True),
        ),
        Fault(
            "restore-stuck",
            "the restore never finishes: at the drill's deadline (0.3 minutes when this fault "
            "runs alone, as in the demo) it is torn down",
            verdict=Verdict.TIMED_OUT,
            rds=RdsFaults(stuck_restore=True),
            env={"DRILL_DEADLINE_MINUTES": "0.3"},
        ),
        Fault(
            "checker-hangs",
            "the restored server stops answering mid-check (a session locks every table); the "
            "checker is killed at its 30 s timeout, the check runner fails and its OnFailure "
            "destination brings that back",
            verdict=Verdict.ERROR,
            rds=RdsFaults(hang_after_reset=True),
        ),
        Fault(
            "login-refused",
            "RDS applies a different master password than the drill set: the database refuses "
            "the checker's login",
            verdict=Verdict.ERROR,
            rds=RdsFaults(wrong_password=True),
        ),
        Fault(
            "slack-500",
            "Slack answers 500 to the first two posts: Notify fails, EventBridge retries it",
            slack_failures=2,
            slack_status=500,
        ),
        Fault(
            "slack-429",
            "Slack rate-limits the first three posts (429, Retry-After: 1): Notify fails, "
            "EventBridge retries it",
            slack_failures=3,
            slack_status=429,
            slack_retry_after=1,
        ),
        Fault(
            "slack-timeout",
            "Slack does not answer the first post within the client's 10 s timeout (an "
            "unanswered post counts as not posted): Notify fails, EventBridge retries it",
            slack_failures=1,
            slack_hang_seconds=12.0,
        ),
        Fault(
            "s3-write-fails",
            "S3 answers 500 InternalError to the first six report writes (boto3's own retries "
            "included): the publish fails, is claimed again later, and the report is written",
            s3_write_failures=6,
        ),
        Fault(
            "poison-messages",
            "garbage on the poll queue and on the checker-results queue: each lands in its "
            "dead-letter queue after 5 receives; the drill is not disturbed",
            poison=True,
        ),
    )
}


# Faults of Aurora cluster drills (`restoredrill demo --aurora --fault NAME`): a drill of a
# cluster restores the cluster, then creates its instance; these break those steps.
AURORA_FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "fail-cluster-restore",
            "the cluster restore ends in incompatible-restore (RDS-EVENT-0354): the backup does "
            "not restore; the cluster is deleted",
            verdict=Verdict.FAILED,
            rds=RdsFaults(fail_restore=True),
        ),
        Fault(
            "fail-instance-create",
            "CreateDBInstance into the restored cluster is refused (InsufficientDBInstance"
            "Capacity): the cluster, whose instance never came up, is deleted",
            verdict=Verdict.ERROR,
            rds=RdsFaults(refuse_create_instance=True),
        ),
        Fault(
            "crash-after-create-instance",
            "the handler dies right after CreateDBInstance succeeded, before it recorded it; the "
            "next trigger finds the instance and creates no second one",
            crash_after="create-instance",
        ),
        Fault(
            "crash-after-delete",
            "the handler dies right after DeleteDBInstance (the cluster's instance) succeeded; "
            "the verdict is kept and the cluster is still deleted after it",
            crash_after="delete",
        ),
        Fault(
            "crash-after-cluster-delete",
            "the handler dies right after DeleteDBCluster succeeded; the next trigger waits for "
            "the cluster to go and reports once",
            crash_after="cluster-delete",
        ),
        Fault(
            "lose-cluster-events",
            "every RDS cluster and instance event of the drill is lost (created, deleted, "
            "credentials reset): the drill advances on its poll fallback alone",
            drop_instance_events=True,
            drop_cluster_events=True,
        ),
    )
}


def fault_named(name: str | None, *, aurora: bool = False) -> Fault:
    if name is None or name == NO_FAULT.name:
        return NO_FAULT
    known = AURORA_FAULTS if aurora else FAULTS
    if name not in known:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


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
        aurora: bool = False,
        work_dir: Path | None = None,
        parameter_overrides: dict[str, str] | None = None,
        function_env: Mapping[str, str] | None = None,
        patients: int = 2000,
        policy_file: Path | None = None,
        pool_size: int = 2,
        region: str = "us-east-1",
        function_timeouts: Mapping[str, int] | None = None,
    ) -> None:
        """``fault``: armed for every drill this cloud starts (its ``env`` applies too);
        ``function_timeouts``: see :class:`LocalAws`."""
        self.region = region
        self.fault = fault_named(fault, aurora=aurora)
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="restoredrill-local-"))
        self.parameters = {**LOCAL_PARAMETERS, **(parameter_overrides or {})}
        self.function_env = {**LOCAL_FUNCTION_ENV, **self.fault.env, **(function_env or {})}
        self.patients = patients
        self.policy_file = policy_file or PROJECT_ROOT / "policy" / "drill-policy.yaml"
        self.pool_size = pool_size
        self.function_timeouts = function_timeouts
        self.crash_dir = self.work_dir / "crash"
        self.s3_faults = S3WriteFaults()
        self.aws: LocalAws | None = None
        self.rds: LocalRds | None = None
        self.backup: LocalBackup | None = None
        self.sources: list[SourceDatabase] = []
        self._pg_dir: Path | None = None
        self._pg_dir_used: Path | None = None
        self._lock = threading.Lock()
        self._armed: dict[str, Fault] = {}
        self._snapshots: dict[str, str] = {}  # run id -> snapshot id
        self._poison: dict[str, list[tuple[str, str]]] = {}  # run id -> (DLQ logical id, body)
        self._worker_pids: list[int] = []
        self._stopped = False
        self._dead_letters: dict[str, dict[str, str]] = {}  # DLQ logical id -> id -> body
        self._dead_letters_lock = threading.Lock()

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        self._pg_dir = self._pg_dir_used = make_parent_dir()
        self.aws = LocalAws(
            template_path=PROJECT_ROOT / "template.yaml",
            region=self.region,
            project_root=PROJECT_ROOT,
            work_dir=self.work_dir,
            stack_name=STACK_NAME,
            parameter_overrides=self.parameters,
            event_faults=EventFaults(
                drop=self._drops_event, copies=self._copies_of_event, reorder=self._reorder_key
            ),
            function_env={
                # Lambda extracts the policy layer to /opt; locally the functions read it in place.
                "DRILL_POLICY_FILE": str(self.policy_file),
                crash.CRASH_DIR_ENV: str(self.crash_dir),
                **self.function_env,
            },
            visibility_timeout_override=5,
            schedule_period_seconds=10,
            async_retry_delay_seconds=0.5,
            pool_size=self.pool_size,
            function_timeouts=self.function_timeouts,
        )
        try:
            self.s3_faults.install()
            isolate_transactions()
            self.aws.start()
            self.rds = LocalRds(
                state_dir=self._pg_dir,
                account_id=self.aws.account_id,
                region=self.aws.region,
                emit_event=self.aws.emit,
            )
            self.rds.install()
            self.backup = LocalBackup(self.aws.account_id, self.aws.region)
            self.backup.install()
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
        """Stop everything this cloud started (idempotent); see :meth:`leftovers`."""
        if self._stopped:
            return
        self._stopped = True
        if self.aws is not None:
            with contextlib.suppress(RuntimeError):
                self._worker_pids = self.aws.runtime.started_pids
            self.aws.stop()
        if self.rds is not None:
            self.rds.shutdown()
            self.rds.uninstall()
        if self.backup is not None:
            self.backup.uninstall()
        self.s3_faults.uninstall()
        for source in self.sources:
            source.server.destroy()
        self.sources.clear()
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """After :meth:`stop`: every process of this cloud still alive (should be none)."""
        found = []
        for pid in self._worker_pids:
            cmdline = _cmdline(pid)
            if cmdline is not None and "localcloud.worker" in cmdline:
                found.append(f"Lambda worker {pid}")
        if self._pg_dir_used is not None:
            marker = str(self._pg_dir_used)
            for pid, cmdline in _all_cmdlines():
                if marker in cmdline and "postgres" in cmdline:
                    found.append(f"postgres {pid}: {cmdline[:120]}")
        return found

    def arm(self, run_id: str, fault: Fault) -> None:
        """Make ``fault`` happen to the drill run ``run_id`` (before it starts)."""
        assert self.aws is not None and self.rds is not None
        with self._lock:
            self._armed[run_id] = fault
        if fault.rds is not None:
            self.rds.instance_faults[f"{INSTANCE_PREFIX}{run_id}"] = replace(fault.rds)
        if fault.crash_after is not None:
            crash.arm(self.crash_dir, crash.OPERATIONS[fault.crash_after], run_id)
        if fault.slack_failures:
            if fault.slack_hang_seconds:
                self.aws.slack.hang_next(
                    fault.slack_failures, seconds=fault.slack_hang_seconds, match=run_id
                )
            else:
                self.aws.slack.fail_next(
                    fault.slack_failures,
                    status=fault.slack_status,
                    retry_after=fault.slack_retry_after,
                    match=run_id,
                )
        if fault.s3_write_failures:
            self.s3_faults.fail_next(run_id, fault.s3_write_failures)
        if fault.poison:
            self._send_poison(run_id)

    def fault_of(self, run_id: str) -> Fault:
        with self._lock:
            return self._armed.get(run_id, NO_FAULT)

    def _event_fault(self, envelope: dict[str, Any]) -> Fault | None:
        run_id = run_id_of_event(envelope)
        if run_id is None:
            return None
        with self._lock:
            return self._armed.get(run_id)

    def _drops_event(self, envelope: dict[str, Any]) -> bool:
        fault = self._event_fault(envelope)
        if fault is None:
            return False
        return (fault.drop_instance_events and _is_rds_instance_event(envelope)) or (
            fault.drop_cluster_events and _is_rds_cluster_event(envelope)
        )

    def _copies_of_event(self, envelope: dict[str, Any]) -> int:
        fault = self._event_fault(envelope)
        return fault.copies if fault else 1

    def _reorder_key(self, envelope: dict[str, Any]) -> str | None:
        fault = self._event_fault(envelope)
        if not (fault and fault.reorder_instance_events and _is_rds_instance_event(envelope)):
            return None
        return run_id_of_event(envelope)

    def _send_poison(self, run_id: str) -> None:
        assert self.aws is not None
        sqs = self.aws.client("sqs")
        bodies = {
            "PollQueue": f"poison {run_id}: not a poll message",
            "CheckerResultsQueue": json.dumps({"poison": run_id, "requestContext": "garbage"}),
        }
        sent = []
        for queue, body in bodies.items():
            sqs.send_message(QueueUrl=self.aws.physical_id(queue), MessageBody=body)
            sent.append((self.dead_letter_queue_of(queue), body))
        with self._lock:
            self._poison[run_id] = sent

    def poison_sent(self, run_id: str | None = None) -> list[tuple[str, str]]:
        """(dead-letter queue logical id, body) of the poison messages sent (for one run)."""
        with self._lock:
            if run_id is not None:
                return list(self._poison.get(run_id, []))
            return [item for items in self._poison.values() for item in items]

    def crashes_fired(self) -> list[tuple[str, str]]:
        return crash.fired(self.crash_dir)

    def crashed_requests(self) -> set[str]:
        """The Lambda request ids that an injected crash killed."""
        return crash.killed_requests(self.crash_dir)

    def create_source_database(
        self,
        instance_id: str = "clinic-db",
        aliases: Sequence[str] = (),
        *,
        point_in_time: bool = False,
    ) -> SourceDatabase:
        """A production-like PostgreSQL with the clinic's data, opted in to drills; ``aliases``:
        more source instances served by the same server (a fleet of identical small databases
        without a server each); ``point_in_time``: its WAL archived, so that it can be restored
        to a point in time (its LatestRestorableTime moves with ``rds.ship_logs``)."""
        assert self.rds is not None
        server, password, counts = self._clinic_server(instance_id)
        for name in (instance_id, *aliases):
            self.rds.register_source_instance(
                db_instance_identifier=name,
                server=server,
                master_username=MASTER_USER,
                master_password=password,
                tags=OPT_IN,
                db_name="clinic",
            )
            self.sources.append(SourceDatabase(instance_id=name, server=server, row_counts=counts))
        if point_in_time:
            self.rds.enable_point_in_time(instance_id)
        return self.sources[-1 - len(aliases)]

    def create_source_cluster(
        self, cluster_id: str = AURORA_SOURCE, *, point_in_time: bool = False
    ) -> SourceDatabase:
        """An opted-in Aurora PostgreSQL cluster with the clinic's data (its writer's server);
        ``point_in_time``: its WAL archived (see :meth:`create_source_database`)."""
        assert self.rds is not None
        server, password, counts = self._clinic_server(cluster_id)
        self.rds.register_source_cluster(
            db_cluster_identifier=cluster_id,
            server=server,
            master_username=MASTER_USER,
            master_password=password,
            tags=OPT_IN,
            db_name="clinic",
        )
        self.sources.append(
            SourceDatabase(instance_id=cluster_id, server=server, row_counts=counts)
        )
        if point_in_time:
            self.rds.enable_point_in_time(cluster_id)
        return self.sources[-1]

    def _clinic_server(self, instance_id: str) -> tuple[PostgresServer, str, dict[str, int]]:
        """A started PostgreSQL with the clinic's data, its master password, the row counts."""
        assert self._pg_dir is not None
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
        return server, password, counts

    def take_automated_snapshot(
        self, instance_id: str, *, fault: str | Fault | None = None
    ) -> dict[str, Any]:
        """Snapshot the source and deliver RDS-EVENT-0091, as AWS does. Returns the event.

        The drill that event starts gets ``fault`` (default: the cloud's own) armed first.
        """
        assert self.rds is not None and self.aws is not None
        event = self.rds.create_automated_snapshot(instance_id)
        run_id = self.run_id_for_snapshot_event(event)
        chosen = fault_named(fault) if isinstance(fault, str) else fault or self.fault
        if chosen is not NO_FAULT:
            self.arm(run_id, chosen)
        with self._lock:
            self._snapshots[run_id] = str(event["detail"]["SourceIdentifier"])
        self.aws.emit(event)
        return event

    def store_checking_credential(self, instance_id: str, *, amcheck: bool = False) -> str:
        """What an operator does before restore testing: a read-only role in the source database
        (the restored copies have it too) and its login in SSM under the stack's
        restore-validation prefix; with ``amcheck``, the extension installed in the source's
        clinic database and the role allowed to run it (level 3 on the copies). Returns the
        password."""
        assert self.aws is not None
        source = next(s for s in self.sources if s.instance_id == instance_id)
        password = "check-" + run_id_for(f"checking-role:{instance_id}")
        admin = source.server.admin_connect()
        try:
            role_exists = admin.run("SELECT 1 FROM pg_roles WHERE rolname = :u", u=CHECKING_USER)
            if not role_exists:
                admin.run(f"CREATE ROLE {CHECKING_USER} LOGIN IN ROLE pg_read_all_data, pg_monitor")
            admin.run(f"ALTER ROLE {CHECKING_USER} PASSWORD '{password}'")
        finally:
            admin.close()
        if amcheck:
            clinic = source.server.admin_connect("clinic")
            try:
                clinic.run("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
                clinic.run(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {CHECKING_USER}")
            finally:
                clinic.close()
        self.aws.client("ssm").put_parameter(
            Name=f"/restoredrill/{STACK_NAME}/restore-validation/{instance_id}",
            Value=json.dumps({"username": CHECKING_USER, "password": password}),
            Type="SecureString",
            Overwrite=True,
        )
        return password

    def run_restore_test(
        self,
        instance_id: str,
        *,
        damage: Callable[[PostgresServer], None] | None = None,
        timeout: float = 60,
    ) -> tuple[str, dict[str, Any]]:
        """Play AWS Backup restore testing for ``instance_id``: snapshot it, restore the snapshot
        into an instance named and tagged as restore testing does (``damage`` is then done to
        the restored server), record the completed job and send its Restore Job State Change.
        Returns the restore job id and the event."""
        assert self.aws is not None and self.rds is not None and self.backup is not None
        snapshot = self.rds.create_automated_snapshot(instance_id)["detail"]
        job_id = str(uuid.uuid4()).upper()
        restored = f"{RESTORE_TEST_PREFIX}{job_id[:8].lower()}"
        rds = self.aws.client("rds")
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=restored,
            DBSnapshotIdentifier=snapshot["SourceIdentifier"],
            DBInstanceClass="db.t4g.micro",
            Tags=[{"Key": RESTORE_TEST_TAG, "Value": job_id}],
        )
        instance = self._wait_available(restored, timeout)
        if damage is not None:
            record = self.rds._instances[restored]
            assert record.server is not None
            damage(record.server)
        arn_prefix = f"arn:aws:rds:{self.aws.region}:{self.aws.account_id}:db:"
        plan = (
            f"arn:aws:backup:{self.aws.region}:{self.aws.account_id}:"
            f"restore-testing-plan:{instance_id.replace('-', '_')}_daily-{job_id[:8].lower()}"
        )
        self.backup.add_job(
            RestoreJob(
                restore_job_id=job_id,
                created_resource_arn=str(instance["DBInstanceArn"]),
                source_resource_arn=f"{arn_prefix}{instance_id}",
                recovery_point_arn=(
                    f"arn:aws:backup:{self.aws.region}:{self.aws.account_id}:"
                    f"recovery-point:{uuid.uuid4()}"
                ),
                recovery_point_created_at=datetime.fromisoformat(snapshot["Date"]),
                restore_testing_plan_arn=plan,
            )
        )
        event = {
            "source": "aws.backup",
            "detail-type": "Restore Job State Change",
            "resources": [],
            "detail": {
                "restoreJobId": job_id,
                "status": "COMPLETED",
                "resourceType": "RDS",
                "createdResourceArn": str(instance["DBInstanceArn"]),
                "restoreTestingPlanArn": plan,
            },
        }
        self.aws.emit(event)
        return job_id, event

    def backup_job(
        self,
        instance_id: str,
        *,
        vault: str = BACKUP_VAULT,
        plan_id: str | None = BACKUP_PLAN,
        copy_from: str | None = None,
        fault: Fault | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Play AWS Backup: a recovery point of ``instance_id`` (a physical copy, like an
        automated snapshot, named ``awsbackup:job-...``) and its Backup Job State Change; with
        ``copy_from`` (a Region), a copy made from there into this cloud's Region
        (``awsbackup:copyjob-...``) and its Copy Job State Change. ``fault`` is armed for the
        drill first. Returns the drill's run id and the event delivered."""
        assert self.rds is not None and self.aws is not None
        job_id = str(uuid.uuid4())
        copy_job_id = str(uuid.uuid4()).upper() if copy_from else None
        name = f"awsbackup:job-{job_id}"
        if copy_job_id is not None:
            name = f"awsbackup:copyjob-{copy_job_id.lower()}"
        self.rds.create_automated_snapshot(instance_id, snapshot_id=name, snapshot_type="awsbackup")
        job = RecoveryPointJob(
            account_id=self.aws.account_id,
            region=self.aws.region,
            job_id=job_id.upper(),
            snapshot_id=name,
            source_db=instance_id,
            vault=vault,
            plan_id=plan_id,
            copy_job_id=copy_job_id,
            source_region=copy_from,
            source_snapshot_id=f"awsbackup:job-{job_id}" if copy_from else None,
        )
        run_id = run_id_for(f"recovery-point:{job.recovery_point_arn}")
        if fault is not None:
            self.arm(run_id, fault)
        with self._lock:
            self._snapshots[run_id] = name
        event = recovery_point_event(job)
        self.aws.emit(event)
        return run_id, event

    def _wait_available(self, instance_id: str, timeout: float) -> dict[str, Any]:
        assert self.aws is not None
        rds = self.aws.client("rds")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            [found] = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"]
            if found["DBInstanceStatus"] == "available" and found.get("Endpoint"):
                return dict(found)
            time.sleep(0.2)
        raise TimeoutError(f"{instance_id} did not become available within {timeout} s")

    def take_automated_cluster_snapshot(
        self, cluster_id: str, *, fault: str | Fault | None = None
    ) -> dict[str, Any]:
        """Snapshot the source cluster and deliver RDS-EVENT-0169, as Aurora does; the event.
        The drill it starts gets ``fault`` (an Aurora fault's name, or the cloud's own)."""
        assert self.rds is not None and self.aws is not None
        event = self.rds.create_automated_cluster_snapshot(cluster_id)
        run_id = self.run_id_for_snapshot_event(event)
        chosen = fault_named(fault, aurora=True) if isinstance(fault, str) else fault or self.fault
        if chosen is not NO_FAULT:
            self.arm(run_id, chosen)
        with self._lock:
            self._snapshots[run_id] = str(event["detail"]["SourceIdentifier"])
        self.aws.emit(event)
        return event

    def start_cluster_drill(self, cluster_id: str, fault: str | Fault | None = None) -> str:
        """A new automated snapshot of the cluster with ``fault`` armed; the drill's run id."""
        return self.run_id_for_snapshot_event(
            self.take_automated_cluster_snapshot(cluster_id, fault=fault)
        )

    def cluster_exists(self, cluster_id: str) -> bool:
        assert self.aws is not None
        found = self.aws.client("rds").describe_db_clusters()["DBClusters"]
        return any(cluster["DBClusterIdentifier"] == cluster_id for cluster in found)

    def start_drill(self, instance_id: str, fault: str | Fault | None = None) -> str:
        """A new automated snapshot of ``instance_id`` with ``fault`` armed; the drill's run id."""
        return self.run_id_for_snapshot_event(
            self.take_automated_snapshot(instance_id, fault=fault)
        )

    def forget_snapshot(self, run_id: str) -> None:
        """Delete the snapshot a finished drill restored (long runs would fill /dev/shm)."""
        assert self.rds is not None
        with self._lock:
            snapshot_id = self._snapshots.pop(run_id, None)
        if snapshot_id is not None:
            self.rds.forget_snapshot(snapshot_id)

    @staticmethod
    def run_id_for_snapshot_event(event: dict[str, Any]) -> str:
        return run_id_for(f"snapshot:{event['detail']['SourceArn']}")

    def target_description(self) -> dict[str, Any]:
        """This cloud as a stack for the operator commands (restoredrill_cli.target), with this
        process's id: a state file whose process is gone is stale."""
        assert self.aws is not None
        parameters = {
            name: ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            for name, value in self.aws.stack.template.parameters.items()
        }
        return {
            "name": "local",
            "stack_name": self.aws.stack_name,
            "region": self.aws.region,
            "account_id": self.aws.account_id,
            "endpoint_url": self.aws.moto_url,
            "service_endpoints": {
                "events": self.aws.endpoint_url,
                "lambda": self.aws.endpoint_url,
            },
            "outputs": dict(self.aws.stack.outputs),
            "parameters": parameters,
            "pid": os.getpid(),
        }

    def run(self, run_id: str) -> RunRecord | None:
        assert self.aws is not None
        return self.runs([run_id]).get(run_id)

    def runs(self, run_ids: list[str]) -> dict[str, RunRecord]:
        """The runs that exist among ``run_ids`` (one BatchGetItem per 100)."""
        assert self.aws is not None
        client, table = self.aws.client("dynamodb"), self.aws.physical_id("RunTable")
        found: dict[str, RunRecord] = {}
        for start in range(0, len(run_ids), 100):
            keys = [
                {"run_id": {"S": run_id}} for run_id in dict.fromkeys(run_ids[start : start + 100])
            ]
            request = {table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(table, []):
                    run = _run_record(item)
                    found[run.run_id] = run
                request = response.get("UnprocessedKeys") or {}
        return found

    def all_runs(self) -> list[RunRecord]:
        assert self.aws is not None
        pages = (
            self.aws.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=self.aws.physical_id("RunTable"))
        )
        # A scan answers at most 1 MB a page: a soak's runs (with their check results) span many.
        # Drill slots ("slot#<n>") share the table and are not runs.
        return [_run_record(item) for page in pages for item in page["Items"] if "record" in item]

    def slot_leases(self) -> list[Lease]:
        """The drill slots held now (the run table's "slot#<n>" items)."""
        assert self.aws is not None
        pages = (
            self.aws.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=self.aws.physical_id("RunTable"))
        )
        return [
            Lease.model_validate_json(TypeDeserializer().deserialize(item["lease"]))
            for page in pages
            for item in page["Items"]
            if "lease" in item
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
        return self.aws.slack.wait_for(count, timeout)

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

    def drill_finished_events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        assert self.aws is not None
        return [
            envelope
            for _, envelope in self.aws.delivery.events_log
            if envelope.get("detail-type") == "Drill Finished"
            and (run_id is None or envelope.get("detail", {}).get("run_id") == run_id)
        ]

    def slack_messages_for(self, run_id: str) -> list[dict[str, Any]]:
        assert self.aws is not None
        return [message for message in self.aws.slack.messages if run_id in message["raw"]]

    def password_parameter_exists(self, name: str) -> bool:
        assert self.aws is not None
        try:
            self.aws.client("ssm").get_parameter(Name=name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ParameterNotFound":
                return False
            raise
        return True

    def report_or_none(self, key: str) -> dict[str, Any] | None:
        try:
            return self.report(key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def dead_letter_queue_of(self, logical_id: str) -> str:
        """The logical id of the queue's dead-letter queue (from its RedrivePolicy)."""
        assert self.aws is not None
        policy = json.loads(self.aws.stack.queues[logical_id].attributes["RedrivePolicy"])
        target = self.aws.stack.queue_by_arn(policy["deadLetterTargetArn"])
        assert target is not None
        return target.logical_id

    def dead_letters(self) -> dict[str, list[str]]:
        """The body of every message in every dead-letter queue of the stack, by logical id.

        Nothing consumes a dead-letter queue locally, so each message is received once (then
        hidden for an hour) and remembered: receiving with no visibility timeout would return
        the same first ten messages again and again.
        """
        assert self.aws is not None
        sqs = self.aws.client("sqs")
        with self._dead_letters_lock:
            for logical_id, queue in self.aws.stack.queues.items():
                if not logical_id.endswith("DeadLetterQueue"):
                    continue
                seen = self._dead_letters.setdefault(logical_id, {})
                while True:
                    messages = sqs.receive_message(
                        QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=3600
                    ).get("Messages", [])
                    if not messages:
                        break
                    for message in messages:
                        seen[message["MessageId"]] = message["Body"]
            return {queue: list(seen.values()) for queue, seen in self._dead_letters.items()}


def _run_record(item: dict[str, Any]) -> RunRecord:
    return RunRecord.model_validate_json(TypeDeserializer().deserialize(item["record"]))


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace") if _pid_alive(pid) else None


def _all_cmdlines() -> list[tuple[int, str]]:
    pids = (int(entry) for entry in os.listdir("/proc") if entry.isdigit())
    return [(pid, cmdline) for pid in pids if (cmdline := _cmdline(pid))]
