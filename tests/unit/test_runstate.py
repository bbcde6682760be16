"""The pure state machine: every transition, every fault, every stale or foreign trigger."""

from datetime import timedelta

import pytest
from restoredrill.domain.runstate import (
    Effect,
    Observation,
    Rules,
    decide,
    on_effect_rejected,
    transition,
)
from restoredrill.ports.records import (
    OWNER_TAG,
    RUN_ID_TAG,
    CheckerOutcome,
    InstanceView,
    PhaseTiming,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

from tests.unit.check_suites import check, passed_suite, suite_of
from tests.unit.fakes import STACK, START

RULES = Rules(
    stack_name=STACK,
    credentials_settle=timedelta(seconds=30),
    checker_timeout=timedelta(seconds=900),
)
RUN_ID = "0123456789abcdef0123"


def a_run(state: RunState = RunState.REQUESTED, **changes: object) -> RunRecord:
    run = RunRecord(
        run_id=RUN_ID,
        source_db="clinic-db",
        snapshot=SnapshotInfo(
            snapshot_id="rds:clinic-db-1",
            snapshot_arn="arn:aws:rds:us-east-1:1:snapshot:rds:clinic-db-1",
            master_username="admin",
        ),
        instance_id=f"restoredrill-{RUN_ID}",
        instance_class="db.t4g.micro",
        trigger="test",
        created_at=START,
        deadline=START + timedelta(hours=4),
        phases={RunState.REQUESTED: PhaseTiming(started_at=START)},
    )
    if state is not RunState.REQUESTED:
        run = transition(run, state, START)
    return run.model_copy(update=changes)


def an_instance(status: str, **changes: object) -> InstanceView:
    return InstanceView(
        instance_id=f"restoredrill-{RUN_ID}",
        status=status,
        address="10.0.0.5",
        port=5432,
        tags={OWNER_TAG: STACK, RUN_ID_TAG: RUN_ID},
    ).model_copy(update=changes)


def seen(
    instance: InstanceView | None,
    after: timedelta = timedelta(0),
    *,
    checker_outcome: CheckerOutcome | None = None,
    credentials_reset_event: bool = False,
) -> Observation:
    return Observation(
        now=START + after,
        instance=instance,
        checker_outcome=checker_outcome,
        credentials_reset_event=credentials_reset_event,
    )


def test_a_new_run_claims_the_restore_then_records_it() -> None:
    # Given a requested run and no instance yet
    # When it is advanced
    step = decide(a_run(), seen(None), RULES)
    # Then RESTORING is claimed before the restore, and the restore is confirmed after it
    assert step.effect is Effect.RESTORE
    assert step.claim is not None and step.claim.state is RunState.RESTORING
    assert step.claim.version == 1 and step.claim.restore_requested_at is None
    assert step.record is not None and step.record.restore_requested_at == START
    assert step.record.phases[RunState.RESTORING].ended_at is None


def test_an_unconfirmed_restore_is_claimed_again_only_after_the_lease() -> None:
    # Given a trigger that claimed the restore and died before confirming it
    claimed = decide(a_run(), seen(None), RULES).claim
    assert claimed is not None
    # Then while the claim lasts nobody restores; after it, one trigger restores again
    assert decide(claimed, seen(None, timedelta(seconds=30)), RULES).is_wait
    step = decide(claimed, seen(None, timedelta(seconds=91)), RULES)
    assert step.effect is Effect.RESTORE and step.claim is not None


def test_a_requested_run_whose_restore_already_happened_does_not_restore_again() -> None:
    # Given the restore call went through but the record was not updated (a crash in between)
    step = decide(a_run(), seen(an_instance("creating")), RULES)
    # Then the next trigger records RESTORING without a second restore
    assert step.effect is None
    assert step.record is not None and step.record.state is RunState.RESTORING


@pytest.mark.parametrize(
    "status", ["creating", "modifying", "backing-up", "configuring-enhanced-monitoring"]
)
def test_restoring_waits_while_the_instance_is_not_available(status: str) -> None:
    step = decide(a_run(RunState.RESTORING), seen(an_instance(status)), RULES)
    assert step.is_wait


def test_an_available_instance_gets_a_fresh_password_and_the_restore_time_is_measured() -> None:
    # Given a restore that started at START and an instance available 17 minutes later
    step = decide(
        a_run(RunState.RESTORING), seen(an_instance("available"), timedelta(minutes=17)), RULES
    )
    # Then the password is reset and the restore phase (the RTO) lasted 17 minutes
    assert step.effect is Effect.RESET_PASSWORD
    assert step.record is not None and step.record.state is RunState.SECURING
    assert step.record.restore_seconds == 17 * 60


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("incompatible-restore", Verdict.FAILED),
        ("failed", Verdict.FAILED),
        ("incompatible-network", Verdict.ERROR),
        ("inaccessible-encryption-credentials", Verdict.ERROR),
    ],
)
def test_a_restore_that_ends_in_a_fault_is_torn_down_with_the_right_verdict(
    status: str, verdict: Verdict
) -> None:
    step = decide(a_run(RunState.RESTORING), seen(an_instance(status)), RULES)
    assert step.effect is Effect.DELETE_INSTANCE
    assert step.record is not None
    assert (step.record.state, step.record.verdict) == (RunState.TEARING_DOWN, verdict)
    assert status in (step.record.reason or "")


def test_securing_waits_for_the_reset_to_be_applied() -> None:
    run = a_run(RunState.SECURING, credentials_reset_at=START)
    pending = an_instance("available", pending_master_password=True)
    assert decide(run, seen(pending, timedelta(minutes=5)), RULES).is_wait
    assert decide(
        run, seen(an_instance("resetting-master-credentials"), timedelta(minutes=5)), RULES
    ).is_wait


def test_securing_without_the_event_waits_for_the_settle_time_then_checks() -> None:
    # Given the password was reset and the credentials event was lost
    run = a_run(RunState.SECURING, credentials_reset_at=START)
    # Then before the settle time nothing happens, after it the checker is invoked
    assert decide(run, seen(an_instance("available"), timedelta(seconds=10)), RULES).is_wait
    step = decide(run, seen(an_instance("available"), timedelta(seconds=31)), RULES)
    assert step.effect is Effect.INVOKE_CHECKER
    assert step.record is not None and step.record.state is RunState.CHECKING


def test_the_credentials_event_lets_the_check_start_at_once() -> None:
    run = a_run(RunState.SECURING, credentials_reset_at=START)
    step = decide(
        run,
        seen(an_instance("available"), timedelta(seconds=1), credentials_reset_event=True),
        RULES,
    )
    assert step.effect is Effect.INVOKE_CHECKER
    assert step.record is not None and step.record.credentials_confirmed


def test_an_early_credentials_event_is_remembered() -> None:
    # Given the event arrives while RDS still shows the reset in progress
    run = a_run(RunState.SECURING, credentials_reset_at=START)
    step = decide(
        run, seen(an_instance("resetting-master-credentials"), credentials_reset_event=True), RULES
    )
    # Then the run remembers it, so the next poll needs no settle time
    assert step.effect is None and step.record is not None
    assert step.record.credentials_confirmed and step.record.state is RunState.SECURING


@pytest.mark.parametrize(
    ("verdict", "reason_part"), [(Verdict.PASSED, None), (Verdict.FAILED, "row_counts")]
)
def test_a_checker_result_sets_the_verdict_and_tears_down(
    verdict: Verdict, reason_part: str | None
) -> None:
    result = suite_of(verdict.value, check("row_counts", "fail" if reason_part else "pass"))
    outcome = CheckerOutcome(run_id=RUN_ID, succeeded=True, verdict=verdict, result=result)
    step = decide(
        a_run(RunState.CHECKING), seen(an_instance("available"), checker_outcome=outcome), RULES
    )
    assert step.effect is Effect.DELETE_INSTANCE
    assert step.record is not None and step.record.verdict is verdict
    assert step.record.checks == result
    if reason_part:
        assert reason_part in (step.record.reason or "")
    else:
        assert step.record.reason is None


def test_a_checker_that_crashed_gives_error() -> None:
    outcome = CheckerOutcome(
        run_id=RUN_ID, succeeded=False, error="Sandbox.Timedout: Task timed out"
    )
    step = decide(
        a_run(RunState.CHECKING), seen(an_instance("available"), checker_outcome=outcome), RULES
    )
    assert step.record is not None and step.record.verdict is Verdict.ERROR
    assert "Task timed out" in (step.record.reason or "")


def test_a_stale_checker_result_after_teardown_changes_nothing() -> None:
    outcome = CheckerOutcome(
        run_id=RUN_ID, succeeded=True, verdict=Verdict.FAILED, result=passed_suite()
    )
    run = a_run(RunState.TEARING_DOWN, verdict=Verdict.PASSED)
    step = decide(run, seen(an_instance("deleting"), checker_outcome=outcome), RULES)
    assert step.is_wait


def test_a_checker_result_that_never_arrives_ends_in_error() -> None:
    run = a_run(RunState.CHECKING, checker_invoked_at=START)
    assert decide(run, seen(an_instance("available"), timedelta(seconds=900)), RULES).is_wait
    step = decide(run, seen(an_instance("available"), timedelta(seconds=900 + 121)), RULES)
    assert step.effect is Effect.DELETE_INSTANCE
    assert step.record is not None and step.record.verdict is Verdict.ERROR


@pytest.mark.parametrize(
    "state", [RunState.REQUESTED, RunState.RESTORING, RunState.SECURING, RunState.CHECKING]
)
def test_past_the_deadline_every_active_run_is_torn_down_as_timed_out(state: RunState) -> None:
    step = decide(a_run(state), seen(an_instance("creating"), timedelta(hours=4)), RULES)
    assert step.effect is Effect.DELETE_INSTANCE
    assert step.record is not None and step.record.verdict is Verdict.TIMED_OUT


def test_past_the_deadline_with_no_instance_goes_straight_to_the_report() -> None:
    step = decide(a_run(RunState.RESTORING), seen(None, timedelta(hours=5)), RULES)
    assert step.effect is None
    assert step.record is not None and step.record.state is RunState.REPORTING
    assert step.record.verdict is Verdict.TIMED_OUT


def test_teardown_waits_for_the_instance_to_go_then_reports() -> None:
    run = a_run(RunState.TEARING_DOWN, verdict=Verdict.PASSED)
    assert decide(run, seen(an_instance("deleting")), RULES).is_wait
    again = decide(run, seen(an_instance("available")), RULES)
    assert again.effect is Effect.DELETE_INSTANCE and again.record is None
    step = decide(run, seen(None, timedelta(minutes=9)), RULES)
    assert step.record is not None and step.record.state is RunState.REPORTING
    assert step.record.finished_at == START + timedelta(minutes=9)


def test_reporting_publishes_and_finishes() -> None:
    step = decide(a_run(RunState.REPORTING, verdict=Verdict.PASSED), seen(None), RULES)
    assert step.effect is Effect.PUBLISH
    assert step.record is not None and step.record.state is RunState.FINISHED


def test_a_finished_run_does_nothing_whatever_arrives() -> None:
    outcome = CheckerOutcome(
        run_id=RUN_ID, succeeded=True, verdict=Verdict.PASSED, result=passed_suite()
    )
    run = a_run(RunState.FINISHED, verdict=Verdict.PASSED)
    assert decide(
        run, seen(an_instance("available"), timedelta(days=3), checker_outcome=outcome), RULES
    ).is_wait


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {OWNER_TAG: "someone-else", RUN_ID_TAG: RUN_ID},
        {OWNER_TAG: STACK, RUN_ID_TAG: "ffffffffffffffffffff"},
    ],
)
def test_an_instance_without_our_tags_is_never_touched(tags: dict[str, str]) -> None:
    # Given an instance with the drill's name but not its ownership tags
    step = decide(a_run(RunState.RESTORING), seen(an_instance("available", tags=tags)), RULES)
    # Then the drill neither modifies nor deletes it, and ends in error
    assert step.effect is None
    assert step.record is not None and step.record.state is RunState.REPORTING
    assert step.record.verdict is Verdict.ERROR and "does not carry" in (step.record.reason or "")


def test_a_refused_restore_of_a_missing_snapshot_fails_the_backup() -> None:
    step = on_effect_rejected(
        a_run(),
        Effect.RESTORE,
        "DBSnapshotNotFound: snapshot gone",
        START,
        code="DBSnapshotNotFound",
    )
    assert step.record is not None and step.record.verdict is Verdict.FAILED
    assert step.record.state is RunState.REPORTING


def test_a_restore_refused_for_permissions_is_the_drills_error_even_if_it_names_the_snapshot() -> (
    None
):
    # Given IAM refusing the restore (its message names the snapshot ARN)
    reason = (
        "AccessDenied: User: arn:aws:sts::123456789012:assumed-role/advance is not authorized "
        "to perform: rds:RestoreDBInstanceFromDBSnapshot on resource: "
        "arn:aws:rds:us-east-1:123456789012:snapshot:rds:clinic-db-2026-11-27-03-10"
    )
    # When the refusal is decided on
    step = on_effect_rejected(a_run(), Effect.RESTORE, reason, START, code="AccessDenied")
    # Then the backup is not blamed: the drill itself broke
    assert step.record is not None and step.record.verdict is Verdict.ERROR
    assert "not authorized" in (step.record.reason or "")


def test_a_refused_password_reset_tears_down_in_error() -> None:
    step = on_effect_rejected(
        a_run(RunState.RESTORING), Effect.RESET_PASSWORD, "AccessDenied", START
    )
    assert step.effect is Effect.DELETE_INSTANCE
    assert step.record is not None and step.record.verdict is Verdict.ERROR


def test_every_phase_is_closed_when_the_next_opens() -> None:
    run = a_run()
    for minutes, state in enumerate(
        [RunState.RESTORING, RunState.SECURING, RunState.CHECKING], start=1
    ):
        run = transition(run, state, START + timedelta(minutes=minutes))
    assert [p.duration_seconds for s, p in run.phases.items() if s is not RunState.CHECKING] == [
        60.0,
        60.0,
        60.0,
    ]
    assert run.phases[RunState.CHECKING].ended_at is None


def test_the_checker_is_invoked_only_by_the_trigger_that_claims_the_step() -> None:
    # Given a run whose credentials are in place
    run = a_run(RunState.SECURING, credentials_reset_at=START)
    step = decide(run, seen(an_instance("available"), timedelta(minutes=1)), RULES)
    # Then the claim (written before the invoke) is CHECKING without a confirmed invoke,
    # and the record written after the invoke confirms it
    assert step.claim is not None and step.claim.state is RunState.CHECKING
    assert step.claim.checker_invoked_at is None and step.claim.effect_claimed_at is not None
    assert step.record is not None and step.record.checker_invoked_at == START + timedelta(
        minutes=1
    )
    assert step.record.version == step.claim.version + 1


def test_an_unconfirmed_checker_invoke_is_retried_only_after_the_lease() -> None:
    # Given a trigger claimed the invoke and then crashed before confirming it
    claimed = a_run(RunState.CHECKING, effect_claimed_at=START)
    # Then while the lease lasts nobody else invokes, after it one trigger invokes again
    assert decide(claimed, seen(an_instance("available"), timedelta(seconds=30)), RULES).is_wait
    step = decide(claimed, seen(an_instance("available"), timedelta(seconds=91)), RULES)
    assert step.effect is Effect.INVOKE_CHECKER and step.claim is not None


def test_publishing_is_claimed_so_a_concurrent_trigger_waits() -> None:
    run = a_run(RunState.REPORTING, verdict=Verdict.PASSED)
    step = decide(run, seen(None), RULES)
    assert step.claim is not None and step.claim.effect_claimed_at == START
    assert decide(step.claim, seen(None, timedelta(seconds=5)), RULES).is_wait


def test_a_restore_that_failed_has_no_rto() -> None:
    # Given a restore that ended in a fault after 7 minutes
    step = decide(
        a_run(RunState.RESTORING),
        seen(an_instance("incompatible-restore"), timedelta(minutes=7)),
        RULES,
    )
    assert step.record is not None
    # Then the restore phase is timed, but no recovery time is claimed for it
    assert step.record.phases[RunState.RESTORING].duration_seconds == 7 * 60
    assert step.record.restore_seconds is None
