"""Aurora PostgreSQL cluster drills through the local cloud: a drill with no fault and one per
Aurora fault (localcloud.cloud.AURORA_FAULTS), all at once in one cloud, each held to the same
promises as an instance drill (`assert_invariants`, which for a cluster drill also wants the
cluster gone) plus the evidence that its fault really happened."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import RunRecord, RunState, Verdict

from drillharness.invariants import check_nothing_running
from localcloud import crash
from localcloud.cloud import AURORA_FAULTS, AURORA_SOURCE, LocalCloud, run_id_of_event
from localcloud.postgres import running_servers
from restoredrill_cli.demo import run_demo
from restoredrill_cli.main import build_parser

from .conftest import assert_invariants

pytestmark = pytest.mark.e2e

MATRIX_TIMEOUT_SECONDS = 240
NO_FAULT = "none"


@dataclass
class Matrix:
    cloud: LocalCloud
    run_ids: dict[str, str] = field(default_factory=dict)  # fault name -> run id
    runs: dict[str, RunRecord | None] = field(default_factory=dict)
    servers_before: set[int] = field(default_factory=set)

    def run(self, fault: str) -> RunRecord:
        run = self.runs[fault]
        assert run is not None, f"the {fault} drill left no run record"
        return run


@pytest.fixture(scope="module")
def matrix() -> Iterator[Matrix]:
    """One cluster drill without a fault and one per Aurora fault, started together."""
    servers_before = {id(server) for server in running_servers()}
    cloud = LocalCloud(patients=300, pool_size=4)
    cloud.start()
    found = Matrix(cloud, servers_before=servers_before)
    try:
        cloud.create_source_cluster(AURORA_SOURCE)
        found.run_ids[NO_FAULT] = cloud.start_cluster_drill(AURORA_SOURCE)
        for name in AURORA_FAULTS:
            found.run_ids[name] = cloud.start_cluster_drill(AURORA_SOURCE, name)
        deadline = time.monotonic() + MATRIX_TIMEOUT_SECONDS
        while time.monotonic() < deadline and len(found.runs) < len(found.run_ids):
            for name, run_id in found.run_ids.items():
                run = cloud.run(run_id)
                if run is not None and run.is_finished:
                    found.runs[name] = run
            time.sleep(0.5)
        for name, run_id in found.run_ids.items():
            found.runs.setdefault(name, cloud.run(run_id))
        yield found
    finally:
        cloud.stop()


def rds_events(
    run: RunRecord, log: list[tuple[str, dict[str, Any]]], detail_type: str
) -> list[str]:
    return [
        str(envelope["detail"].get("EventID"))
        for _, envelope in log
        if envelope.get("detail-type") == detail_type and run_id_of_event(envelope) == run.run_id
    ]


def cluster_events(cloud: LocalCloud, run: RunRecord) -> list[str]:
    assert cloud.aws is not None
    return rds_events(run, cloud.aws.delivery.events_log, "RDS DB Cluster Event")


def instance_events(cloud: LocalCloud, run: RunRecord) -> list[str]:
    assert cloud.aws is not None
    return rds_events(run, cloud.aws.delivery.events_log, "RDS DB Instance Event")


def passed_through_every_step(cloud: LocalCloud, run: RunRecord) -> None:
    # The cluster was created, its password reset and deleted, in that order; its one instance
    # created and deleted
    assert cluster_events(cloud, run) == ["RDS-EVENT-0170", "RDS-EVENT-0016", "RDS-EVENT-0171"]
    assert instance_events(cloud, run) == ["RDS-EVENT-0005", "RDS-EVENT-0003"]
    # The checks ran against the restored cluster's writer, and the report says so
    report = cloud.report(report_key(run))
    assert report["checks"]["verdict"] == "PASSED"
    assert run.cluster_available_at is not None and run.instance_requested_at is not None


def cluster_restore_failed(cloud: LocalCloud, run: RunRecord) -> None:
    assert "incompatible-restore" in (run.reason or "")
    assert cluster_events(cloud, run)[0] == "RDS-EVENT-0354"
    # No instance was ever asked for; the failed cluster was deleted all the same
    assert run.instance_requested_at is None and instance_events(cloud, run) == []
    assert "RDS-EVENT-0171" in cluster_events(cloud, run)


def instance_refused(cloud: LocalCloud, run: RunRecord) -> None:
    assert "InsufficientDBInstanceCapacity" in (run.reason or "")
    # The cluster was restored, its instance never came up, and the cluster was deleted
    assert run.cluster_available_at is not None and instance_events(cloud, run) == []
    assert cluster_events(cloud, run) == ["RDS-EVENT-0170", "RDS-EVENT-0171"]
    assert RunState.SECURING not in run.phases


def crashed(point: str) -> Callable[[LocalCloud, RunRecord], None]:
    def evidence(cloud: LocalCloud, run: RunRecord) -> None:
        # The worker really died right after that call, for this run
        assert (crash.OPERATIONS[point].name, run.run_id) in cloud.crashes_fired()

    return evidence


def crashed_after_create_instance(cloud: LocalCloud, run: RunRecord) -> None:
    crashed("create-instance")(cloud, run)
    # The creation was never recorded, and no second instance was created
    assert run.instance_requested_at is None
    assert instance_events(cloud, run).count("RDS-EVENT-0005") == 1


def lost_cluster_events(cloud: LocalCloud, run: RunRecord) -> None:
    assert cloud.aws is not None
    dropped = cloud.aws.delivery.dropped_events
    # Every cluster and instance event of the drill was dropped, none reached a rule
    assert rds_events(run, dropped, "RDS DB Cluster Event") == [
        "RDS-EVENT-0170",
        "RDS-EVENT-0016",
        "RDS-EVENT-0171",
    ]
    delivered = cloud.aws.delivery.delivered_events
    assert rds_events(run, delivered, "RDS DB Cluster Event") == []
    assert rds_events(run, delivered, "RDS DB Instance Event") == []
    assert not run.credentials_confirmed


EVIDENCE: dict[str, Callable[[LocalCloud, RunRecord], None]] = {
    NO_FAULT: passed_through_every_step,
    "fail-cluster-restore": cluster_restore_failed,
    "fail-instance-create": instance_refused,
    "crash-after-create-instance": crashed_after_create_instance,
    "crash-after-delete": crashed("delete"),
    "crash-after-cluster-delete": crashed("cluster-delete"),
    "lose-cluster-events": lost_cluster_events,
}


def test_every_aurora_fault_is_tested() -> None:
    assert sorted(EVIDENCE) == sorted([NO_FAULT, *AURORA_FAULTS])


@pytest.mark.parametrize("fault", [NO_FAULT, *AURORA_FAULTS])
def test_a_cluster_drill_keeps_every_promise_whatever_the_fault(matrix: Matrix, fault: str) -> None:
    # Given a cluster drill started with this fault armed (alongside the others)
    cloud, run = matrix.cloud, matrix.run(fault)
    expected = AURORA_FAULTS[fault].verdict if fault in AURORA_FAULTS else Verdict.PASSED
    # When it ends, Then it ended with the verdict the fault calls for and kept every promise:
    # instance and cluster gone, password deleted, one report, one Drill Finished, one Slack
    assert_invariants(cloud, run, expected)
    # And the fault really happened to it
    EVIDENCE[fault](cloud, run)


def test_after_the_cluster_drills_nothing_is_left_running(matrix: Matrix) -> None:
    cloud = matrix.cloud
    assert cloud.crashes_fired()
    cloud.stop()
    assert check_nothing_running(cloud) == []
    assert [s for s in running_servers() if id(s) not in matrix.servers_before] == []


def test_the_aurora_demo_passes_deletes_cluster_and_instance_and_posts_once(
    tmp_path: Path,
) -> None:
    # Given the demo of an Aurora cluster drill
    demo = ["demo", "--aurora", "--json", "--patients", "300", "--timeout", "120"]
    args = build_parser().parse_args([*demo, "--save-dir", str(tmp_path)])
    # When it runs
    out = io.StringIO()
    code = run_demo(args, out)
    summary = json.loads(out.getvalue())
    # Then it passed, the cluster and its instance are gone, Slack was told once
    assert code == 0 and summary["verdict"] == "PASSED"
    assert summary["instance_deleted"] is True and summary["slack_messages"] == 1
    assert summary["servers_left_running"] == 0 and summary["processes_left_running"] == []
    # And the restore time is split into the cluster's restore and the instance's creation
    split = summary["aurora"]
    assert split["cluster_restore_seconds"] > 0 and split["instance_create_seconds"] > 0
    assert split["cluster_restore_seconds"] + split["instance_create_seconds"] == pytest.approx(
        summary["restore_seconds"], abs=0.01
    )
