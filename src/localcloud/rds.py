"""The local RDS data plane: moto's RDS control plane, real PostgreSQL servers behind it.

moto records RDS resources but makes every instance ``available`` at once, has no data and sends
no events. :class:`LocalRds` patches moto's RDS backend (in this process, where the local cloud
runs moto's ``ThreadedMotoServer``) so that, for the instances it manages:

- ``RestoreDBInstanceFromDBSnapshot`` answers ``creating``; in the background the snapshot's
  physical copy (a ``pg_basebackup``) is copied and started on a free loopback port, the instance
  becomes ``available`` with endpoint ``127.0.0.1:<port>``, and RDS-EVENT-0043 is emitted
  (or, with ``RdsFaults.fail_restore``, ``incompatible-restore`` and RDS-EVENT-0031);
- ``ModifyDBInstance(MasterUserPassword=...)`` answers ``resetting-master-credentials``, then
  runs ``ALTER ROLE`` on the real server, becomes ``available`` and emits RDS-EVENT-0016;
  (with ``RdsFaults.wrong_password`` it applies a different password, so logins are refused;
  with ``RdsFaults.hang_after_reset`` a session then holds an exclusive lock on every table, so
  a client's reads of them wait - for as long as the instance lives);
- ``DeleteDBInstance`` answers ``deleting``, then destroys the server, removes the instance from
  moto and emits RDS-EVENT-0003. A second delete while deleting fails like AWS
  (``InvalidDBInstanceState``); a delete of an unknown instance fails with ``DBInstanceNotFound``.

Faults come from :attr:`LocalRds.faults`, or from :attr:`LocalRds.instance_faults` for one
instance (by identifier), read when each restore or reset begins. ``RdsFaults.stuck_restore``
keeps a restore ``creating`` until the instance is deleted.

Account quotas: moto has no ``DescribeAccountAttributes``; the local RDS answers it from
:class:`AccountLimits` (an instance quota, and "production" instances and storage that are not
moto's), counting moto's instances on top, and refuses a restore beyond the instance quota with
``InstanceQuotaExceeded`` as RDS does. ``RdsFaults.quota_refusals`` refuses that many restores
with it whatever the count.

Aurora PostgreSQL: source clusters
(:meth:`LocalRds.register_source_cluster`) and their automated cluster snapshots (RDS-EVENT-0169);
``RestoreDBClusterFromSnapshot`` answers ``creating``, copies the snapshot into the cluster's
storage, then ``available`` and RDS-EVENT-0170; ``CreateDBInstance`` into such a cluster starts a
server on the cluster's storage (RDS-EVENT-0005), which is also the cluster's writer endpoint;
``ModifyDBCluster(MasterUserPassword=...)`` resets the password on it (RDS-EVENT-0016, a cluster
event); ``DeleteDBInstance`` stops that server (the storage is the cluster's) and
``DeleteDBCluster``, refused while the cluster has an instance, removes the storage
(RDS-EVENT-0171). ``RdsFaults.fail_restore`` fails a cluster restore too;
``RdsFaults.refuse_create_instance`` refuses the instance with InsufficientDBInstanceCapacity.

Source instances (:meth:`LocalRds.register_source_instance`) point at a server the caller owns;
their automated snapshots (:meth:`LocalRds.create_automated_snapshot`) are real base backups.
Events are EventBridge envelopes handed to ``emit_event`` outside of any lock.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from moto.core.responses import ActionResult
from moto.rds.exceptions import (
    DBInstanceNotFoundError,
    InvalidParameterCombination,
    InvalidParameterValue,
    RDSClientError,
)
from moto.rds.models import DBCluster, DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from localcloud.postgres import (
    PostgresServer,
    base_backup,
    configure_recovery,
    enable_wal_archiving,
    ensure_usable_dir,
    restore_copy,
    wait_promoted,
)

__all__ = ["AccountLimits", "LocalRds", "RdsFaults", "emulate_account_attributes"]

log = logging.getLogger(__name__)

LOCAL_ADDRESS = "127.0.0.1"
_ADDRESS_ATTR = "_localcloud_address"
_PENDING_ATTR = "_localcloud_no_endpoint"  # like AWS: no Endpoint until the restore is done
_LRT_ATTR = "_localcloud_latest_restorable_time"
_PLACEHOLDER_PORT = 5432
_THREAD_JOIN_SECONDS = 60.0
FAILED_RESTORE_STATUS = "incompatible-restore"
_LOCK_TIMEOUT_SECONDS = 60.0

MSG_RESTORED = "Restored from snapshot {snapshot}"
MSG_FAILED = (
    "DB instance put into failed state. RDS recommends that you initiate a point-in-time-restore."
)
MSG_CREDENTIALS = "Reset master credentials."
MSG_DELETED = "DB instance deleted."
MSG_SNAPSHOT = "Automated snapshot created"
MSG_CLUSTER_SNAPSHOT = "Automated cluster snapshot created"
MSG_CLUSTER_CREATED = "DB cluster created"
MSG_CLUSTER_DELETED = "DB cluster deleted"
MSG_CLUSTER_FAILED = "You can't create the DB cluster because of incompatible resources."
MSG_INSTANCE_CREATED = "DB instance created"
_CLUSTER_ENDPOINT_ATTR = "_localcloud_cluster_endpoint"
# moto reports a new cluster "creating" once, then "available": ours keep the status we give them.
_CLUSTER_STATUS_ATTR = "_localcloud_cluster_status"
_OUR_ATTRIBUTES = (_ADDRESS_ATTR, _LRT_ATTR, _CLUSTER_ENDPOINT_ATTR, _CLUSTER_STATUS_ATTR)


@dataclass
class RdsFaults:
    """Fault knobs, read at the time of each restore or reset (so they may change while running)."""

    restore_delay_seconds: float = 0.0
    fail_restore: bool = False
    stuck_restore: bool = False  # the restore never ends (until the instance is deleted)
    wrong_password: bool = False  # the reset applies another password: logins are refused
    hang_after_reset: bool = False  # after the reset, every table is locked: reads wait
    quota_refusals: int = 0  # restores refused with InstanceQuotaExceeded before one goes through
    # Aurora: CreateDBInstance into the cluster is refused (InsufficientDBInstanceCapacity)
    refuse_create_instance: bool = False
    # RestoreDBInstanceFromDBSnapshot is refused with this (code, message), as RDS might refuse
    # an AWS Backup snapshot (undocumented either way: docs/aws-backup.md)
    refuse_restore: tuple[str, str] | None = None


@dataclass
class AccountLimits:
    """The account's RDS quotas in this Region, and what production uses outside moto."""

    instance_quota: int = 40  # AWS's default DBInstances quota per Region
    production_instances: int = 0
    storage_quota_gib: int = 100_000  # AWS's default AllocatedStorage quota (100 TiB)
    production_storage_gib: int = 0
    cluster_quota: int = 40
    # The caller's source instances are among the production instances (a fleet's databases).
    sources_are_production: bool = False


@dataclass
class _Snapshot:
    snapshot_id: str
    data_dir: Path | None  # None while the base backup is being taken
    # An automated snapshot of a source: whose, and when its base backup had ended (the earliest
    # time a point-in-time restore from it can reach).
    source: str | None = None
    taken_at: datetime | None = None


@dataclass(frozen=True)
class _Recovery:
    """A point-in-time restore: replay WAL from ``archive`` up to ``target``."""

    archive: Path
    target: datetime


@dataclass
class _Instance:
    identifier: str
    arn: str
    kind: str  # "source" (caller's server) or "restored" (ours)
    state: str  # creating, available, resetting, failed, deleting
    server: PostgresServer | None = None
    master_username: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    # set when the current background job has done its work (before it emits its event)
    work_done: threading.Event = field(default_factory=threading.Event)
    # sessions holding locks (RdsFaults.hang_after_reset), closed before the server goes
    lockers: list[Any] = field(default_factory=list)
    # Aurora: the cluster whose storage the server runs on (stopped, not destroyed, with it)
    cluster_id: str | None = None
    # A source whose server archives its WAL here (point-in-time restores replay it).
    wal_archive: Path | None = None


@dataclass
class _Cluster:
    identifier: str
    arn: str
    kind: str  # "source" (caller's server) or "restored" (ours)
    state: str  # creating, available, resetting, failed, deleting
    # source: the caller's server; restored: the cluster's storage (a copy, started by its
    # instance)
    server: PostgresServer | None = None
    master_username: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    work_done: threading.Event = field(default_factory=threading.Event)
    lockers: list[Any] = field(default_factory=list)
    # A source whose writer archives its WAL here (point-in-time restores replay it).
    wal_archive: Path | None = None


# --------------------------------------------------------------------------------------------
# patching moto (class-level, dispatched per account/region to the installed LocalRds)
# --------------------------------------------------------------------------------------------

_PATCHED_BACKEND_METHODS = (
    "restore_db_instance_from_db_snapshot",
    "restore_db_instance_to_point_in_time",
    "restore_db_cluster_to_point_in_time",
    "modify_db_instance",
    "delete_db_instance",
    "copy_db_snapshot",
    "describe_db_instances",
    "describe_db_snapshots",
    "restore_db_cluster_from_snapshot",
    "create_db_instance",
    "modify_db_cluster",
    "delete_db_cluster",
    "describe_db_clusters",
    "describe_db_cluster_snapshots",
)
_install_lock = threading.Lock()
_installed: dict[tuple[str, str], LocalRds] = {}
_originals: dict[str, Any] = {}  # attribute name -> the class __dict__ entry it replaced


def _local_for(backend: RDSBackend) -> LocalRds | None:
    return _installed.get((backend.account_id, backend.region_name))


def _original(name: str) -> Any:
    return _originals[name]


def _call_original(name: str, backend: RDSBackend, *args: Any, **kwargs: Any) -> DBInstance:
    return cast(DBInstance, _originals[name](backend, *args, **kwargs))


def _patched_restore(backend: RDSBackend, from_snapshot_id: str, overrides: Any) -> DBInstance:
    local = _local_for(backend)
    if local is None:
        return _call_original(
            "restore_db_instance_from_db_snapshot", backend, from_snapshot_id, overrides
        )
    return local._on_restore(backend, from_snapshot_id, overrides)


def _patched_restore_to_point_in_time(
    backend: RDSBackend, source_db_identifier: str, target_db_identifier: str, overrides: Any
) -> DBInstance:
    local = _local_for(backend)
    if local is None:
        return _call_original(
            "restore_db_instance_to_point_in_time",
            backend,
            source_db_identifier,
            target_db_identifier,
            overrides,
        )
    return local._on_restore_to_point_in_time(
        backend, source_db_identifier, target_db_identifier, overrides
    )


def _latest_restorable_time(original: str) -> property:
    """A local source's LatestRestorableTime is the end of the WAL it last shipped
    (:meth:`LocalRds.ship_logs`); none before, like a database without a finished backup.
    moto's own (now) for every other instance or cluster."""

    def fget(resource: DBInstance | DBCluster) -> datetime | None:
        if _LRT_ATTR in resource.__dict__:
            return cast(datetime | None, resource.__dict__[_LRT_ATTR])
        return cast(datetime, _original(original).fget(resource))

    return property(fget)


def _recover(storage: PostgresServer, recovery: _Recovery) -> None:
    """Replay the archive into a copy of a base backup up to the target, promote, stop."""
    configure_recovery(storage, recovery.archive, recovery.target)
    storage.start()
    try:
        wait_promoted(storage)
    finally:
        storage.stop()


@contextlib.contextmanager
def _without_our_attributes(resource: DBInstance | DBCluster) -> Iterator[None]:
    """moto's point-in-time restores copy the source's attributes into the new resource, ours
    too (its address, its restorable time): they are set aside meanwhile."""
    ours = {key: resource.__dict__.pop(key) for key in _OUR_ATTRIBUTES if key in resource.__dict__}
    try:
        yield
    finally:
        resource.__dict__.update(ours)


def _patched_restore_cluster_to_point_in_time(backend: RDSBackend, **kwargs: Any) -> Any:
    local = _local_for(backend)
    if local is None:
        return _original("restore_db_cluster_to_point_in_time")(backend, **kwargs)
    return local._on_restore_cluster_to_point_in_time(backend, kwargs)


def _describe_account_attributes(response: RDSResponse) -> ActionResult:
    local = _local_for(response.backend)
    limits = local.account_limits if local is not None else AccountLimits()
    used = local.instances_used(response.backend) if local is not None else None
    return ActionResult({"AccountQuotas": _account_quotas(response.backend, limits, used)})


def _account_quotas(
    backend: RDSBackend, limits: AccountLimits, used: int | None
) -> list[dict[str, Any]]:
    instances = list(backend.databases.values())
    storage = sum(int(getattr(db, "allocated_storage", 0) or 0) for db in instances)
    return [
        {
            "AccountQuotaName": "DBInstances",
            "Used": limits.production_instances + len(instances) if used is None else used,
            "Max": limits.instance_quota,
        },
        {
            "AccountQuotaName": "DBClusters",
            "Used": len(backend.clusters),
            "Max": limits.cluster_quota,
        },
        {
            "AccountQuotaName": "AllocatedStorage",
            "Used": limits.production_storage_gib + storage,
            "Max": limits.storage_quota_gib,
        },
    ]


def _patched_modify(backend: RDSBackend, db_instance_identifier: str, db_kwargs: Any) -> DBInstance:
    local = _local_for(backend)
    if local is None:
        return _call_original("modify_db_instance", backend, db_instance_identifier, db_kwargs)
    return local._on_modify(backend, db_instance_identifier, db_kwargs)


def _patched_delete(backend: RDSBackend, db_instance_identifier: str, **kwargs: Any) -> DBInstance:
    local = _local_for(backend)
    if local is None:
        return _call_original("delete_db_instance", backend, db_instance_identifier, **kwargs)
    return local._on_delete(backend, db_instance_identifier, **kwargs)


def _patched_copy_snapshot(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
    local = _local_for(backend)
    if local is None:
        return _original("copy_db_snapshot")(backend, *args, **kwargs)
    return local._on_copy_snapshot(backend, *args, **kwargs)


def _patched_restore_cluster(backend: RDSBackend, from_snapshot_id: str, overrides: Any) -> Any:
    local = _local_for(backend)
    if local is None:
        return _original("restore_db_cluster_from_snapshot")(backend, from_snapshot_id, overrides)
    return local._on_restore_cluster(backend, from_snapshot_id, overrides)


def _patched_create_instance(backend: RDSBackend, db_kwargs: Any) -> DBInstance:
    local = _local_for(backend)
    if local is None or not db_kwargs.get("db_cluster_identifier"):
        return _call_original("create_db_instance", backend, db_kwargs)
    return local._on_create_cluster_instance(backend, db_kwargs)


def _patched_modify_cluster(backend: RDSBackend, kwargs: Any) -> Any:
    local = _local_for(backend)
    if local is None:
        return _original("modify_db_cluster")(backend, kwargs)
    return local._on_modify_cluster(backend, kwargs)


def _patched_delete_cluster(
    backend: RDSBackend, cluster_identifier: str, snapshot_name: str | None = None
) -> Any:
    local = _local_for(backend)
    if local is None:
        return _original("delete_db_cluster")(backend, cluster_identifier, snapshot_name)
    return local._on_delete_cluster(backend, cluster_identifier, snapshot_name)


def _patched_cluster_endpoint_fget(cluster: DBCluster) -> str:
    override = cluster.__dict__.get(_CLUSTER_ENDPOINT_ATTR)
    if override:
        return str(override)
    return str(_original("cluster_endpoint").fget(cluster))


def _patched_cluster_status_fget(cluster: DBCluster) -> str:
    override = cluster.__dict__.get(_CLUSTER_STATUS_ATTR)
    if override:
        return str(override)
    return str(_original("cluster_status").fget(cluster))


def _set_cluster_status(cluster: DBCluster, status: str) -> None:
    cluster.__dict__[_CLUSTER_STATUS_ATTR] = status


def _locked_passthrough(name: str) -> Callable[..., Any]:
    """Reads run under the LocalRds lock so background workers never mutate mid-iteration."""

    def method(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
        local = _local_for(backend)
        if local is None:
            return _original(name)(backend, *args, **kwargs)
        with local._lock:
            return _original(name)(backend, *args, **kwargs)

    method.__name__ = name
    return method


def _patched_address_fget(instance: DBInstance) -> str:
    override = instance.__dict__.get(_ADDRESS_ATTR)
    if override:
        return str(override)
    return str(_original("address").fget(instance))


def _patched_endpoint_fget(instance: DBInstance) -> dict[str, Any] | None:
    if instance.__dict__.get(_PENDING_ATTR):
        return None
    return dict(_original("endpoint").fget(instance))


def _patch_moto() -> None:
    for name in _PATCHED_BACKEND_METHODS:
        _originals[name] = RDSBackend.__dict__[name]
    _originals["address"] = DBInstance.__dict__["address"]
    _originals["latest_restorable_time"] = DBInstance.__dict__["latest_restorable_time"]
    _originals["cluster_latest_restorable_time"] = DBCluster.__dict__["latest_restorable_time"]
    _originals["endpoint"] = DBInstance.__dict__["endpoint"]
    _originals["cluster_endpoint"] = DBCluster.__dict__["endpoint"]
    _originals["cluster_status"] = DBCluster.__dict__["status"]
    replacements: dict[str, Any] = {
        "restore_db_cluster_from_snapshot": _patched_restore_cluster,
        "create_db_instance": _patched_create_instance,
        "modify_db_cluster": _patched_modify_cluster,
        "delete_db_cluster": _patched_delete_cluster,
        "describe_db_clusters": _locked_passthrough("describe_db_clusters"),
        "describe_db_cluster_snapshots": _locked_passthrough("describe_db_cluster_snapshots"),
        "restore_db_instance_from_db_snapshot": _patched_restore,
        "restore_db_instance_to_point_in_time": _patched_restore_to_point_in_time,
        "restore_db_cluster_to_point_in_time": _patched_restore_cluster_to_point_in_time,
        "modify_db_instance": _patched_modify,
        "delete_db_instance": _patched_delete,
        "copy_db_snapshot": _patched_copy_snapshot,
        "describe_db_instances": _locked_passthrough("describe_db_instances"),
        "describe_db_snapshots": _locked_passthrough("describe_db_snapshots"),
    }
    for name, replacement in replacements.items():
        setattr(RDSBackend, name, replacement)
    setattr(DBInstance, "address", property(_patched_address_fget))  # noqa: B010
    setattr(DBInstance, "endpoint", property(_patched_endpoint_fget))  # noqa: B010
    setattr(DBInstance, "latest_restorable_time", _latest_restorable_time("latest_restorable_time"))  # noqa: B010
    cluster_lrt = _latest_restorable_time("cluster_latest_restorable_time")
    setattr(DBCluster, "latest_restorable_time", cluster_lrt)  # noqa: B010
    setattr(DBCluster, "endpoint", property(_patched_cluster_endpoint_fget))  # noqa: B010
    status = _originals["cluster_status"]
    setattr(DBCluster, "status", property(_patched_cluster_status_fget, status.fset))  # noqa: B010
    emulate_account_attributes()


def emulate_account_attributes() -> None:
    """Have moto answer DescribeAccountAttributes (it has no such action): from the installed
    LocalRds's limits, or AWS's default quotas. Left in place once set: it changes no answer moto
    gives, it only adds one."""
    if "describe_account_attributes" not in RDSResponse.__dict__:
        setattr(RDSResponse, "describe_account_attributes", _describe_account_attributes)  # noqa: B010


@contextlib.contextmanager
def _restorable_by_moto(backend: RDSBackend, snapshot_id: str) -> Iterator[None]:
    """moto's restore looks among automated and manual snapshots only: an AWS Backup snapshot
    (awsbackup:...) is shown to it as a manual one for the call, and RDS is assumed to restore it
    (docs/aws-backup.md)."""
    snapshot = backend.database_snapshots.get(snapshot_id.lower())
    if snapshot is None or snapshot.snapshot_type != "awsbackup":
        yield
        return
    snapshot.snapshot_type = "manual"
    try:
        yield
    finally:
        snapshot.snapshot_type = "awsbackup"


def emulate_aws_backup_restores() -> None:
    """Have plain moto (no LocalRds) restore AWS Backup's snapshots, as LocalRds does. Left in
    place once set: it changes no answer moto gives but that one."""
    current = RDSBackend.restore_db_instance_from_db_snapshot
    if getattr(current, "restores_aws_backup_snapshots", False):
        return

    def restore(backend: RDSBackend, from_snapshot_id: str, overrides: Any) -> DBInstance:
        name = from_snapshot_id
        if name.startswith("arn:"):
            name = backend.extract_snapshot_name_from_arn(name)
        with _restorable_by_moto(backend, name):
            return current(backend, from_snapshot_id, overrides)

    restore.restores_aws_backup_snapshots = True  # type: ignore[attr-defined]
    setattr(RDSBackend, "restore_db_instance_from_db_snapshot", restore)  # noqa: B010


def _unpatch_moto() -> None:
    for name in _PATCHED_BACKEND_METHODS:
        setattr(RDSBackend, name, _originals.pop(name))
    setattr(DBInstance, "address", _originals.pop("address"))  # noqa: B010
    setattr(DBInstance, "endpoint", _originals.pop("endpoint"))  # noqa: B010
    setattr(DBInstance, "latest_restorable_time", _originals.pop("latest_restorable_time"))  # noqa: B010
    cluster_lrt = _originals.pop("cluster_latest_restorable_time")
    setattr(DBCluster, "latest_restorable_time", cluster_lrt)  # noqa: B010
    setattr(DBCluster, "endpoint", _originals.pop("cluster_endpoint"))  # noqa: B010
    setattr(DBCluster, "status", _originals.pop("cluster_status"))  # noqa: B010


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _tags_map(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def _envelope(
    *,
    detail_type: str,
    account: str,
    region: str,
    arn: str,
    source_type: str,
    categories: list[str],
    message: str,
    source_identifier: str,
    event_id: str,
    tags: dict[str, str] | None,
) -> dict[str, Any]:
    now = _now()
    detail: dict[str, Any] = {
        "EventCategories": categories,
        "SourceType": source_type,
        "SourceArn": arn,
        "Date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "Message": message,
        "SourceIdentifier": source_identifier,
        "EventID": event_id,
    }
    if tags is not None:
        detail["Tags"] = tags
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.rds",
        "account": account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }


def _safe_name(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", identifier)


def _validate_master_password(password: str) -> None:
    """RDS for PostgreSQL: 8-128 printable ASCII characters except / @ " and space."""
    if len(password) < 8:
        raise InvalidParameterValue(
            "The parameter MasterUserPassword is not a valid password because it is shorter "
            "than 8 characters."
        )
    if len(password) > 128:
        raise InvalidParameterValue(
            "The parameter MasterUserPassword is not a valid password because it is longer "
            "than 128 characters."
        )
    if any(not (32 < ord(char) < 127) or char in '/@"' for char in password):
        raise InvalidParameterValue(
            "The parameter MasterUserPassword is not a valid password. Only printable ASCII "
            "characters besides '/', '@', '\"', ' ' may be used."
        )


def _lock_every_table(server: PostgresServer) -> list[Any]:
    """Sessions that hold ACCESS EXCLUSIVE on every user table of every database, so any client
    that reads a table waits (RdsFaults.hang_after_reset). The caller keeps them open."""
    admin = server.admin_connect()
    try:
        databases = [
            row[0]
            for row in admin.run(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"
            )
        ]
    finally:
        admin.close()
    sessions: list[Any] = []
    try:
        for database in databases:
            # A lock may have to wait for autovacuum to yield: allow for a loaded machine.
            conn = server.admin_connect(database, timeout=_LOCK_TIMEOUT_SECONDS)
            sessions.append(conn)
            tables = [
                row[0]
                for row in conn.run(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                )
            ]
            if tables:
                conn.run("BEGIN")
                conn.run(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
    except BaseException:
        for conn in sessions:
            with contextlib.suppress(Exception):
                conn.close()
        raise
    return sessions


def _set_role_password(server: PostgresServer, username: str | None, password: str) -> None:
    conn = server.admin_connect()
    try:
        statement = conn.run(
            "SELECT format('ALTER ROLE %I WITH PASSWORD %L', :u::text, :p::text)",
            u=username,
            p=password,
        )[0][0]
        conn.run(statement)
    finally:
        conn.close()


def _release_lockers(record: _Instance | _Cluster) -> None:
    lockers, record.lockers = record.lockers, []
    for conn in lockers:
        with contextlib.suppress(Exception):
            conn.close()


# --------------------------------------------------------------------------------------------
# the local RDS
# --------------------------------------------------------------------------------------------


class LocalRds:
    """Real PostgreSQL servers and AWS-like states/events behind moto's RDS (see module doc)."""

    def __init__(
        self,
        *,
        state_dir: Path,
        account_id: str,
        region: str,
        emit_event: Callable[[dict[str, Any]], object],
        faults: RdsFaults | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.account_id = account_id
        self.region = region
        self.emit_event = emit_event
        self.faults = faults or RdsFaults()
        self.account_limits = AccountLimits()
        # per instance identifier (lower case): wins over `faults`
        self.instance_faults: dict[str, RdsFaults] = {}
        # guards our records and every call into moto's backend made by us or the patches
        self._lock = threading.RLock()
        self._instances: dict[str, _Instance] = {}
        self._clusters: dict[str, _Cluster] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        # every automated snapshot id ever given: never reused, even after forget_snapshot (a
        # drill's run id derives from its snapshot's ARN)
        self._snapshot_ids_used: set[str] = set()
        self._closed = False
        # Every master password a caller set, so tests can prove none of them leaked anywhere.
        self._passwords_set: list[str] = []
        self.quota_refusals_made = 0
        # Restored instances that exist now, and the most that ever existed at once.
        self.restored_now = 0
        self.restored_peak = 0
        self.snapshots_dir = self.state_dir / "snapshots"
        self.instances_dir = self.state_dir / "instances"

    # -- installation ---------------------------------------------------------------------

    @property
    def backend(self) -> RDSBackend:
        return rds_backends[self.account_id][self.region]

    def install(self) -> None:
        """Patch moto's RDS backend class; this LocalRds serves its account and region."""
        for directory in (self.state_dir, self.snapshots_dir, self.instances_dir):
            ensure_usable_dir(directory)
        key = (self.account_id, self.region)
        with _install_lock:
            current = _installed.get(key)
            if current is self:
                return
            if current is not None:
                raise RuntimeError(f"another LocalRds is installed for {key}")
            if not _installed:
                _patch_moto()
            _installed[key] = self
            self._closed = False

    def uninstall(self) -> None:
        """Undo :meth:`install`; the last one out restores moto's classes exactly."""
        key = (self.account_id, self.region)
        with _install_lock:
            if _installed.get(key) is not self:
                return
            del _installed[key]
            if not _installed:
                _unpatch_moto()

    @property
    def installed(self) -> bool:
        return _installed.get((self.account_id, self.region)) is self

    # -- sources and snapshots ------------------------------------------------------------

    def register_source_instance(
        self,
        *,
        db_instance_identifier: str,
        server: PostgresServer,
        master_username: str,
        master_password: str,
        tags: dict[str, str],
        engine_version: str = "15.5",
        db_name: str | None = None,
    ) -> str:
        """Create the moto DB instance whose endpoint is ``server`` (the caller's); its ARN."""
        backend = self.backend
        with self._lock:
            instance = backend.create_db_instance(
                {
                    "db_instance_identifier": db_instance_identifier,
                    "db_instance_class": "db.t3.micro",
                    "engine": "postgres",
                    "engine_version": engine_version,
                    "port": server.port,
                    "allocated_storage": 20,
                    "master_username": master_username,
                    "master_user_password": master_password,
                    "db_name": db_name,
                    "backup_retention_period": 7,
                    "copy_tags_to_snapshot": True,
                    "publicly_accessible": False,
                    "tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                }
            )
            # moto takes an "automated snapshot" of every new instance, with no data behind it:
            # the source's snapshots are the real ones create_automated_snapshot() makes.
            self._drop_moto_automated_snapshots(backend, instance.db_instance_identifier)
            instance.__dict__[_ADDRESS_ATTR] = LOCAL_ADDRESS
            # No restorable time until its logs are shipped (ship_logs), and only if archived.
            instance.__dict__[_LRT_ATTR] = None
            instance.port = server.port
            self._instances[instance.db_instance_identifier] = _Instance(
                identifier=instance.db_instance_identifier,
                arn=instance.arn,
                kind="source",
                state="available",
                server=server,
                master_username=master_username,
            )
            return str(instance.arn)

    def create_automated_snapshot(
        self,
        db_instance_identifier: str,
        *,
        emit: bool = False,
        snapshot_id: str | None = None,
        snapshot_type: str = "automated",
    ) -> dict[str, Any]:
        """Base-backup the instance's server as an automated snapshot; the RDS-EVENT-0091 event.

        The event is returned (and only handed to ``emit_event`` if ``emit``), so the caller
        decides how it is delivered. ``snapshot_id`` and ``snapshot_type``: another kind of
        snapshot of the same data (AWS Backup's ``awsbackup:job-...``, localcloud.backup).
        """
        backend = self.backend
        identifier = db_instance_identifier.lower()
        with self._lock:
            record = self._instances.get(identifier)
            if record is None or record.server is None:
                raise DBInstanceNotFoundError(db_instance_identifier)
            server = record.server
            snapshot_id = snapshot_id or self._new_automated_snapshot_id(backend, identifier)
            self._snapshots[snapshot_id] = _Snapshot(snapshot_id, data_dir=None)
        target = self.snapshots_dir / _safe_name(snapshot_id)
        try:
            base_backup(server, target)
            with self._lock:
                instance = backend.databases.get(identifier)
                if instance is None:
                    raise DBInstanceNotFoundError(db_instance_identifier)
                snapshot = backend.create_db_snapshot(
                    identifier,
                    snapshot_id,
                    snapshot_type=snapshot_type,
                    tags=list(instance.tags) or None,
                )
                snapshot.status = "available"
                self._snapshots[snapshot_id] = _Snapshot(
                    snapshot_id, data_dir=target, source=identifier, taken_at=_now()
                )
                event = _envelope(
                    detail_type="RDS DB Snapshot Event",
                    account=self.account_id,
                    region=self.region,
                    arn=snapshot.arn,
                    source_type="SNAPSHOT",
                    categories=["creation"],
                    message=MSG_SNAPSHOT,
                    source_identifier=snapshot_id,
                    event_id="RDS-EVENT-0091",
                    tags=_tags_map(instance.tags),
                )
        except BaseException:
            with self._lock:
                self._snapshots.pop(snapshot_id, None)
            shutil.rmtree(target, ignore_errors=True)
            raise
        if emit:
            self.emit_event(event)
        return event

    def _new_automated_snapshot_id(self, backend: RDSBackend, identifier: str) -> str:
        now = _now()
        base = f"rds:{identifier}-{now:%Y-%m-%d-%H-%M}"
        candidates = [base, f"{base}-{now:%S}"]
        candidates += [f"{base}-{now:%S}-{n}" for n in range(2, 1000)]
        for candidate in candidates:
            if (
                candidate not in backend.database_snapshots
                and candidate not in backend.cluster_snapshots
                and candidate not in self._snapshots
                and candidate not in self._snapshot_ids_used
            ):
                self._snapshot_ids_used.add(candidate)
                return candidate
        raise RuntimeError(f"no free automated snapshot id for {identifier}")  # pragma: no cover

    def _drop_moto_automated_snapshots(self, backend: RDSBackend, identifier: str) -> None:
        for snapshot_id, snapshot in list(backend.database_snapshots.items()):
            if (
                snapshot.snapshot_type == "automated"
                and snapshot.database.db_instance_identifier == identifier
                and snapshot_id not in self._snapshots
            ):
                del backend.database_snapshots[snapshot_id]

    def snapshot_data_dir(self, snapshot_id: str) -> Path | None:
        """Where a snapshot's base backup is (tests plant damage in it before a restore)."""
        with self._lock:
            snapshot = self._snapshots.get(snapshot_id)
        return None if snapshot is None else snapshot.data_dir

    def forget_snapshot(self, snapshot_id: str) -> None:
        """Delete a snapshot and its physical copy (a long local run would fill /dev/shm)."""
        snapshot_id = snapshot_id.lower()
        with self._lock:
            snapshot = self._snapshots.pop(snapshot_id, None)
            self.backend.database_snapshots.pop(snapshot_id, None)
            self.backend.cluster_snapshots.pop(snapshot_id, None)
            shared = snapshot is not None and any(
                other.data_dir == snapshot.data_dir for other in self._snapshots.values()
            )
        if snapshot is not None and snapshot.data_dir is not None and not shared:
            shutil.rmtree(snapshot.data_dir, ignore_errors=True)

    # -- point-in-time restore: WAL archiving on a source, and its shipped logs ---------------

    def _source(self, identifier: str) -> _Instance | _Cluster | None:
        """A source DB instance or Aurora DB cluster, by identifier."""
        with self._lock:
            record = self._instances.get(identifier) or self._clusters.get(identifier)
        return record if record is not None and record.kind == "source" else None

    def enable_point_in_time(self, identifier: str) -> Path:
        """Archive the WAL of a source DB instance or Aurora DB cluster (its server is
        restarted) so that it can be restored to a point in time: from its newest automated
        snapshot before that time, replaying the archive. Returns the archive directory."""
        record = self._source(identifier.lower())
        if record is None or record.server is None:
            raise DBInstanceNotFoundError(identifier)
        archive = self.state_dir / "wal-archive" / _safe_name(identifier.lower())
        enable_wal_archiving(record.server, archive)
        record.wal_archive = archive
        return archive

    def wal_archive_dir(self, identifier: str) -> Path | None:
        """Where a source's WAL is archived (tests remove a segment from it)."""
        record = self._source(identifier.lower())
        return None if record is None else record.wal_archive

    def ship_logs(self, identifier: str) -> datetime:
        """What RDS does every five minutes: the source's transaction logs so far are archived,
        and its LatestRestorableTime moves up to them. A commit is written after the time read
        (a transaction id, no data), so that recovery to that time finds its end in the logs."""
        key = identifier.lower()
        record = self._source(key)
        if record is None or record.server is None or record.wal_archive is None:
            raise InvalidParameterValue(f"{identifier} does not archive its WAL")
        admin = record.server.admin_connect()
        try:
            ((restorable,),) = admin.run("SELECT clock_timestamp()")
            admin.run("SELECT pg_current_xact_id()")
            ((segment,),) = admin.run("SELECT pg_walfile_name(pg_switch_wal())")
        finally:
            admin.close()
        deadline = time.monotonic() + _THREAD_JOIN_SECONDS
        while not (record.wal_archive / str(segment)).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"WAL segment {segment} of {key} was never archived")
            time.sleep(0.05)
        with self._lock:
            resource = self.backend.databases.get(key) or self.backend.clusters[key]
            resource.__dict__[_LRT_ATTR] = restorable
        return cast(datetime, restorable)

    def faults_for(self, identifier: str) -> RdsFaults:
        return self.instance_faults.get(identifier.lower(), self.faults)

    # -- servers --------------------------------------------------------------------------

    def master_passwords_set(self) -> list[str]:
        with self._lock:
            return list(self._passwords_set)

    def running_servers(self) -> list[PostgresServer]:
        """Servers of restored instances that are running now (sources are not included)."""
        with self._lock:
            servers = [r.server for r in self._instances.values() if r.kind == "restored"]
        return [server for server in servers if server is not None and server.running]

    def server_running(self, identifier: str) -> bool:
        """True while the restored instance ``identifier`` has a running server."""
        with self._lock:
            record = self._instances.get(identifier.lower())
        return record is not None and record.server is not None and record.server.running

    def shutdown(self) -> None:
        """Stop and remove every server this LocalRds started; background work is abandoned."""
        with self._lock:
            self._closed = True
            records = [r for r in self._instances.values() if r.kind == "restored"]
            for record in records:
                record.cancel.set()
        for record in records:
            record.work_done.wait(_THREAD_JOIN_SECONDS)
        for record in records:
            _release_lockers(record)
            server = record.server
            if server is not None:
                with contextlib.suppress(Exception):
                    server.destroy()
        with self._lock:
            clusters = [c for c in self._clusters.values() if c.kind == "restored"]
            for cluster in clusters:
                cluster.cancel.set()
        for cluster in clusters:
            cluster.work_done.wait(_THREAD_JOIN_SECONDS)
            if cluster.server is not None:
                with contextlib.suppress(Exception):
                    cluster.server.destroy()

    # -- restore ----------------------------------------------------------------------------

    def _on_restore(self, backend: RDSBackend, from_snapshot_id: str, overrides: Any) -> DBInstance:
        snapshot_id = from_snapshot_id
        if snapshot_id.startswith("arn:"):
            snapshot_id = backend.extract_snapshot_name_from_arn(snapshot_id)
        snapshot_id = snapshot_id.lower()
        with self._lock:
            self._refuse_beyond_quota(backend, str(overrides.get("db_instance_identifier", "")))
            with _restorable_by_moto(backend, snapshot_id):
                instance = _call_original(
                    "restore_db_instance_from_db_snapshot", backend, from_snapshot_id, overrides
                )
            return self._begin_restore(backend, instance, snapshot_id, overrides, None)

    def _on_restore_to_point_in_time(
        self,
        backend: RDSBackend,
        source_db_identifier: str,
        target_db_identifier: str,
        overrides: Any,
    ) -> DBInstance:
        """RestoreDBInstanceToPointInTime of a source that archives its WAL: its newest
        automated snapshot taken before the time, recovered with the archive up to it."""
        source_id = str(source_db_identifier).lower()
        with self._lock:
            record = self._instances.get(source_id)
            if record is None or record.kind != "source":
                return _call_original(
                    "restore_db_instance_to_point_in_time",
                    backend,
                    source_db_identifier,
                    target_db_identifier,
                    overrides,
                )
            if record.wal_archive is None:
                raise RDSClientError(
                    "PointInTimeRestoreNotEnabled",
                    f"{source_db_identifier} keeps no transaction logs to restore from.",
                )
            source = backend.databases[source_id]
            target = self._restore_time(
                source, overrides.get("restore_time"), overrides.get("use_latest_restorable_time")
            )
            base = self._base_backup_before(source_id, target)
            self._refuse_beyond_quota(backend, str(target_db_identifier))
            with _without_our_attributes(source):
                instance = _call_original(
                    "restore_db_instance_to_point_in_time",
                    backend,
                    source_db_identifier,
                    target_db_identifier,
                    overrides,
                )
            return self._begin_restore(
                backend, instance, base, overrides, _Recovery(record.wal_archive, target)
            )

    @staticmethod
    def _restore_time(source: DBInstance | DBCluster, asked: Any, use_latest: Any) -> datetime:
        """The restore time asked for (or the LatestRestorableTime); refused past the latest."""
        latest = source.latest_restorable_time
        if use_latest:
            if latest is None:
                raise RDSClientError("InvalidRestoreFault", "No restorable time yet.")
            return latest
        if asked is None:
            raise InvalidParameterCombination(
                "A restore time or UseLatestRestorableTime is needed."
            )
        target = (
            asked
            if isinstance(asked, datetime)
            else datetime.fromisoformat(str(asked).replace("Z", "+00:00"))
        )
        if target.tzinfo is None:
            target = target.replace(tzinfo=UTC)  # RDS reads times without an offset as UTC
        if latest is None or target > latest:
            raise RDSClientError(
                "InvalidRestoreFault",
                f"The restore time {target.isoformat()} is after the LatestRestorableTime "
                f"{latest.isoformat() if latest else '(none)'}.",
            )
        return target

    def _base_backup_before(self, source_id: str, target: datetime) -> str:
        """The newest automated snapshot of the source whose base backup ended before ``target``."""
        candidates = [
            snapshot
            for snapshot in self._snapshots.values()
            if snapshot.source == source_id
            and snapshot.data_dir is not None
            and snapshot.taken_at is not None
            and snapshot.taken_at <= target
        ]
        if not candidates:
            raise RDSClientError(
                "InvalidRestoreFault",
                f"No automated backup of {source_id} before {target.isoformat()}.",
            )
        return max(candidates, key=lambda snapshot: snapshot.taken_at or target).snapshot_id

    def _begin_restore(
        self,
        backend: RDSBackend,
        instance: DBInstance,
        snapshot_id: str,
        overrides: Any,
        recovery: _Recovery | None,
    ) -> DBInstance:
        """A new restored instance, ``creating`` until its server runs (under the lock)."""
        identifier = instance.db_instance_identifier
        instance.status = "creating"
        instance.__dict__.pop(_ADDRESS_ATTR, None)
        instance.__dict__[_PENDING_ATTR] = True
        instance.port = _PLACEHOLDER_PORT
        # moto ignores falsy overrides, so BackupRetentionPeriod=0 would be lost
        if overrides.get("backup_retention_period") == 0:
            instance.backup_retention_period = 0
        # the new instance's initial automated backup (moto makes one) holds the same data
        # as the snapshot it was restored from; with BackupRetentionPeriod=0 AWS makes none
        source = self._snapshots.get(snapshot_id)
        for moto_id, snapshot in list(backend.database_snapshots.items()):
            if (
                snapshot.snapshot_type == "automated"
                and snapshot.database.db_instance_identifier == identifier
                and moto_id not in self._snapshots
            ):
                if instance.backup_retention_period == 0 or source is None:
                    del backend.database_snapshots[moto_id]
                else:
                    self._snapshots[moto_id] = _Snapshot(moto_id, source.data_dir)
        record = _Instance(
            identifier=identifier,
            arn=instance.arn,
            kind="restored",
            state="creating",
            master_username=instance.master_username,
        )
        self._instances[identifier] = record
        self.restored_now += 1
        self.restored_peak = max(self.restored_peak, self.restored_now)
        self._spawn(
            record, "restore", self._restore_worker, instance, record, snapshot_id, recovery
        )
        return instance

    def instances_used(self, backend: RDSBackend) -> int:
        """DBInstances used: production's, and moto's instances (but the sources when they are
        counted among production's)."""
        limits = self.account_limits
        with self._lock:
            used = limits.production_instances + len(backend.databases)
            if limits.sources_are_production:
                used -= sum(1 for record in self._instances.values() if record.kind == "source")
        return used

    def _refuse_beyond_quota(self, backend: RDSBackend, identifier: str) -> None:
        faults = self.faults_for(identifier)
        if faults.refuse_restore is not None:
            raise RDSClientError(*faults.refuse_restore)
        used = self.instances_used(backend)
        if faults.quota_refusals > 0 or used >= self.account_limits.instance_quota:
            faults.quota_refusals = max(0, faults.quota_refusals - 1)
            self.quota_refusals_made += 1
            raise RDSClientError(
                "InstanceQuotaExceeded",
                f"DB instance quota exceeded: {used} of {self.account_limits.instance_quota}",
            )

    def _spawn(
        self,
        record: _Instance | _Cluster,
        what: str,
        job: Callable[..., dict[str, Any] | None],
        *args: Any,
    ) -> None:
        """Run ``job`` in the background; emit the event it returns once its work is done."""
        done = threading.Event()
        record.work_done = done

        def run() -> None:
            event = None
            try:
                event = job(*args)
            except Exception:
                log.exception("local RDS: %s of %s failed", what, record.identifier)
            finally:
                done.set()
            if event is not None:
                try:
                    self.emit_event(event)
                except Exception:
                    log.exception("local RDS: emitting %s failed", event["detail"]["EventID"])

        threading.Thread(
            target=run, name=f"localrds-{what}-{record.identifier}", daemon=True
        ).start()

    def _restore_worker(
        self,
        instance: DBInstance,
        record: _Instance,
        snapshot_id: str,
        recovery: _Recovery | None = None,
    ) -> dict[str, Any] | None:
        faults = self.faults_for(record.identifier)
        if faults.stuck_restore:
            record.cancel.wait()
            return None  # stuck in "creating" until deleted (or shut down)
        if record.cancel.wait(max(faults.restore_delay_seconds, 0.0)):
            return None  # deleted (or shut down) while "creating"
        server, failure = self._restore_server(record, snapshot_id, faults, recovery)
        with self._lock:
            abandoned = record.cancel.is_set() or self._closed or record.state != "creating"
            event = (
                None
                if abandoned
                else self._restored(instance, record, snapshot_id, server, failure)
            )
        if server is not None and (abandoned or failure is not None):
            server.destroy()
        return event

    def _restore_server(
        self,
        record: _Instance,
        snapshot_id: str,
        faults: RdsFaults,
        recovery: _Recovery | None = None,
    ) -> tuple[PostgresServer | None, str | None]:
        """The restored instance's server, started, or why there is none."""
        snapshot = self._snapshots.get(snapshot_id)
        if faults.fail_restore:
            return None, "fault injected: fail_restore"
        if snapshot is None or snapshot.data_dir is None:
            return None, f"snapshot {snapshot_id} has no physical copy in the local RDS"
        try:
            server = restore_copy(
                snapshot.data_dir,
                self.instances_dir,
                f"{_safe_name(record.identifier)}-{uuid.uuid4().hex[:8]}",
            )
        except Exception as exc:
            log.exception("local RDS: restore of %s failed", record.identifier)
            return None, f"restore failed: {exc}"
        record.server = server
        try:
            if recovery is not None:
                configure_recovery(server, recovery.archive, recovery.target)
            server.start()
            if recovery is not None:
                wait_promoted(server)
        except Exception as exc:
            log.exception("local RDS: restore of %s failed", record.identifier)
            return server, f"restore failed: {exc}"
        return server, None

    def _restored(
        self,
        instance: DBInstance,
        record: _Instance,
        snapshot_id: str,
        server: PostgresServer | None,
        failure: str | None,
    ) -> dict[str, Any]:
        """The instance's state once its restore is over (under the lock); the event to emit."""
        if failure is not None or server is None:
            log.warning(
                "local RDS: %s -> %s (%s)", record.identifier, FAILED_RESTORE_STATUS, failure
            )
            instance.status = FAILED_RESTORE_STATUS
            record.state = "failed"
            return self._instance_event(
                instance, "RDS-EVENT-0031", ["failure"], MSG_FAILED, with_tags=True
            )
        instance.__dict__[_ADDRESS_ATTR] = LOCAL_ADDRESS
        instance.__dict__.pop(_PENDING_ATTR, None)
        instance.port = server.port
        instance.status = "available"
        record.state = "available"
        return self._instance_event(
            instance,
            "RDS-EVENT-0043",
            ["restoration"],
            MSG_RESTORED.format(snapshot=snapshot_id),
            with_tags=True,
        )

    # -- modify -----------------------------------------------------------------------------

    def _on_modify(
        self, backend: RDSBackend, db_instance_identifier: str, db_kwargs: Any
    ) -> DBInstance:
        password = db_kwargs.get("master_user_password")
        with self._lock:
            record = self._instances.get(str(db_instance_identifier).lower())
            if record is None or record.kind != "restored" or not password:
                return _call_original(
                    "modify_db_instance", backend, db_instance_identifier, db_kwargs
                )
            if db_kwargs.get("new_db_instance_identifier"):
                raise InvalidParameterCombination(
                    "The local RDS does not rename instances it restored."
                )
            _validate_master_password(str(password))
            if record.state != "available":
                raise RDSClientError(
                    "InvalidDBInstanceState", "Database instance is not in available state."
                )
            instance = _call_original(
                "modify_db_instance", backend, db_instance_identifier, db_kwargs
            )
            instance.status = "resetting-master-credentials"
            record.state = "resetting"
            self._passwords_set.append(str(password))
            self._spawn(record, "reset", self._reset_worker, instance, record, str(password))
            return instance

    def _reset_worker(
        self, instance: DBInstance, record: _Instance, password: str
    ) -> dict[str, Any] | None:
        server = record.server
        faults = self.faults_for(record.identifier)
        if faults.wrong_password:
            # Fault: what the server gets is not what the caller asked for.
            password = "not-" + uuid.uuid4().hex
        ok = False
        try:
            assert server is not None
            _set_role_password(server, record.master_username, password)
            if faults.hang_after_reset and not record.lockers:
                # Once per instance: a second reset (two triggers may both reset) would
                # otherwise wait behind the first one's locks.
                record.lockers.extend(_lock_every_table(server))
            ok = True
        except Exception:
            log.exception(
                "local RDS: resetting the master password of %s failed", record.identifier
            )
        with self._lock:
            if record.state != "resetting" or record.cancel.is_set():
                return None
            instance.status = "available"
            record.state = "available"
            if not ok:
                return None  # AWS would retry; the drill sees no RDS-EVENT-0016 and times out
            return self._instance_event(
                instance,
                "RDS-EVENT-0016",
                ["configuration change"],
                MSG_CREDENTIALS,
                with_tags=True,
            )

    # -- delete -----------------------------------------------------------------------------

    def _on_delete(
        self, backend: RDSBackend, db_instance_identifier: str, **kwargs: Any
    ) -> DBInstance:
        identifier = str(db_instance_identifier).lower()
        skip_final = bool(kwargs.get("skip_final_snapshot"))
        final_id = kwargs.get("final_db_snapshot_identifier")
        with self._lock:
            record = self._instances.get(identifier)
            instance = backend.databases.get(identifier)
            if record is None or record.kind != "restored" or instance is None:
                deleted = _call_original(
                    "delete_db_instance", backend, db_instance_identifier, **kwargs
                )
                if record is not None and record.kind == "source":
                    del self._instances[identifier]
                return deleted
            if record.state == "deleting":
                raise RDSClientError(
                    "InvalidDBInstanceState",
                    f"Instance {identifier} is already being deleted.",
                )
            if instance.deletion_protection:
                raise InvalidParameterCombination(
                    "Cannot delete protected DB Instance, please disable deletion protection "
                    "and try again."
                )
            # An Aurora instance takes no final snapshot: snapshots are the cluster's.
            skip_final = skip_final or record.cluster_id is not None
            if not skip_final and not final_id:
                raise InvalidParameterCombination(
                    "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified."
                )
            if not skip_final and record.state != "available":
                raise RDSClientError(
                    "InvalidDBInstanceState",
                    f"Instance {identifier} is currently {instance.status} - a final snapshot "
                    "cannot be taken.",
                )
            if not skip_final:
                self._final_snapshot(backend, record, str(final_id))
            previous_done = record.work_done
            instance.status = "deleting"
            record.state = "deleting"
            record.cancel.set()
            self._spawn(
                record,
                "delete",
                self._delete_worker,
                backend,
                instance,
                record,
                previous_done,
                kwargs,
            )
            return instance

    def _final_snapshot(self, backend: RDSBackend, record: _Instance, final_id: str) -> None:
        assert record.server is not None
        snapshot_id = final_id.lower()
        if snapshot_id in backend.database_snapshots:
            raise RDSClientError(
                "DBSnapshotAlreadyExists",
                f"Cannot create the snapshot because a snapshot with "
                f"the identifier {final_id} already exists.",
            )
        target = self.snapshots_dir / _safe_name(snapshot_id)
        base_backup(record.server, target)
        backend.create_db_snapshot(record.identifier, snapshot_id, snapshot_type="manual")
        self._snapshots[snapshot_id] = _Snapshot(snapshot_id, target)

    def _delete_worker(
        self,
        backend: RDSBackend,
        instance: DBInstance,
        record: _Instance,
        previous_done: threading.Event,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        # a restore still copying/starting its server sees the cancel and stops; wait for it
        previous_done.wait(_THREAD_JOIN_SECONDS)
        _release_lockers(record)
        server = record.server
        if server is not None:
            try:
                if record.cluster_id is not None:
                    server.stop()  # the storage is the cluster's: it goes with the cluster
                else:
                    server.destroy()
            except Exception:
                log.exception("local RDS: destroying the server of %s failed", record.identifier)
        if record.cluster_id is not None:
            self._instance_left_cluster(backend, record.cluster_id)
        with self._lock:
            arn = instance.arn
            with contextlib.suppress(DBInstanceNotFoundError):
                _call_original(
                    "delete_db_instance",
                    backend,
                    record.identifier,
                    skip_final_snapshot=True,
                    delete_automated_backups=kwargs.get("delete_automated_backups", True),
                )
            if self._instances.get(record.identifier) is record:
                del self._instances[record.identifier]
                self.restored_now -= 1
            return _envelope(
                detail_type="RDS DB Instance Event",
                account=self.account_id,
                region=self.region,
                arn=arn,
                source_type="DB_INSTANCE",
                categories=["deletion"],
                message=MSG_DELETED,
                source_identifier=record.identifier,
                event_id="RDS-EVENT-0003",
                tags=None,
            )

    # -- Aurora clusters --------------------------------------------------------------------

    def register_source_cluster(
        self,
        *,
        db_cluster_identifier: str,
        server: PostgresServer,
        master_username: str,
        master_password: str,
        tags: dict[str, str],
        engine_version: str = "16.4",
        db_name: str | None = None,
    ) -> str:
        """Create the moto Aurora PostgreSQL cluster whose writer is ``server``; its ARN."""
        backend = self.backend
        with self._lock:
            cluster = backend.create_db_cluster(
                {
                    "db_cluster_identifier": db_cluster_identifier,
                    "engine": "aurora-postgresql",
                    "engine_version": engine_version,
                    "port": server.port,
                    "master_username": master_username,
                    "master_user_password": master_password,
                    "database_name": db_name,
                    "backup_retention_period": 7,
                    "copy_tags_to_snapshot": True,
                    "tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                }
            )
            identifier = cluster.db_cluster_identifier
            self._drop_moto_cluster_snapshots(backend, identifier)
            cluster.__dict__[_CLUSTER_ENDPOINT_ATTR] = LOCAL_ADDRESS
            cluster.__dict__[_LRT_ATTR] = None  # until its logs are shipped (ship_logs)
            self._clusters[identifier] = _Cluster(
                identifier=identifier,
                arn=cluster.db_cluster_arn,
                kind="source",
                state="available",
                server=server,
                master_username=master_username,
            )
            return str(cluster.db_cluster_arn)

    def _drop_moto_cluster_snapshots(self, backend: RDSBackend, identifier: str) -> None:
        """moto takes an automated snapshot of every new cluster, with no data behind it."""
        for snapshot_id, snapshot in list(backend.cluster_snapshots.items()):
            if (
                snapshot.snapshot_type == "automated"
                and snapshot.cluster.db_cluster_identifier == identifier
                and snapshot_id not in self._snapshots
            ):
                del backend.cluster_snapshots[snapshot_id]

    def create_automated_cluster_snapshot(self, db_cluster_identifier: str) -> dict[str, Any]:
        """Base-backup the source cluster's server as an automated cluster snapshot; the
        RDS-EVENT-0169 event (returned, not emitted: the caller delivers it)."""
        backend = self.backend
        identifier = db_cluster_identifier.lower()
        with self._lock:
            record = self._clusters.get(identifier)
            if record is None or record.server is None or record.kind != "source":
                raise RDSClientError("DBClusterNotFoundFault", f"{db_cluster_identifier}")
            server = record.server
            snapshot_id = self._new_automated_snapshot_id(backend, identifier)
            self._snapshots[snapshot_id] = _Snapshot(snapshot_id, data_dir=None)
        target = self.snapshots_dir / _safe_name(snapshot_id)
        try:
            base_backup(server, target)
            with self._lock:
                cluster = backend.clusters[identifier]
                snapshot = backend.create_db_cluster_snapshot(
                    identifier, snapshot_id, snapshot_type="automated", tags=list(cluster.tags)
                )
                snapshot.status = "available"
                self._snapshots[snapshot_id] = _Snapshot(
                    snapshot_id, data_dir=target, source=identifier, taken_at=_now()
                )
                return _envelope(
                    detail_type="RDS DB Cluster Snapshot Event",
                    account=self.account_id,
                    region=self.region,
                    arn=snapshot.db_cluster_snapshot_arn,
                    source_type="CLUSTER_SNAPSHOT",
                    categories=["backup"],
                    message=MSG_CLUSTER_SNAPSHOT,
                    source_identifier=snapshot_id,
                    event_id="RDS-EVENT-0169",
                    tags=_tags_map(cluster.tags),
                )
        except BaseException:
            with self._lock:
                self._snapshots.pop(snapshot_id, None)
            shutil.rmtree(target, ignore_errors=True)
            raise

    def cluster_exists(self, identifier: str) -> bool:
        with self._lock:
            return identifier.lower() in self.backend.clusters

    def _on_restore_cluster(
        self, backend: RDSBackend, from_snapshot_id: str, overrides: Any
    ) -> Any:
        snapshot_id = from_snapshot_id.rsplit(":cluster-snapshot:", 1)[-1].lower()
        identifier = str(overrides.get("db_cluster_identifier", "")).lower()
        with self._lock:
            if identifier in backend.clusters:
                raise RDSClientError(
                    "DBClusterAlreadyExistsFault", f"DB Cluster {identifier} already exists"
                )
            cluster = _original("restore_db_cluster_from_snapshot")(
                backend, from_snapshot_id, overrides
            )
            return self._begin_cluster_restore(backend, cluster, identifier, snapshot_id)

    def _on_restore_cluster_to_point_in_time(self, backend: RDSBackend, kwargs: Any) -> Any:
        """RestoreDBClusterToPointInTime of a source cluster that archives its WAL: its newest
        automated cluster snapshot before the time, recovered with the archive up to it."""
        source_id = str(kwargs.get("source_db_cluster_identifier", "")).lower()
        identifier = str(kwargs.get("db_cluster_identifier", "")).lower()
        with self._lock:
            record = self._clusters.get(source_id)
            if record is None or record.kind != "source":
                return _original("restore_db_cluster_to_point_in_time")(backend, **kwargs)
            if record.wal_archive is None:
                raise RDSClientError(
                    "InvalidRestoreFault", f"{source_id} keeps no transaction logs to restore from."
                )
            if identifier in backend.clusters:
                raise RDSClientError(
                    "DBClusterAlreadyExistsFault", f"DB Cluster {identifier} already exists"
                )
            source = backend.clusters[source_id]
            target = self._restore_time(
                source, kwargs.get("restore_to_time"), kwargs.get("use_latest_restorable_time")
            )
            base = self._base_backup_before(source_id, target)
            with _without_our_attributes(source):
                cluster = _original("restore_db_cluster_to_point_in_time")(backend, **kwargs)
            return self._begin_cluster_restore(
                backend, cluster, identifier, base, _Recovery(record.wal_archive, target)
            )

    def _begin_cluster_restore(
        self,
        backend: RDSBackend,
        cluster: DBCluster,
        identifier: str,
        snapshot_id: str,
        recovery: _Recovery | None = None,
    ) -> DBCluster:
        """What every cluster restore does once moto made the cluster (under the lock): it is
        creating, its storage is restored from ``snapshot_id`` (and recovered, for a point in
        time) in the background."""
        _set_cluster_status(cluster, "creating")
        self._drop_moto_cluster_snapshots(backend, identifier)
        restored = _Cluster(
            identifier=identifier,
            arn=cluster.db_cluster_arn,
            kind="restored",
            state="creating",
            master_username=cluster.master_username,
        )
        self._clusters[identifier] = restored
        self._spawn(
            restored,
            "restore-cluster",
            self._restore_cluster_worker,
            cluster,
            restored,
            snapshot_id,
            recovery,
        )
        return cluster

    def _restore_cluster_worker(
        self,
        cluster: DBCluster,
        record: _Cluster,
        snapshot_id: str,
        recovery: _Recovery | None = None,
    ) -> dict[str, Any] | None:
        """The cluster's storage: a copy of the snapshot (not started: its instance starts it);
        for a point-in-time restore, recovered up to the time and promoted first."""
        faults = self.faults_for(record.identifier)
        if record.cancel.wait(max(faults.restore_delay_seconds, 0.0)):
            return None
        snapshot = self._snapshots.get(snapshot_id)
        storage: PostgresServer | None = None
        if not faults.fail_restore and snapshot is not None and snapshot.data_dir is not None:
            try:
                storage = restore_copy(
                    snapshot.data_dir,
                    self.instances_dir,
                    f"{_safe_name(record.identifier)}-{uuid.uuid4().hex[:8]}",
                )
                if recovery is not None:
                    _recover(storage, recovery)
            except Exception:
                log.exception("local RDS: restore of cluster %s failed", record.identifier)
                if storage is not None:
                    storage.destroy()
                    storage = None
        with self._lock:
            if record.cancel.is_set() or self._closed or record.state != "creating":
                if storage is not None:
                    storage.destroy()
                return None
            record.server = storage
            if storage is None:
                _set_cluster_status(cluster, FAILED_RESTORE_STATUS)
                record.state = "failed"
                return self._cluster_event(
                    cluster, "RDS-EVENT-0354", ["failure"], MSG_CLUSTER_FAILED
                )
            _set_cluster_status(cluster, "available")
            record.state = "available"
            return self._cluster_event(cluster, "RDS-EVENT-0170", ["creation"], MSG_CLUSTER_CREATED)

    def _on_create_cluster_instance(self, backend: RDSBackend, db_kwargs: Any) -> DBInstance:
        cluster_id = str(db_kwargs["db_cluster_identifier"]).lower()
        with self._lock:
            cluster_record = self._clusters.get(cluster_id)
            if cluster_record is None or cluster_record.kind != "restored":
                return _call_original("create_db_instance", backend, db_kwargs)
            faults = self.faults_for(cluster_id)
            if faults.refuse_create_instance:
                raise RDSClientError(
                    "InsufficientDBInstanceCapacity",
                    f"Cannot create a database instance because there is not enough capacity "
                    f"for {db_kwargs.get('db_instance_class')} (fault injected)",
                )
            if cluster_record.state != "available" or cluster_record.server is None:
                raise RDSClientError(
                    "InvalidDBClusterStateFault", f"DB cluster {cluster_id} is not available."
                )
            instance = _call_original("create_db_instance", backend, db_kwargs)
            instance.status = "creating"
            instance.__dict__[_PENDING_ATTR] = True
            instance.port = _PLACEHOLDER_PORT
            record = _Instance(
                identifier=instance.db_instance_identifier,
                arn=instance.arn,
                kind="restored",
                state="creating",
                master_username=cluster_record.master_username,
                cluster_id=cluster_id,
            )
            self._instances[record.identifier] = record
            self.restored_now += 1
            self.restored_peak = max(self.restored_peak, self.restored_now)
            self._spawn(
                record, "create", self._create_instance_worker, instance, record, cluster_record
            )
            return instance

    def _create_instance_worker(
        self, instance: DBInstance, record: _Instance, cluster_record: _Cluster
    ) -> dict[str, Any] | None:
        """The instance's server runs on the cluster's storage; it is the writer endpoint."""
        faults = self.faults_for(record.identifier)
        if record.cancel.wait(max(faults.restore_delay_seconds, 0.0)):
            return None
        server = cluster_record.server
        started = False
        if server is not None:
            try:
                server.start()
                started = True
            except Exception:
                log.exception("local RDS: instance %s did not start", record.identifier)
        with self._lock:
            if record.cancel.is_set() or self._closed or record.state != "creating":
                return None
            if not started or server is None:
                instance.status = "failed"
                record.state = "failed"
                return self._instance_event(
                    instance, "RDS-EVENT-0031", ["failure"], MSG_FAILED, with_tags=True
                )
            record.server = server
            instance.__dict__[_ADDRESS_ATTR] = LOCAL_ADDRESS
            instance.__dict__.pop(_PENDING_ATTR, None)
            instance.port = server.port
            instance.status = "available"
            record.state = "available"
            cluster = self.backend.clusters.get(cluster_record.identifier)
            if cluster is not None:
                cluster.__dict__[_CLUSTER_ENDPOINT_ATTR] = LOCAL_ADDRESS
                cluster.port = server.port
            return self._instance_event(
                instance, "RDS-EVENT-0005", ["creation"], MSG_INSTANCE_CREATED, with_tags=True
            )

    def _instance_left_cluster(self, backend: RDSBackend, cluster_id: str) -> None:
        with self._lock:
            cluster = backend.clusters.get(cluster_id)
            if cluster is not None:
                cluster.__dict__.pop(_CLUSTER_ENDPOINT_ATTR, None)

    def _on_modify_cluster(self, backend: RDSBackend, kwargs: Any) -> Any:
        password = kwargs.get("master_user_password")
        identifier = str(kwargs.get("db_cluster_identifier", "")).lower()
        with self._lock:
            record = self._clusters.get(identifier)
            if record is None or record.kind != "restored" or not password:
                return _original("modify_db_cluster")(backend, kwargs)
            if kwargs.get("new_db_cluster_identifier"):
                raise InvalidParameterCombination(
                    "The local RDS does not rename clusters it restored."
                )
            _validate_master_password(str(password))
            if record.state != "available":
                raise RDSClientError(
                    "InvalidDBClusterStateFault", f"DB cluster {identifier} is not available."
                )
            _original("modify_db_cluster")(backend, kwargs)
            cluster = backend.clusters[identifier]
            _set_cluster_status(cluster, "resetting-master-credentials")
            record.state = "resetting"
            self._passwords_set.append(str(password))
            self._spawn(
                record, "reset-cluster", self._reset_cluster_worker, cluster, record, str(password)
            )
            return cluster

    def _reset_cluster_worker(
        self, cluster: DBCluster, record: _Cluster, password: str
    ) -> dict[str, Any] | None:
        faults = self.faults_for(record.identifier)
        if faults.wrong_password:
            password = "not-" + uuid.uuid4().hex
        ok = False
        try:
            assert record.server is not None and record.server.running
            _set_role_password(record.server, record.master_username, password)
            if faults.hang_after_reset and not record.lockers:
                record.lockers.extend(_lock_every_table(record.server))
            ok = True
        except Exception:
            log.exception(
                "local RDS: resetting the password of cluster %s failed", record.identifier
            )
        with self._lock:
            if record.state != "resetting" or record.cancel.is_set():
                return None
            _set_cluster_status(cluster, "available")
            record.state = "available"
            if not ok:
                return None
            return self._cluster_event(
                cluster, "RDS-EVENT-0016", ["configuration change"], MSG_CREDENTIALS
            )

    def _on_delete_cluster(
        self, backend: RDSBackend, cluster_identifier: str, snapshot_name: str | None
    ) -> Any:
        identifier = str(cluster_identifier).lower()
        with self._lock:
            record = self._clusters.get(identifier)
            cluster = backend.clusters.get(identifier)
            if record is None or record.kind != "restored" or cluster is None:
                deleted = _original("delete_db_cluster")(backend, cluster_identifier, snapshot_name)
                self._clusters.pop(identifier, None)
                return deleted
            if record.state == "deleting":
                raise RDSClientError(
                    "InvalidDBClusterStateFault", f"DB cluster {identifier} is being deleted."
                )
            if any(
                getattr(db, "db_cluster_identifier", None) == identifier
                for db in backend.databases.values()
            ):
                raise RDSClientError(
                    "InvalidDBClusterStateFault",
                    "Cluster cannot be deleted, it still contains DB instances in non-deleting "
                    "state.",
                )
            previous_done = record.work_done
            _set_cluster_status(cluster, "deleting")
            record.state = "deleting"
            record.cancel.set()
            self._spawn(
                record,
                "delete-cluster",
                self._delete_cluster_worker,
                backend,
                cluster,
                record,
                previous_done,
            )
            return cluster

    def _delete_cluster_worker(
        self,
        backend: RDSBackend,
        cluster: DBCluster,
        record: _Cluster,
        previous_done: threading.Event,
    ) -> dict[str, Any]:
        previous_done.wait(_THREAD_JOIN_SECONDS)
        _release_lockers(record)
        if record.server is not None:
            try:
                record.server.destroy()
            except Exception:
                log.exception("local RDS: removing the storage of %s failed", record.identifier)
        with self._lock:
            event = self._cluster_event(
                cluster, "RDS-EVENT-0171", ["deletion"], MSG_CLUSTER_DELETED
            )
            backend.clusters.pop(record.identifier, None)
            if self._clusters.get(record.identifier) is record:
                del self._clusters[record.identifier]
            return event

    def _cluster_event(
        self, cluster: DBCluster, event_id: str, categories: list[str], message: str
    ) -> dict[str, Any]:
        return _envelope(
            detail_type="RDS DB Cluster Event",
            account=self.account_id,
            region=self.region,
            arn=cluster.db_cluster_arn,
            source_type="CLUSTER",
            categories=categories,
            message=message,
            source_identifier=cluster.db_cluster_identifier,
            event_id=event_id,
            tags=_tags_map(cluster.tags),
        )

    # -- snapshot copies --------------------------------------------------------------------

    def _on_copy_snapshot(self, backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
        """A copy of a snapshot with data has the same data (shares the physical copy)."""
        with self._lock:
            copied = _original("copy_db_snapshot")(backend, *args, **kwargs)
            source_id = str(
                kwargs.get("source_db_snapshot_identifier") or (args[0] if args else "")
            )
            if source_id.startswith("arn:"):
                source_id = source_id.rsplit(":snapshot:", 1)[-1]
            source = self._snapshots.get(source_id.lower())
            if source is not None and source.data_dir is not None:
                target_id = copied.db_snapshot_identifier
                self._snapshots[target_id] = _Snapshot(target_id, source.data_dir)
            return copied

    # -- helpers ----------------------------------------------------------------------------

    def _instance_event(
        self,
        instance: DBInstance,
        event_id: str,
        categories: list[str],
        message: str,
        *,
        with_tags: bool,
    ) -> dict[str, Any]:
        return _envelope(
            detail_type="RDS DB Instance Event",
            account=self.account_id,
            region=self.region,
            arn=instance.arn,
            source_type="DB_INSTANCE",
            categories=categories,
            message=message,
            source_identifier=instance.db_instance_identifier,
            event_id=event_id,
            tags=_tags_map(instance.tags) if with_tags else None,
        )
