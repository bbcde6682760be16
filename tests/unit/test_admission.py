"""Admission control: the cap on drills at once, the fair queue, leases that expire or are
reclaimed, the quota reserve, capacity refusals that requeue, and the queue's maximum wait."""

from __future__ import annotations

from datetime import timedelta

import pytest
from restoredrill.domain.admission import (
    AdmissionRules,
    candidacy,
    free_slots,
    headroom_shortfall,
    queue_order,
    reclaim_reason,
)
from restoredrill.domain.drill import advance_drill, poll_drill, start_drill, sweep
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.records import (
    AccountQuota,
    CheckerOutcome,
    DrillRequest,
    Lease,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

from tests.unit.check_suites import passed_suite
from tests.unit.fakes import START, World, world

OPTED_IN = {"restoredrill:drill": "enabled"}
RULES = AdmissionRules(
    max_concurrent=2, reserve_instances=5, reserve_storage_gib=0, drill_deadline=timedelta(hours=4)
)


def a_queued_run(
    run_id: str, *, last_passed_hours_ago: float | None, queued_minutes_ago: float
) -> RunRecord:
    snapshot = SnapshotInfo(snapshot_id="s", snapshot_arn="arn:s", master_username="u")
    return RunRecord(
        run_id=run_id,
        state=RunState.QUEUED,
        source_db=f"db-{run_id}",
        snapshot=snapshot,
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="test",
        created_at=START,
        queued_at=START - timedelta(minutes=queued_minutes_ago),
        last_passed_at=(
            None
            if last_passed_hours_ago is None
            else START - timedelta(hours=last_passed_hours_ago)
        ),
        deadline=START + timedelta(hours=12),
    )


def fleet(databases: int, **settings: object) -> tuple[World, list[str]]:
    w = world(**settings)
    names = [f"db-{index}" for index in range(databases)]
    for name in names:
        w.rds.add_source(name, OPTED_IN, f"rds:{name}-2026-11-27-03-10")
    return w, names


def start(w: World, name: str, key: str | None = None) -> RunRecord:
    return start_drill(
        DrillRequest(
            snapshot_id=f"rds:{name}-2026-11-27-03-10",
            idempotency_key=key or f"snapshot:{name}",
            trigger="RDS-EVENT-0091",
        ),
        w.ctx,
    )


def finish(w: World, run_id: str) -> RunRecord:
    """Drive an admitted drill to PASSED: available, secured, checked, deleted, reported."""
    run = w.runs.get(run_id)
    assert run is not None
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run_id, w.ctx)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run_id, w.ctx, credentials_reset_event=True)
    outcome = CheckerOutcome(
        run_id=run_id, succeeded=True, verdict=Verdict.PASSED, result=passed_suite()
    )
    advance_drill(run_id, w.ctx, checker_outcome=outcome)
    del w.rds.instances[run.instance_id]
    final = advance_drill(run_id, w.ctx)
    assert final is not None
    return final


def state_of(w: World, run_id: str) -> RunState:
    run = w.runs.get(run_id)
    assert run is not None
    return run.state


# ------------------------------------------------------------------------------ pure rules


def test_the_queue_serves_the_database_longest_without_a_passing_drill_first() -> None:
    # Given queued drills: one passed an hour ago, one a week ago, one never, one queued longer
    runs = [
        a_queued_run("recent", last_passed_hours_ago=1, queued_minutes_ago=50),
        a_queued_run("week", last_passed_hours_ago=24 * 7, queued_minutes_ago=5),
        a_queued_run("never-late", last_passed_hours_ago=None, queued_minutes_ago=1),
        a_queued_run("never-early", last_passed_hours_ago=None, queued_minutes_ago=30),
    ]
    # When they are ordered
    order = [run.run_id for run in queue_order(runs, START)]
    # Then never-passed databases come first (the one queued longer first), then the oldest pass
    assert order == ["never-early", "never-late", "week", "recent"]


def test_a_run_backing_off_is_not_in_the_queue_until_its_time() -> None:
    backing_off = a_queued_run("b", last_passed_hours_ago=None, queued_minutes_ago=9).model_copy(
        update={"not_before": START + timedelta(minutes=2)}
    )
    assert queue_order([backing_off], START) == []
    assert [run.run_id for run in queue_order([backing_off], START + timedelta(minutes=2))] == ["b"]


def test_an_expired_lease_frees_its_slot_and_a_live_one_does_not() -> None:
    # Given two slots, one held by a live lease and one by a lease that expired a second ago
    leases = [
        Lease(slot=0, run_id="live", expires_at=START + timedelta(hours=1)),
        Lease(slot=1, run_id="dead", expires_at=START - timedelta(seconds=1)),
    ]
    # Then only the expired lease's slot is free
    assert free_slots(leases, 2, START) == [1]
    # And a cap lowered below the slots held leaves nothing free
    assert free_slots(leases[:1], 1, START) == []


def test_only_the_first_in_the_fair_order_takes_the_one_free_slot() -> None:
    # Given one free slot of two and two queued drills
    leases = [Lease(slot=0, run_id="busy", expires_at=START + timedelta(hours=1))]
    first = a_queued_run("first", last_passed_hours_ago=None, queued_minutes_ago=1)
    second = a_queued_run("second", last_passed_hours_ago=3, queued_minutes_ago=60)
    # Then the never-passed one gets slot 1 and the other waits, saying why
    assert candidacy(first, [first, second], leases, RULES, START).slot == 1
    waiting = candidacy(second, [first, second], leases, RULES, START)
    assert waiting.slot is None and waiting.why == "waiting for a drill slot"
    assert waiting.detail == "1 drills ahead in the queue"


def test_quota_headroom_keeps_the_reserve_for_production() -> None:
    def shortfall(used: int, storage_used: int = 0, storage_gib: int | None = 20) -> str | None:
        quotas = [
            AccountQuota(name="DBInstances", used=used, max=40),
            AccountQuota(name="AllocatedStorage", used=storage_used, max=1000),
        ]
        return headroom_shortfall(quotas, RULES, storage_gib)

    # 34 used + this drill + 5 reserved = 40: room; one more in use and there is none
    assert shortfall(34) is None
    assert shortfall(35) == (
        "waiting for quota headroom: DBInstances 35 of 40 used, 5 kept for production"
    )
    # Storage: the snapshot's allocated size must fit under the account's maximum
    assert shortfall(0, storage_used=990) is not None
    assert shortfall(0, storage_used=980) is None
    # A quota RDS does not report is not enforced here
    assert headroom_shortfall([], RULES, 20) is None


def test_a_lease_is_reclaimed_only_from_a_holder_that_no_longer_needs_it() -> None:
    lease = Lease(slot=0, run_id="r", expires_at=START + timedelta(hours=1))
    holder = a_queued_run("r", last_passed_hours_ago=None, queued_minutes_ago=0)
    restoring = holder.model_copy(update={"state": RunState.RESTORING, "lease": lease})
    assert reclaim_reason(lease, restoring, START) is None
    assert reclaim_reason(lease, None, START) == "its run does not exist"
    finished = restoring.model_copy(update={"state": RunState.FINISHED})
    assert reclaim_reason(lease, finished, START) == "its run is FINISHED"
    assert reclaim_reason(lease, restoring, START + timedelta(hours=1)) == "the lease expired"


# ---------------------------------------------------------------------- through the drill


def test_no_more_drills_restore_at_once_than_the_cap() -> None:
    # Given a cap of 2 and five databases whose snapshots arrive together
    w, names = fleet(5, max_concurrent_drills=2)
    runs = [start(w, name) for name in names]
    # Then two drills restore and three wait QUEUED, without an instance or a lease
    states = [state_of(w, run.run_id) for run in runs]
    assert states.count(RunState.RESTORING) == 2 and states.count(RunState.QUEUED) == 3
    assert w.rds.count("restore") == 2 and len(w.slots.leases()) == 2
    # And a queued drill polled again still waits
    queued = next(run for run in runs if state_of(w, run.run_id) is RunState.QUEUED)
    poll_drill(queued.run_id, w.ctx)
    assert w.rds.count("restore") == 2


def test_a_finished_drill_frees_its_slot_and_wakes_the_first_in_the_queue() -> None:
    # Given a cap of 1: db-0 restoring; db-1 (passed a week ago) and db-2 (never passed) queued
    w, _ = fleet(3, max_concurrent_drills=1)
    first = start(w, "db-0")
    w.runs.runs["earlier-pass"] = first.model_copy(
        update={
            "run_id": "earlier-pass",
            "source_db": "db-1",
            "state": RunState.FINISHED,
            "verdict": Verdict.PASSED,
            "finished_at": START - timedelta(days=7),
        }
    )
    week = start(w, "db-1")
    never = start(w, "db-2")
    assert week.last_passed_at == START - timedelta(days=7) and never.last_passed_at is None
    # When db-0's drill passes
    w.clock.advance(minutes=10)
    finish(w, first.run_id)
    # Then its slot is released, and the never-passed database is woken first with a short poll
    assert w.slots.releases == 1
    assert (never.run_id, 1) in w.polls.items
    poll_drill(never.run_id, w.ctx)
    poll_drill(week.run_id, w.ctx)
    assert state_of(w, never.run_id) is RunState.RESTORING
    assert state_of(w, week.run_id) is RunState.QUEUED


def test_time_spent_queued_does_not_count_against_the_drills_deadline() -> None:
    # Given a cap of 1, a 240-minute drill deadline, and a second drill queued behind the first
    w, _ = fleet(2, max_concurrent_drills=1)
    first = start(w, "db-0")
    second = start(w, "db-1")
    # When the first holds the slot for 200 minutes, then passes
    w.clock.advance(minutes=200)
    finish(w, first.run_id)
    admitted = poll_drill(second.run_id, w.ctx)
    # Then the second is admitted with a full 240 minutes from its admission
    assert admitted is not None and admitted.state is RunState.RESTORING
    assert admitted.admitted_at == w.clock.now
    assert admitted.deadline == w.clock.now + timedelta(minutes=240)
    # And 100 minutes later (300 after it was requested) it is still running, not TIMED_OUT
    w.clock.advance(minutes=100)
    assert poll_drill(second.run_id, w.ctx).state is RunState.RESTORING  # type: ignore[union-attr]


def test_a_drill_never_admitted_ends_as_error_saying_it_was_not_tested() -> None:
    # Given a cap of 1 held for longer than the maximum wait (60 minutes here)
    w, _ = fleet(2, max_concurrent_drills=1, max_queue_wait_minutes=60)
    start(w, "db-0")
    waiting = start(w, "db-1")
    w.clock.advance(minutes=59)
    assert poll_drill(waiting.run_id, w.ctx).state is RunState.QUEUED  # type: ignore[union-attr]
    # When the maximum wait passes
    w.clock.advance(minutes=1)
    final = poll_drill(waiting.run_id, w.ctx)
    # Then the drill ends ERROR, restored nothing, and its report says why in plain words
    assert final is not None and final.state is RunState.FINISHED
    assert final.verdict is Verdict.ERROR and final.reason is not None
    assert final.reason.startswith("not admitted: no restore started within the maximum wait")
    assert "60 min queued" in final.reason and "The backup was not tested." in final.reason
    assert "waiting for a drill slot" in final.reason
    assert w.rds.count("restore") == 1
    (report,) = [doc for doc in w.reports.documents.values() if doc["verdict"] == "ERROR"]
    assert "not admitted" in str(report)


def test_a_restore_refused_for_quota_goes_back_to_the_queue_and_passes_later() -> None:
    # Given RDS refuses the first restore: the account's instance quota is exhausted
    w, _ = fleet(1)
    w.rds.refuse_restore = EffectRejected("InstanceQuotaExceeded", "DB instance quota exceeded")
    run = start(w, "db-0")
    # Then the drill is QUEUED again, not FAILED, its slot released, with a backoff
    queued = w.runs.get(run.run_id)
    assert queued is not None and queued.state is RunState.QUEUED and queued.verdict is None
    assert queued.requeues == 1 and queued.not_before == START + timedelta(seconds=60)
    assert "InstanceQuotaExceeded" in (queued.wait_reason or "")
    assert w.slots.leases() == []
    # And a poll before the backoff ends restores nothing
    w.clock.advance(seconds=30)
    poll_drill(run.run_id, w.ctx)
    assert w.rds.count("restore") == 1
    # When the quota frees up and the backoff passed, it is admitted again and passes
    w.rds.refuse_restore = None
    w.clock.advance(seconds=30)
    poll_drill(run.run_id, w.ctx)
    assert state_of(w, run.run_id) is RunState.RESTORING and w.rds.count("restore") == 2
    assert finish(w, run.run_id).verdict is Verdict.PASSED


def test_refusals_for_capacity_back_off_longer_each_time_up_to_fifteen_minutes() -> None:
    w, _ = fleet(1)
    w.rds.refuse_restore = EffectRejected("InsufficientDBInstanceCapacity", "no capacity in AZ")
    run = start(w, "db-0")
    waits = []
    for _ in range(6):
        queued = w.runs.get(run.run_id)
        assert queued is not None and queued.not_before is not None
        waits.append((queued.not_before - w.clock.now).total_seconds())
        w.clock.now = queued.not_before
        poll_drill(run.run_id, w.ctx)
    assert waits == [60, 120, 240, 480, 900, 900]
    assert state_of(w, run.run_id) is RunState.QUEUED


def test_without_quota_headroom_the_drill_stays_queued_and_says_why() -> None:
    # Given 35 of 40 DB instances in use and 5 kept for production
    w, _ = fleet(1)
    w.rds.quotas = [AccountQuota(name="DBInstances", used=35, max=40)]
    run = start(w, "db-0")
    # Then no restore is attempted, the drill waits and records why
    queued = w.runs.get(run.run_id)
    assert queued is not None and queued.state is RunState.QUEUED
    assert queued.wait_reason == (
        "waiting for quota headroom: DBInstances 35 of 40 used, 5 kept for production"
    )
    assert w.rds.count("restore") == 0 and w.slots.leases() == []
    # When production releases an instance, the next poll admits it
    w.rds.quotas = [AccountQuota(name="DBInstances", used=34, max=40)]
    poll_drill(run.run_id, w.ctx)
    assert state_of(w, run.run_id) is RunState.RESTORING


def test_a_duplicated_start_takes_one_slot() -> None:
    # Given a cap of 2 and the same snapshot event delivered three times
    w, _ = fleet(2, max_concurrent_drills=2)
    runs = [start(w, "db-0") for _ in range(3)]
    # Then one drill, one slot, one restore; the other database still finds a free slot
    assert len({run.run_id for run in runs}) == 1
    assert [lease.run_id for lease in w.slots.leases()] == [runs[0].run_id]
    assert w.rds.count("restore") == 1
    assert state_of(w, start(w, "db-1").run_id) is RunState.RESTORING


def test_the_sweeper_reclaims_the_slot_of_a_dead_holder_and_admits_the_next() -> None:
    # Given a cap of 1 whose slot is still leased to a drill that finished (its worker died
    # between the run's last write and the release)
    w, _ = fleet(2, max_concurrent_drills=1)
    first = start(w, "db-0")
    lease = w.slots.leases()[0]
    finish(w, first.run_id)
    w.slots.slots[lease.slot] = lease
    waiting = start(w, "db-1")
    assert state_of(w, waiting.run_id) is RunState.QUEUED
    # When the sweeper runs
    summary = sweep(w.ctx)
    # Then it took the slot back and the queued drill was admitted in the same sweep
    assert summary.slots_reclaimed == [lease]
    assert state_of(w, waiting.run_id) is RunState.RESTORING
    assert [held.run_id for held in w.slots.leases()] == [waiting.run_id]


def test_the_admission_time_is_read_after_the_slots_so_admissions_never_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a cap of 1: db-0's drill finished (its instance gone, its slot released) and db-1
    # queued behind it
    w, _ = fleet(2, max_concurrent_drills=1)
    first = start(w, "db-0")
    second = start(w, "db-1")
    w.clock.advance(minutes=10)
    finish(w, first.run_id)
    released = w.runs.runs[first.run_id].phases[RunState.REPORTING].started_at
    # And reading the slots takes 5 s (a slow store under load)
    read = w.slots.leases

    def slow_leases() -> list[Lease]:
        w.clock.advance(seconds=5)
        return read()

    monkeypatch.setattr(w.slots, "leases", slow_leases)
    decided = w.clock()
    # When db-1's drill is polled and admitted
    poll_drill(second.run_id, w.ctx)
    # Then its admission time is after the slots were read, not the decision's earlier clock
    admitted = w.runs.runs[second.run_id].admitted_at
    assert admitted is not None
    assert admitted >= decided + timedelta(seconds=5)
    assert admitted > released
