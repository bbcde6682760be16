"""The drill's use cases: start one, advance one, sweep them all. Adapters come in as arguments."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from restoredrill.domain.admission import (
    AdmissionRules,
    admitted,
    candidacy,
    headroom_shortfall,
    queue_order,
    reclaim_reason,
)
from restoredrill.domain.eligibility import DrillNotDue as DrillNotDue
from restoredrill.domain.eligibility import DrillRejected as DrillRejected
from restoredrill.domain.eligibility import eligible_snapshot, schedule_decision
from restoredrill.domain.point_in_time import (
    POINT_IN_TIME_TRIGGER,
    point_in_time_key,
    restorable_snapshot,
)
from restoredrill.domain.recovery_points import check_region, listed_opt_in, restore_refused
from restoredrill.domain.report.document import build_report, report_bytes
from restoredrill.domain.report.finished_event import finished_event_detail
from restoredrill.domain.report.html import render_report_html
from restoredrill.domain.report.location import (
    HTML_CONTENT_TYPE,
    REPORT_CONTENT_TYPE,
    html_report_key,
    report_key,
)
from restoredrill.domain.runstate import (
    CAPACITY_CODES,
    Effect,
    Observation,
    Rules,
    Step,
    amend,
    decide,
    on_effect_rejected,
)
from restoredrill.ports.config import ConfigError, DrillSettings
from restoredrill.ports.gateways import (
    CheckerInvoker,
    DrillEvents,
    EffectRejected,
    PasswordVault,
    PollQueue,
    RdsGateway,
    ReportStore,
    RunStore,
    SlotStore,
)
from restoredrill.ports.messages import CheckerTarget, CheckRunRequest
from restoredrill.ports.policy import DrillPolicy, PolicyDocument, PolicyError
from restoredrill.ports.records import (
    AURORA_DEFAULT_INSTANCE_CLASS,
    CLUSTER_INSTANCE_SUFFIX,
    INSTANCE_PREFIX,
    RUN_ID_TAG,
    SERVERLESS_V2_CLASS,
    SLOT_HOLDING_STATES,
    CheckerOutcome,
    ClusterView,
    DrillRequest,
    InstanceView,
    Lease,
    PhaseTiming,
    PointInTimeRestore,
    RecoveryPoint,
    RequestedDrill,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

logger = Logger(child=True)

# An advance moves a run as far as the world allows right now, but never loops forever.
MAX_STEPS_PER_ADVANCE = 8


@dataclass
class DrillContext:
    settings: DrillSettings
    runs: RunStore
    rds: RdsGateway
    vault: PasswordVault
    polls: PollQueue
    checker: CheckerInvoker
    reports: ReportStore
    events: DrillEvents
    slots: SlotStore
    policies: PolicyDocument | PolicyError = field(default_factory=PolicyDocument)
    on_started: Callable[[RunRecord], None] = field(default=lambda run: None)
    on_finished: Callable[[RunRecord], None] = field(default=lambda run: None)
    on_skipped: Callable[[DrillNotDue], None] = field(default=lambda skipped: None)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def rules(self) -> Rules:
        return Rules(
            stack_name=self.settings.stack_name,
            credentials_settle=timedelta(seconds=self.settings.credentials_settle_seconds),
            checker_timeout=timedelta(seconds=self.settings.checker_timeout_seconds),
            checker_result_grace=timedelta(seconds=self.settings.checker_result_grace_seconds),
            claim_lease=timedelta(seconds=self.settings.claim_lease_seconds),
            requeue_backoff=timedelta(seconds=self.settings.poll_delay_seconds),
            max_queue_wait=timedelta(minutes=self.settings.max_queue_wait_minutes),
        )

    @property
    def admission_rules(self) -> AdmissionRules:
        return AdmissionRules(
            max_concurrent=self.settings.max_concurrent_drills,
            reserve_instances=self.settings.quota_reserve_instances,
            reserve_storage_gib=self.settings.quota_reserve_storage_gib,
            drill_deadline=timedelta(minutes=self.settings.drill_deadline_minutes),
        )


def run_id_for(idempotency_key: str) -> str:
    """One drill per snapshot (or per request): the run id is derived from what triggered it."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def _policy_for(source_db: str, ctx: DrillContext) -> DrillPolicy:
    if isinstance(ctx.policies, PolicyError):
        # Raised, not rejected: the event is retried, then kept in the dead-letter queue (and
        # alarmed on) until the policy is fixed and the event replayed.
        raise ConfigError(f"invalid drill policy, no drill started:\n{ctx.policies}")
    return ctx.policies.for_database(source_db)


def _listed_opt_in(request: DrillRequest, settings: DrillSettings) -> str | None:
    """For an AWS Backup recovery point: refused unless it is in the stack's Region; why the
    configuration opts it in (its vault or plan is listed), None when only the tag can."""
    if request.recovery_point is None:
        return None
    check_region(request.recovery_point, settings)
    return listed_opt_in(request.recovery_point, settings)


def _backup_under_test(
    request: DrillRequest, ctx: DrillContext, *, opted_in: bool = False
) -> tuple[SnapshotInfo, str, PointInTimeRestore | None]:
    """The snapshot a request drills and its database; for a point-in-time drill, the source
    described as its backup and the time it is restored to. ``opted_in``: opted in otherwise
    than by the tag (an AWS Backup recovery point's listed vault or plan)."""
    settings = ctx.settings
    opt_in_tag = (settings.opt_in_tag_key, settings.opt_in_tag_value)
    if request.point_in_time:
        if request.source_db is None or request.snapshot_id is not None:
            raise DrillRejected(
                "a point-in-time drill names one DB instance or cluster and no snapshot"
            )
        policy = _policy_for(request.source_db, ctx)
        snapshot, point_in_time = restorable_snapshot(
            ctx.rds, request.source_db, opt_in_tag, policy, cluster=request.cluster
        )
        return snapshot, request.source_db, point_in_time
    eligible = eligible_snapshot(
        ctx.rds,
        source_db=request.source_db,
        snapshot_id=request.snapshot_id,
        opt_in_tag=opt_in_tag,
        event_tags=request.event_tags,
        cluster=request.cluster,
        opted_in=opted_in,
    )
    return eligible.snapshot, eligible.source_db, None


def start_drill(request: DrillRequest, ctx: DrillContext) -> RunRecord:
    """Create the run for this request (once) and set it going. Raises DrillRejected if it can't."""
    settings = ctx.settings
    listed = _listed_opt_in(request, settings)
    snapshot, source_db, point_in_time = _backup_under_test(
        request, ctx, opted_in=listed is not None
    )
    recovery_point = _opted_in_recovery_point(request, listed, source_db, settings)
    policy = _policy_for(source_db, ctx)
    now = ctx.clock()
    run_id = run_id_for(_idempotency_key(request, snapshot))
    drill_name = f"{INSTANCE_PREFIX}{run_id}"
    # A point-in-time drill's schedule is its own (pitr.every, by its idempotency key).
    scheduled = not request.point_in_time and (
        policy.every is not None or policy.window is not None
    )
    if scheduled and ctx.runs.get(run_id) is None:
        # A repeated event of a drill already under way is not a snapshot to skip.
        _check_schedule(request, policy, source_db, snapshot.snapshot_id, run_id, now, ctx)
    last_passed = ctx.runs.last_passing(source_db)
    # Every drill starts QUEUED: its own deadline starts when it is admitted; until then its
    # deadline is the end of the maximum wait.
    instance_class, acu_range = _drill_class(request, policy, snapshot, ctx)
    run = RunRecord(
        run_id=run_id,
        source_db=source_db,
        snapshot=snapshot,
        instance_id=drill_name + CLUSTER_INSTANCE_SUFFIX if request.cluster else drill_name,
        cluster_id=drill_name if request.cluster else None,
        instance_class=instance_class,
        acu_range=acu_range,
        recovery_point=recovery_point,
        point_in_time=point_in_time,
        trigger=request.trigger,
        requested_by=request.requested_by,
        policy=policy.model_dump(mode="json"),
        created_at=now,
        state=RunState.QUEUED,
        queued_at=now,
        last_passed_at=last_passed.finished_at if last_passed is not None else None,
        deadline=now + timedelta(minutes=settings.max_queue_wait_minutes),
        password_parameter=f"{settings.password_parameter_prefix}/{run_id}",
        phases={RunState.QUEUED: PhaseTiming(started_at=now)},
    )
    if ctx.runs.create(run):
        # Once per drill: a repeated event or request finds the run below and counts nothing.
        ctx.on_started(run)
    else:
        existing = ctx.runs.get(run_id)
        assert existing is not None
        logger.info(
            "drill already exists for this trigger",
            extra={"run_id": run_id, "state": existing.state.value},
        )
        if existing.state not in (RunState.QUEUED, RunState.REQUESTED):
            return existing
        run = existing
    # The poll chain is the fallback for every RDS event that never comes.
    ctx.polls.schedule(run.run_id, settings.poll_delay_seconds)
    return advance_drill(run.run_id, ctx) or run


def _idempotency_key(request: DrillRequest, snapshot: SnapshotInfo) -> str:
    """One drill per snapshot, per AWS Backup recovery point, or per request."""
    if request.idempotency_key is not None:
        return request.idempotency_key
    if request.recovery_point is not None:
        return f"recovery-point:{request.recovery_point.recovery_point_arn}"
    return f"snapshot:{snapshot.snapshot_arn}"


def _opted_in_recovery_point(
    request: DrillRequest, listed: str | None, source_db: str, settings: DrillSettings
) -> RecoveryPoint | None:
    """The request's recovery point with why it is drilled (the eligibility check passed)."""
    if request.recovery_point is None:
        return None
    tag = f"{source_db} carries the tag {settings.opt_in_tag_key}={settings.opt_in_tag_value}"
    return request.recovery_point.model_copy(update={"opted_in_by": listed or tag})


def _drill_class(
    request: DrillRequest, policy: DrillPolicy, snapshot: SnapshotInfo, ctx: DrillContext
) -> tuple[str, tuple[float, float] | None]:
    """The drill instance's class and, for Aurora Serverless v2, the cluster's ACU range: the
    policy's serverless_v2 where RDS offers db.serverless for the snapshot's engine version,
    else the policy's class, else the smallest default."""
    if not request.cluster:
        return policy.instance_class or ctx.settings.drill_instance_class, None
    provisioned = policy.instance_class or AURORA_DEFAULT_INSTANCE_CLASS
    capacity = policy.serverless_v2
    if capacity is None or snapshot.engine_version is None:
        return provisioned, None
    offered = ctx.rds.offers_instance_class(
        snapshot.engine, snapshot.engine_version, SERVERLESS_V2_CLASS
    )
    if not offered:
        logger.warning(
            "Aurora Serverless v2 is not offered for this engine version; drilling provisioned",
            extra={"engine_version": snapshot.engine_version, "instance_class": provisioned},
        )
        return provisioned, None
    return SERVERLESS_V2_CLASS, (capacity.min_acu, capacity.max_acu)


def _check_schedule(
    request: DrillRequest,
    policy: DrillPolicy,
    source_db: str,
    snapshot_id: str,
    run_id: str,
    now: datetime,
    ctx: DrillContext,
) -> None:
    """Raises DrillNotDue (after telling ``on_skipped``) when the policy's schedule says an
    automated snapshot is not to be drilled now; a Drill Requested (on demand) always is."""
    on_demand = isinstance(request, RequestedDrill)
    wants_last = not on_demand and policy.every is not None
    last = ctx.runs.last_drill(source_db, excluding_run_id=run_id) if wants_last else None
    decision = schedule_decision(
        policy,
        now=now,
        last_drill_started=last.created_at if last is not None else None,
        on_demand=on_demand,
    )
    if not decision.due:
        skipped = DrillNotDue(source_db, snapshot_id, decision.why or "not due")
        ctx.on_skipped(skipped)
        raise skipped


def advance_drill(
    run_id: str,
    ctx: DrillContext,
    *,
    checker_outcome: CheckerOutcome | None = None,
    credentials_reset_event: bool = False,
) -> RunRecord | None:
    """Move the run forward as far as the real state allows. None if there is no such run."""
    run = ctx.runs.get(run_id)
    if run is None:
        logger.warning("no such drill", extra={"run_id": run_id})
        return None
    rules = ctx.rules
    for _ in range(MAX_STEPS_PER_ADVANCE):
        seen = Observation(
            now=ctx.clock(),
            instance=ctx.rds.describe_drill_instance(run.instance_id),
            cluster=ctx.rds.describe_drill_cluster(run.cluster_id) if run.cluster_id else None,
            checker_outcome=checker_outcome,
            credentials_reset_event=credentials_reset_event,
            previous_report=(
                ctx.runs.latest_report(run.source_db, excluding_run_id=run.run_id)
                if run.state is RunState.REPORTING and run.chain is None
                else None
            ),
        )
        step = decide(run, seen, rules)
        if run.state is RunState.QUEUED and step.is_wait:
            step = _admission_step(run, ctx, seen.now)
        if step.is_wait:
            break
        written = _admit(run, step, ctx) if step.lease else _carry_out(run, step, ctx)
        if written is None:
            # Another trigger moved this run first (or nothing to record): re-read and stop.
            return ctx.runs.get(run_id)
        run = written
        checker_outcome = None
        credentials_reset_event = False
    return run


def _admission_step(run: RunRecord, ctx: DrillContext, now: datetime) -> Step:
    """A queued run takes a free drill slot when it is its turn and the account keeps its reserve
    of RDS quota; otherwise it keeps waiting, with the reason recorded when it changes."""
    rules = ctx.admission_rules
    queued = [other for other in ctx.runs.active_runs() if other.state is RunState.QUEUED]
    chance = candidacy(run, queued, ctx.slots.leases(), rules, now)
    if chance.slot is None:
        return _waiting(run, chance.why, chance.detail)
    try:
        quotas = ctx.rds.account_quotas()
    except EffectRejected as refused:
        return _waiting(run, f"the RDS quotas could not be read: {refused}")
    shortfall = headroom_shortfall(
        quotas, rules, run.snapshot.allocated_storage_gib, cluster=run.is_cluster
    )
    if shortfall is not None:
        return _waiting(run, shortfall)
    # The admission's time is read after the slots were: a slot seen free was released before
    # this moment, so admission intervals in the records never overlap more than the cap
    # (the decision's `now` can predate a release it then saw).
    record, lease = admitted(run, chance.slot, ctx.clock(), rules)
    return Step(record=record, why=f"admitted on drill slot {lease.slot}", lease=lease)


def _waiting(run: RunRecord, why: str, detail: str = "") -> Step:
    logger.info("drill queued", extra={"run_id": run.run_id, "why": why, "detail": detail})
    # Recorded only when it changes: the report of a drill never admitted quotes it.
    if run.wait_reason == why:
        return Step(why=why)
    return Step(record=amend(run, wait_reason=why), why=why)


def _release_slot(before: RunRecord, after: RunRecord, ctx: DrillContext) -> None:
    """A run whose instance is gone (or that went back to the queue) frees its slot, and the
    first queued drill is woken at once rather than at its next poll."""
    lease = after.lease
    if lease is None or before.state not in SLOT_HOLDING_STATES:
        return
    if after.state in SLOT_HOLDING_STATES:
        return
    try:
        ctx.slots.release(lease)
        waiting = queue_order(ctx.runs.active_runs(), ctx.clock())
        if waiting:
            ctx.polls.schedule(waiting[0].run_id, 1)
    except Exception:
        # The sweeper reclaims the slot of a run that no longer holds an instance.
        logger.exception("drill slot not released", extra={"run_id": after.run_id})


def _admit(run: RunRecord, step: Step, ctx: DrillContext) -> RunRecord | None:
    """The admission's record and its lease, written together or not at all."""
    assert step.lease is not None and step.record is not None
    log = {"run_id": run.run_id, "why": step.why, "slot": step.lease.slot}
    if not ctx.slots.admit(step.record, run.version, step.lease, ctx.clock()):
        logger.info("lost the race for a drill slot", extra=log)
        return None
    logger.info("drill admitted", extra=log)
    return step.record


def _carry_out(run: RunRecord, step: Step, ctx: DrillContext) -> RunRecord | None:
    log = {"run_id": run.run_id, "state": run.state.value, "why": step.why}
    if step.claim is not None:
        if not ctx.runs.replace(step.claim, expected_version=run.version):
            logger.info("another trigger claimed this step", extra=log)
            return None
        run = step.claim
    facts: dict[str, Any] = {}
    if step.effect is not None:
        try:
            facts = _perform(step.effect, run, ctx)
        except EffectRejected as rejected:
            logger.error(
                "request refused",
                extra={**log, "effect": step.effect.value, "error": str(rejected)},
            )
            step = on_effect_rejected(
                run, step.effect, str(rejected), ctx.clock(), code=rejected.code, rules=ctx.rules
            )
            if step.effect is not None:
                _perform(step.effect, run, ctx)
    if step.record is None:
        return None
    if step.record is step.claim:
        return step.record  # written before the effect
    record = step.record.model_copy(update=facts) if facts else step.record
    if not ctx.runs.replace(record, expected_version=run.version):
        logger.info("lost the race for this transition", extra=log)
        return None
    _release_slot(run, record, ctx)
    effect = step.effect.value if step.effect else None
    logger.info("drill advanced", extra={**log, "to": record.state.value, "effect": effect})
    if record.is_finished:
        ctx.on_finished(record)
    return record


def _perform(effect: Effect, run: RunRecord, ctx: DrillContext) -> dict[str, Any]:
    """Carry out the effect; returns what it learned that the next record must hold."""
    if effect is Effect.RESTORE:
        _restore(run, ctx)
    elif effect is Effect.CREATE_INSTANCE:
        ctx.rds.create_cluster_instance(run)
    elif effect is Effect.RESET_PASSWORD:
        _reset_password(run, ctx)
    elif effect is Effect.INVOKE_CHECKER:
        ctx.checker.invoke(_checker_payload(run, ctx))
    elif effect is Effect.DELETE_INSTANCE:
        ctx.rds.delete_drill_instance(run.run_id, run.instance_id)
    elif effect is Effect.DELETE_CLUSTER:
        assert run.cluster_id is not None
        ctx.rds.delete_drill_cluster(run.run_id, run.cluster_id)
    elif effect is Effect.PUBLISH:
        return _publish(run, ctx)
    return {}


def _restore(run: RunRecord, ctx: DrillContext) -> None:
    try:
        if run.is_cluster:
            ctx.rds.restore_cluster(run)
        else:
            ctx.rds.restore(run)
    except EffectRejected as rejected:
        if run.recovery_point is None or rejected.code in CAPACITY_CODES:
            raise
        # Whether RDS restores AWS Backup's snapshots directly is not documented: a refusal
        # says so, and where the alternative is described.
        raise restore_refused(rejected, run) from None


def _reset_password(run: RunRecord, ctx: DrillContext) -> None:
    password = ctx.vault.get_or_create(_password_name(run))
    if run.is_cluster:
        # Aurora: the master password belongs to the cluster (ModifyDBCluster).
        ctx.rds.set_cluster_master_password(run, password)
    else:
        ctx.rds.set_master_password(run, password)


def _password_name(run: RunRecord) -> str:
    assert run.password_parameter is not None
    return run.password_parameter


def _checker_target(run: RunRecord, ctx: DrillContext) -> CheckerTarget:
    """Where the checker connects: the instance's endpoint, or an Aurora cluster's writer
    endpoint."""
    found: InstanceView | ClusterView | None
    if run.cluster_id is not None:
        found = ctx.rds.describe_drill_cluster(run.cluster_id)
        name = run.cluster_id
    else:
        found = ctx.rds.describe_drill_instance(run.instance_id)
        name = run.instance_id
    if found is None or found.address is None:
        raise EffectRejected("InstanceNotReady", f"{name} has no endpoint")
    return CheckerTarget(
        host=found.address,
        port=found.port or 5432,
        user=found.master_username or run.snapshot.master_username,
        database=found.db_name or "postgres",
    )


def _checker_payload(run: RunRecord, ctx: DrillContext) -> dict[str, Any]:
    previous = _last_passing(run, ctx)
    # The password itself never travels in this payload (the check runner reads it from the
    # vault): async invoke payloads come back inside destination records.
    request = CheckRunRequest(
        run_id=run.run_id,
        password_parameter=_password_name(run),
        target=_checker_target(run, ctx),
        policy=run.policy,
        baseline=previous.checks.baseline if previous and previous.checks else None,
        baseline_key=previous.baseline_key if previous else None,
        snapshot_time=run.snapshot.snapshot_created_at,
        vcpus=vcpus_of(run.instance_class),
        deadline=run.deadline,
        round=run.check_round,
        attempt=run.check_attempt,
        source_db=run.source_db,
    )
    return request.to_payload()


def _last_passing(run: RunRecord, ctx: DrillContext) -> RunRecord | None:
    """The last passing drill of this database whose backup is not newer than this one's: its
    baseline is what this one compares with (only passing drills set one)."""
    previous = ctx.runs.last_passing(run.source_db, data_as_of=run.snapshot.snapshot_created_at)
    if previous is None or previous.run_id == run.run_id:
        return None
    return previous


def vcpus_of(instance_class: str) -> int:
    """vCPUs of an RDS instance class (db.<family>.<size>), for the checker's parallelism."""
    size = instance_class.rsplit(".", 1)[-1]
    if size in ("micro", "small", "medium", "large"):
        return 2
    if size == "xlarge":
        return 4
    multiple = size.removesuffix("xlarge")
    return 4 * int(multiple) if multiple.isdigit() else 2


def _publish(run: RunRecord, ctx: DrillContext) -> dict[str, Any]:
    """The JSON report (the evidence), the HTML rendering of it beside it, then the password is
    forgotten and Drill Finished announced. Every part is a pure function of the claimed run,
    so a repeated publish writes the same bytes."""
    bucket = ctx.settings.report_bucket
    key = report_key(run)
    document = build_report(
        run, bucket=bucket, key=key, poll_delay_seconds=ctx.settings.poll_delay_seconds
    )
    body = report_bytes(document)
    digest = hashlib.sha256(body).hexdigest()
    ctx.reports.put(key, body, REPORT_CONTENT_TYPE)
    ctx.reports.put(html_report_key(key), _html_page(document, digest), HTML_CONTENT_TYPE)
    ctx.vault.delete(_password_name(run))
    ctx.events.drill_finished(
        finished_event_detail(
            run,
            bucket=bucket,
            key=key,
            report_sha256=digest,
            estimated_cost_usd=document["cost"]["total_usd"],
        )
    )
    return {"report_key": key, "report_sha256": digest}


def _html_page(document: dict[str, Any], digest: str) -> bytes:
    """The readable page; should rendering ever fail, the report as escaped text instead: the
    page is a convenience, and must never hold back the evidence or the teardown's end."""
    try:
        return render_report_html(document, report_sha256=digest).encode("utf-8")
    except Exception:
        logger.exception("HTML report not rendered; storing the plain page")
        text = html.escape(report_bytes(document).decode("ascii"))
        return (
            f"<!doctype html><meta charset=utf-8><title>drill report</title>"
            f"<p>SHA-256 of the JSON report: {digest}</p><pre>{text}</pre>"
        ).encode()


def poll_drill(run_id: str, ctx: DrillContext) -> RunRecord | None:
    """The delayed poll: advance, and keep polling until the run is finished."""
    run = advance_drill(run_id, ctx)
    if run is not None and not run.is_finished:
        ctx.polls.schedule(run_id, ctx.settings.poll_delay_seconds)
    return run


@dataclass(frozen=True)
class SweepSummary:
    runs_advanced: int
    runs_timed_out: int
    orphans_deleted: list[str]
    runs_failed: int = 0
    slots_reclaimed: list[Lease] = field(default_factory=list)
    # run ids of the scheduled point-in-time drills this sweep started
    point_in_time_started: list[str] = field(default_factory=list)


def _point_in_time_every(policy: DrillPolicy, now: datetime) -> float | None:
    """The point-in-time schedule's period when one is due to be considered now: the policy has
    ``pitr.every`` and, with a ``window``, now is inside it."""
    every = policy.pitr.every if policy.pitr is not None else None
    if every is None or (policy.window is not None and not policy.window.contains(now)):
        return None
    return every


def start_scheduled_point_in_time_drills(ctx: DrillContext) -> list[str]:
    """Start the point-in-time drill of every database whose policy schedules one (``pitr:
    every``) and that has none in the current window; the run ids started. A database that
    cannot be drilled is logged and skipped: the next sweep considers it again."""
    if isinstance(ctx.policies, PolicyError):
        return []
    started: list[str] = []
    now = ctx.clock()
    for source_db, policy in sorted(ctx.policies.databases.items()):
        every = _point_in_time_every(policy, now)
        if every is None:
            continue
        key = point_in_time_key(source_db, every, now)
        if ctx.runs.get(run_id_for(key)) is not None:
            continue
        try:
            # The policy names DB instances and Aurora clusters alike: a name RDS knows as no
            # DB instance is tried as a cluster.
            request = DrillRequest(
                source_db=source_db,
                idempotency_key=key,
                trigger=POINT_IN_TIME_TRIGGER,
                point_in_time=True,
                cluster=ctx.rds.describe_restorable_source(source_db) is None,
            )
            run = start_drill(request, ctx)
        except DrillRejected as rejected:
            logger.warning(
                "scheduled point-in-time drill not started",
                extra={"source_db": source_db, "reason": str(rejected)},
            )
            continue
        except Exception:
            # One database's failing call (a throttle) must not keep the others' drills from
            # starting; the next sweep tries it again (its window's key is still unused).
            logger.exception(
                "scheduled point-in-time drill not started", extra={"source_db": source_db}
            )
            continue
        started.append(run.run_id)
    return started


def reclaim_slots(ctx: DrillContext) -> list[Lease]:
    """Take back the drill slots whose holder died without releasing them: its run finished, went
    back to the queue or is missing, or the lease expired."""
    reclaimed: list[Lease] = []
    for lease in ctx.slots.leases():
        why = reclaim_reason(lease, ctx.runs.get(lease.run_id), ctx.clock())
        if why is not None and ctx.slots.release(lease):
            logger.warning(
                "drill slot reclaimed",
                extra={"slot": lease.slot, "run_id": lease.run_id, "why": why},
            )
            reclaimed.append(lease)
    return reclaimed


def _sweep_order(runs: list[RunRecord], now: datetime) -> list[RunRecord]:
    """Drills under way first (their teardown frees slots), then the queue in its fair order."""
    queued = queue_order(runs, now)
    waiting = {run.run_id for run in queued}
    return [run for run in runs if run.run_id not in waiting] + queued


def _delete_orphan_clusters(ctx: DrillContext) -> list[str]:
    """Aurora drill clusters (carrying this stack's ownership tag) that no live run owns. Their
    instances go first (the orphaned instances' loop); a cluster is deleted once it has none
    left, by this sweep or a later one."""
    deleted: list[str] = []
    for cluster in ctx.rds.list_drill_clusters():
        run_id = cluster.tags.get(RUN_ID_TAG, "")
        owner = ctx.runs.get(run_id) if run_id else None
        if (owner is not None and not owner.is_finished) or cluster.status == "deleting":
            continue
        if cluster.members:
            continue  # its drill instances are orphans too: deleted above
        logger.warning(
            "deleting orphaned drill cluster",
            extra={"cluster_id": cluster.cluster_id, "run_id": run_id or None},
        )
        try:
            ctx.rds.delete_drill_cluster(run_id, cluster.cluster_id)
        except Exception:
            # A cluster RDS will not delete yet (still creating, or its instance still leaving):
            # the next sweep tries again; the other orphans still get their turn.
            logger.exception(
                "orphaned drill cluster not deleted", extra={"cluster_id": cluster.cluster_id}
            )
            continue
        deleted.append(cluster.cluster_id)
    return deleted


def sweep(ctx: DrillContext) -> SweepSummary:
    """Reclaim dead holders' drill slots, enforce every deadline (and the queue's maximum wait),
    admit queued drills into free slots, and delete drill instances that no live run owns."""
    reclaimed = reclaim_slots(ctx)
    advanced = timed_out = failed = 0
    for run in _sweep_order(ctx.runs.active_runs(), ctx.clock()):
        try:
            after = advance_drill(run.run_id, ctx)
        except Exception:
            # One run's failing call (a throttle, an S3 outage for its report) must not stop the
            # sweep: every other deadline and every orphan still gets its turn. The next sweep
            # (and the run's own triggers) try this run again.
            logger.exception("the sweep could not advance a drill", extra={"run_id": run.run_id})
            failed += 1
            continue
        advanced += 1
        if run.verdict is None and after is not None and after.verdict is Verdict.TIMED_OUT:
            timed_out += 1

    orphans: list[str] = []
    for instance in ctx.rds.list_drill_instances():
        run_id = instance.tags.get(RUN_ID_TAG, "")
        owner = ctx.runs.get(run_id) if run_id else None
        if owner is not None and not owner.is_finished:
            continue
        if instance.status == "deleting":
            continue
        logger.warning(
            "deleting orphaned drill instance",
            extra={"instance_id": instance.instance_id, "run_id": run_id or None},
        )
        ctx.rds.delete_drill_instance(run_id, instance.instance_id)
        orphans.append(instance.instance_id)
    orphans += _delete_orphan_clusters(ctx)
    return SweepSummary(
        runs_advanced=advanced,
        runs_timed_out=timed_out,
        orphans_deleted=orphans,
        runs_failed=failed,
        slots_reclaimed=reclaimed,
        point_in_time_started=start_scheduled_point_in_time_drills(ctx),
    )
