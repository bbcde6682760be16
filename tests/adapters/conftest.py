"""moto-backed AWS for the adapter tests: in-process, no sockets, fresh per test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.rds import emulate_account_attributes
from localcloud.template import load_yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"


def template_resource(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = load_yaml(TEMPLATE)["Resources"][logical_id]["Properties"]
    return properties


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_EVENTBRIDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # moto has no DescribeAccountAttributes, which every drill's admission reads
    emulate_account_attributes()
    with mock_aws():
        yield


@pytest.fixture
def run_table(aws: None) -> str:
    """The run table exactly as template.yaml declares it (keys, indexes)."""
    props = template_resource("RunTable")
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="runs",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode=props["BillingMode"],
    )
    return "runs"


def rds_instance(
    name: str, engine: str = "postgres", tags: dict[str, str] | None = None, region: str = REGION
) -> None:
    """An RDS DB instance in moto, with these tags."""
    boto3.client("rds", region_name=region).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t4g.micro",
        Engine=engine,
        MasterUsername="admin1",
        MasterUserPassword="password-1234",
        AllocatedStorage=20,
        Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    )
