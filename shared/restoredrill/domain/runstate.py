"""The drill's state machine, as pure functions.

`decide` looks at a run record and at what is true right now (the instance as RDS describes it,
the checker's result if one arrived, the clock) and names at most one side effect plus the record
to write after it. Side effects are idempotent, so a duplicate or stale trigger that repeats one
is harmless, and the record is written conditionally on the version it was decided from, so only
one trigger ever moves a run forward. Events are hints; this is where the truth is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from restoredrill.domain.point_in_time import restore_failed_reason, rpo_exceeded
from restoredrill.ports.messages import failed_checks
from restoredrill.ports.records import (
    ACTIVE_STATES,
    CheckerOutcome,
    ClusterView,
    InstanceView,
    Lease,
    PhaseTiming,
    ReportChain,
    ReportLink,
    RunRecord,
    RunState,
    Verdict,
)

# Statuses in which a restore is over and will never become available.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html
BACKUP_FAULT_STATUSES = frozenset({"failed", "incompatible-restore", "storage-full"})
ENVIRONMENT_FAULT_STATUSES = frozenset(
    {
        "incompatible-network",
        "incompatible-parameters",
        "incompatible-option-group",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "restore-error",
    }
)
GONE_STATUSES = frozenset({"deleting"})
# Error codes with which RestoreDBInstanceFromDBSnapshot refuses the snapshot itself: the backup
# under test is missing or unusable. Matched by code, never by text: an AccessDenied message
# names the snapshot too.
SNAPSHOT_FAULT_CODES = frozenset(
    {
        "DBSnapshotNotFound",
        "DBSnapshotNotFoundFault",
        "InvalidDBSnapshotState",
        "InvalidDBSnapshotStateFault",
        # RestoreDBClusterFromSnapshot's (botocore's RDS model: the code is the fault's name)
        "DBClusterSnapshotNotFoundFault",
        "InvalidDBClusterSnapshotStateFault",
        # RestoreDBInstanceToPointInTime's: the source keeps no backups (retention 0), so it
        # cannot be restored to any point in time.
        "PointInTimeRestoreNotEnabled",
        "PointInTimeRestoreNotEnabledFault",
    }
)

# Error codes with which RDS refuses a restore for quota or capacity, by the codes botocore's RDS
# model gives RestoreDBInstanceFromDBSnapshot's faults (InstanceQuotaExceededFault's code is
# InstanceQuotaExceeded, ...) and their fault names too. The backup is not at fault: the drill
# goes back to the queue. DBClusterQuotaExceededFault is Aurora's (RestoreDBClusterFromSnapshot).
CAPACITY_CODES = frozenset(
    {
        "InstanceQuotaExceeded",
        "InstanceQuotaExceededFault",
        "StorageQuotaExceeded",
        "StorageQuotaExceededFault",
        "InsufficientDBInstanceCapacity",
        "InsufficientDBInstanceCapacityFault",
        "DBClusterQuotaExceededFault",
        "InsufficientDBClusterCapacityFault",
    }
)
# Waits after a refusal for capacity double from the poll delay up to SQS's longest delay.
MAX_REQUEUE_BACKOFF = timedelta(seconds=900)

# RDS may not list an instance for a short while after the restore call returns.
INSTANCE_VISIBILITY_GRACE = timedelta(minutes=10)
# The checker's result travels through the async destination and SQS after its timeout.
CHECKER_RESULT_GRACE = timedelta(minutes=2)
# A round of checks that never answered is asked for once more (its tasks are charged an
# attempt each by the check runner); a second loss ends the drill in ERROR.
ROUND_ATTEMPTS = 2
# Longer than any advance function may run (its timeout is 60 s): a claim older than this was lost.
CLAIM_LEASE = timedelta(seconds=90)


class Effect(StrEnum):
    RESTORE = "restore"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - the name of a step, not a password
    INVOKE_CHECKER = "invoke_checker"
    DELETE_INSTANCE = "delete_instance"
    # Aurora: the instance is created into the restored cluster; the cluster goes after it.
    CREATE_INSTANCE = "create_instance"
    DELETE_CLUSTER = "delete_cluster"
    PUBLISH = "publish"  # report to S3, forget the run's password, announce Drill Finished


@dataclass(frozen=True)
class Observation:
    now: datetime
    instance: InstanceView | None
    checker_outcome: CheckerOutcome | None = None
    credentials_reset_event: bool = False
    # The newest published report of the same database (read only while reporting).
    previous_report: ReportLink | None = None
    # An Aurora drill's cluster as DescribeDBClusters shows it (always None for instance drills).
    cluster: ClusterView | None = None


@dataclass(frozen=True)
class Rules:
    stack_name: str
    credentials_settle: timedelta
    checker_timeout: timedelta
    checker_result_grace: timedelta = CHECKER_RESULT_GRACE
    claim_lease: timedelta = CLAIM_LEASE
    requeue_backoff: timedelta = timedelta(seconds=60)
    max_queue_wait: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class QueueTimings:
    requeue_backoff: timedelta = timedelta(seconds=60)
    max_queue_wait: timedelta = timedelta(hours=12)


QUEUE_DEFAULTS = QueueTimings()


@dataclass(frozen=True)
class Step:
    """At most one effect and the record to write after it.

    With a `claim`, the claim is written first and only the trigger that wins it performs the
    effect: for effects whose repetition would be visible (a second checker on the same
    instance, a second Drill Finished). A claim that is never confirmed (its trigger crashed)
    expires after CLAIM_LEASE and the effect is claimed again.

    With a `lease` (an admission), the record is written together with the lease on its drill
    slot, in one transaction.
    """

    effect: Effect | None = None
    record: RunRecord | None = None
    why: str = ""
    claim: RunRecord | None = None
    lease: Lease | None = None

    @property
    def is_wait(self) -> bool:
        return self.effect is None and self.record is None


WAIT = Step(why="waiting")


def transition(run: RunRecord, state: RunState, now: datetime, **changes: object) -> RunRecord:
    """The next version of `run` in `state`: closes the current phase and opens the new one."""
    phases = dict(run.phases)
    current = phases.get(run.state)
    if current is not None and current.ended_at is None:
        phases[run.state] = current.model_copy(update={"ended_at": now})
    if state is not run.state:
        phases[state] = PhaseTiming(
            started_at=now, ended_at=now if state is RunState.FINISHED else None
        )
    update = {"state": state, "version": run.version + 1, "phases": phases}
    if state is not run.state:
        update["effect_claimed_at"] = None
    return run.model_copy(update={**update, **changes})


def amend(run: RunRecord, **changes: object) -> RunRecord:
    """The next version of `run` in the same state."""
    return run.model_copy(update={"version": run.version + 1, **changes})


def decide(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    if run.state is RunState.FINISHED:
        return Step(why="run already finished")
    if run.state is RunState.REPORTING:
        # Nothing is touched while reporting: a foreign resource under the drill's name must not
        # send the run back through teardown again and again.
        return _decide_reporting(run, seen, rules)

    instance = seen.instance
    if instance is not None and not instance.owned_by(rules.stack_name, run.run_id):
        # Never act on an instance this run did not create, whatever its name says.
        return _finish_without_instance(
            run,
            seen.now,
            Verdict.ERROR,
            f"instance {instance.instance_id} exists but does not carry this drill's tags",
        )
    cluster = seen.cluster
    if cluster is not None and not cluster.owned_by(rules.stack_name, run.run_id):
        return _finish_without_instance(
            run,
            seen.now,
            Verdict.ERROR,
            f"cluster {cluster.cluster_id} exists but does not carry this drill's tags",
        )

    if run.state in ACTIVE_STATES and seen.now >= run.deadline:
        return _tear_down(
            run,
            instance,
            seen.now,
            Verdict.TIMED_OUT,
            f"deadline {run.deadline.isoformat()} passed while {run.state.value}",
            cluster=cluster,
        )

    if seen.checker_outcome is not None and run.state in (RunState.SECURING, RunState.CHECKING):
        return _on_checker_outcome(run, instance, seen)

    handler = _BY_STATE[run.state]
    return handler(run, seen, rules)


def _decide_queued(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    """Admission is decided by the caller, which reads the slots and the quotas; here only the
    end of the maximum wait (the queued run's deadline)."""
    if seen.now < run.deadline:
        return WAIT
    queued_at = run.queued_at or run.created_at
    waited = int((seen.now - queued_at).total_seconds() // 60)
    why = run.wait_reason or "waiting for a drill slot"
    return _finish_without_instance(
        run,
        seen.now,
        Verdict.ERROR,
        f"not admitted: no restore started within the maximum wait ({waited} min queued; last: "
        f"{why}). The backup was not tested.",
    )


def requeue_backoff(requeues: int, rules: Rules | QueueTimings) -> timedelta:
    """The wait before the `requeues`-th admission after a refusal for capacity."""
    doubled: timedelta = rules.requeue_backoff * (2 ** max(0, min(requeues - 1, 10)))
    return min(doubled, MAX_REQUEUE_BACKOFF)


def _requeue(run: RunRecord, reason: str, now: datetime, rules: Rules | QueueTimings) -> Step:
    requeues = run.requeues + 1
    delay = requeue_backoff(requeues, rules)
    queued_at = run.queued_at or run.created_at
    record = transition(
        run,
        RunState.QUEUED,
        now,
        requeues=requeues,
        not_before=now + delay,
        wait_reason=f"restore refused for capacity, retried after a backoff: {reason}",
        # The maximum wait counts from when the drill was first queued, refusals included.
        deadline=queued_at + rules.max_queue_wait,
    )
    return Step(record=record, why=f"restore refused for capacity; back to the queue ({reason})")


def _decide_requested(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    now = seen.now
    restored = seen.cluster if run.is_cluster else seen.instance
    if restored is None:
        # Claimed: a trigger that read the run before others moved it on must not restore a
        # second instance after the first one is already gone.
        claim = transition(run, RunState.RESTORING, now, effect_claimed_at=now)
        return Step(
            Effect.RESTORE, amend(claim, restore_requested_at=now), "restore requested", claim=claim
        )
    return Step(
        record=transition(run, RunState.RESTORING, now, restore_requested_at=now),
        why="restore already under way",
    )


def _decide_restoring(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    if run.is_cluster:
        return _decide_restoring_cluster(run, seen, rules)
    now, instance = seen.now, seen.instance
    if instance is None and run.restore_requested_at is None:
        return _claim_again(run, now, rules, Effect.RESTORE, "restore_requested_at")
    if instance is None:
        started = run.phases[RunState.RESTORING].started_at
        if now - started < INSTANCE_VISIBILITY_GRACE:
            return WAIT
        return _finish_without_instance(
            run, now, Verdict.ERROR, "the restored instance never appeared"
        )
    fault = _point_in_time_fault(run, instance, _fault_of(instance, "instance"))
    if fault is not None:
        return _tear_down(run, instance, now, *fault)
    if instance.status == "available":
        return Step(
            Effect.RESET_PASSWORD,
            transition(run, RunState.SECURING, now, credentials_reset_at=now),
            "restored; setting a fresh master password",
        )
    return WAIT


def _point_in_time_fault(
    run: RunRecord, restored: InstanceView | ClusterView, fault: tuple[Verdict, str] | None
) -> tuple[Verdict, str] | None:
    """A point-in-time restore that failed is said to be one: its logs did not replay."""
    if fault is None or run.point_in_time is None or fault[0] is not Verdict.FAILED:
        return fault
    return Verdict.FAILED, restore_failed_reason(run, restored.status)


def _decide_restoring_cluster(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    """Aurora: the cluster is restored, then its instance is created into it; the drill goes on
    once the instance is available."""
    now, cluster, instance = seen.now, seen.cluster, seen.instance
    if cluster is None and run.restore_requested_at is None:
        return _claim_again(run, now, rules, Effect.RESTORE, "restore_requested_at")
    if cluster is None:
        started = run.phases[RunState.RESTORING].started_at
        if now - started < INSTANCE_VISIBILITY_GRACE:
            return WAIT
        return _finish_without_instance(
            run, now, Verdict.ERROR, "the restored cluster never appeared"
        )
    fault = _point_in_time_fault(run, cluster, _fault_of(cluster, "cluster"))
    if fault is not None:
        return _tear_down(run, instance, now, *fault, cluster=cluster)
    if instance is None:
        return _create_instance_step(run, seen, rules, cluster)
    fault = _fault_of(instance, "instance")
    if fault is not None:
        return _tear_down(run, instance, now, *fault, cluster=cluster)
    if instance.status == "available":
        return Step(
            Effect.RESET_PASSWORD,
            transition(run, RunState.SECURING, now, credentials_reset_at=now),
            "cluster and instance available; setting a fresh master password",
        )
    return WAIT


def _create_instance_step(
    run: RunRecord, seen: Observation, rules: Rules, cluster: ClusterView
) -> Step:
    """The restored cluster has no instance yet: create it once the cluster is available
    (claimed like the restore), or give up on one that never appears."""
    now = seen.now
    if run.instance_requested_at is not None:
        if now - run.instance_requested_at < INSTANCE_VISIBILITY_GRACE:
            return WAIT
        return _tear_down(
            run, None, now, Verdict.ERROR, "the cluster's instance never appeared", cluster=cluster
        )
    if cluster.status != "available":
        return WAIT
    if run.cluster_available_at is not None:
        # A creation was claimed before and never confirmed: its trigger died.
        return _claim_again(run, now, rules, Effect.CREATE_INSTANCE, "instance_requested_at")
    claim = amend(run, effect_claimed_at=now, cluster_available_at=now)
    return Step(
        Effect.CREATE_INSTANCE,
        amend(claim, instance_requested_at=now),
        "cluster restored; creating its instance",
        claim=claim,
    )


def _decide_securing(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    trouble = _vanished_or_faulted(run, seen, "the restored instance disappeared")
    if trouble is not None:
        return trouble
    now, instance = seen.now, seen.instance
    assert instance is not None
    confirmed = run.credentials_confirmed or seen.credentials_reset_event
    applied = instance.status == "available" and not instance.pending_master_password
    if run.is_cluster:
        # The password belongs to the cluster.
        cluster = seen.cluster
        assert cluster is not None
        applied = applied and cluster.status == "available"
        applied = applied and not cluster.pending_master_password
    reset_at = run.credentials_reset_at or run.phases[RunState.SECURING].started_at
    settled = now - reset_at >= rules.credentials_settle
    if applied and (confirmed or settled):
        claim = transition(
            run, RunState.CHECKING, now, effect_claimed_at=now, credentials_confirmed=confirmed
        )
        return Step(
            Effect.INVOKE_CHECKER,
            amend(claim, checker_invoked_at=now),
            "credentials in place; checking",
            claim=claim,
        )
    if seen.credentials_reset_event and not run.credentials_confirmed:
        return Step(record=amend(run, credentials_confirmed=True), why="credentials reset seen")
    return WAIT


def _decide_checking(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    trouble = _vanished_or_faulted(run, seen, "the restored instance disappeared during the checks")
    if trouble is not None:
        return trouble
    now, instance = seen.now, seen.instance
    if run.checker_invoked_at is None:
        return _claim_again(run, now, rules, Effect.INVOKE_CHECKER, "checker_invoked_at")
    if now - run.checker_invoked_at > rules.checker_timeout + rules.checker_result_grace:
        if run.check_round > 0 and run.check_attempt + 1 < ROUND_ATTEMPTS:
            why = f"round {run.check_round} of the checks never answered; asking again"
            return _ask_round(run, now, run.check_round, run.check_attempt + 1, why)
        return _tear_down(
            run,
            instance,
            now,
            Verdict.ERROR,
            "the checker's result never arrived",
            cluster=seen.cluster,
        )
    return WAIT


def _ask_round(run: RunRecord, now: datetime, round_: int, attempt: int, why: str) -> Step:
    """Invoke the check runner for one round of a plan, claimed like the first invoke."""
    claim = amend(
        run,
        check_round=round_,
        check_attempt=attempt,
        effect_claimed_at=now,
        checker_invoked_at=None,
    )
    return Step(Effect.INVOKE_CHECKER, amend(claim, checker_invoked_at=now), why, claim=claim)


def _on_round_answer(run: RunRecord, seen: Observation) -> Step:
    outcome = seen.checker_outcome
    assert outcome is not None
    if outcome.duplicate_round:
        return Step(why="that round had been claimed by another trigger already")
    finished = outcome.round_finished
    if run.state is not RunState.CHECKING or finished != run.check_round:
        return Step(why=f"round {finished} of the checks is not the current one: ignored")
    why = f"round {finished} of the checks done; round {finished + 1}"
    return _ask_round(run, seen.now, run.check_round + 1, 0, why)


def _on_checker_outcome(run: RunRecord, instance: InstanceView | None, seen: Observation) -> Step:
    outcome = seen.checker_outcome
    assert outcome is not None
    if outcome.round_finished is not None or outcome.duplicate_round:
        return _on_round_answer(run, seen)
    if outcome.succeeded and outcome.verdict is not None:
        verdict = outcome.verdict
        reason = None if verdict is Verdict.PASSED else _failed_checks_reason(outcome)
    else:
        verdict = Verdict.ERROR
        reason = f"the checker failed: {outcome.error or 'no result'}"
    if run.point_in_time is not None and verdict is not Verdict.ERROR:
        verdict, reason = _point_in_time_verdict(run, outcome, verdict, reason)
    return _tear_down(
        run,
        instance,
        seen.now,
        verdict,
        reason,
        cluster=seen.cluster,
        checks=outcome.result,
        baseline_key=outcome.baseline_key,
    )


def _point_in_time_verdict(
    run: RunRecord, outcome: CheckerOutcome, verdict: Verdict, reason: str | None
) -> tuple[Verdict, str | None]:
    """A point-in-time drill whose measured RPO is over the policy's max_rpo fails, saying so
    with the figure (after the failed checks' reason, if there is one)."""
    assert run.point_in_time is not None
    exceeded = rpo_exceeded(run.point_in_time, outcome.result)
    if exceeded is None:
        return verdict, reason
    return Verdict.FAILED, f"{reason}; {exceeded}" if reason else exceeded


def _failed_checks_reason(outcome: CheckerOutcome) -> str:
    bad = [check["name"] for check in failed_checks(outcome.result)]
    if not bad:
        return f"check suite verdict {outcome.verdict}"
    return "failed checks: " + ", ".join(bad)


def _decide_tearing_down(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    now, instance, cluster = seen.now, seen.instance, seen.cluster
    if instance is None and cluster is not None:
        # Aurora: the instance first, then its cluster; the run reports once both are gone.
        if cluster.status in GONE_STATUSES:
            return WAIT
        return Step(Effect.DELETE_CLUSTER, why="instance gone; deleting the cluster")
    if instance is None:
        return Step(record=_to_reporting(run, now), why="instance deleted")
    if instance.status in GONE_STATUSES:
        return WAIT
    return Step(Effect.DELETE_INSTANCE, why="instance still there; deleting again")


def _decide_reporting(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    if _claim_is_live(run, seen.now, rules):
        return WAIT
    # The chain link is pinned by the first claim: a publish repeated after a crash must write
    # the same bytes, even if another report of this database was published in between.
    chain = run.chain or ReportChain(previous=seen.previous_report)
    claim = amend(run, effect_claimed_at=seen.now, chain=chain)
    return Step(
        Effect.PUBLISH,
        transition(claim, RunState.FINISHED, seen.now),
        "report, forget the password, announce",
        claim=claim,
    )


def _claim_again(
    run: RunRecord, now: datetime, rules: Rules, effect: Effect, confirmed_by: str
) -> Step:
    """A claimed effect whose confirmation (`confirmed_by`) never came: its trigger died before
    or after the call. Once the claim has expired, one trigger claims it again and repeats it."""
    if _claim_is_live(run, now, rules):
        return WAIT
    claim = amend(run, effect_claimed_at=now)
    return Step(
        effect,
        amend(claim, **{confirmed_by: now}),
        f"{effect.value} was never confirmed; doing it again",
        claim=claim,
    )


def _claim_is_live(run: RunRecord, now: datetime, rules: Rules) -> bool:
    claimed = run.effect_claimed_at
    return claimed is not None and now - claimed < rules.claim_lease


def _decide_finished(run: RunRecord, seen: Observation, rules: Rules) -> Step:
    return Step(why="run already finished")


_BY_STATE = {
    RunState.QUEUED: _decide_queued,
    RunState.REQUESTED: _decide_requested,
    RunState.RESTORING: _decide_restoring,
    RunState.SECURING: _decide_securing,
    RunState.CHECKING: _decide_checking,
    RunState.TEARING_DOWN: _decide_tearing_down,
    RunState.REPORTING: _decide_reporting,
    RunState.FINISHED: _decide_finished,
}


def _vanished_or_faulted(run: RunRecord, seen: Observation, vanished: str) -> Step | None:
    """The end of a drill whose instance (or cluster) is gone or broken; None while it is
    usable."""
    cluster = seen.cluster
    if run.is_cluster and cluster is None:
        return _tear_down(
            run, seen.instance, seen.now, Verdict.ERROR, "the restored cluster disappeared"
        )
    if seen.instance is None:
        return _tear_down(run, None, seen.now, Verdict.ERROR, vanished, cluster=cluster)
    fault = _fault_of(seen.instance, "instance")
    if fault is None and cluster is not None:
        fault = _fault_of(cluster, "cluster")
    if fault is None:
        return None
    return _tear_down(run, seen.instance, seen.now, *fault, cluster=cluster)


def _fault_of(restored: InstanceView | ClusterView, what: str) -> tuple[Verdict, str] | None:
    if restored.status in BACKUP_FAULT_STATUSES:
        return Verdict.FAILED, f"restore ended in status {restored.status}"
    if restored.status in ENVIRONMENT_FAULT_STATUSES:
        return Verdict.ERROR, f"restore ended in status {restored.status}"
    if restored.status in GONE_STATUSES:
        return Verdict.ERROR, f"the restored {what} is being deleted by someone else"
    return None


def _tear_down(
    run: RunRecord,
    instance: InstanceView | None,
    now: datetime,
    verdict: Verdict,
    reason: str | None,
    *,
    cluster: ClusterView | None = None,
    **changes: object,
) -> Step:
    if instance is None and cluster is None:
        return _finish_without_instance(run, now, verdict, reason, **changes)
    record = transition(run, RunState.TEARING_DOWN, now, verdict=verdict, reason=reason, **changes)
    if instance is None:
        # Aurora: a cluster whose instance never came up (or is gone) is deleted all the same.
        assert cluster is not None
        if cluster.status in GONE_STATUSES:
            return Step(record=record, why=f"{verdict.value}: cluster already being deleted")
        return Step(Effect.DELETE_CLUSTER, record, f"{verdict.value}: tearing down", claim=record)
    if instance.status in GONE_STATUSES:
        return Step(record=record, why=f"{verdict.value}: instance already being deleted")
    # The verdict is written before the delete (as the claim): a trigger that dies right after
    # DeleteDBInstance must not leave a CHECKING run whose instance vanished, or the next trigger
    # would record ERROR instead of the verdict reached. TEARING_DOWN repeats the delete if needed.
    return Step(Effect.DELETE_INSTANCE, record, f"{verdict.value}: tearing down", claim=record)


def _finish_without_instance(
    run: RunRecord, now: datetime, verdict: Verdict, reason: str | None, **changes: object
) -> Step:
    """Nothing of ours to delete: go straight to the report."""
    torn_down = transition(
        run, RunState.TEARING_DOWN, now, verdict=verdict, reason=reason, **changes
    )
    return Step(record=_to_reporting(torn_down, now), why=reason or "")


def _to_reporting(run: RunRecord, now: datetime) -> RunRecord:
    return transition(run, RunState.REPORTING, now, finished_at=now)


def on_effect_rejected(
    run: RunRecord,
    effect: Effect,
    reason: str,
    now: datetime,
    *,
    code: str | None = None,
    rules: Rules | None = None,
) -> Step:
    """AWS refused an effect for good (not a throttle or outage): end the drill and say why.
    A restore refused because of the snapshot itself (``code``) fails the backup; one refused
    for quota or capacity goes back to the queue with a backoff (never FAILED: the backup is not
    at fault); any other refusal (permissions, a KMS key, the subnet group) is the drill's own
    ERROR."""
    if effect is Effect.RESTORE and code in CAPACITY_CODES:
        return _requeue(run, reason, now, rules or QUEUE_DEFAULTS)
    if effect is Effect.RESTORE:
        verdict = Verdict.FAILED if code in SNAPSHOT_FAULT_CODES else Verdict.ERROR
        return _finish_without_instance(run, now, verdict, f"restore refused: {reason}")
    if effect is Effect.CREATE_INSTANCE:
        record = transition(
            run,
            RunState.TEARING_DOWN,
            now,
            verdict=Verdict.ERROR,
            reason=f"instance creation refused: {reason}",
        )
        return Step(Effect.DELETE_CLUSTER, record, "instance refused; deleting the cluster")
    if effect in (Effect.RESET_PASSWORD, Effect.INVOKE_CHECKER):
        record = transition(
            run,
            RunState.TEARING_DOWN,
            now,
            verdict=Verdict.ERROR,
            reason=f"{effect.value} refused: {reason}",
        )
        return Step(Effect.DELETE_INSTANCE, record, "effect refused; tearing down")
    # A refused delete or publish cannot be worked around here: retrying is the only way on.
    return Step(why=f"{effect.value} refused: {reason}")
