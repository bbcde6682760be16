"""The moto internals the local cloud patches or reads are still there, with the same shapes.

src/localcloud (rds.py, s3faults.py, aws.py, delivery.py) and scripts/sam_local/world.py reach
past moto's public API: they replace methods of its RDS backend and S3 responses, wrap its
server's entry point, and read its model objects' attributes. pyproject.toml pins moto to the
minor version these were checked against; a new version must pass this file before the pin moves.
Each failure names the internal that changed.
"""

from __future__ import annotations

import inspect
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.rds.exceptions import (
    DBInstanceNotFoundError,
    InvalidParameterCombination,
    InvalidParameterValue,
    RDSClientError,
)
from moto.rds.models import DBInstance, RDSBackend, rds_backends
from moto.s3.responses import S3Response
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"

# (owner, method) -> the parameter names the local cloud calls it with or replaces it by.
METHODS: dict[tuple[type, str], list[str]] = {
    (RDSBackend, "restore_db_instance_from_db_snapshot"): ["self", "from_snapshot_id", "overrides"],
    (RDSBackend, "restore_db_instance_to_point_in_time"): [
        "self",
        "source_db_identifier",
        "target_db_identifier",
        "overrides",
    ],
    (RDSBackend, "restore_db_cluster_to_point_in_time"): [
        "self",
        "db_cluster_identifier",
        "source_db_cluster_identifier",
        "restore_type",
        "restore_to_time",
        "use_latest_restorable_time",
        "overrides",
    ],
    (RDSBackend, "modify_db_instance"): ["self", "db_instance_identifier", "db_kwargs"],
    (RDSBackend, "delete_db_instance"): [
        "self",
        "db_instance_identifier",
        "final_db_snapshot_identifier",
        "skip_final_snapshot",
        "delete_automated_backups",
    ],
    (RDSBackend, "copy_db_snapshot"): [
        "self",
        "source_db_snapshot_identifier",
        "target_db_snapshot_identifier",
        "kms_key_id",
        "tags",
        "copy_tags",
        "_",
    ],
    (RDSBackend, "describe_db_instances"): ["self", "db_instance_identifier", "filters"],
    (RDSBackend, "describe_db_snapshots"): [
        "self",
        "db_instance_identifier",
        "db_snapshot_identifier",
        "snapshot_type",
        "filters",
    ],
    (RDSBackend, "create_db_instance"): ["self", "db_kwargs"],
    (RDSBackend, "create_db_snapshot"): [
        "self",
        "db_instance_identifier",
        "db_snapshot_identifier",
        "snapshot_type",
        "tags",
        "original_created_at",
        "kms_key_id",
    ],
    (RDSBackend, "extract_snapshot_name_from_arn"): ["self", "snapshot_arn"],
    (S3Response, "put_object"): ["self"],
    (S3Response, "parse_key_name"): ["self"],
    (EventPattern, "load"): ["raw_pattern"],
    (EventPattern, "matches_event"): ["self", "event"],
    (MotoRequestHandler, "log"): ["self", "type", "message", "args"],
    (ThreadedMotoServer, "__init__"): ["self", "ip_address", "port", "verbose"],
}

PATCHED_RDS_BACKEND_METHODS = (
    "restore_db_instance_from_db_snapshot",
    "restore_db_instance_to_point_in_time",
    "restore_db_cluster_to_point_in_time",
    "modify_db_instance",
    "delete_db_instance",
    "copy_db_snapshot",
    "describe_db_instances",
    "describe_db_snapshots",
)

# localcloud.aws._QuietMotoServer re-implements this method with a quieter request handler: when
# moto changes it, the copy must change with it.
SERVER_ENTRY = """\
def _server_entry(self) -> None:
    app = DomainDispatcherApplication(create_backend_app)

    self._server = make_server(
        self._ip_address,
        self._port,
        app,
        True,
        request_handler=MotoRequestHandler,
    )
    self._server_ready_event.set()
    self._server.serve_forever()
"""

# Attributes read or set on moto's model objects (rds.py, world.py).
INSTANCE_ATTRIBUTES = (
    "db_instance_identifier",
    "arn",
    "status",
    "port",
    "tags",
    "master_username",
    "backup_retention_period",
    "deletion_protection",
)
SNAPSHOT_ATTRIBUTES = ("arn", "status", "snapshot_type", "database")
BACKEND_ATTRIBUTES = ("account_id", "region_name", "databases", "database_snapshots")


def parameter_names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.fixture
def rds_backend(aws: None) -> RDSBackend:
    backend = rds_backends[ACCOUNT][REGION]
    backend.create_db_instance(
        {
            "db_instance_identifier": "probe",
            "db_instance_class": "db.t3.micro",
            "engine": "postgres",
            "allocated_storage": 20,
            "master_username": "admin1",
            "master_user_password": "password-1234",
            "backup_retention_period": 7,
        }
    )
    return backend


def test_the_installed_moto_is_the_minor_version_pyproject_pins() -> None:
    # Given the local extra's moto requirement
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = (
        Requirement(r) for r in extras["optional-dependencies"]["local"] if r.startswith("moto")
    )
    # Then it is bounded above (a new minor version is a decision) and the installed moto fits it
    assert any(spec.operator == "<" for spec in pin.specifier), f"moto is not pinned: {pin}"
    assert pin.specifier.contains(version("moto")), f"moto {version('moto')} is outside {pin}"


@pytest.mark.parametrize(
    ("owner", "name"), list(METHODS), ids=[f"{o.__name__}.{n}" for o, n in METHODS]
)
def test_patched_and_called_methods_keep_their_parameters(owner: type, name: str) -> None:
    # Given a moto method the local cloud replaces or calls with keyword arguments
    assert hasattr(owner, name), f"moto {version('moto')}: {owner.__name__}.{name} is gone"
    # Then its parameters are the ones the local cloud's replacement and calls use
    found = parameter_names(getattr(owner, name))
    assert found == METHODS[(owner, name)], (
        f"moto {version('moto')}: {owner.__name__}.{name} now takes {found}, "
        f"the local cloud expects {METHODS[(owner, name)]}"
    )


def test_the_server_entry_the_local_cloud_copies_is_unchanged() -> None:
    # Given the entry point localcloud.aws._QuietMotoServer overrides
    source = textwrap.dedent(inspect.getsource(ThreadedMotoServer._server_entry))
    # Then it still builds the app and server the same way (the names it uses still exist)
    assert source == SERVER_ENTRY, (
        f"moto {version('moto')}: ThreadedMotoServer._server_entry changed; update "
        f"localcloud.aws._QuietMotoServer to match:\n{source}"
    )
    assert callable(DomainDispatcherApplication) and callable(create_backend_app)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    for attribute in ("_ip_address", "_port", "_server_ready_event"):
        assert hasattr(server, attribute), f"ThreadedMotoServer has no {attribute}"


def test_what_the_local_cloud_replaces_is_defined_on_the_class_it_patches() -> None:
    # localcloud.rds and s3faults swap these class attributes and restore the originals, read
    # from the class __dict__; address and endpoint are wrapped as properties (their fget)
    patched: list[tuple[type, str]] = [(RDSBackend, n) for n in PATCHED_RDS_BACKEND_METHODS]
    patched.append((S3Response, "put_object"))
    missing = [f"{o.__name__}.{n}" for o, n in patched if not callable(o.__dict__.get(n))]
    assert not missing, f"moto {version('moto')}: no longer defined on the class: {missing}"
    for name in ("address", "endpoint"):
        assert isinstance(DBInstance.__dict__.get(name), property), (
            f"moto {version('moto')}: DBInstance.{name} is no longer a property"
        )


def test_model_objects_have_the_attributes_the_local_cloud_reads(
    rds_backend: RDSBackend,
) -> None:
    # Given an instance and the automated snapshot moto takes of it
    instance = rds_backend.databases["probe"]
    snapshots = [s for s in rds_backend.database_snapshots.values() if s.snapshot_type]
    # Then the attributes rds.py and sam_local/world.py use are there
    missing = [f"RDSBackend.{a}" for a in BACKEND_ATTRIBUTES if not hasattr(rds_backend, a)]
    missing += [f"DBInstance.{a}" for a in INSTANCE_ATTRIBUTES if not hasattr(instance, a)]
    missing += [
        f"DBSnapshot.{a}" for a in SNAPSHOT_ATTRIBUTES for s in snapshots[:1] if not hasattr(s, a)
    ]
    assert snapshots, "moto no longer takes an automated snapshot of a new instance"
    assert snapshots[0].snapshot_type == "automated"
    assert snapshots[0].database.db_instance_identifier == instance.db_instance_identifier
    assert not missing, f"moto {version('moto')}: gone: {missing}"


def test_the_rds_errors_the_local_cloud_raises_carry_aws_error_codes() -> None:
    # Given the errors localcloud.rds raises from its patched backend methods
    errors = [
        RDSClientError("InvalidDBInstanceState", "not available"),
        InvalidParameterValue("bad password"),
        InvalidParameterCombination("no rename"),
        DBInstanceNotFoundError("probe"),
    ]
    # Then each is an RDS client error whose code is what boto3 sees
    codes = [(type(e).__name__, getattr(e, "code", None)) for e in errors]
    assert all(isinstance(e, RDSClientError) for e in errors), codes
    assert [code for _, code in codes] == [
        "InvalidDBInstanceState",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "DBInstanceNotFound",
    ], f"moto {version('moto')}: error codes changed: {codes}"
