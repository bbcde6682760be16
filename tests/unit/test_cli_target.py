"""Finding the stack the operator commands talk to: samconfig.toml, flags, CloudFormation's
answer (a recording fake session: no sockets) and the local cloud's state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.template import load_yaml
from restoredrill_cli.main import build_parser, main
from restoredrill_cli.resolve import resolve_target, resolve_targets
from restoredrill_cli.target import (
    TEMPLATE_DEFAULTS,
    Target,
    TargetError,
    load_state_file,
    parse_parameter_overrides,
    samconfig_environment,
    write_state_file,
)

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"
OUTPUTS = {
    "DrillBusName": "restoredrill-drills",
    "RunTableName": "restoredrill-RunTable-1",
    "ReportBucketName": "restoredrill-reports-1",
}


class FakeCloudFormation:
    def __init__(self, stacks: dict[tuple[str, str], dict[str, Any]], region: str) -> None:
        self.stacks = stacks
        self.region = region

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        found = self.stacks.get((self.region, StackName))
        if found is None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationError",
                        "Message": f"Stack with id {StackName} does not exist",
                    }
                },
                "DescribeStacks",
            )
        return {"Stacks": [found]}


class FakeSessions:
    """Sessions as boto3 makes them: an unset region falls back to the profile's."""

    def __init__(self, *, profile_region: str | None = None) -> None:
        self.stacks: dict[tuple[str, str], dict[str, Any]] = {}
        self.profile_region = profile_region
        self.made: list[tuple[str | None, str | None]] = []

    def add_stack(
        self,
        region: str,
        name: str,
        *,
        status: str = "UPDATE_COMPLETE",
        outputs: dict[str, str] | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.stacks[(region, name)] = {
            "StackId": f"arn:aws:cloudformation:{region}:210987654321:stack/{name}/abc",
            "StackName": name,
            "StackStatus": status,
            "Outputs": [
                {"OutputKey": key, "OutputValue": value}
                for key, value in (OUTPUTS if outputs is None else outputs).items()
            ],
            "Parameters": [
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in (parameters or {}).items()
            ],
        }

    def __call__(self, profile: str | None, region: str | None) -> Any:
        self.made.append((profile, region))
        sessions = self

        class Session:
            region_name = region or sessions.profile_region

            def client(self, service: str, **_: Any) -> FakeCloudFormation:
                assert service == "cloudformation"
                assert self.region_name is not None
                return FakeCloudFormation(sessions.stacks, self.region_name)

        return Session()


def args_for(*argv: str) -> Any:
    return build_parser().parse_args(["status", *argv])


def test_the_repositorys_samconfig_names_each_environments_stack_and_region() -> None:
    # Given the project's samconfig.toml
    config = tomllib.loads(SAMCONFIG.read_text())
    # When its environments are read
    default = samconfig_environment(config, "default", SAMCONFIG)
    dr = samconfig_environment(config, "prod-dr", SAMCONFIG)
    # Then each has its stack, its region and its parameter overrides
    assert (default.stack_name, default.region) == ("restoredrill", "us-east-1")
    assert (dr.stack_name, dr.region) == ("restoredrill-prod", "us-west-2")
    assert dr.parameter_overrides["DrillDeadlineMinutes"] == "360"
    assert dr.parameter_overrides["CheckerSubnetIds"] == (
        "subnet-0cccccccccccccccc,subnet-0dddddddddddddddd"
    )


def test_two_config_envs_resolve_to_two_stacks_with_cloudformations_outputs_and_parameters() -> (
    None
):
    # Given prod (eu-west-1) and prod-dr (us-west-2) deployed, prod with a custom opt-in tag
    sessions = FakeSessions()
    sessions.add_stack("eu-west-1", "restoredrill-prod", parameters={"OptInTagKey": "backup:drill"})
    sessions.add_stack("us-west-2", "restoredrill-prod", outputs={**OUTPUTS, "DrillBusName": "dr"})
    # When both environments are resolved
    args = args_for(
        "--samconfig", str(SAMCONFIG), "--config-env", "prod", "--config-env", "prod-dr"
    )
    prod, dr = resolve_targets(args, session_factory=sessions)
    # Then each is its own region's stack, with the stack's outputs and the parameters as
    # CloudFormation has them over samconfig's overrides over the template's defaults
    assert (prod.name, prod.region, prod.stack_name) == ("prod", "eu-west-1", "restoredrill-prod")
    assert (dr.name, dr.region, dr.bus_name) == ("prod-dr", "us-west-2", "dr")
    assert prod.opt_in_tag == ("backup:drill", "enabled")
    assert prod.parameters["DrillDeadlineMinutes"] == "360"
    assert prod.account_id == "210987654321"
    assert prod.endpoint_url is None


def test_flags_name_a_stack_that_no_samconfig_describes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack deployed without samconfig.toml, and a directory without one
    sessions = FakeSessions()
    sessions.add_stack("ap-south-1", "drills-x")
    monkeypatch.chdir(tmp_path)
    # When it is named by flags alone
    target = resolve_target(
        args_for("--stack-name", "drills-x", "--region", "ap-south-1"), session_factory=sessions
    )
    # Then the flags are enough, and the template's defaults fill in the opt-in tag
    assert (target.stack_name, target.region, target.name) == ("drills-x", "ap-south-1", "drills-x")
    assert target.opt_in_tag == (
        TEMPLATE_DEFAULTS["OptInTagKey"],
        TEMPLATE_DEFAULTS["OptInTagValue"],
    )
    assert sessions.made == [(None, "ap-south-1")]


def test_profile_and_region_flags_win_over_samconfig() -> None:
    sessions = FakeSessions()
    sessions.add_stack("eu-central-1", "restoredrill-prod")
    args = args_for(
        "--samconfig",
        str(SAMCONFIG),
        "--config-env",
        "prod",
        "--region",
        "eu-central-1",
        "--profile",
        "ops",
    )
    target = resolve_target(args, session_factory=sessions)
    assert (target.region, target.profile) == ("eu-central-1", "ops")
    assert sessions.made == [("ops", "eu-central-1")]


def test_an_environment_without_a_region_takes_the_profiles_or_fails_clearly(
    tmp_path: Path,
) -> None:
    # Given an environment with a stack name but no region
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[staging.global.parameters]\nstack_name = "rd-staging"\n')
    args = args_for("--samconfig", str(config), "--config-env", "staging")
    # When the profile has a region, Then that region is used
    with_region = FakeSessions(profile_region="ca-central-1")
    with_region.add_stack("ca-central-1", "rd-staging")
    assert resolve_target(args, session_factory=with_region).region == "ca-central-1"
    # When it has none, Then the error says where to put one
    with pytest.raises(TargetError, match=r"no region for environment 'staging'.*--region"):
        resolve_targets(args, session_factory=FakeSessions())


def test_an_unknown_environment_names_the_known_ones() -> None:
    args = args_for("--samconfig", str(SAMCONFIG), "--config-env", "qa")
    with pytest.raises(TargetError) as raised:
        resolve_targets(args, session_factory=FakeSessions())
    assert "no environment 'qa'" in str(raised.value)
    assert "default, prod, prod-dr" in str(raised.value)


def test_an_environment_without_a_stack_name_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[default.deploy.parameters]\nregion = "us-east-1"\n')
    with pytest.raises(TargetError, match="no stack_name"):
        resolve_targets(args_for("--samconfig", str(config)), session_factory=FakeSessions())


@pytest.mark.parametrize(
    ("status", "outputs", "message"),
    [
        ("ROLLBACK_COMPLETE", OUTPUTS, "is ROLLBACK_COMPLETE, not ready"),
        ("CREATE_IN_PROGRESS", OUTPUTS, "is CREATE_IN_PROGRESS, not ready"),
        ("CREATE_COMPLETE", {"DrillBusName": "b"}, "no output RunTableName, ReportBucketName"),
    ],
)
def test_a_stack_that_is_not_ready_or_not_restoredrill_is_refused(
    status: str, outputs: dict[str, str], message: str
) -> None:
    sessions = FakeSessions()
    sessions.add_stack("us-east-1", "restoredrill", status=status, outputs=outputs)
    with pytest.raises(TargetError, match=message):
        resolve_targets(args_for("--samconfig", str(SAMCONFIG)), session_factory=sessions)


def test_a_missing_stack_says_so_with_its_region() -> None:
    with pytest.raises(TargetError, match=r"no stack restoredrill in us-east-1"):
        resolve_targets(args_for("--samconfig", str(SAMCONFIG)), session_factory=FakeSessions())


def test_parameter_overrides_in_every_form_samconfig_allows() -> None:
    assert parse_parameter_overrides(
        'DBSubnetGroupName=private Tag="a b" ParameterKey=X,ParameterValue=1'
    ) == {"DBSubnetGroupName": "private", "Tag": "a b", "X": "1"}
    assert parse_parameter_overrides(["A=1=2", "B="]) == {"A": "1=2", "B": ""}
    with pytest.raises(TargetError, match="not Key=Value"):
        parse_parameter_overrides(["lonely"])


def test_the_template_defaults_the_cli_falls_back_on_are_template_yamls() -> None:
    declared = load_yaml(ROOT / "template.yaml")["Parameters"]
    assert {name: declared[name]["Default"] for name in TEMPLATE_DEFAULTS} == TEMPLATE_DEFAULTS


def test_a_state_file_round_trips_and_a_stale_one_is_refused(tmp_path: Path) -> None:
    # Given a local cloud's description written as a state file
    description = {
        "name": "local",
        "stack_name": "restoredrill-local",
        "region": "us-east-1",
        "account_id": "123456789012",
        "endpoint_url": "http://127.0.0.1:5000",
        "service_endpoints": {"events": "http://127.0.0.1:5001"},
        "outputs": OUTPUTS,
        "parameters": {"OptInTagKey": "restoredrill:drill"},
        "pid": os.getpid(),
    }
    path = tmp_path / "state" / "local.json"
    write_state_file(path, description)
    # When it is read back
    target = load_state_file(path)
    # Then every service but EventBridge is moto's, and the bus is the stack's
    assert target.is_local
    assert target.endpoint_for("dynamodb") == "http://127.0.0.1:5000"
    assert target.endpoint_for("events") == "http://127.0.0.1:5001"
    assert target.report_uri("reports/x.json") == "s3://restoredrill-reports-1/reports/x.json"
    # And a state file whose process is gone is refused, not talked to
    write_state_file(path, {**description, "pid": _a_dead_pid()})
    with pytest.raises(TargetError, match="is not running"):
        load_state_file(path)


def _a_dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def test_local_cannot_be_mixed_with_a_deployed_stacks_flags(tmp_path: Path) -> None:
    args = args_for("--local", str(tmp_path / "local.json"), "--config-env", "prod")
    with pytest.raises(TargetError, match="--local talks to the local cloud only"):
        resolve_targets(args)


def test_a_command_without_a_stack_exits_2_with_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no samconfig.toml where one is looked for
    # When the status command runs
    code = main(["status", "--samconfig", str(tmp_path / "samconfig.toml")])
    # Then it exits 2 with one line that says what to do, no traceback
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("restoredrill: error: no ")
    assert "--stack-name and --region, or --local" in err
    assert "Traceback" not in err


def test_a_missing_state_file_exits_2_and_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["history", "clinic-db", "--local", str(tmp_path / "none.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "start one with `restoredrill local`" in err
    assert err.count("\n") == 1


def test_target_describes_itself_as_a_state_file_would() -> None:
    target = Target(name="x", region="us-east-1", stack_name="s", outputs=OUTPUTS)
    assert json.loads(json.dumps(target.describe()))["outputs"] == OUTPUTS
