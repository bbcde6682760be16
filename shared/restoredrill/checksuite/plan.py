"""A check plan: levels 2 and 3 of a database of any size as tasks small enough for one checker
invocation each, so that a volume larger than one invocation can read is verified in rounds.

On RDS a restored volume is loaded lazily, block by block: reading a 500 GiB database takes
hours, and one checker invocation has at most 15 minutes. The plan cuts the work into:

- heap verification of block ranges (``verify_heapam(rel, startblock => a, endblock => b)``);
- exact row counts of the same block ranges (TID range scans, ``ctid >= '(a,0)' AND ctid <
  '(b,0)'``, PostgreSQL 14 and later; a whole table per task before that);
- ``bt_index_check`` of one index per task (an index cannot be checked in parts).

The plan is data (pydantic): it is computed once, stored where any later invocation can read it,
and every invocation runs some of its tasks (:func:`run_plan_tasks`) and hands back one
:class:`TaskOutcome` each. :class:`PlanProgress` (pure) keeps what is done and gives a task that
did not finish one more attempt; :func:`plan_results` turns the outcomes into the same
``row_counts``, ``amcheck_heap`` and ``amcheck_btree`` results as the unsplit suite, naming the
relation and the block range of every problem.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from restoredrill.checksuite.connection import CheckConnection, classify_error, connect
from restoredrill.checksuite.database_catalog import (
    AmcheckTarget,
    AmcheckTargets,
    DatabaseCatalog,
    Relation,
    read_amcheck_targets,
)
from restoredrill.checksuite.families.data import (
    SMALL_RELATION_BYTES,
    batched,
    row_count_check,
)
from restoredrill.checksuite.families.physical import (
    BTREE_COST,
    HEAP_COST,
    AmcheckSetup,
    amcheck_results,
    ensure_amcheck,
)
from restoredrill.checksuite.results import (
    CheckResult,
    CheckStatus,
    ConnectionTarget,
    worst_status,
)
from restoredrill.checksuite.sql import (
    bt_index_check_sql,
    count_batch_sql,
    count_range_sql,
    count_sql,
    qualified_name,
    verify_heapam_batch_sql,
    verify_heapam_sql,
)
from restoredrill.checksuite.tasks import Budget, Outcome, Task, TaskPool, failed_statement, split
from restoredrill.ports.baseline import DatabaseBaseline, TableShape
from restoredrill.ports.policy import DrillPolicy

__all__ = [
    "DEFAULT_TASK_BYTES",
    "MAX_ATTEMPTS",
    "DatabasePlan",
    "PlanProgress",
    "PlannedRelation",
    "PlannedTask",
    "TaskOutcome",
    "block_ranges",
    "plan_results",
    "plan_tasks",
    "read_database_plan",
    "run_in_rounds",
    "run_plan_tasks",
    "session_settings",
]

# About a minute of reading for one task on a lazily loaded RDS volume: small enough that an
# invocation ending loses little, large enough that per-statement overhead stays negligible.
DEFAULT_TASK_BYTES = 1 << 30
# A task that did not finish (its invocation ran out of time, crashed or was lost) is tried once
# more; after that it is reported as an error naming the relation and the block range.
MAX_ATTEMPTS = 2
# TID range scans (ctid >= '(a,0)') and verify_heapam's block ranges: PostgreSQL 14 (amcheck 1.3).
TID_RANGE_SCAN_VERSION = 140000

TaskKind = Literal["count", "heap", "btree"]


class PlannedTask(BaseModel):
    """One piece of the plan: a relation (by OID, as the functions take it) and, for a heap or a
    count, an inclusive block range (``None`` and ``None``: the whole relation; ``last_block``
    ``None`` alone: to the end, so that nothing appended after planning is missed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: TaskKind
    oid: int
    schema_name: str
    name: str
    table: str | None = Field(default=None, description="For an index: the table it indexes.")
    first_block: int | None = Field(default=None, ge=0)
    last_block: int | None = Field(default=None, ge=0)
    bytes: int = Field(ge=0)
    oversized: bool = Field(
        default=False,
        description="An index larger than one invocation can check: reported, never run.",
    )

    @property
    def relation(self) -> str:
        return qualified_name(self.schema_name, self.name)

    @property
    def blocks(self) -> str:
        """The block range for people: ``blocks 0-4095``, ``blocks 4096-end``, or empty."""
        if self.first_block is None:
            return ""
        last = "end" if self.last_block is None else str(self.last_block)
        return f"blocks {self.first_block}-{last}"

    @property
    def where(self) -> str:
        return f"{self.relation} {self.blocks}".rstrip()

    @property
    def cost(self) -> float:
        return self.bytes * (BTREE_COST if self.kind == "btree" else HEAP_COST) + 8192


class PlannedRelation(BaseModel):
    """A table the plan counts, as the results need it once the tasks are done (the results
    may be put together in another process, without the catalog)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    oid: int
    schema_name: str
    name: str
    kind: str
    persistence: str
    heap_bytes: int = Field(ge=0)

    @classmethod
    def of(cls, relation: Relation) -> PlannedRelation:
        return cls(
            oid=relation.oid,
            schema_name=relation.schema,
            name=relation.name,
            kind=relation.kind,
            persistence=relation.persistence,
            heap_bytes=relation.heap_bytes,
        )

    def relation(self) -> Relation:
        return Relation(
            oid=self.oid,
            schema=self.schema_name,
            name=self.name,
            kind=self.kind,
            persistence=self.persistence,
            heap_bytes=self.heap_bytes,
            total_bytes=self.heap_bytes,
            shape=TableShape(kind=self.kind, unlogged=self.persistence == "u"),
        )


class DatabasePlan(BaseModel):
    """The plan of one database and what its level 3 needs (where amcheck is, or why not)."""

    model_config = ConfigDict(extra="forbid")

    database: str
    level: int = Field(ge=2, le=3)
    server_version_num: int = Field(gt=0)
    block_size: int = Field(gt=0)
    task_bytes: int = Field(gt=0)
    amcheck_schema: str | None = None
    amcheck_installed_by_us: bool = False
    amcheck_status: CheckStatus = CheckStatus.PASS
    amcheck_message: str = ""
    heap_verification: bool = False
    tasks: list[PlannedTask] = Field(default_factory=list)
    relations: list[PlannedRelation] = Field(default_factory=list)

    def catalog(self) -> DatabaseCatalog:
        """The counted tables as a catalog, for :func:`plan_results` where the real catalog is
        not at hand (the schema checks were done when the plan was made)."""
        return DatabaseCatalog(
            database=self.database,
            size_bytes=None,
            schemas=[],
            extensions={},
            amcheck_schema=self.amcheck_schema,
            amcheck_available=self.amcheck_schema is not None,
            public_creatable=None,
            relations=[relation.relation() for relation in self.relations],
        )

    @property
    def total_bytes(self) -> int:
        return sum(task.bytes for task in self.tasks)

    def task(self, task_id: str) -> PlannedTask:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    @property
    def amcheck_setup(self) -> AmcheckSetup:
        return AmcheckSetup(
            schema=self.amcheck_schema,
            installed_by_us=self.amcheck_installed_by_us,
            status=self.amcheck_status,
            message=self.amcheck_message,
        )


class TaskOutcome(BaseModel):
    """How one task went in one invocation. ``skipped``: it did not finish there (the
    invocation's time ran out while it ran), so it is not done."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: CheckStatus
    message: str = ""
    rows: int | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float = Field(default=0, ge=0)

    @property
    def final(self) -> bool:
        return self.status is not CheckStatus.SKIPPED


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------


def block_ranges(blocks: int, per_task: int) -> list[tuple[int, int | None]]:
    """Inclusive ranges of ``per_task`` blocks covering ``blocks`` blocks; the last one open
    (``None``: to the end). An empty relation is one open range from block 0."""
    per_task = max(1, per_task)
    starts = range(0, max(1, blocks), per_task)
    return [
        (start, None if start + per_task >= blocks else start + per_task - 1) for start in starts
    ]


def _ranged(
    kind: TaskKind, target: AmcheckTarget, block_size: int, per_task: int
) -> list[PlannedTask]:
    blocks = target.size_bytes // block_size
    return [
        PlannedTask(
            id=f"{kind}:{target.oid}:{first}",
            kind=kind,
            oid=target.oid,
            schema_name=target.schema,
            name=target.name,
            first_block=first,
            last_block=last,
            bytes=((blocks if last is None else last + 1) - first) * block_size,
        )
        for first, last in block_ranges(blocks, per_task)
    ]


def _whole(kind: TaskKind, target: AmcheckTarget, *, max_bytes: int | None) -> PlannedTask:
    return PlannedTask(
        id=f"{kind}:{target.oid}",
        kind=kind,
        oid=target.oid,
        schema_name=target.schema,
        name=target.name,
        table=target.detail if kind == "btree" else None,
        bytes=target.size_bytes,
        oversized=max_bytes is not None and kind == "btree" and target.size_bytes > max_bytes,
    )


def plan_tasks(
    catalog: DatabaseCatalog,
    targets: AmcheckTargets | None,
    *,
    level: int,
    block_size: int,
    server_version_num: int,
    task_bytes: int = DEFAULT_TASK_BYTES,
    max_index_bytes: int | None = None,
) -> list[PlannedTask]:
    """The tasks of one database: counts of every table (level 2 and up); with ``targets``
    (level 3, amcheck usable) every heap in block ranges and every btree index whole."""
    per_task = max(1, task_bytes // block_size)
    ranged = server_version_num >= TID_RANGE_SCAN_VERSION
    tasks: list[PlannedTask] = []
    for relation in catalog.relations:
        if not relation.countable:
            continue
        table = AmcheckTarget(
            relation.oid, relation.schema, relation.name, relation.kind, relation.heap_bytes
        )
        if ranged:
            tasks += _ranged("count", table, block_size, per_task)
        else:
            tasks.append(_whole("count", table, max_bytes=None))
    if level >= 3 and targets is not None:
        if "verify_heapam" in targets.functions:
            for heap in targets.heaps:
                tasks += _ranged("heap", heap, block_size, per_task)
        tasks += [_whole("btree", index, max_bytes=max_index_bytes) for index in targets.indexes]
    return tasks


def read_database_plan(
    connection: CheckConnection,
    catalog: DatabaseCatalog,
    policy: DrillPolicy,
    *,
    install_amcheck: bool,
    secrets: Sequence[str],
    task_bytes: int = DEFAULT_TASK_BYTES,
    max_index_bytes: int | None = None,
) -> DatabasePlan:
    """Read what the plan needs from the database (block size, version, amcheck and the
    relations it verifies) and plan it. Raises what the connection raises."""
    block_size = int(connection.scalar("SELECT current_setting('block_size')::int"))
    version = int(connection.scalar("SELECT current_setting('server_version_num')::int"))
    level = min(3, max(2, policy.level))
    setup = AmcheckSetup(schema=None, status=CheckStatus.SKIPPED, message="level 2 only")
    targets: AmcheckTargets | None = None
    if level >= 3:
        setup = ensure_amcheck(connection, catalog, install=install_amcheck, secrets=secrets)
        if setup.schema is not None:
            targets = read_amcheck_targets(connection, policy.amcheck.include_system_catalogs)
    return DatabasePlan(
        database=catalog.database,
        level=level,
        server_version_num=version,
        block_size=block_size,
        task_bytes=task_bytes,
        amcheck_schema=setup.schema,
        amcheck_installed_by_us=setup.installed_by_us,
        amcheck_status=setup.status,
        amcheck_message=setup.message,
        heap_verification=targets is not None and "verify_heapam" in targets.functions,
        relations=[PlannedRelation.of(r) for r in catalog.relations if r.countable],
        tasks=plan_tasks(
            catalog,
            targets,
            level=level,
            block_size=block_size,
            server_version_num=version,
            task_bytes=task_bytes,
            max_index_bytes=max_index_bytes,
        ),
    )


# ---------------------------------------------------------------------------------------------
# progress over rounds (pure)
# ---------------------------------------------------------------------------------------------


class PlanProgress(BaseModel):
    """What is done (a final outcome per task) and how often each unfinished task was tried."""

    model_config = ConfigDict(extra="forbid")

    done: dict[str, TaskOutcome] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict)

    def pending(self, plan: DatabasePlan) -> list[PlannedTask]:
        return [task for task in plan.tasks if task.id not in self.done]

    def complete(self, plan: DatabasePlan) -> bool:
        return not self.pending(plan)

    def after_round(self, plan: DatabasePlan, outcomes: Sequence[TaskOutcome]) -> PlanProgress:
        """The progress once an invocation handed back ``outcomes``: final ones are done; a task
        it started but could not finish has used an attempt. Tasks it never started are not in
        ``outcomes`` and keep their attempts."""
        done = dict(self.done)
        attempts = dict(self.attempts)
        for outcome in outcomes:
            if outcome.id in done:
                continue
            if outcome.final:
                done[outcome.id] = outcome
                continue
            attempts[outcome.id] = attempts.get(outcome.id, 0) + 1
            if attempts[outcome.id] >= MAX_ATTEMPTS:
                task = plan.task(outcome.id)
                if task.kind == "btree":
                    # An index is checked whole: one that outlasts an invocation twice is too
                    # large for one, which is a limit of the drill, said by name.
                    done[outcome.id] = _oversized(task, tried=True)
                else:
                    why = f"it did not finish twice: {outcome.message}"
                    done[outcome.id] = _given_up(task, why)
        return PlanProgress(done=done, attempts=attempts)

    def after_lost_round(
        self,
        plan: DatabasePlan,
        claimed: Sequence[str],
        why: str = "the checker stopped twice while running it",
    ) -> PlanProgress:
        """The progress when an invocation that had claimed ``claimed`` never answered (killed,
        timed out, returned garbage): each of its unfinished tasks has used an attempt; ``why``
        says what happened when one has used its last."""
        done = dict(self.done)
        attempts = dict(self.attempts)
        for task_id in claimed:
            if task_id in done:
                continue
            attempts[task_id] = attempts.get(task_id, 0) + 1
            if attempts[task_id] >= MAX_ATTEMPTS:
                done[task_id] = _given_up(plan.task(task_id), why)
        return PlanProgress(done=done, attempts=attempts)


def _given_up(task: PlannedTask, why: str) -> TaskOutcome:
    return TaskOutcome(
        id=task.id,
        status=CheckStatus.ERROR,
        message=f"not verified: {why}",
        evidence={"relation": task.relation, "blocks": task.blocks or "all"},
    )


# ---------------------------------------------------------------------------------------------
# running tasks (one invocation)
# ---------------------------------------------------------------------------------------------


def run_plan_tasks(
    target: ConnectionTarget,
    plan: DatabasePlan,
    tasks: Sequence[PlannedTask],
    policy: DrillPolicy,
    *,
    seconds: float,
    jobs: int,
    settings: dict[str, str] | None = None,
) -> list[TaskOutcome]:
    """Run ``tasks`` of ``plan`` over up to ``jobs`` connections for at most ``seconds``, the
    most expensive first. Returns an outcome for every task that started (``skipped`` when the
    time ran out while it ran); tasks it never started are left out, for the next round."""
    settings = session_settings(plan) | (settings or {})
    secrets = [target.password.get_secret_value()]
    budget = Budget(seconds, min(policy.statement_timeout, seconds))
    runnable = [task for task in tasks if not task.oversized]
    outcomes = [_oversized(task) for task in tasks if task.oversized]
    if not runnable:
        return outcomes
    try:
        first = connect(target, plan.database, budget.remaining_s(), settings)
    except Exception as exc:
        error = classify_error(exc, *secrets)
        return outcomes + [
            TaskOutcome(
                id=task.id,
                status=CheckStatus.ERROR,
                message=f"could not connect to run it: {error}",
                evidence=error.as_evidence(),
            )
            for task in runnable
        ]
    runner = _Runner(plan, policy, secrets)
    try:
        pool = TaskPool(
            tasks=runner.tasks(runnable),
            jobs=jobs,
            budget=budget,
            first=first,
            opener=lambda: connect(target, plan.database, budget.remaining_s(), settings),
            secrets=secrets,
        )
        finished = pool.run()
    finally:
        first.close()
    return outcomes + runner.outcomes(finished)


def session_settings(plan: DatabasePlan) -> dict[str, str]:
    """The sessions of a plan's tasks: the tasks are the parallelism (parallel query workers on
    top would oversubscribe the instance), and each is one scan, for which JIT compilation costs
    more than it saves (see the suite's own ``_without_jit``)."""
    settings = {"max_parallel_workers_per_gather": "0"}
    if plan.server_version_num >= 110000:
        settings["jit"] = "off"
    return settings


def run_in_rounds(
    target: ConnectionTarget,
    plan: DatabasePlan,
    policy: DrillPolicy,
    *,
    round_seconds: float,
    jobs: int,
    settings: dict[str, str] | None = None,
) -> tuple[PlanProgress, int]:
    """The whole plan as a series of invocations of at most ``round_seconds`` each, as the
    checker runs it on AWS, here in one process: each round opens its own connections and
    starts from the stored progress. Returns the final progress and the number of rounds."""
    progress = PlanProgress()
    rounds = 0
    while pending := progress.pending(plan):
        outcomes = run_plan_tasks(
            target, plan, pending, policy, seconds=round_seconds, jobs=jobs, settings=settings
        )
        rounds += 1
        if outcomes:
            progress = progress.after_round(plan, outcomes)
        else:
            progress = progress.after_lost_round(
                plan,
                [task.id for task in pending],
                f"twice a round of {round_seconds:g} s ended before it could start",
            )
    return progress, rounds


def _oversized(task: PlannedTask, *, tried: bool = False) -> TaskOutcome:
    how = " (it did not finish in one, twice)" if tried else ""
    return TaskOutcome(
        id=task.id,
        status=CheckStatus.WARN,
        message=(
            f"index {task.relation} on {task.table} ({task.bytes / (1 << 30):.1f} GiB) is larger "
            f"than one checker invocation can verify{how}: not checked"
        ),
        evidence={"relation": task.relation, "bytes": task.bytes},
    )


@dataclass
class _Runner:
    """Runs planned tasks as pool tasks and remembers which ones started (the pool reports a
    task it never started and one it cut short alike, as skipped)."""

    plan: DatabasePlan
    policy: DrillPolicy
    secrets: Sequence[str]

    def __post_init__(self) -> None:
        self._started: set[str] = set()
        self._lock = threading.Lock()

    def tasks(self, planned: Sequence[PlannedTask]) -> list[Task]:
        """Pool tasks: a big planned task alone, small whole relations of one kind together in
        one statement (the system catalogs are hundreds of tiny heaps and indexes); a batch
        that fails is split so that each planned task gets its own outcome."""
        alone = [t for t in planned if not _batchable(t)]
        pool = [Task(t.kind, [t], [t.id], t.cost, self._run) for t in alone]
        for kind in ("count", "heap", "btree"):
            small = [t for t in planned if _batchable(t) and t.kind == kind]
            for group in batched(small, lambda t: t.bytes):
                cost = sum(t.cost for t in group)
                pool.append(Task(kind, group, [t.id for t in group], cost, self._run))
        return pool

    def _run(
        self, task: Task, connection: CheckConnection, budget: Budget
    ) -> list[Outcome] | list[Task]:
        planned: Sequence[PlannedTask] = task.items
        with self._lock:
            self._started.update(t.id for t in planned)
        started = time.perf_counter()
        try:
            if len(planned) > 1:
                return self._run_batch(task, connection, budget, started)
            data = self._execute(planned[0], connection)
        except Exception as exc:
            return failed_statement(task, connection, budget, exc, self.secrets)
        status = CheckStatus.FAIL if data.get("reports") else CheckStatus.PASS
        return [
            Outcome(
                planned[0].kind,
                planned[0].id,
                status,
                _reports_message(data) if status is CheckStatus.FAIL else "",
                data,
                (time.perf_counter() - started) * 1000,
                planned[0],
            )
        ]

    def _run_batch(
        self, task: Task, connection: CheckConnection, budget: Budget, started: float
    ) -> list[Outcome] | list[Task]:
        planned: Sequence[PlannedTask] = task.items
        schema = self.plan.amcheck_schema or ""
        rows: list[Any] = [None] * len(planned)
        if task.kind == "count":
            rows = connection.run(count_batch_sql([(t.schema_name, t.name) for t in planned]))[0]
        elif task.kind == "heap":
            oids = [t.oid for t in planned]
            toast = self.policy.amcheck.check_toast
            if int(connection.scalar(verify_heapam_batch_sql(schema, oids, toast))):
                return split(task)
        else:
            hai = self.policy.amcheck.heapallindexed
            connection.run(bt_index_check_sql(schema, [t.oid for t in planned], hai))
        share = (time.perf_counter() - started) * 1000 / len(planned)
        return [
            Outcome(
                t.kind,
                t.id,
                CheckStatus.PASS,
                data={} if count is None else {"rows": int(count)},
                duration_ms=share,
                item=t,
            )
            for t, count in zip(planned, rows, strict=True)
        ]

    def _execute(self, planned: PlannedTask, connection: CheckConnection) -> dict[str, Any]:
        schema = self.plan.amcheck_schema or ""
        if planned.kind == "count":
            if planned.first_block is None:
                sql = count_sql(planned.schema_name, planned.name)
            else:
                sql = count_range_sql(
                    planned.schema_name, planned.name, planned.first_block, planned.last_block
                )
            return {"rows": int(connection.scalar(sql))}
        if planned.kind == "heap":
            sql = verify_heapam_sql(
                schema,
                planned.oid,
                self.policy.amcheck.check_toast,
                first_block=planned.first_block,
                last_block=planned.last_block,
            )
            count, first = connection.run(sql)[0]
            reports = json.loads(first) if isinstance(first, str) else first
            return {"reports": int(count), "first_reports": reports} if int(count) else {}
        connection.run(
            bt_index_check_sql(schema, [planned.oid], self.policy.amcheck.heapallindexed)
        )
        return {}

    def outcomes(self, finished: list[Outcome]) -> list[TaskOutcome]:
        return [
            TaskOutcome(
                id=outcome.key,
                status=outcome.status,
                message=outcome.message,
                rows=outcome.data.get("rows"),
                evidence={k: v for k, v in outcome.data.items() if k != "rows"},
                duration_ms=outcome.duration_ms,
            )
            for outcome in finished
            if outcome.status is not CheckStatus.SKIPPED or outcome.key in self._started
        ]


def _batchable(task: PlannedTask) -> bool:
    """A small task over a whole relation (a batch statement has no block ranges)."""
    whole = task.first_block in (None, 0) and task.last_block is None
    return whole and task.bytes < SMALL_RELATION_BYTES and not task.oversized


def _reports_message(data: dict[str, Any]) -> str:
    shown = "; ".join(
        f"block {r['block']}, offset {r['offset']}: {r['message']}"
        for r in data["first_reports"][:3]
    )
    return f"{data['reports']} corruption report(s): {shown}"


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


def plan_results(
    plan: DatabasePlan,
    progress: PlanProgress,
    catalog: DatabaseCatalog,
    policy: DrillPolicy,
    previous: DatabaseBaseline | None,
) -> tuple[list[CheckResult], dict[str, int]]:
    """The database's ``row_counts`` (level 2) and ``amcheck_heap``/``amcheck_btree`` (level 3)
    results from the outcomes so far, and the exact counts for the baseline. A relation with a
    block range not yet verified is reported as not checked, never as passed."""
    by_relation: dict[tuple[str, int], list[PlannedTask]] = {}
    for task in plan.tasks:
        by_relation.setdefault((task.kind, task.oid), []).append(task)
    merged: dict[str, list[Outcome]] = {"count": [], "heap": [], "btree": []}
    for (kind, _oid), tasks in by_relation.items():
        merged[kind].append(_merge(tasks, progress))
    relations = {relation.oid: relation for relation in catalog.relations}
    for outcome in merged["count"]:
        relation = relations.get(outcome.item.oid)
        if relation is not None:
            outcome.item = relation
        elif outcome.status is CheckStatus.PASS:
            outcome.status = CheckStatus.ERROR
            outcome.message = "the table is no longer in the catalog"
    count_result, counts = row_count_check(catalog, merged["count"], previous, policy)
    results = [count_result]
    if plan.level >= 3:
        targets = AmcheckTargets(
            heaps=[], indexes=[], functions={"verify_heapam"} if plan.heap_verification else set()
        )
        setup = plan.amcheck_setup
        known = targets if setup.schema is not None else None
        results += amcheck_results(
            plan.database, merged["heap"] + merged["btree"], setup, known, policy
        )
    return results, counts


@dataclass(frozen=True)
class _Piece:
    task: PlannedTask
    outcome: TaskOutcome | None


def _merge(tasks: list[PlannedTask], progress: PlanProgress) -> Outcome:
    """One outcome per relation from the outcomes of its block ranges."""
    pieces = [_Piece(task, progress.done.get(task.id)) for task in tasks]
    first = tasks[0]
    item: Any = AmcheckTarget(
        first.oid, first.schema_name, first.name, first.table or "", sum(t.bytes for t in tasks)
    )
    kind = first.kind
    missing = [p for p in pieces if p.outcome is None]
    problems = [
        p for p in pieces if p.outcome is not None and p.outcome.status is not CheckStatus.PASS
    ]
    duration = sum(p.outcome.duration_ms for p in pieces if p.outcome is not None)
    if problems:
        status = worst_status([p.outcome.status for p in problems if p.outcome is not None])
        text = "; ".join(_problem_text(p) for p in problems[:3])
        ranges: dict[str, Any] = {
            "ranges": [
                {"blocks": p.task.blocks or "all", "status": p.outcome.status.value}
                | p.outcome.evidence
                for p in problems
                if p.outcome is not None
            ]
        }
        return Outcome(kind, first.relation, status, text, ranges, duration, item)
    if missing:
        message = f"{len(missing)} of {len(pieces)} block range(s) not verified yet"
        return Outcome(kind, first.relation, CheckStatus.SKIPPED, message, {}, duration, item)
    rows = sum(p.outcome.rows or 0 for p in pieces if p.outcome is not None)
    data: dict[str, Any] = {"rows": rows} if kind == "count" else {}
    return Outcome(kind, first.relation, CheckStatus.PASS, "", data, duration, item)


def _problem_text(piece: _Piece) -> str:
    assert piece.outcome is not None
    where = f"{piece.task.blocks}: " if piece.task.blocks else ""
    return f"{where}{piece.outcome.message}"
