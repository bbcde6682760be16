"""The operator CLI as an operator installs it (`pipx install .`): a virtualenv holding the
project and its runtime dependencies only, so no moto and no local cloud. Every operator command
runs there against a stack (a moto server on loopback, started by this test process, which has
the development dependencies), and `demo` and `local` say in one line how to add the extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from restoredrill.adapters.aws import DynamoRunStore
from restoredrill.ports.records import PhaseTiming, RunRecord, RunState, SnapshotInfo, Verdict

from localcloud.template import load_yaml

PROJECT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "restoredrill-ops"
BUS = "restoredrill-drills"
TABLE = "restoredrill-runs"
BUCKET = "restoredrill-reports"
DB = "orders-db"
FINISHED_RUN_ID = "0123456789abcdef0123"
# pip resolves the runtime dependencies (from its cache when warm): the slowest step here.
INSTALL_TIMEOUT_SECONDS = 600
COMMAND_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def operator_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with `pip install <project>`: the runtime dependencies, no extras."""
    venv = tmp_path_factory.mktemp("operator") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PROJECT],
        check=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        capture_output=True,
    )
    probe = subprocess.run(
        [str(python), "-c", "import moto"], capture_output=True, text=True, check=False
    )
    assert "No module named 'moto'" in probe.stderr, "the operator's install must lack moto"
    return python


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's state is process-wide: start from none of what earlier tests left there.
    reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(reset, timeout=10) as response:  # noqa: S310 - loopback
        response.read()
    try:
        yield url
    finally:
        server.stop()


def aws() -> boto3.session.Session:
    """moto's placeholder credentials: the moto server accepts any."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture(scope="module")
def state_file(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployed stack's resources on the moto server, described the way `restoredrill local`
    describes its cloud (the operator commands read it with --local): the run table as
    template.yaml declares it with one finished drill of DB, the bus, the report bucket, and DB
    itself, opted in, with an automated snapshot."""
    table = load_yaml(PROJECT / "template.yaml")["Resources"]["RunTable"]["Properties"]
    dynamodb = aws().client("dynamodb", endpoint_url=moto_url)
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
        BillingMode=table["BillingMode"],
    )
    created = datetime.now(UTC) - timedelta(hours=2)
    DynamoRunStore(dynamodb, TABLE, retention_days=30).create(
        RunRecord(
            run_id=FINISHED_RUN_ID,
            state=RunState.FINISHED,
            source_db=DB,
            snapshot=SnapshotInfo(
                snapshot_id=f"rds:{DB}-1",
                snapshot_arn=f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:rds:{DB}-1",
                master_username="postgres",
                region=REGION,
            ),
            instance_id=f"restoredrill-{FINISHED_RUN_ID}",
            instance_class="db.t4g.micro",
            trigger="RDS-EVENT-0091",
            created_at=created,
            deadline=created + timedelta(hours=4),
            phases={RunState.REQUESTED: PhaseTiming(started_at=created)},
            verdict=Verdict.PASSED,
            finished_at=created + timedelta(minutes=20),
        )
    )
    aws().client("events", endpoint_url=moto_url).create_event_bus(Name=BUS)
    aws().client("s3", endpoint_url=moto_url).create_bucket(Bucket=BUCKET)
    aws().client("rds", endpoint_url=moto_url).create_db_instance(
        DBInstanceIdentifier=DB,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="admin1",
        MasterUserPassword="password-1234",
        AllocatedStorage=20,
        BackupRetentionPeriod=1,  # moto then takes an automated snapshot
        Tags=[{"Key": "restoredrill:drill", "Value": "enabled"}],
    )
    path = tmp_path_factory.mktemp("state") / "local.json"
    description = {
        "name": "ops",
        "region": REGION,
        "stack_name": STACK,
        "endpoint_url": moto_url,
        "account_id": ACCOUNT,
        "outputs": {"DrillBusName": BUS, "RunTableName": TABLE, "ReportBucketName": BUCKET},
    }
    path.write_text(json.dumps(description))
    return path


def restoredrill(python: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as the operator runs it (no AWS settings of this shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [str(python.with_name("restoredrill")), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def test_every_command_shows_its_help_without_moto(operator_python: Path) -> None:
    commands = [[], ["run"], ["status"], ["history"], ["verify-chain"], ["report"], ["check"]]
    for command in [*commands, ["policy", "validate"], ["demo"], ["local"]]:
        result = restoredrill(operator_python, *command, "--help")
        assert (result.returncode, result.stderr) == (0, ""), command
        assert result.stdout.startswith(f"usage: restoredrill {' '.join(command)}".rstrip())


def test_status_and_history_read_the_stack_without_moto(
    operator_python: Path, state_file: Path
) -> None:
    # Given a stack whose run table holds one finished drill of DB
    # When the operator asks for the status and for DB's history
    status = restoredrill(operator_python, "status", "--json", "--local", state_file)
    history = restoredrill(operator_python, "history", DB, "--json", "--local", state_file)
    # Then both list that drill with its verdict
    assert status.returncode == 0, status.stderr
    recent = json.loads(status.stdout)["recent"]
    assert [(run["run_id"], run["verdict"]) for run in recent] == [(FINISHED_RUN_ID, "PASSED")]
    assert history.returncode == 0, history.stderr
    runs = json.loads(history.stdout)["runs"]
    assert [(run["run_id"], run["source_db"]) for run in runs] == [(FINISHED_RUN_ID, DB)]


def test_run_publishes_drill_requested_without_moto(
    operator_python: Path, state_file: Path, moto_url: str
) -> None:
    # Given a queue that receives every restoredrill event of the stack's bus
    sqs = aws().client("sqs", endpoint_url=moto_url)
    queue_url = sqs.create_queue(QueueName="requests")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = aws().client("events", endpoint_url=moto_url)
    events.put_rule(
        Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["restoredrill"]})
    )
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    # When the operator requests a drill of the opted-in DB
    result = restoredrill(
        operator_python, "run", DB, "--json", "--requested-by", "ops@example.com",
        "--local", state_file,
    )  # fmt: skip
    # Then the command prints the run id, and Drill Requested for DB is on the bus
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["db"] == DB
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
    event = json.loads(received[0]["Body"])
    assert (event["detail-type"], event["detail"]["db_instance_identifier"]) == (
        "Drill Requested",
        DB,
    )


def test_the_evidence_commands_read_the_stack_without_moto(
    operator_python: Path, state_file: Path
) -> None:
    # Given a stack with an opted-in DB and no stored report yet
    # When the operator verifies DB's chain and builds the compliance summary
    chain = restoredrill(operator_python, "verify-chain", DB, "--local", state_file)
    summary = restoredrill(operator_python, "report", "--format", "json", "--local", state_file)
    # Then verify-chain says there is nothing to verify under the bucket's prefix (exit 2)
    assert chain.returncode == 2
    assert f"no reports of {DB} under s3://{BUCKET}/reports/{REGION}/{DB}/" in chain.stderr
    # And the summary calls DB out as never drilled
    assert summary.returncode == 0, summary.stderr
    databases = json.loads(summary.stdout)["databases"]
    assert [(d["db_instance_identifier"], d["coverage"]) for d in databases] == [
        (DB, "never_drilled")
    ]


def test_check_and_policy_validate_run_without_moto(operator_python: Path, tmp_path: Path) -> None:
    # Given a policy file and a DSN whose server does not answer
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  level: 2\ndatabases:\n  orders-db:\n    level: 3\n")
    # When the operator validates the policy and checks the server
    validated = restoredrill(operator_python, "policy", "validate", policy)
    checked = restoredrill(
        operator_python, "check", "--dsn", "postgresql://u:p@127.0.0.1:9/db", "--level", "0",
        "--json",
    )  # fmt: skip
    # Then the policy is valid, and the check suite ran and reports the failed connection
    assert validated.returncode == 0, validated.stderr
    assert "valid (defaults: level 2; 1 database policy(ies): orders-db)" in validated.stdout
    assert checked.returncode == 2, checked.stderr
    result = json.loads(checked.stdout)
    assert result["verdict"] == "ERROR"
    first = result["checks"][0]
    assert (first["name"], first["status"]) == ("connect", "error")


@pytest.mark.parametrize("command", ["demo", "local"])
def test_the_local_cloud_commands_say_how_to_install_the_extra(
    operator_python: Path, command: str
) -> None:
    # When the operator runs a command of the local cloud without the [local] extra
    result = restoredrill(operator_python, command)
    # Then one line says what is missing and how to install it, with exit status 2
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"`restoredrill {command}` needs the local cloud" in result.stderr
    assert "(no module named 'moto')" in result.stderr
    assert "pipx install --force '.[local]'" in result.stderr
