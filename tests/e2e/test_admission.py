"""Admission control through the local cloud: a restore refused for quota goes back to the queue
and passes later; a crash while holding a drill slot does not leak it; a duplicated start never
takes two slots. Every drill also keeps every promise of the fault matrix (`assert_invariants`)
and the cloud never runs more drills than MaxConcurrentDrills (`check_admission_cap`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from boto3.dynamodb.types import TypeSerializer
from restoredrill.ports.records import RunRecord, RunState, Verdict

from drillharness.invariants import (
    check_admission_cap,
    check_nothing_running,
    max_admitted_at_once,
)
from localcloud import crash
from localcloud.cloud import LocalCloud
from localcloud.postgres import running_servers

from .conftest import assert_invariants

pytestmark = pytest.mark.e2e

DRILL_TIMEOUT = 240


@contextmanager
def capped_cloud(cap: int) -> Iterator[LocalCloud]:
    servers_before = {id(server) for server in running_servers()}
    cloud = LocalCloud(patients=300, parameter_overrides={"MaxConcurrentDrills": str(cap)})
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()
    assert [s for s in running_servers() if id(s) not in servers_before] == []
    assert check_nothing_running(cloud) == []


def finished(cloud: LocalCloud, run_id: str) -> RunRecord:
    run = cloud.wait_for_run(run_id, timeout=DRILL_TIMEOUT)
    assert run is not None and run.is_finished, f"drill {run_id} did not finish: {run}"
    return run


def log_lines(cloud: LocalCloud, function: str, *needles: str) -> list[str]:
    assert cloud.aws is not None
    return [
        line
        for line in cloud.aws.log_text(function).splitlines()
        if all(needle in line for needle in needles)
    ]


def test_a_restore_refused_for_quota_goes_back_to_the_queue_and_later_passes() -> None:
    with capped_cloud(2) as cloud:
        assert cloud.rds is not None
        cloud.create_source_database("clinic-db")
        # Given RDS refuses the next two restores with InstanceQuotaExceeded
        cloud.rds.faults.quota_refusals = 2
        # When a drill starts
        run = finished(cloud, cloud.start_drill("clinic-db"))
        # Then both refusals sent it back to the queue, never to FAILED, and it then passed
        assert cloud.rds.quota_refusals_made == 2
        assert run.verdict is Verdict.PASSED and run.requeues == 2
        assert run.reason is None
        assert log_lines(cloud, "StartDrillFunction", "InstanceQuotaExceeded") or log_lines(
            cloud, "AdvanceOnPollFunction", "InstanceQuotaExceeded"
        )
        assert_invariants(cloud, run, Verdict.PASSED)
        assert check_admission_cap(cloud, 2) == []


def test_a_crash_while_holding_a_slot_does_not_leak_it() -> None:
    with capped_cloud(1) as cloud:
        assert cloud.aws is not None
        cloud.create_source_database("clinic-db")
        # Given one slot, held by a drill whose worker dies right after its restore, and a
        # second drill queued behind it
        first_id = cloud.start_drill("clinic-db", "crash-after-restore")
        second_id = cloud.start_drill("clinic-db")
        first, second = finished(cloud, first_id), finished(cloud, second_id)
        # Then the crash happened while the slot was held, and both drills passed in turn
        assert (crash.OPERATIONS["restore"].name, first_id) in cloud.crashes_fired()
        assert first.verdict is Verdict.PASSED and second.verdict is Verdict.PASSED
        first_released = first.phases[RunState.REPORTING].started_at
        assert second.admitted_at is not None and second.admitted_at >= first_released
        queued = second.phases[RunState.QUEUED]
        assert queued.ended_at is not None and queued.ended_at > queued.started_at
        for run in (first, second):
            assert_invariants(cloud, run, Verdict.PASSED)

        # Given the slot is leased again to the first drill, finished: what a worker that died
        # between the run's last write and the release leaves behind
        assert first.lease is not None
        cloud.aws.client("dynamodb").put_item(
            TableName=cloud.aws.physical_id("RunTable"),
            Item={
                "run_id": {"S": f"slot#{first.lease.slot}"},
                "holder": {"S": first.run_id},
                "lease_until": {"N": f"{first.lease.expires_at.timestamp():.6f}"},
                "lease": TypeSerializer().serialize(first.lease.model_dump_json()),
            },
        )
        # When a third drill is requested
        third = finished(cloud, cloud.start_drill("clinic-db"))
        # Then it waited for the slot, the sweeper took the slot back, and it passed
        assert third.verdict is Verdict.PASSED
        assert log_lines(cloud, "SweeperFunction", "drill slot reclaimed", first.run_id)
        assert third.admitted_at is not None and third.queued_at is not None
        assert third.admitted_at > third.queued_at
        assert_invariants(cloud, third, Verdict.PASSED)
        assert cloud.slot_leases() == []
        assert check_admission_cap(cloud, 1) == []


def test_a_duplicated_start_never_takes_two_slots() -> None:
    with capped_cloud(2) as cloud:
        assert cloud.aws is not None
        cloud.create_source_database("clinic-db")
        cloud.create_source_database("orders-db")
        holders: list[list[str]] = []
        stop = threading.Event()

        def watch_slots() -> None:
            while not stop.is_set():
                holders.append([lease.run_id for lease in cloud.slot_leases()])
                stop.wait(0.05)

        watcher = threading.Thread(target=watch_slots, name="slot-watcher")
        watcher.start()
        try:
            # Given the same automated snapshot event delivered five times at once
            event = cloud.take_automated_snapshot("clinic-db")
            for _ in range(4):
                cloud.aws.emit(event)
            # And another database's drill requested beside it
            other_id = cloud.start_drill("orders-db")
            run_id = cloud.run_id_for_snapshot_event(event)
            run, other = finished(cloud, run_id), finished(cloud, other_id)
        finally:
            stop.set()
            watcher.join()
        # Then one drill for that snapshot, which held one slot at most, and both passed
        clinic_runs = [r for r in cloud.all_runs() if r.source_db == "clinic-db"]
        assert [r.run_id for r in clinic_runs] == [run_id]
        assert holders and all(held.count(run_id) <= 1 for held in holders)
        assert any(run_id in held for held in holders)
        assert run.verdict is Verdict.PASSED and other.verdict is Verdict.PASSED
        assert len(log_lines(cloud, "StartDrillFunction", "drill already exists", run_id)) >= 1
        assert max_admitted_at_once(cloud.all_runs()) <= 2
        for drill in (run, other):
            assert_invariants(cloud, drill, Verdict.PASSED)
        assert check_admission_cap(cloud, 2) == []
