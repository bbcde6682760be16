"""The check plan without a server: how a database is cut into tasks, how rounds progress, and
how the outcomes of block ranges become the suite's results."""

from __future__ import annotations

import pytest
from restoredrill.checksuite.database_catalog import (
    AmcheckTarget,
    AmcheckTargets,
    DatabaseCatalog,
    Relation,
)
from restoredrill.checksuite.plan import (
    MAX_ATTEMPTS,
    DatabasePlan,
    PlannedTask,
    PlanProgress,
    TaskOutcome,
    block_ranges,
    plan_results,
    plan_tasks,
    session_settings,
)
from restoredrill.checksuite.results import CheckResult, CheckStatus, throughput
from restoredrill.ports.baseline import DatabaseBaseline, TableShape
from restoredrill.ports.policy import DrillPolicy

BLOCK = 8192
POLICY = DrillPolicy()


def relation(oid: int, name: str, blocks: int) -> Relation:
    return Relation(
        oid, "public", name, "r", "p", blocks * BLOCK, blocks * BLOCK, TableShape(kind="table")
    )


def catalog(*relations: Relation) -> DatabaseCatalog:
    return DatabaseCatalog("app", None, ["public"], {}, "public", True, True, list(relations))


ORDERS = relation(100, "orders", 10)
ITEMS = relation(200, "items", 3)
TARGETS = AmcheckTargets(
    heaps=[AmcheckTarget(100, "public", "orders", "r", 10 * BLOCK)],
    indexes=[
        AmcheckTarget(101, "public", "orders_pkey", "orders", 4 * BLOCK),
        AmcheckTarget(102, "public", "orders_big", "orders", 400 * BLOCK),
    ],
    functions={"verify_heapam", "bt_index_check"},
)


def a_plan(**changes: object) -> DatabasePlan:
    """orders (10 blocks) and items (3 blocks) in ranges of 4 blocks, at level 3."""
    tasks = plan_tasks(
        catalog(ORDERS, ITEMS),
        TARGETS,
        level=3,
        block_size=BLOCK,
        server_version_num=150000,
        task_bytes=4 * BLOCK,
    )
    fields: dict[str, object] = {
        "database": "app",
        "level": 3,
        "server_version_num": 150000,
        "block_size": BLOCK,
        "task_bytes": 4 * BLOCK,
        "amcheck_schema": "public",
        "heap_verification": True,
        "tasks": tasks,
    }
    return DatabasePlan.model_validate(fields | changes)


def passed(plan: DatabasePlan, rows: int = 7) -> list[TaskOutcome]:
    return [
        TaskOutcome(id=t.id, status=CheckStatus.PASS, rows=rows if t.kind == "count" else None)
        for t in plan.tasks
    ]


def result(results: list[CheckResult], name: str) -> CheckResult:
    [found] = [r for r in results if r.name == name]
    return found


@pytest.mark.parametrize(
    ("blocks", "per_task", "expected"),
    [
        (10, 4, [(0, 3), (4, 7), (8, None)]),
        (8, 4, [(0, 3), (4, None)]),
        (3, 4, [(0, None)]),
        (0, 4, [(0, None)]),
        (5, 0, [(0, 0), (1, 1), (2, 2), (3, 3), (4, None)]),
    ],
)
def test_block_ranges_cover_every_block_once_and_leave_the_end_open(
    blocks: int, per_task: int, expected: list[tuple[int, int | None]]
) -> None:
    # When a relation of `blocks` blocks is cut into ranges of `per_task`
    ranges = block_ranges(blocks, per_task)
    # Then the ranges are contiguous from block 0 and the last one runs to the end
    assert ranges == expected


def test_a_level_3_plan_ranges_counts_and_heaps_and_checks_each_index_whole() -> None:
    # When orders (10 blocks) and items (3 blocks) are planned in ranges of 4 blocks
    plan = a_plan()
    kinds = [(t.kind, t.name, t.blocks) for t in plan.tasks]
    # Then orders is counted and verified in three ranges, items in one, each index whole
    assert kinds == [
        ("count", "orders", "blocks 0-3"),
        ("count", "orders", "blocks 4-7"),
        ("count", "orders", "blocks 8-end"),
        ("count", "items", "blocks 0-end"),
        ("heap", "orders", "blocks 0-3"),
        ("heap", "orders", "blocks 4-7"),
        ("heap", "orders", "blocks 8-end"),
        ("btree", "orders_pkey", ""),
        ("btree", "orders_big", ""),
    ]
    # And every task id is unique, the bytes add up to the relation's size
    assert len({t.id for t in plan.tasks}) == len(plan.tasks)
    assert sum(t.bytes for t in plan.tasks if t.kind == "heap") == 10 * BLOCK


def test_before_postgresql_14_tables_are_counted_whole_and_level_2_verifies_nothing() -> None:
    # When a PostgreSQL 13 database is planned at level 2
    tasks = plan_tasks(
        catalog(ORDERS), TARGETS, level=2, block_size=BLOCK, server_version_num=130011
    )
    # Then there is one whole-table count and no amcheck task
    assert [(t.kind, t.first_block, t.last_block) for t in tasks] == [("count", None, None)]


def test_an_index_larger_than_one_invocation_is_marked_never_dropped() -> None:
    # When the plan may only give an invocation 100 blocks of index
    tasks = plan_tasks(
        catalog(ORDERS),
        TARGETS,
        level=3,
        block_size=BLOCK,
        server_version_num=150000,
        max_index_bytes=100 * BLOCK,
    )
    # Then the 400-block index is still in the plan, marked oversized
    oversized = [t.name for t in tasks if t.oversized]
    assert oversized == ["orders_big"]


def test_a_task_cut_short_twice_becomes_an_error_naming_the_relation_and_range() -> None:
    # Given a plan whose first heap range is cut by the invocation's time limit in two rounds
    plan = a_plan()
    heap = next(t for t in plan.tasks if t.kind == "heap")
    cut = TaskOutcome(id=heap.id, status=CheckStatus.SKIPPED, message="time limit of 1 s")
    # When the first round hands it back unfinished
    progress = PlanProgress().after_round(plan, [cut])
    # Then it is pending again, with one attempt used
    assert heap in progress.pending(plan) and progress.attempts[heap.id] == 1
    # When the second round does too
    progress = progress.after_round(plan, [cut])
    # Then it is done as an error naming the relation and its block range
    outcome = progress.done[heap.id]
    assert MAX_ATTEMPTS == 2
    assert outcome.status is CheckStatus.ERROR
    assert outcome.evidence == {"relation": '"public"."orders"', "blocks": "blocks 0-3"}


def test_a_lost_invocation_costs_its_claimed_tasks_one_attempt_and_nothing_else() -> None:
    # Given a plan where one round passed every count
    plan = a_plan()
    counts = [o for o in passed(plan) if o.id.startswith("count:")]
    progress = PlanProgress().after_round(plan, counts)
    claimed = [t.id for t in plan.tasks if t.kind != "count"]
    # When the invocation that claimed the rest never answers, twice
    once = progress.after_lost_round(plan, claimed)
    twice = once.after_lost_round(plan, claimed)
    # Then after one loss every claimed task is pending, after two each is an error
    assert {t.id for t in once.pending(plan)} == set(claimed)
    assert {i for i, o in twice.done.items() if o.status is CheckStatus.ERROR} == set(claimed)
    # And the counts already done stay passed
    assert all(twice.done[o.id].status is CheckStatus.PASS for o in counts)


def test_a_progress_survives_a_json_round_trip() -> None:
    # Given a plan and a progress half way
    plan = a_plan()
    progress = PlanProgress().after_round(plan, passed(plan)[:4])
    # When both are stored as JSON and read back (as between invocations)
    plan_back = DatabasePlan.model_validate_json(plan.model_dump_json())
    progress_back = PlanProgress.model_validate_json(progress.model_dump_json())
    # Then nothing is lost
    assert plan_back == plan
    assert progress_back.pending(plan_back) == progress.pending(plan)


def test_results_of_a_complete_plan_add_the_ranges_counts_and_pass() -> None:
    # Given every task passed, each count range finding 7 rows
    plan = a_plan()
    progress = PlanProgress().after_round(plan, passed(plan))
    previous = DatabaseBaseline(schema_fingerprint="f", row_counts={'"public"."orders"': 21})
    # When the results are made
    results, counts = plan_results(plan, progress, catalog(ORDERS, ITEMS), POLICY, previous)
    # Then each table's count is the sum of its ranges, compared with the baseline
    assert counts == {'"public"."orders"': 21, '"public"."items"': 7}
    assert result(results, "row_counts").status is CheckStatus.PASS
    assert result(results, "amcheck_heap").message == "1 of 1 heaps verified"
    assert result(results, "amcheck_btree").message == "2 of 2 indexes verified"


def test_a_corrupt_range_fails_the_heap_check_naming_the_table_and_its_blocks() -> None:
    # Given every task passed except the middle heap range of orders
    plan = a_plan()
    middle = next(t for t in plan.tasks if t.kind == "heap" and t.first_block == 4)
    outcomes = [
        o
        if o.id != middle.id
        else TaskOutcome(
            id=o.id,
            status=CheckStatus.FAIL,
            message="1 corruption report(s): block 5, offset 2: line pointer out of range",
        )
        for o in passed(plan)
    ]
    progress = PlanProgress().after_round(plan, outcomes)
    # When the results are made
    results, _ = plan_results(plan, progress, catalog(ORDERS, ITEMS), POLICY, None)
    # Then amcheck_heap fails, naming the table and the block range that failed
    heap = result(results, "amcheck_heap")
    assert heap.status is CheckStatus.FAIL
    [problem] = heap.evidence["problems"]
    assert problem["relation"] == '"public"."orders"'
    assert problem["ranges"] == [{"blocks": "blocks 4-7", "status": "fail"}]
    assert "blocks 4-7: 1 corruption report(s): block 5" in heap.message


def test_a_range_not_yet_verified_is_never_reported_as_passed() -> None:
    # Given every task passed except the last count range of orders, which never ran
    plan = a_plan()
    last = next(t for t in plan.tasks if t.kind == "count" and t.first_block == 8)
    progress = PlanProgress().after_round(plan, [o for o in passed(plan) if o.id != last.id])
    # When the results are made
    results, counts = plan_results(plan, progress, catalog(ORDERS, ITEMS), POLICY, None)
    # Then orders is reported as not counted and has no count for the baseline
    rows = result(results, "row_counts")
    assert rows.evidence["skipped"] == ['"public"."orders"']
    assert '"public"."orders"' not in counts


def test_an_oversized_index_is_a_warning_naming_it() -> None:
    # Given a plan whose big index could not be checked in one invocation
    plan = a_plan()
    big = next(t for t in plan.tasks if t.name == "orders_big")
    outcomes = [
        o
        if o.id != big.id
        else TaskOutcome(id=o.id, status=CheckStatus.WARN, message="larger than one invocation")
        for o in passed(plan)
    ]
    progress = PlanProgress().after_round(plan, outcomes)
    # When the results are made
    results, _ = plan_results(plan, progress, catalog(ORDERS, ITEMS), POLICY, None)
    # Then amcheck_btree warns and names the index
    btree = result(results, "amcheck_btree")
    assert btree.status is CheckStatus.WARN
    assert [p["relation"] for p in btree.evidence["problems"]] == ['"public"."orders_big"']


def test_a_plan_task_refuses_unknown_fields() -> None:
    # When a stored task carries a field this version does not know
    # Then it is refused rather than silently dropped
    with pytest.raises(ValueError, match="extra"):
        PlannedTask.model_validate(
            {
                "id": "x",
                "kind": "heap",
                "oid": 1,
                "schema_name": "s",
                "name": "t",
                "bytes": 0,
                "surprise": 1,
            }
        )


def test_throughput_is_bytes_over_connection_time_and_absent_without_either() -> None:
    # When 300 MiB were read in 1.5 s of statements, and when nothing was read
    evidence, text = throughput(300 << 20, 1500)
    nothing, no_text = throughput(0, 0)
    # Then the rate is 200 MiB/s per connection, said in words; nothing read gives no rate
    assert evidence == {"bytes_read": 300 << 20, "connection_seconds": 1.5, "mib_per_s": 200.0}
    assert text == "read 300.0 MiB at 200 MiB/s per connection"
    assert nothing["mib_per_s"] is None and no_text == ""


def test_plan_sessions_run_without_parallel_workers_and_without_jit_where_it_exists() -> None:
    # When the session settings of a PostgreSQL 15 plan and of a PostgreSQL 10 plan are made
    modern = session_settings(a_plan())
    old = session_settings(a_plan(server_version_num=100023))
    # Then both turn parallel query off; only the server that has JIT gets it turned off
    assert modern == {"max_parallel_workers_per_gather": "0", "jit": "off"}
    assert old == {"max_parallel_workers_per_gather": "0"}


def test_an_index_that_outlasts_an_invocation_twice_is_a_warning_naming_it() -> None:
    # Given a plan whose big index was cut short by the end of its invocation, twice
    plan = a_plan()
    big = next(t for t in plan.tasks if t.name == "orders_big")
    cut = TaskOutcome(id=big.id, status=CheckStatus.SKIPPED, message="time budget ran out")
    progress = PlanProgress().after_round(plan, [cut]).after_round(plan, [cut])
    # Then it is done as a warning naming the index and why, not an error
    outcome = progress.done[big.id]
    assert outcome.status is CheckStatus.WARN
    assert '"public"."orders_big"' in outcome.message
    assert "did not finish in one, twice" in outcome.message
