"""The requests the adapters make, checked against the installed botocore's service models (the
Stubber validates every parameter), and the refusals they turn into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError, ValidationError
from botocore.stub import ANY, Stubber
from restoredrill.adapters.aws import (
    ENGINE_LIFECYCLE_SUPPORT,
    RdsAdapter,
    SsmPasswordVault,
    _invalid_request,
)
from restoredrill.composition import wiring
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.records import DRILL_PORT, RunRecord, SnapshotInfo

from localcloud.template import load_yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
STACK = "restoredrill-test"
RUN_ID = "0123456789abcdef0123"


def a_run(engine_version: str = "11.22") -> RunRecord:
    now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    return RunRecord(
        run_id=RUN_ID,
        source_db="legacy-pg",
        snapshot=SnapshotInfo(
            snapshot_id="rds:legacy-pg-2026-11-27-03-10",
            snapshot_arn="arn:aws:rds:us-east-1:123456789012:snapshot:rds:legacy-pg-2026-11-27",
            engine="postgres",
            engine_version=engine_version,
            master_username="admin",
        ),
        instance_id=f"restoredrill-{RUN_ID}",
        instance_class="db.t4g.micro",
        trigger="test",
        created_at=now,
        deadline=now + timedelta(hours=4),
    )


def client(service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service)  # type: ignore[call-overload]


def rds_adapter(rds: Any) -> RdsAdapter:
    return RdsAdapter(
        rds, stack_name=STACK, db_subnet_group_name="private", security_group_id="sg-1"
    )


def test_the_restore_request_is_valid_for_the_installed_botocore_and_pins_port_and_engine() -> None:
    # Given the restore as the adapter sends it, checked by botocore against its RDS model
    rds = client("rds")
    expected = {
        "DBInstanceIdentifier": f"restoredrill-{RUN_ID}",
        "DBSnapshotIdentifier": "rds:legacy-pg-2026-11-27-03-10",
        "DBInstanceClass": "db.t4g.micro",
        "DBSubnetGroupName": "private",
        "VpcSecurityGroupIds": ["sg-1"],
        "PubliclyAccessible": False,
        "MultiAZ": False,
        "Port": DRILL_PORT,
        "EngineLifecycleSupport": ENGINE_LIFECYCLE_SUPPORT,
        "AutoMinorVersionUpgrade": False,
        "DeletionProtection": False,
        "CopyTagsToSnapshot": False,
        "BackupRetentionPeriod": 0,
        "Tags": ANY,
    }
    with Stubber(rds) as stub:
        stub.add_response("restore_db_instance_from_db_snapshot", {}, expected)
        # When the drill restores
        rds_adapter(rds).restore(a_run())
        # Then exactly this request was made: on 5432, keeping the snapshot's engine version
        stub.assert_no_pending_responses()
    assert ENGINE_LIFECYCLE_SUPPORT == "open-source-rds-extended-support"


def test_a_class_not_offered_for_the_engine_version_is_refused_with_what_to_set() -> None:
    # Given RDS refusing db.t4g.micro for PostgreSQL 11 (Graviton classes need newer versions)
    rds = client("rds")
    with Stubber(rds) as stub:
        stub.add_client_error(
            "restore_db_instance_from_db_snapshot",
            service_error_code="InvalidParameterCombination",
            service_message=(
                "RDS does not support creating a DB instance with the following combination: "
                "DBInstanceClass=db.t4g.micro, Engine=postgres, EngineVersion=11.22, "
                "LicenseModel=postgresql-license."
            ),
            http_status_code=400,
        )
        # When the drill restores
        with pytest.raises(EffectRejected) as refused:
            rds_adapter(rds).restore(a_run())
    # Then the refusal names the policy key, the database and how to list the offered classes
    message = refused.value.message
    assert refused.value.code == "InvalidParameterCombination"
    assert "db.t4g.micro is not offered for postgres 11.22" in message
    assert "set instance_class for legacy-pg in the drill policy" in message
    assert "describe-orderable-db-instance-options --engine postgres --engine-version 11.22" in (
        message
    )


def test_another_parameter_combination_refusal_is_passed_on_as_rds_said_it() -> None:
    rds = client("rds")
    with Stubber(rds) as stub:
        stub.add_client_error(
            "restore_db_instance_from_db_snapshot",
            service_error_code="InvalidParameterCombination",
            service_message="The snapshot is encrypted with a key this account cannot use.",
            http_status_code=400,
        )
        with pytest.raises(EffectRejected) as refused:
            rds_adapter(rds).restore(a_run())
    assert refused.value.message == "The snapshot is encrypted with a key this account cannot use."


def test_a_request_botocore_will_not_send_names_the_parameter_but_never_its_value() -> None:
    # Given botocore's report of a password of the wrong type and of a parameter it does not know
    report = (
        "Invalid type for parameter MasterUserPassword, value: Pw-never-shown-7f3a, "
        "type: <class 'bytes'>, valid types: <class 'str'>\n"
        'Unknown parameter in input: "BackupRetentionPeriod", must be one of: '
        "DBInstanceIdentifier, DBSnapshotIdentifier"
    )
    # When it becomes the refusal the drill records
    refused = _invalid_request("ModifyDBInstance", ParamValidationError(report=report))
    # Then both problems are named, without the value or the list of valid parameters
    assert refused.code == "ParamValidationError"
    assert "Invalid type for parameter MasterUserPassword" in refused.message
    assert 'Unknown parameter in input: "BackupRetentionPeriod"' in refused.message
    assert "Pw-never-shown" not in str(refused) and "must be one of" not in str(refused)
    # And any other botocore validation error is refused the same way, by name
    other = _invalid_request(
        "PutParameter", ValidationError(value="secret", param="Value", type_name="string")
    )
    assert other.code == "ValidationError" and "secret" not in str(other)


def test_the_vaults_request_refused_by_botocore_becomes_a_refusal_without_the_password() -> None:
    # Given an SSM client that cannot send the password (a stand-in for an SDK refusing it)
    ssm = client("ssm")

    def refuse(params: dict[str, Any], **_: Any) -> None:
        raise ParamValidationError(
            report=f"Invalid length for parameter Value, value: {params['Value']}, "
            "valid min length: 1"
        )

    ssm.meta.events.register("provide-client-params.ssm.PutParameter", refuse)
    # When the vault stores the run's password
    with pytest.raises(EffectRejected) as refused:
        SsmPasswordVault(ssm).get_or_create("/restoredrill/test/runs/" + RUN_ID)
    # Then the drill gets a refusal (ERROR, not a retry loop) that never holds the password
    assert refused.value.code == "ParamValidationError"
    assert refused.value.message.count("Invalid length for parameter Value") == 1
    assert "value:" not in refused.value.message


def test_the_check_runners_client_outlasts_the_checker_and_keeps_its_connection_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the check runner's environment, with the checker's timeout at 840 s
    monkeypatch.setenv("CHECKER_FUNCTION_NAME", "restoredrill-test-checker")
    monkeypatch.setenv("CHECKER_TIMEOUT_SECONDS", "840")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    wiring.check_runner_adapters.cache_clear()
    try:
        # When its adapters are built
        _, checker, _ = wiring.check_runner_adapters()
    finally:
        wiring.check_runner_adapters.cache_clear()
    config: Any = checker._lambda.meta.config
    # Then the invoke waits past the checker's own timeout, is never retried (a retry would run
    # the checks twice), and its socket has TCP keep-alive on
    assert config.read_timeout > 840
    assert config.retries["total_max_attempts"] == 1
    assert config.tcp_keepalive is True


def test_the_restore_port_is_the_one_the_templates_security_groups_open() -> None:
    resources = load_yaml(TEMPLATE)["Resources"]
    egress = resources["CheckerSecurityGroup"]["Properties"]["SecurityGroupEgress"][0]
    ingress = resources["DrillSecurityGroupIngressFromChecker"]["Properties"]
    assert (egress["FromPort"], egress["ToPort"]) == (DRILL_PORT, DRILL_PORT)
    assert (ingress["FromPort"], ingress["ToPort"]) == (DRILL_PORT, DRILL_PORT)
