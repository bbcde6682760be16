"""Defects the local cloud's fault matrix and soak found, pinned at the level of the use cases."""

from typing import Any

import pytest
from restoredrill.domain.drill import advance_drill, start_drill, sweep
from restoredrill.ports.records import (
    OWNER_TAG,
    RUN_ID_TAG,
    CheckerOutcome,
    DrillRequest,
    InstanceView,
    RunState,
    Verdict,
)

from tests.unit.check_suites import passed_suite
from tests.unit.fakes import STACK, World, world

SNAPSHOT = "rds:clinic-db-2026-11-27-03-10"


class Crash(BaseException):
    """The handler's process dies here (nothing after it runs, nothing catches it)."""


def request(key: str) -> DrillRequest:
    return DrillRequest(snapshot_id=SNAPSHOT, idempotency_key=key, trigger="RDS-EVENT-0091")


def passed(run_id: str) -> CheckerOutcome:
    return CheckerOutcome(
        run_id=run_id, succeeded=True, verdict=Verdict.PASSED, result=passed_suite()
    )


def a_world() -> World:
    w = world()
    w.rds.add_source("clinic-db", {"restoredrill:drill": "enabled"}, SNAPSHOT)
    return w


def to_checking(w: World, key: str) -> str:
    run = start_drill(request(key), w.ctx)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run.run_id, w.ctx)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    assert w.runs.runs[run.run_id].state is RunState.CHECKING
    return run.run_id


def test_a_crash_right_after_the_delete_keeps_the_verdict_the_checks_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a drill whose checks passed, and a handler that dies right after DeleteDBInstance
    w = a_world()
    run_id = to_checking(w, "crash-after-delete")
    delete = w.rds.delete_drill_instance

    def delete_then_die(*args: Any) -> None:
        delete(*args)
        raise Crash

    monkeypatch.setattr(w.rds, "delete_drill_instance", delete_then_die)
    with pytest.raises(Crash):
        advance_drill(run_id, w.ctx, checker_outcome=passed(run_id))
    monkeypatch.undo()
    # When the next trigger (the poll) finds the instance deleting, then gone
    advance_drill(run_id, w.ctx)
    del w.rds.instances[f"restoredrill-{run_id}"]
    final = advance_drill(run_id, w.ctx)
    # Then the drill still reports what the checks found, not an error of its own
    assert final is not None and final.is_finished
    assert (final.verdict, final.reason) == (Verdict.PASSED, None)


def test_one_run_failing_in_the_sweep_does_not_stop_the_others_or_the_orphan_reaping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a run whose report cannot be written (S3 keeps failing for it) ...
    w = a_world()
    failing = to_checking(w, "report-fails")
    advance_drill(failing, w.ctx, checker_outcome=passed(failing))
    del w.rds.instances[f"restoredrill-{failing}"]
    put = w.reports.put

    def put_failing_for_one_run(key: str, body: bytes, content_type: str) -> str:
        if failing in key:
            raise RuntimeError("InternalError: We encountered an internal error")
        return put(key, body, content_type)

    monkeypatch.setattr(w.reports, "put", put_failing_for_one_run)
    with pytest.raises(RuntimeError):
        advance_drill(failing, w.ctx)
    # ... a run stuck in its restore past the deadline, and an orphaned drill instance
    stuck = start_drill(request("stuck"), w.ctx)
    w.rds.instances["restoredrill-ffffffffffffffffffff"] = InstanceView(
        instance_id="restoredrill-ffffffffffffffffffff",
        status="available",
        tags={OWNER_TAG: STACK, RUN_ID_TAG: "ffffffffffffffffffff"},
    )
    w.clock.advance(hours=4, seconds=1)
    # When the sweeper runs
    summary = sweep(w.ctx)
    # Then the failing run is counted and left for the next sweep, the stuck run times out and
    # the orphan is deleted all the same
    assert summary.runs_failed == 1
    assert w.runs.runs[failing].state is RunState.REPORTING
    assert summary.runs_timed_out == 1
    assert w.runs.runs[stuck.run_id].verdict is Verdict.TIMED_OUT
    assert summary.orphans_deleted == ["restoredrill-ffffffffffffffffffff"]
