"""The task pool: parallel connections, batches split on failure, the time budget, lost
connections - with fake connections (no sockets)."""

from __future__ import annotations

import threading
import time
from typing import Any

from pg8000.exceptions import DatabaseError, InterfaceError
from restoredrill.checksuite.connection import CheckConnection
from restoredrill.checksuite.database_catalog import DatabaseCatalog
from restoredrill.checksuite.families.physical import AmcheckStage, amcheck_results, ensure_amcheck
from restoredrill.checksuite.results import CheckStatus
from restoredrill.checksuite.tasks import Budget, Outcome, Task, TaskPool, failed_statement
from restoredrill.domain.report.evidence import partly_verified
from restoredrill.ports.policy import DrillPolicy


class FakeConnection(CheckConnection):
    """A CheckConnection without a server (no pg8000 connection underneath)."""

    def __init__(self, name: str, timeout_ms: int = 60_000) -> None:
        self.name = name
        self.database = "app"
        self.timeout_ms = timeout_ms
        self.timeouts: list[int] = []
        self.closed = False

    def set_timeout(self, timeout_ms: int) -> None:
        self.timeout_ms = max(1, timeout_ms)
        self.timeouts.append(self.timeout_ms)

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        return [[1]]

    def close(self) -> None:
        self.closed = True


def item_task(items: list[str], runner: Any, cost: float = 1.0) -> Task:
    return Task("count", items, items, cost, runner, {"secrets": ["pw"]})


def passing(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
    return [
        Outcome("count", key, CheckStatus.PASS, data={"by": connection.name}, item=item)
        for key, item in zip(task.keys, task.items, strict=True)
    ]


def pool(tasks: list[Task], jobs: int = 2, budget: Budget | None = None, **kw: Any) -> TaskPool:
    opened: list[FakeConnection] = kw.pop("opened", [])

    def opener() -> FakeConnection:
        connection = FakeConnection(f"extra{len(opened)}")
        opened.append(connection)
        return connection

    return TaskPool(
        tasks=tasks,
        jobs=jobs,
        budget=budget or Budget(60, 60),
        first=kw.pop("first", FakeConnection("first")),
        opener=kw.pop("opener", opener),
        secrets=["pw"],
    )


def test_work_is_spread_over_connections_and_nothing_is_lost() -> None:
    # Given eight big tasks that each take a while, and two connections allowed
    def slow(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        time.sleep(0.02)
        return passing(task, connection, budget)

    opened: list[FakeConnection] = []
    tasks = [item_task([f"t{i}"], slow, cost=1e9) for i in range(8)]
    # When run
    outcomes = pool(tasks, jobs=2, opened=opened).run()
    # Then every item has one outcome and both connections did some of the work
    assert sorted(o.key for o in outcomes) == [f"t{i}" for i in range(8)]
    assert {o.data["by"] for o in outcomes} == {"first", "extra0"}
    # And the extra connection was closed, the caller's was not
    assert opened[0].closed


def test_small_work_does_not_open_more_connections() -> None:
    # Given a few tiny tasks / When run with 4 jobs allowed / Then no extra connection is opened
    opened: list[FakeConnection] = []
    outcomes = pool([item_task([f"t{i}"], passing) for i in range(3)], jobs=4, opened=opened).run()
    assert len(outcomes) == 3 and opened == []


def test_a_failing_batch_is_split_to_name_the_culprit() -> None:
    # Given a batch of three where the statement fails when "bad" is in it
    calls: list[list[str]] = []

    def runner(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        calls.append(list(task.items))
        if "bad" in task.items:
            exc = DatabaseError({"S": "ERROR", "C": "XX001", "M": "invalid page in block 3"})
            return failed_statement(task, connection, budget, exc, ["pw"])
        return passing(task, connection, budget)

    # When run
    outcomes = pool([item_task(["a", "bad", "c"], runner)], jobs=1).run()
    by_key = {o.key: o for o in outcomes}
    # Then the batch was retried item by item, only the culprit fails, with the server's words
    assert calls[0] == ["a", "bad", "c"] and len(calls) == 4
    assert by_key["bad"].status is CheckStatus.FAIL
    assert "invalid page in block 3" in by_key["bad"].message
    assert by_key["a"].status is CheckStatus.PASS and by_key["c"].status is CheckStatus.PASS


def test_tasks_left_when_the_budget_is_spent_are_skipped_not_lost() -> None:
    # Given a budget that runs out during the first task
    def slow(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        time.sleep(0.15)
        return passing(task, connection, budget)

    tasks = [item_task([f"t{i}"], slow, cost=10 - i) for i in range(5)]
    # When run on one connection
    outcomes = pool(tasks, jobs=1, budget=Budget(0.1, 60)).run()
    statuses = {o.key: o.status for o in outcomes}
    # Then the first task finished and the rest are reported skipped
    assert statuses["t0"] is CheckStatus.PASS
    assert [statuses[f"t{i}"] for i in range(1, 5)] == [CheckStatus.SKIPPED] * 4
    assert all("time budget" in o.message for o in outcomes if o.status is CheckStatus.SKIPPED)


def test_statement_timeouts_never_reach_past_the_deadline() -> None:
    # Given a 60 s statement timeout and a budget of 2 s
    first = FakeConnection("first", timeout_ms=60_000)
    # When a task runs
    pool([item_task(["t"], passing)], jobs=1, budget=Budget(2, 60), first=first).run()
    # Then the connection's statement timeout was lowered to what is left of the budget
    assert first.timeouts and first.timeouts[0] <= 2000


def test_a_statement_cancelled_by_the_budget_is_skipped_but_a_plain_timeout_is_an_error() -> None:
    # Given a query cancelled by statement_timeout
    cancel = DatabaseError({"S": "ERROR", "C": "57014", "M": "canceling statement due to timeout"})
    task = item_task(["t"], passing)
    cut = FakeConnection("c", timeout_ms=500)  # lowered to fit the budget
    full = FakeConnection("c", timeout_ms=60_000)
    budget = Budget(600, 60)
    # Then it is skipped when the budget had cut the timeout, an error otherwise
    (when_cut,) = failed_statement(task, cut, budget, cancel, [])
    (when_full,) = failed_statement(task, full, budget, cancel, [])
    assert isinstance(when_cut, Outcome) and when_cut.status is CheckStatus.SKIPPED
    assert isinstance(when_full, Outcome) and when_full.status is CheckStatus.ERROR


def test_a_lost_connection_is_replaced_and_its_task_reported() -> None:
    # Given a connection that breaks on the first task
    broken = threading.Event()

    def runner(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        if connection.name == "first" and not broken.is_set():
            broken.set()
            return failed_statement(task, connection, budget, InterfaceError("network error"), [])
        return passing(task, connection, budget)

    tasks = [item_task([f"t{i}"], runner, cost=10 - i) for i in range(3)]
    # When run on one job
    outcomes = pool(tasks, jobs=1).run()
    statuses = {o.key: o.status for o in outcomes}
    # Then the interrupted task is an error (not a pass, not lost) and a new connection did the rest
    assert statuses == {"t0": CheckStatus.ERROR, "t1": CheckStatus.PASS, "t2": CheckStatus.PASS}
    assert {o.data.get("by") for o in outcomes if o.status is CheckStatus.PASS} == {"extra0"}


def test_when_no_connection_can_be_opened_the_work_is_reported_as_errors() -> None:
    # Given a first connection that is lost at once and no way to open another
    def runner(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        return failed_statement(task, connection, budget, InterfaceError("network error"), [])

    def refuse() -> FakeConnection:
        raise InterfaceError("connection refused")

    tasks = [item_task([f"t{i}"], runner, cost=10 - i) for i in range(3)]
    # When run
    outcomes = pool(tasks, jobs=1, opener=refuse).run()
    # Then every task still has an outcome, an error that says why
    assert sorted(o.key for o in outcomes) == ["t0", "t1", "t2"]
    assert all(o.status is CheckStatus.ERROR for o in outcomes)
    assert any("connection refused" in o.message for o in outcomes)


def test_a_bug_in_one_task_does_not_lose_the_others() -> None:
    # Given a runner that crashes on one item
    def runner(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        if task.items[0] == "boom":
            raise KeyError("oops")
        return passing(task, connection, budget)

    outcomes = pool([item_task(["boom"], runner), item_task(["ok"], runner)], jobs=1).run()
    # Then the crash is an error outcome and the other task passes
    assert {o.key: o.status for o in outcomes} == {
        "boom": CheckStatus.ERROR,
        "ok": CheckStatus.PASS,
    }


def test_tasks_handed_back_are_queued_by_cost_biggest_first() -> None:
    # Given a preparation task that hands back three tasks in no particular order of cost
    order: list[str] = []

    def recording(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        order.append(task.keys[0])
        return passing(task, connection, budget)

    def prepare(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        return [
            item_task(["small"], recording, cost=1),
            item_task(["big"], recording, cost=100),
            item_task(["medium"], recording, cost=10),
        ]

    tasks = [item_task(["prepare"], prepare, cost=1000), item_task(["mid"], recording, cost=50)]
    # When run on one connection
    outcomes = pool(tasks, jobs=1).run()
    # Then the handed-back tasks ran in cost order among the rest, and each has one outcome
    assert order == ["big", "mid", "medium", "small"]
    assert sorted(o.key for o in outcomes) == ["big", "medium", "mid", "small"]


def test_a_worker_waits_for_the_work_a_running_task_will_hand_back() -> None:
    # Given a slow preparation that hands back four slow tasks, and one quick task beside it
    def slow(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        time.sleep(0.03)
        return passing(task, connection, budget)

    def prepare(task: Task, connection: Any, budget: Budget) -> list[Outcome] | list[Task]:
        time.sleep(0.05)
        return [item_task([f"t{i}"], slow, cost=1e9) for i in range(4)]

    tasks = [item_task(["prepare"], prepare, cost=1e10), item_task(["quick"], passing, cost=1e9)]
    # When run on two connections (the second is free long before the preparation ends)
    outcomes = pool(tasks, jobs=2).run()
    by = {o.key: o.data["by"] for o in outcomes}
    # Then the second connection stayed and took part of the handed-back work
    assert sorted(by) == ["quick", "t0", "t1", "t2", "t3"]
    assert {by[f"t{i}"] for i in range(4)} == {"first", "extra0"}


def test_level_3_preparation_left_unrun_by_the_budget_reports_level_3_skipped() -> None:
    # Given level 3's preparation as a task, and a budget already spent
    catalog = DatabaseCatalog(
        database="app",
        size_bytes=0,
        schemas=["public"],
        extensions={"amcheck": "1.3"},
        amcheck_schema="public",
        amcheck_available=True,
        public_creatable=True,
    )
    stage = AmcheckStage(catalog, DrillPolicy(level=3), install=False, secrets=["pw"])
    budget = Budget(0, 60)
    # When the pool runs it
    outcomes = pool([stage.task()], jobs=1, budget=budget).run()
    results = stage.results(outcomes)
    # Then both level 3 checks are reported skipped for the budget, none silently missing
    assert [(r.name, r.status) for r in results] == [
        ("amcheck_heap", CheckStatus.SKIPPED),
        ("amcheck_btree", CheckStatus.SKIPPED),
    ]
    assert all(budget.skipped_message in r.message for r in results)


def test_level_3_on_an_engine_without_amcheck_is_skipped_saying_why_never_passed() -> None:
    # Given a database on a server whose engine version offers no amcheck extension
    catalog = DatabaseCatalog(
        database="app",
        size_bytes=0,
        schemas=["public"],
        extensions={},
        amcheck_schema=None,
        amcheck_available=False,
        public_creatable=True,
    )
    # When level 3 is prepared for the drill's own instance (installing allowed)
    setup = ensure_amcheck(None, catalog, install=True, secrets=["pw"])  # type: ignore[arg-type]
    results = amcheck_results("app", [], setup, None, DrillPolicy(level=3))
    # Then both level 3 checks are skipped with that reason, and the verdict is not PASSED-clean
    assert [(r.name, r.status) for r in results] == [
        ("amcheck_heap", CheckStatus.SKIPPED),
        ("amcheck_btree", CheckStatus.SKIPPED),
    ]
    assert all("not available on this server's engine version" in r.message for r in results)
    assert partly_verified({"complete": False, "checks": [r.model_dump() for r in results]})
