"""Checks in rounds (the policy's ``rounds``): levels 2 and 3 of a database larger than one
checker invocation can read, as a stored plan run over as many invocations as it takes.

Round 0: the check runner invokes the checker in ``plan`` mode. It runs every check but the
counts and amcheck's verifications, plans those (:mod:`restoredrill.checksuite.plan`) and runs
as many of the plan's tasks as its time allows. The runner stores the plan, the early results
and the progress in the work store and answers with a :class:`RoundAnswer`, which the async
destination brings to ``advance``; ``advance`` records it and invokes the runner for the next
round (a fresh trigger, never a loop inside one invocation). Round n: the runner loads the work,
claims the round (a round triggered twice runs once), splits the pending tasks into up to
``parallelism`` shares, invokes one checker per share at once in ``tasks`` mode, adds what they
did to the progress, stores it and answers again. When nothing is pending, or the rounds, the
policy's ``time_budget`` or the drill's deadline run out, the runner answers with the final
:class:`CheckerAnswer`, exactly as a single checker invocation would.

A share whose checker never answered (killed, timed out, garbage) charges each of its
unfinished tasks one of its two attempts; a round whose runner never answered is asked again
by ``advance`` once, and the new attempt charges the lost attempt's tasks the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from restoredrill.checksuite.coverage import (
    Coverage,
    VerificationHistory,
    coverage_of,
    rotation_order,
    within_budget,
)
from restoredrill.checksuite.plan import (
    DatabasePlan,
    PlannedTask,
    PlanProgress,
    TaskOutcome,
    plan_results,
    run_plan_tasks,
)
from restoredrill.checksuite.results import CheckResult, CheckStatus, summarize, verdict_of
from restoredrill.checksuite.suite import default_parallelism, plan_check_suite
from restoredrill.ports.baseline import Baseline
from restoredrill.ports.gateways import CheckerFailed, CheckWorkStore, SyncChecker
from restoredrill.ports.messages import (
    CHECK_RESULT_LIMIT,
    CheckerAnswer,
    CheckerRequest,
    CheckRunRequest,
    CheckSuiteResult,
    RoundAnswer,
    SuiteVerdict,
    json_size,
)
from restoredrill.ports.payload_transport import pack_document, unpack_document
from restoredrill.ports.policy import DrillPolicy

__all__ = [
    "CheckWork",
    "RoundShare",
    "run_check_round",
    "run_planning_checker",
    "run_share_checker",
    "shares_of",
]

# Below this, an invocation starts no task: it could not finish one.
MIN_TASK_SECONDS = 0.2


class CheckWork(BaseModel):
    """One run's checks in rounds, as stored between rounds."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    started_at: datetime
    early: CheckSuiteResult = Field(description="Every check but the planned ones.")
    previous: Baseline | None = None
    plans: list[DatabasePlan] = Field(default_factory=list)
    progress: dict[str, PlanProgress] = Field(default_factory=dict)
    rounds: int = Field(default=0, ge=0, description="Rounds whose outcomes are in `progress`.")
    invocations: int = Field(default=0, ge=0)
    last_round_seconds: float = Field(default=0, ge=0)
    # coverage: rotate - the tasks left for later drills, and each database's history as it was
    # when this drill began.
    deferred: dict[str, list[str]] = Field(default_factory=dict)
    histories: dict[str, VerificationHistory] = Field(default_factory=dict)

    def progress_of(self, plan: DatabasePlan) -> PlanProgress:
        return self.progress.get(plan.database) or PlanProgress()

    def pending(self) -> list[tuple[str, PlannedTask]]:
        return [
            (plan.database, task)
            for plan in self.plans
            for task in self.progress_of(plan).pending(plan)
            if task.id not in self.deferred.get(plan.database, ())
        ]

    def complete(self) -> bool:
        return not self.pending()

    def tally(self) -> tuple[int, int, int, int]:
        """Tasks done, tasks planned, bytes done, bytes planned."""
        tasks = [task for plan in self.plans for task in plan.tasks]
        done = [
            task
            for plan in self.plans
            for task in plan.tasks
            if task.id in self.progress_of(plan).done
        ]
        return len(done), len(tasks), sum(t.bytes for t in done), sum(t.bytes for t in tasks)

    def plan_of(self, database: str) -> DatabasePlan:
        for plan in self.plans:
            if plan.database == database:
                return plan
        raise KeyError(database)

    def with_outcomes(self, outcomes: dict[str, list[TaskOutcome]], round_: int) -> CheckWork:
        """The progress with a round's outcomes; a problem says which round found it."""
        progress = dict(self.progress)
        for database, found in outcomes.items():
            plan = self.plan_of(database)
            stamped = [o if o.status is CheckStatus.PASS else _in_round(o, round_) for o in found]
            progress[database] = self.progress_of(plan).after_round(plan, stamped)
        return self.model_copy(update={"progress": progress})

    def with_lost(self, claimed: dict[str, list[str]], why: str) -> CheckWork:
        progress = dict(self.progress)
        for database, task_ids in claimed.items():
            plan = self.plan_of(database)
            progress[database] = self.progress_of(plan).after_lost_round(plan, task_ids, why)
        return self.model_copy(update={"progress": progress})


def _in_round(outcome: TaskOutcome, round_: int) -> TaskOutcome:
    return outcome.model_copy(update={"evidence": outcome.evidence | {"round": round_}})


class RoundShare(BaseModel):
    """One checker invocation's part of a round: per database, the plan cut to its tasks."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=0)
    plans: list[DatabasePlan]

    def task_ids(self) -> dict[str, list[str]]:
        return {plan.database: [task.id for task in plan.tasks] for plan in self.plans}


class ShareAnswer(BaseModel):
    """The checker's answer to a share (``tasks`` mode) or to round 0 (``plan`` mode, with the
    early results and the plans)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    outcomes: dict[str, list[TaskOutcome]] = Field(default_factory=dict)
    early: CheckSuiteResult | None = None
    plans: list[DatabasePlan] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the checker's side
# ---------------------------------------------------------------------------------------------


def run_planning_checker(request: CheckerRequest, seconds: float) -> dict[str, Any]:
    """Round 0 in the checker: the early checks and the plans, then the plan's tasks for the
    rest of ``seconds`` (at most the policy's ``tasks_per_invocation``)."""
    deadline = time.monotonic() + seconds
    policy = request.policy.model_copy(update={"time_budget": max(seconds, MIN_TASK_SECONDS)})
    early, plans = plan_check_suite(
        request.target,
        policy,
        baseline=request.baseline,
        snapshot_time=request.snapshot_time,
        vcpus=request.vcpus,
        install_amcheck=request.install_amcheck,
    )
    # Which tasks a rotating drill takes depends on the history, which only the runner reads.
    first = 0 if policy.coverage == "rotate" else policy.rounds.tasks_per_invocation
    share = RoundShare(round=0, plans=_first_tasks(plans, first))
    jobs = default_parallelism(policy, request.vcpus)
    outcomes = _run_share(request, share, deadline, jobs)
    answer = ShareAnswer(run_id=request.run_id, outcomes=outcomes, early=early, plans=plans)
    return pack_document(answer.model_dump(mode="json"), run_id=request.run_id)


def run_share_checker(request: CheckerRequest, seconds: float) -> dict[str, Any]:
    """Round n in the checker: the share's tasks, over one connection, for ``seconds``."""
    try:
        share = RoundShare.model_validate(request.work or {})
    except ValidationError as error:
        raise CheckerFailed(
            f"the round's share is malformed: {len(error.errors())} problem(s)"
        ) from None
    outcomes = _run_share(request, share, time.monotonic() + seconds, jobs=1)
    answer = ShareAnswer(run_id=request.run_id, outcomes=outcomes)
    return pack_document(answer.model_dump(mode="json"), run_id=request.run_id)


def _run_share(
    request: CheckerRequest, share: RoundShare, deadline: float, jobs: int
) -> dict[str, list[TaskOutcome]]:
    outcomes: dict[str, list[TaskOutcome]] = {}
    for plan in share.plans:
        seconds = deadline - time.monotonic()
        if seconds < MIN_TASK_SECONDS or not plan.tasks:
            continue
        outcomes[plan.database] = run_plan_tasks(
            request.target, plan, plan.tasks, request.policy, seconds=seconds, jobs=jobs
        )
    return outcomes


def _first_tasks(plans: Sequence[DatabasePlan], limit: int) -> list[DatabasePlan]:
    """The plans cut to their first ``limit`` tasks in all, the most expensive first."""
    ordered = sorted(
        ((plan.database, task) for plan in plans for task in plan.tasks),
        key=lambda item: -item[1].cost,
    )[:limit]
    return _as_plans(plans, ordered)


def _as_plans(
    plans: Sequence[DatabasePlan], chosen: Sequence[tuple[str, PlannedTask]]
) -> list[DatabasePlan]:
    by_database: dict[str, list[PlannedTask]] = {}
    for database, task in chosen:
        by_database.setdefault(database, []).append(task)
    return [
        plan.model_copy(update={"tasks": by_database[plan.database], "relations": []})
        for plan in plans
        if plan.database in by_database
    ]


def shares_of(work: CheckWork, parallelism: int, per_share: int, round_: int) -> list[RoundShare]:
    """The pending tasks in up to ``parallelism`` shares of at most ``per_share`` tasks, the most
    expensive first, each task to the share with the least work so far (longest processing time
    first: the shares end close together)."""
    pending = sorted(work.pending(), key=lambda item: -item[1].cost)
    count = max(1, min(parallelism, len(pending)))
    loads = [0.0] * count
    chosen: list[list[tuple[str, PlannedTask]]] = [[] for _ in range(count)]
    for database, task in pending:
        open_shares = [i for i in range(count) if len(chosen[i]) < per_share]
        if not open_shares:
            break
        lightest = min(open_shares, key=lambda i: loads[i])
        chosen[lightest].append((database, task))
        loads[lightest] += task.cost
    return [
        RoundShare(round=round_, plans=_as_plans(work.plans, tasks)) for tasks in chosen if tasks
    ]


# ---------------------------------------------------------------------------------------------
# the check runner's side
# ---------------------------------------------------------------------------------------------


def run_check_round(
    request: CheckRunRequest,
    password: str,
    checker: SyncChecker,
    store: CheckWorkStore,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """One round of a run's checks in rounds: a :class:`RoundAnswer` while the plan goes on,
    the final :class:`CheckerAnswer` when it ends."""
    started = time.monotonic()
    base = CheckerRequest.for_run(request, password)
    if request.round == 0:
        if not store.claim(request.run_id, 0, request.attempt, {}):
            return _duplicate(request)
        work = _plan_round(base, checker, clock)
        if base.policy.coverage == "rotate":
            work = _rotate(work, store, request.source_db, base.policy)
    else:
        work = _load(store, request.run_id)
        work = _charge_lost_attempt(work, store, request)
        parallelism = default_parallelism(base.policy, request.vcpus)
        shares = shares_of(
            work, parallelism, base.policy.rounds.tasks_per_invocation, request.round
        )
        claimed: dict[str, list[str]] = {}
        for share in shares:
            for database, ids in share.task_ids().items():
                claimed.setdefault(database, []).extend(ids)
        if not store.claim(request.run_id, request.round, request.attempt, claimed):
            return _duplicate(request)
        work = _tasks_round(base, shares, work, checker)
    work = work.model_copy(
        update={
            "rounds": request.round + 1,
            "last_round_seconds": time.monotonic() - started,
        }
    )
    store.save(request.run_id, work.model_dump(mode="json"))
    if _ends(work, base.policy, request, clock()):
        final = final_answer(work, base.policy, clock(), store, request.source_db)
        return keep_baseline(final, store, request.source_db).model_dump(mode="json")
    done, total, bytes_done, bytes_total = work.tally()
    return RoundAnswer(
        run_id=request.run_id,
        round=request.round,
        attempt=request.attempt,
        tasks_done=done,
        tasks_total=total,
        bytes_done=bytes_done,
        bytes_total=bytes_total,
    ).model_dump(mode="json")


def _duplicate(request: CheckRunRequest) -> dict[str, Any]:
    return RoundAnswer(
        run_id=request.run_id, round=request.round, attempt=request.attempt, duplicate=True
    ).model_dump(mode="json")


def _load(store: CheckWorkStore, run_id: str) -> CheckWork:
    document = store.load(run_id)
    if document is None:
        raise CheckerFailed("the run's check plan is gone from the work store")
    try:
        return CheckWork.model_validate(document)
    except ValidationError:
        raise CheckerFailed("the run's stored check plan is unreadable") from None


def _plan_round(
    base: CheckerRequest, checker: SyncChecker, clock: Callable[[], datetime]
) -> CheckWork:
    started_at = clock()
    reply = checker.check({**base.to_payload(), "mode": "plan"})
    answer = _share_answer(reply, base.run_id)
    if answer.early is None:
        raise CheckerFailed("the checker's plan came back without its early results")
    work = CheckWork(
        run_id=base.run_id,
        started_at=started_at,
        early=answer.early,
        previous=base.baseline,
        plans=answer.plans,
        invocations=1,
    )
    return work.with_outcomes(answer.outcomes, 0)


def _rotate(
    work: CheckWork, store: CheckWorkStore, source_db: str | None, policy: DrillPolicy
) -> CheckWork:
    """``coverage: rotate``: this drill takes the ranges verified longest ago (never verified
    first) up to its budget; the others are deferred to later drills."""
    histories = {plan.database: _history(store, source_db, plan.database) for plan in work.plans}
    budget = (policy.rounds.budget_mib or 0) << 20
    deferred: dict[str, list[str]] = {}
    for plan in work.plans:
        ordered = rotation_order(plan.tasks, histories[plan.database])
        share = budget * plan.total_bytes // max(1, _total_bytes(work)) if budget else None
        chosen = {t.id for t in within_budget(ordered, share)} if share is not None else None
        if chosen is not None:
            deferred[plan.database] = [t.id for t in plan.tasks if t.id not in chosen]
    return work.model_copy(update={"histories": histories, "deferred": deferred})


def _total_bytes(work: CheckWork) -> int:
    return sum(plan.total_bytes for plan in work.plans)


def _history(store: CheckWorkStore, source_db: str | None, database: str) -> VerificationHistory:
    document = store.load_coverage(source_db or "unknown", database)
    if document is None:
        return VerificationHistory()
    try:
        return VerificationHistory.model_validate(document)
    except ValidationError:
        # An unreadable history only costs the rotation its order: start a new one.
        return VerificationHistory()


def _share_answer(reply: dict[str, Any], run_id: str) -> ShareAnswer:
    try:
        answer = ShareAnswer.model_validate(unpack_document(reply))
    except (ValidationError, ValueError, KeyError, TypeError):
        raise CheckerFailed("the checker's answer to its share is malformed") from None
    if answer.run_id != run_id:
        raise CheckerFailed("the checker answered for another run")
    return answer


def _charge_lost_attempt(
    work: CheckWork, store: CheckWorkStore, request: CheckRunRequest
) -> CheckWork:
    """A new attempt at a round whose last attempt never answered: if that attempt's work was
    not stored, each task it had claimed has used an attempt."""
    if request.attempt == 0 or work.rounds > request.round:
        return work
    lost = store.claimed(request.run_id, request.round, request.attempt - 1)
    if not lost:
        return work
    return work.with_lost(lost, "the checks stopped twice while it ran (its round was lost)")


def _tasks_round(
    base: CheckerRequest, shares: list[RoundShare], work: CheckWork, checker: SyncChecker
) -> CheckWork:
    def ask(share: RoundShare) -> ShareAnswer | str:
        payload = {**base.to_payload(), "mode": "tasks", "work": share.model_dump(mode="json")}
        try:
            return _share_answer(checker.check(payload), base.run_id)
        except CheckerFailed as failure:
            return str(failure)

    if not shares:
        return work
    with ThreadPoolExecutor(max_workers=len(shares)) as pool:
        replies = list(pool.map(ask, shares))
    for share, reply in zip(shares, replies, strict=True):
        if isinstance(reply, str):
            work = work.with_lost(share.task_ids(), f"its checker stopped twice: {reply}")
        else:
            work = work.with_outcomes(reply.outcomes, share.round)
    return work.model_copy(update={"invocations": work.invocations + len(shares)})


def _ends(work: CheckWork, policy: DrillPolicy, request: CheckRunRequest, now: datetime) -> bool:
    """Nothing pending, or no room for another round: the rounds allowed, the policy's time
    budget, or the drill's deadline (another round and the teardown must fit before it)."""
    if work.complete() or work.rounds >= policy.rounds.max_rounds:
        return True
    if (now - work.started_at).total_seconds() >= policy.time_budget:
        return True
    if request.deadline is None:
        return False
    return (request.deadline - now).total_seconds() < 2 * work.last_round_seconds


def final_answer(
    work: CheckWork,
    policy: DrillPolicy,
    now: datetime,
    store: CheckWorkStore | None = None,
    source_db: str | None = None,
) -> CheckerAnswer:
    """The checks' result as a single invocation would give it: the early results, then each
    database's counts and verifications from its plan's outcomes, and the rounds' summary
    (with ``coverage: rotate``, the coverage over recent drills, whose history it stores)."""
    checks = list(work.early.checks)
    baseline = work.early.baseline.model_copy(deep=True) if work.early.baseline else None
    for plan in work.plans:
        previous = work.previous.databases.get(plan.database) if work.previous else None
        results, counts = plan_results(
            plan, work.progress_of(plan), plan.catalog(), policy, previous
        )
        checks += [result.model_copy(update={"database": plan.database}) for result in results]
        if baseline is not None and plan.database in baseline.databases:
            baseline.databases[plan.database].row_counts = counts
    coverage = None
    if policy.coverage == "rotate":
        coverage = _record_coverage(work, policy, now, store, source_db)
    checks.append(_rounds_check(work, coverage))
    verdict = verdict_of(checks)
    if work.early.verdict is SuiteVerdict.ERROR and verdict is SuiteVerdict.PASSED:
        verdict = SuiteVerdict.ERROR
    result = work.early.model_copy(
        update={
            "verdict": verdict,
            "checks": checks,
            "finished_at": now,
            "duration_ms": (now - work.started_at).total_seconds() * 1000,
            "baseline": baseline,
            "complete": not any(c.status is CheckStatus.SKIPPED for c in checks),
            "summary": summarize(checks),
        }
    )
    return CheckerAnswer(run_id=work.run_id, result=result)


def keep_baseline(
    answer: CheckerAnswer, store: CheckWorkStore | None, source_db: str | None
) -> CheckerAnswer:
    """The answer with its baseline kept in the work store and named by key when it would not
    travel whole: the way back to ``advance`` (an async destination record, then a run record)
    holds 128 KB, a baseline of 20,000 tables several MB. A smaller one stays in the result (and
    so in the report, where ``restoredrill check --baseline`` reads it)."""
    baseline = answer.result.baseline
    if store is None or baseline is None:
        return answer
    if json_size(pack_document(answer.result.model_dump(mode="json"))) <= CHECK_RESULT_LIMIT:
        return answer
    key = store.save_baseline(
        source_db or "unknown", answer.run_id, baseline.model_dump(mode="json")
    )
    result = answer.result.model_copy(update={"baseline": None})
    return answer.model_copy(update={"result": result, "baseline_key": key})


def with_kept_baseline(request: CheckRunRequest, store: CheckWorkStore | None) -> CheckRunRequest:
    """The request with the last passing drill's baseline read back from the work store when
    only its key came (:func:`keep_baseline`); when it is gone, the drill says so."""
    if request.baseline is not None or request.baseline_key is None:
        return request
    document = store.load_baseline(request.baseline_key) if store is not None else None
    if document is None:
        why = (
            f"the last passing drill's baseline ({request.baseline_key}) is gone from the work "
            "bucket: this drill compares nothing with it"
        )
        return request.model_copy(update={"baseline_omitted": why})
    try:
        baseline = Baseline.model_validate(document)
    except ValidationError:
        why = f"the last passing drill's baseline ({request.baseline_key}) is unreadable"
        return request.model_copy(update={"baseline_omitted": why})
    return request.model_copy(update={"baseline": baseline})


def _record_coverage(
    work: CheckWork,
    policy: DrillPolicy,
    now: datetime,
    store: CheckWorkStore | None,
    source_db: str | None,
) -> Coverage:
    """Each database's history with this drill's verifications, stored for the next drill, and
    the coverage of all of them together."""
    window = timedelta(days=policy.max_days_full_coverage)
    tasks = [task for plan in work.plans for task in plan.tasks]
    combined = PlanProgress()
    merged = VerificationHistory()
    for plan in work.plans:
        progress = work.progress_of(plan)
        history = work.histories.get(plan.database, VerificationHistory())
        after = history.after(plan.tasks, progress, now)
        if store is not None:
            store.save_coverage(
                source_db or "unknown", plan.database, after.model_dump(mode="json")
            )
        combined = combined.model_copy(update={"done": combined.done | progress.done})
        merged = VerificationHistory(verified_at=merged.verified_at | after.verified_at)
    return coverage_of(tasks, combined, merged, now=now, window=window)


def _rounds_check(work: CheckWork, coverage: Coverage | None) -> CheckResult:
    done, total, bytes_done, bytes_total = work.tally()
    pct = 100.0 if bytes_total == 0 else round(100 * bytes_done / bytes_total, 1)
    message = (
        f"{done} of {total} planned task(s), {pct}% of the planned bytes, in {work.rounds} "
        f"round(s) of {work.invocations} checker invocation(s)"
    )
    deferred = sum(len(ids) for ids in work.deferred.values())
    complete = not work.pending()
    if not complete:
        message += ": the rest was not verified (rounds, time budget or deadline ran out)"
    elif deferred:
        message += f"; {deferred} task(s) left to later drills (coverage: rotate)"
    evidence: dict[str, Any] = {
        "rounds": work.rounds,
        "invocations": work.invocations,
        "tasks_done": done,
        "tasks_planned": total,
        "tasks_deferred": deferred,
        "bytes_verified": bytes_done,
        "bytes_planned": bytes_total,
        "verified_pct": pct,
    }
    if coverage is not None:
        oldest = coverage.oldest_verification
        message += (
            f"; {coverage.cumulative_pct}% verified within {coverage.window_days:g} days"
            + (f", oldest range verified {oldest.isoformat()}" if oldest else "")
            + (
                f", {coverage.never_verified} range(s) never verified"
                if coverage.never_verified
                else ""
            )
        )
        evidence["coverage"] = coverage.model_dump(mode="json")
    return CheckResult(
        name="check_rounds",
        level=2,
        status=CheckStatus.PASS if complete else CheckStatus.WARN,
        message=message,
        evidence=evidence,
    )
