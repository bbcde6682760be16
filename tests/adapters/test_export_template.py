"""scripts/export_template.py: template.yaml as plain CloudFormation, its code on (moto's) S3.

``sam package`` (.venv-tools, installed by ``make lint`` before the tests run in CI) uploads to
a moto server through AWS_ENDPOINT_URL; cfn-lint (.venv-tools) checks the result.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from moto.server import ThreadedMotoServer

from localcloud.provision import provision
from localcloud.sam import LOCAL_CODE_BUCKET
from localcloud.template import load_yaml
from scripts.export_template import ExportError, code_locations, export, main

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CFN_LINT = ROOT / ".venv-tools" / "bin" / "cfn-lint"
REGION = "us-east-1"
BUCKET = "acme-restoredrill-code"
NETWORK = {
    "DBSubnetGroupName": "drill-subnets",
    "DrillSecurityGroupId": "sg-0d0d0d0d0d0d0d0d0",
    "CheckerSecurityGroupId": "sg-0c0c0c0c0c0c0c0c0",
    "CheckerSubnetIds": "subnet-0a0a0a0a0a0a0a0a0,subnet-0b0b0b0b0b0b0b0b0",
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server that sam (a subprocess) and boto3 reach through AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SAM_CLI_TELEMETRY": "0",
        }.items():
            patch.setenv(name, value)
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture(scope="module")
def moto_s3(moto_url: str) -> Any:
    """The code buckets: one plain, one named for the Region (``--regional``)."""
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=f"{BUCKET}-{REGION}")
    return s3


@pytest.fixture(scope="module")
def plain(moto_s3: Any) -> dict[str, Any]:
    return export(TEMPLATE, bucket=BUCKET, prefix="restoredrill", region=REGION)


def test_export_leaves_no_sam_and_keeps_the_template_interface(plain: dict[str, Any]) -> None:
    # Given template.yaml, a SAM template
    source = load_yaml(TEMPLATE)
    assert source["Transform"] == "AWS::Serverless-2016-10-31"
    # When it is exported (fixture), Then no transform and no serverless resource remain
    assert "Transform" not in plain
    types = {resource["Type"] for resource in plain["Resources"].values()}
    assert not [t for t in types if t.startswith("AWS::Serverless::")]
    assert {"AWS::Lambda::Function", "AWS::Lambda::LayerVersion"} <= types
    # And the operator's interface is the one the SAM template declares
    for section in ("Parameters", "Conditions", "Rules", "Outputs"):
        assert plain[section] == source[section], section


def test_every_function_and_layer_is_code_in_the_given_bucket(
    plain: dict[str, Any], moto_s3: Any
) -> None:
    # Given the exported template (fixture), When its code locations are read
    locations = dict(code_locations(plain))
    source = load_yaml(TEMPLATE)["Resources"]
    serverless = [
        name
        for name, resource in source.items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
    ]
    # Then each function and layer of template.yaml has one (SAM suffixes a layer's logical id
    # with a hash of its content), in the bucket given
    assert len(locations) == len(serverless)
    for name in serverless:
        assert [found for found in locations if found.startswith(name)], name
    for name, location in locations.items():
        assert location["S3Bucket"] == BUCKET, name
        assert location["S3Key"].startswith("restoredrill/"), name
        # And the object it names was uploaded
        head = moto_s3.head_object(Bucket=BUCKET, Key=location["S3Key"])
        assert head["ContentLength"] > 0, name


def _cfn_lint(template: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    path = directory / "plain.json"
    path.write_text(json.dumps(template))
    return subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, check=False)


def test_the_plain_template_passes_cfn_lint(plain: dict[str, Any], tmp_path: Path) -> None:
    # Given the exported template, When cfn-lint checks it as CloudFormation JSON
    result = _cfn_lint(plain, tmp_path)
    # Then it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr


def test_regional_export_names_each_regions_bucket(moto_s3: Any, tmp_path: Path) -> None:
    # Given code buckets named <base>-<Region> (Lambda reads code only from its own Region)
    # When the template is exported with regional buckets
    plain = export(TEMPLATE, bucket=BUCKET, prefix="regional", region=REGION, regional=True)
    # Then every location names the bucket of the Region the stack instance is in
    locations = dict(code_locations(plain))
    assert locations
    for name, location in locations.items():
        assert location["S3Bucket"] == {"Fn::Sub": f"{BUCKET}-${{AWS::Region}}"}, name
        # And the code was uploaded to the bucket of the Region exported from
        moto_s3.head_object(Bucket=f"{BUCKET}-{REGION}", Key=location["S3Key"])
    # And cfn-lint accepts the Region-dependent bucket names
    result = _cfn_lint(plain, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_bucket_is_a_clear_error(moto_s3: Any) -> None:
    # Given a bucket that does not exist, When the template is exported to it
    with pytest.raises(ExportError, match="sam package failed") as raised:
        export(TEMPLATE, bucket="no-such-bucket", prefix="restoredrill", region=REGION)
    # Then the error carries sam's reason
    assert "S3 Bucket does not exist" in str(raised.value)


def test_the_command_reports_a_failed_export_and_writes_no_template(
    moto_s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an output path and a code bucket that does not exist
    output = tmp_path / "plain.json"
    # When the command runs
    status = main(
        [
            "--template",
            str(TEMPLATE),
            "--bucket",
            "no-such-bucket",
            "--region",
            REGION,
            "--output",
            str(output),
        ]
    )
    # Then it fails with sam's reason on stderr and leaves no template behind
    assert status == 1
    assert "S3 Bucket does not exist" in capsys.readouterr().err
    assert not output.exists()


def _code_from_project(plain: dict[str, Any]) -> dict[str, Any]:
    """``plain`` with its S3 code replaced by the project directories the local cloud runs."""
    source = load_yaml(TEMPLATE)["Resources"]
    directories = {
        name: resource["Properties"].get("CodeUri") or resource["Properties"]["ContentUri"]
        for name, resource in source.items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
    }
    local = copy.deepcopy(plain)
    for name, location in code_locations(local):
        directory = next(ROOT / d for n, d in directories.items() if name.startswith(n))
        location.clear()
        location.update(S3Bucket=LOCAL_CODE_BUCKET, S3Key=quote(str(directory), safe=""))
    return local


def _without_layer_hash(logical_ids: Any) -> set[str]:
    return {re.sub(r"(Layer)[0-9a-f]{10}$", r"\1", logical_id) for logical_id in logical_ids}


def test_the_local_cloud_provisions_the_plain_template_as_the_sam_one(
    plain: dict[str, Any], moto_url: str, tmp_path: Path
) -> None:
    # Given the exported template, its code pointed back at the project's directories (the local
    # cloud runs code from disk), written as CloudFormation JSON
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(_code_from_project(plain)))
    # When the local cloud provisions it and, beside it, template.yaml through its own transform
    exported = provision(
        path,
        moto_url=moto_url,
        stack_name="rd-plain",
        parameter_overrides=NETWORK,
        project_root=ROOT,
    )
    sam = provision(
        TEMPLATE,
        moto_url=moto_url,
        stack_name="rd-sam",
        parameter_overrides=NETWORK,
        project_root=ROOT,
    )
    # Then both stacks have the same resources (a layer's id ends in a hash of its content)
    assert _without_layer_hash(exported.resources) == _without_layer_hash(sam.resources)
    # And every function runs the same code, layers, handler and settings in both
    assert exported.functions.keys() == sam.functions.keys()
    for name, function in exported.functions.items():
        twin = sam.functions[name]
        assert function.code_dir == twin.code_dir, name
        assert function.layer_dirs == twin.layer_dirs, name
        assert len(function.layer_dirs) == 2, name
        assert (function.handler, function.timeout, function.memory_size) == (
            twin.handler,
            twin.timeout,
            twin.memory_size,
        ), name
        assert function.environment.keys() == twin.environment.keys(), name
