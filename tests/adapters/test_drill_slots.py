"""The drill slots on moto: an admission's lease and run record in one transaction, the cap under
racing acquirers, expiry, release by the holder only; and the local RDS's account quotas."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta

import boto3
import pytest
from restoredrill.adapters.aws import DynamoRunStore, DynamoSlotStore, RdsAdapter
from restoredrill.domain.runstate import transition
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.records import Lease, RunRecord, RunState, SnapshotInfo

from localcloud.dynamodb_isolation import isolate_transactions
from localcloud.postgres import make_parent_dir
from localcloud.rds import LocalRds
from tests.adapters.conftest import REGION, rds_instance
from tests.unit.fakes import START

ACCOUNT = "123456789012"


def a_queued_run(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        state=RunState.QUEUED,
        source_db=f"db-{run_id}",
        snapshot=SnapshotInfo(snapshot_id="snap-1", snapshot_arn="arn:x", master_username="a"),
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="test",
        created_at=START,
        queued_at=START,
        deadline=START + timedelta(hours=12),
    )


def stores(table: str, slots: int) -> tuple[DynamoRunStore, DynamoSlotStore]:
    client = boto3.client("dynamodb", region_name=REGION)
    runs = DynamoRunStore(client, table, retention_days=30)
    return runs, DynamoSlotStore(client, runs, slots)


def admission(run: RunRecord, slot: int) -> tuple[RunRecord, Lease]:
    lease = Lease(slot=slot, run_id=run.run_id, expires_at=START + timedelta(hours=5))
    return transition(run, RunState.REQUESTED, START, lease=lease), lease


def test_two_racing_acquirers_of_the_last_slot_one_wins(run_table: str) -> None:
    # Given moto with DynamoDB's transaction isolation (as the local cloud runs it: without it,
    # moto's failed transaction puts back a copy of the table and undoes the winner's write)
    isolate_transactions()
    # And one slot and two queued drills that both saw it free
    runs, slots = stores(run_table, 1)
    first, second = a_queued_run("a" * 20), a_queued_run("b" * 20)
    assert runs.create(first) and runs.create(second)
    results: dict[str, bool] = {}
    barrier = threading.Barrier(2)

    def acquire(run: RunRecord) -> None:
        record, lease = admission(run, 0)
        barrier.wait()
        results[run.run_id] = slots.admit(record, 0, lease, START)

    # When both try to take it at the same moment
    threads = [threading.Thread(target=acquire, args=(run,)) for run in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one wins; the slot names the winner, the loser is still QUEUED, untouched
    assert sorted(results.values()) == [False, True]
    winner = next(run_id for run_id, won in results.items() if won)
    loser = next(run_id for run_id, won in results.items() if not won)
    assert [lease.run_id for lease in slots.leases()] == [winner]
    assert runs.get(winner).state is RunState.REQUESTED  # type: ignore[union-attr]
    stored_loser = runs.get(loser)
    assert stored_loser is not None and stored_loser.state is RunState.QUEUED
    assert stored_loser.version == 0


def test_a_duplicated_admission_never_takes_a_second_slot(run_table: str) -> None:
    # Given one drill and two free slots; two triggers read the run at the same version
    runs, slots = stores(run_table, 2)
    run = a_queued_run("c" * 20)
    runs.create(run)
    record_0, lease_0 = admission(run, 0)
    record_1, lease_1 = admission(run, 1)
    # When both admit it, each on another slot
    assert slots.admit(record_0, 0, lease_0, START) is True
    # Then the second loses on the run's version and takes nothing
    assert slots.admit(record_1, 0, lease_1, START) is False
    assert slots.leases() == [lease_0]


def test_an_expired_lease_can_be_taken_and_only_its_holder_releases_a_live_one(
    run_table: str,
) -> None:
    runs, slots = stores(run_table, 1)
    holder, other = a_queued_run("d" * 20), a_queued_run("e" * 20)
    runs.create(holder)
    runs.create(other)
    record, lease = admission(holder, 0)
    assert slots.admit(record, 0, lease, START)
    other_record, other_lease = admission(other, 0)
    # A live lease keeps the slot from anyone else
    assert slots.admit(other_record, 0, other_lease, START + timedelta(hours=1)) is False
    # A release naming another lease (a stale one) frees nothing
    stale = lease.model_copy(update={"expires_at": lease.expires_at - timedelta(seconds=1)})
    assert slots.release(stale) is False and slots.leases() == [lease]
    # Once the lease has expired, the slot can be taken
    after_expiry = lease.expires_at + timedelta(seconds=1)
    assert slots.admit(other_record, 0, other_lease, after_expiry) is True
    # And the first holder's late release no longer frees the new holder's slot
    assert slots.release(lease) is False
    assert slots.leases() == [other_lease]
    assert slots.release(other_lease) is True and slots.leases() == []


def test_slot_items_are_never_taken_for_runs(run_table: str) -> None:
    # Given a held slot beside a queued run
    runs, slots = stores(run_table, 1)
    run = a_queued_run("f" * 20)
    runs.create(run)
    record, lease = admission(run, 0)
    slots.admit(record, 0, lease, START)
    # Then the run queries see the run and nothing of the slot
    assert [active.run_id for active in runs.active_runs()] == [run.run_id]
    assert runs.get("slot#0") is None


def test_the_local_rds_answers_describe_account_attributes_and_refuses_beyond_quota(
    aws: None,
) -> None:
    # Given the local RDS with a quota of 40 instances, 30 of them taken by production, and
    # one instance of moto's
    state_dir = make_parent_dir("restoredrill-quota-tests-")
    local = LocalRds(
        state_dir=state_dir, account_id=ACCOUNT, region=REGION, emit_event=lambda event: None
    )
    local.install()
    try:
        local.account_limits.production_instances = 30
        rds_instance("orders-db")
        client = boto3.client("rds", region_name=REGION)
        adapter = RdsAdapter(
            client, stack_name="s", db_subnet_group_name="g", security_group_id="sg-1"
        )
        # Then DescribeAccountAttributes reports them, as RDS names its quotas
        quotas = {quota.name: quota for quota in adapter.account_quotas()}
        assert (quotas["DBInstances"].used, quotas["DBInstances"].max) == (31, 40)
        assert quotas["AllocatedStorage"].used == 20 and "DBClusters" in quotas
        # And an injected refusal reaches the drill as RDS's error code, for good
        local.faults.quota_refusals = 1
        with pytest.raises(EffectRejected) as refused:
            adapter.restore(a_queued_run("g" * 20))
        assert refused.value.code == "InstanceQuotaExceeded"
        assert local.faults.quota_refusals == 0 and local.quota_refusals_made == 1
        # And a restore beyond the quota is refused the same way
        local.account_limits.production_instances = 39
        with pytest.raises(EffectRejected) as beyond:
            adapter.restore(a_queued_run("h" * 20))
        assert beyond.value.code == "InstanceQuotaExceeded"
    finally:
        local.uninstall()
        shutil.rmtree(state_dir, ignore_errors=True)
