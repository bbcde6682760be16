"""The check plan against a real server: a database cut into block ranges, run in rounds, gives
the same counts and verdicts as the unsplit suite; damage in one block is named with its range;
a relation that vanished and an invocation too short to start are clear outcomes."""

from __future__ import annotations

import random

import pytest
from restoredrill.checksuite import CheckStatus, SuiteVerdict, run_check_suite
from restoredrill.checksuite.connection import connect
from restoredrill.checksuite.database_catalog import DatabaseCatalog, read_catalog
from restoredrill.checksuite.plan import (
    DatabasePlan,
    PlanProgress,
    plan_results,
    read_database_plan,
    run_in_rounds,
    run_plan_tasks,
)
from restoredrill.checksuite.results import CheckResult
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer
from tests.db.checker import PASSWORD, checker_target, ensure_checker, run_sql
from tests.db.test_checks_corruption import BLCKSZ, edit_page, relation_file

DB = "victim"
POLICY = DrillPolicy(include_databases=[DB])
RANGE_BLOCKS = 16


@pytest.fixture
def victim(fresh_pg_server: PostgresServer) -> PostgresServer:
    """A fresh cluster with a table of about 120 blocks (so several ranges) and a small one."""
    ensure_checker(fresh_pg_server)
    run_sql(fresh_pg_server, "postgres", f"CREATE DATABASE {DB}")
    run_sql(
        fresh_pg_server,
        DB,
        "CREATE TABLE ledger (id int PRIMARY KEY, memo text NOT NULL)",
        "INSERT INTO ledger SELECT g, repeat('x', 60) || g FROM generate_series(1, 12000) g",
        "CREATE TABLE tiny (id int)",
        "INSERT INTO tiny SELECT generate_series(1, 5)",
        "VACUUM FREEZE ANALYZE",
        "CHECKPOINT",
    )
    return fresh_pg_server


def planned(server: PostgresServer) -> tuple[DatabasePlan, DatabaseCatalog]:
    connection = connect(checker_target(server, DB), DB, 30)
    try:
        catalog = read_catalog(connection)
        plan = read_database_plan(
            connection,
            catalog,
            POLICY,
            install_amcheck=True,
            secrets=[PASSWORD],
            task_bytes=RANGE_BLOCKS * BLCKSZ,
        )
    finally:
        connection.close()
    return plan, catalog


def in_chunks(server: PostgresServer, plan: DatabasePlan, rounds: int) -> PlanProgress:
    """Run the plan as `rounds` invocations, each given its share of the tasks left."""
    progress = PlanProgress()
    for round_no in range(rounds):
        pending = progress.pending(plan)
        share = pending[: max(1, len(pending) // (rounds - round_no))]
        outcomes = run_plan_tasks(
            checker_target(server, DB), plan, share, POLICY, seconds=60, jobs=2
        )
        progress = progress.after_round(plan, outcomes)
    return progress


def named(results: list[CheckResult], name: str) -> CheckResult:
    [found] = [r for r in results if r.name == name]
    return found


@pytest.fixture
def plan_of_victim(victim: PostgresServer) -> tuple[DatabasePlan, DatabaseCatalog]:
    return planned(victim)


def test_a_plan_run_in_five_rounds_counts_and_verifies_what_the_unsplit_suite_does(
    victim: PostgresServer, plan_of_victim: tuple[DatabasePlan, DatabaseCatalog]
) -> None:
    # Given the plan of the victim database, its heaps and counts in ranges of 16 blocks
    plan, catalog = plan_of_victim
    ledger_ranges = [t for t in plan.tasks if t.kind == "heap" and t.name == "ledger"]
    assert len(ledger_ranges) >= 5
    # When it runs as five invocations, each given a fifth of the tasks left
    progress = in_chunks(victim, plan, 5)
    results, counts = plan_results(plan, progress, catalog, POLICY, None)
    # Then every task is done and every check passes
    assert progress.complete(plan)
    assert {r.name: r.status for r in results} == {
        "row_counts": CheckStatus.PASS,
        "amcheck_heap": CheckStatus.PASS,
        "amcheck_btree": CheckStatus.PASS,
    }
    # And the counts added from the ranges are the unsplit suite's exact counts
    unsplit = run_check_suite(checker_target(victim, DB), POLICY)
    assert unsplit.verdict is SuiteVerdict.PASSED and unsplit.baseline is not None
    assert counts == unsplit.baseline.databases[DB].row_counts
    assert counts['"public"."ledger"'] == 12000
    # And each phase read as many bytes as the unsplit one, and says how fast
    for name in ("row_counts", "amcheck_heap", "amcheck_btree"):
        split_evidence = named(results, name).evidence
        unsplit_evidence = next(c for c in unsplit.checks if c.name == name).evidence
        assert split_evidence["bytes_read"] == unsplit_evidence["bytes_read"] > 0
        assert split_evidence["mib_per_s"] > 0 and unsplit_evidence["mib_per_s"] > 0
        assert "MiB/s per connection" in named(results, name).message


def test_damage_in_a_late_block_fails_only_its_range_naming_table_and_blocks(
    victim: PostgresServer, plan_of_victim: tuple[DatabasePlan, DatabaseCatalog]
) -> None:
    # Given the plan, and block 100 of ledger (read only by a late range) overwritten with
    # garbage, its checksum left stale
    plan, catalog = plan_of_victim
    heap = relation_file(victim, "ledger")
    victim.stop()
    noise = random.Random(7).randbytes(BLCKSZ)
    edit_page(heap, 100, lambda page: page.__setitem__(slice(0, BLCKSZ), noise))
    victim.start()
    # When the plan runs in rounds of up to 30 seconds
    progress, rounds = run_in_rounds(
        checker_target(victim, DB), plan, POLICY, round_seconds=30, jobs=2
    )
    results, counts = plan_results(plan, progress, catalog, POLICY, None)
    # Then amcheck_heap fails naming ledger and the one range that holds block 100
    heap_check = named(results, "amcheck_heap")
    assert heap_check.status is CheckStatus.FAIL
    [problem] = heap_check.evidence["problems"]
    assert problem["relation"] == '"public"."ledger"'
    assert problem["ranges"][0]["blocks"] == "blocks 96-111"
    assert "invalid page in block 100" in heap_check.message
    # And ledger's count fails in that range too, so it is not in the counts; tiny is
    assert named(results, "row_counts").status is CheckStatus.FAIL
    assert '"public"."ledger"' not in counts and counts['"public"."tiny"'] == 5
    # And every other range passed: only the damaged ranges are not passed
    not_passed = {t.where for t in plan.tasks if progress.done[t.id].status != CheckStatus.PASS}
    assert not_passed == {'"public"."ledger" blocks 96-111'}
    assert rounds == 1


def test_a_table_dropped_after_planning_is_an_error_naming_it(
    victim: PostgresServer, plan_of_victim: tuple[DatabasePlan, DatabaseCatalog]
) -> None:
    # Given the plan, then tiny is dropped before the tasks run
    plan, catalog = plan_of_victim
    run_sql(victim, DB, "DROP TABLE tiny")
    # When the plan runs
    progress, _ = run_in_rounds(checker_target(victim, DB), plan, POLICY, round_seconds=30, jobs=2)
    results, _ = plan_results(plan, progress, catalog, POLICY, None)
    # Then its count and its heap are errors naming it, and ledger still passes
    rows = named(results, "row_counts")
    assert rows.status is CheckStatus.ERROR
    assert [p["table"] for p in rows.evidence["problems"]] == ['"public"."tiny"']
    heap = named(results, "amcheck_heap")
    assert [p["relation"] for p in heap.evidence["problems"]] == ['"public"."tiny"']
    assert heap.status is CheckStatus.ERROR


def test_an_invocation_too_short_to_start_a_task_leaves_every_task_for_the_next(
    victim: PostgresServer, plan_of_victim: tuple[DatabasePlan, DatabaseCatalog]
) -> None:
    # Given the plan
    plan, _ = plan_of_victim
    # When an invocation is given every task but only a millisecond
    outcomes = run_plan_tasks(
        checker_target(victim, DB), plan, plan.tasks, POLICY, seconds=0.001, jobs=2
    )
    progress = PlanProgress().after_round(plan, outcomes)
    # Then it hands back nothing, and no task has used an attempt
    assert outcomes == []
    assert progress.pending(plan) == plan.tasks and progress.attempts == {}


def test_rounds_too_short_to_start_end_as_errors_instead_of_looping(
    victim: PostgresServer, plan_of_victim: tuple[DatabasePlan, DatabaseCatalog]
) -> None:
    # Given the plan
    plan, catalog = plan_of_victim
    # When it is run in rounds of a millisecond
    progress, rounds = run_in_rounds(
        checker_target(victim, DB), plan, POLICY, round_seconds=0.001, jobs=1
    )
    # Then it stops after two rounds, every task an error that says why
    assert rounds == 2
    messages = {o.message for o in progress.done.values()}
    assert messages == {"not verified: twice a round of 0.001 s ended before it could start"}
    results, _ = plan_results(plan, progress, catalog, POLICY, None)
    assert {r.status for r in results} == {CheckStatus.ERROR}
