"""What the adapters send, as botocore builds it: the restore's port, an SDK too old for a
parameter, and the check runner's long synchronous invoke kept alive."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import pytest
from restoredrill.adapters.aws import BOTOCORE_FLOOR, RdsAdapter
from restoredrill.composition.wiring import (
    KEEPALIVE_IDLE_SECONDS,
    KEEPALIVE_INTERVAL_SECONDS,
    checker_lambda_client,
)
from restoredrill.domain.drill import start_drill
from restoredrill.ports.records import DRILL_PORT, RequestedDrill, RunState, Verdict

from tests.adapters.conftest import REGION
from tests.unit.fakes import STACK, world
from tests.unit.test_drill import OPTED_IN

SNAPSHOT = "before-upgrade-1"


def rds_adapter(client: Any) -> RdsAdapter:
    return RdsAdapter(
        client, stack_name=STACK, db_subnet_group_name="private", security_group_id="sg-1"
    )


def given_a_source_and_its_snapshot(name: str, port: int = 5432) -> RequestedDrill:
    """An opted-in PostgreSQL listening on ``port``, a manual snapshot of it, and a Drill
    Requested for that snapshot."""
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="admin1",
        MasterUserPassword="password-1234",
        AllocatedStorage=20,
        Port=port,
        Tags=[{"Key": key, "Value": value} for key, value in OPTED_IN.items()],
    )
    rds.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=SNAPSHOT)
    subnet = boto3.client("ec2", region_name=REGION).describe_subnets()["Subnets"][0]["SubnetId"]
    rds.create_db_subnet_group(
        DBSubnetGroupName="private", DBSubnetGroupDescription="drills", SubnetIds=[subnet]
    )
    return RequestedDrill(
        source_db=name,
        snapshot_id=SNAPSHOT,
        idempotency_key="request:1",
        trigger="Drill Requested",
    )


def test_a_database_on_5433_is_restored_on_the_port_the_security_groups_open(aws: None) -> None:
    # Given a source database listening on 5433, and its snapshot
    request = given_a_source_and_its_snapshot("orders-db", port=5433)
    rds = boto3.client("rds", region_name=REGION)
    source = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]
    assert source["Endpoint"]["Port"] == 5433
    # When the drill restores it
    w = world()
    w.ctx.rds = rds_adapter(rds)
    run = start_drill(request, w.ctx)
    # Then the drill instance listens on 5432, the one port its security group opens
    restored = rds.describe_db_instances(DBInstanceIdentifier=run.instance_id)["DBInstances"][0]
    assert DRILL_PORT == 5432
    assert restored["Endpoint"]["Port"] == DRILL_PORT


@pytest.fixture
def rds_of_an_old_sdk(tmp_path: Path) -> Any:
    """An RDS client whose botocore model lacks BackupRetentionPeriod on the restore, as every
    botocore before 1.42.46 does: botocore refuses the request before sending it."""
    data = Path(botocore.__file__).parent / "data" / "rds" / "2014-10-31"
    compressed = data / "service-2.json.gz"
    model = json.loads(
        gzip.decompress(compressed.read_bytes())
        if compressed.exists()
        else (data / "service-2.json").read_bytes()
    )
    shape = model["operations"]["RestoreDBInstanceFromDBSnapshot"]["input"]["shape"]
    del model["shapes"][shape]["members"]["BackupRetentionPeriod"]
    older = tmp_path / "rds" / "2014-10-31"
    older.mkdir(parents=True)
    (older / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    return boto3.session.Session(botocore_session=session, region_name=REGION).client("rds")


def test_an_sdk_without_a_restore_parameter_ends_the_drill_in_error_naming_it(
    aws: None, rds_of_an_old_sdk: Any
) -> None:
    # Given an opted-in database and its snapshot, and a Lambda whose botocore is too old
    request = given_a_source_and_its_snapshot("clinic-db")
    w = world()
    w.ctx.rds = rds_adapter(rds_of_an_old_sdk)
    # When the drill starts and asks for the restore
    run = start_drill(request, w.ctx)
    # Then the drill is over at once: ERROR, saying which parameter this SDK does not know and
    # which botocore the drill needs (not a retried restore that ends TIMED_OUT hours later)
    finished = w.runs.runs[run.run_id]
    assert finished.state is RunState.FINISHED and finished.verdict is Verdict.ERROR
    assert finished.reason is not None
    assert 'Unknown parameter in input: "BackupRetentionPeriod"' in finished.reason
    assert f"botocore >= {BOTOCORE_FLOOR}" in finished.reason
    assert "must be one of" not in finished.reason
    # And nothing was restored
    instances = boto3.client("rds", region_name=REGION).describe_db_instances()["DBInstances"]
    assert [instance["DBInstanceIdentifier"] for instance in instances] == ["clinic-db"]


class InvokeAnswer(http.server.BaseHTTPRequestHandler):
    """Lambda's Invoke, answered at once on a connection kept open (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"verdict": "PASSED"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test server stays quiet


@pytest.fixture
def lambda_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InvokeAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux socket options")
def test_the_check_runners_invoke_socket_sends_keepalive_probes_long_before_350_s(
    lambda_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the check runner's Lambda client, pointed at a loopback Invoke endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint)
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    client = checker_lambda_client(session, checker_timeout_seconds=840)
    # When it invokes the checker
    answer = client.invoke(FunctionName="checker", InvocationType="RequestResponse", Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == {"verdict": "PASSED"}
    # Then the real socket it used probes an idle connection after 60 s, every 20 s
    botocore_client: Any = client
    pool = botocore_client._endpoint.http_session._manager.connection_from_url(lambda_endpoint)
    sockets = [conn.sock for conn in list(pool.pool.queue) if conn is not None and conn.sock]
    assert sockets, "the invoke's connection is not in the pool"
    sock = sockets[0]
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE_SECONDS
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL_SECONDS
    assert KEEPALIVE_IDLE_SECONDS + 5 * KEEPALIVE_INTERVAL_SECONDS < 350
