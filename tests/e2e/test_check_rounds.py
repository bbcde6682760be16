"""Checks in rounds end to end: a drill whose levels 2 and 3 run over many rounds of checker
invocations, each started by the drill's own choreography, passes with every byte verified;
damage that only a late round reads fails it, naming the table and the block range."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from restoredrill.ports.records import Verdict

from localcloud.cloud import LocalCloud
from localcloud.postgres import PostgresServer
from restoredrill_cli.compliance import build_summary, render_summary
from tests.db.checker import run_sql
from tests.e2e.conftest import assert_invariants

pytestmark = pytest.mark.e2e

BLCKSZ = 8192
# 1 MiB tasks, 4 tasks per checker invocation, 2 invocations per round: the 14 MiB ledger alone
# is 28 tasks (count and heap of 14 ranges), more than 5 rounds.
POLICY = """\
version: 1
defaults:
  level: 3
  parallelism: 2
  amcheck: {include_system_catalogs: false}
  rounds: {enabled: true, task_mib: 1, tasks_per_invocation: 4}
"""
LEDGER_ROWS = 400_000


def add_ledger(server: PostgresServer) -> None:
    """A 14 MiB table beside the clinic's: 14 ranges of 1 MiB to count and verify."""
    run_sql(
        server,
        "clinic",
        "CREATE TABLE clinic.ledger AS SELECT g AS entry_id, g * 7 AS amount_cents"
        f" FROM generate_series(1, {LEDGER_ROWS}) AS g",
    )


@pytest.fixture
def rounds_cloud(tmp_path: Path) -> Any:
    policy = tmp_path / "drill-policy.yaml"
    policy.write_text(POLICY)
    with LocalCloud(
        patients=300, policy_file=policy, function_timeouts={"CheckerFunction": 10}
    ) as cloud:
        source = cloud.create_source_database("clinic-db")
        add_ledger(source.server)
        yield cloud


def check(report: dict[str, Any], name: str, database: str = "clinic") -> dict[str, Any]:
    return next(
        c
        for c in report["checks"]["checks"]
        if c["name"] == name and c.get("database") in (database, None)
    )


def test_a_drill_in_many_rounds_passes_with_every_byte_verified(rounds_cloud: LocalCloud) -> None:
    cloud = rounds_cloud
    # Given a database of about 30 MiB checked in 1 MiB tasks, 4 per checker invocation
    # When its automated snapshot is drilled
    run = cloud.wait_for_run(cloud.start_drill("clinic-db"), timeout=180)
    # Then it passes, keeping every promise of a drill
    assert run is not None and run.verdict is Verdict.PASSED, run
    assert_invariants(cloud, run, Verdict.PASSED)
    # And the checks took at least 5 rounds, each a fresh invocation of the check runner
    assert run.check_round >= 5
    assert run.report_key is not None
    report = cloud.report(run.report_key)
    rounds = check(report, "check_rounds")
    assert rounds["status"] == "pass" and rounds["evidence"]["rounds"] >= 5
    assert rounds["evidence"]["verified_pct"] == 100.0
    assert rounds["evidence"]["bytes_verified"] == rounds["evidence"]["bytes_planned"] > 20 << 20
    # And the exact count of the ledger, added up from its ranges, is in the baseline
    counts = report["checks"]["baseline"]["databases"]["clinic"]["row_counts"]
    assert counts['"clinic"."ledger"'] == LEDGER_ROWS
    assert check(report, "amcheck_heap")["status"] == "pass"


def test_damage_that_only_a_late_round_reads_fails_the_drill_naming_table_and_blocks(
    rounds_cloud: LocalCloud,
) -> None:
    cloud = rounds_cloud
    assert cloud.rds is not None and cloud.aws is not None
    # Given a snapshot whose ledger has garbage in block 1500 (in its 12th 1 MiB range, read after
    # the ranges before it and every count: not before round 3)
    source = cloud.sources[0]
    [[path]] = run_sql(source.server, "clinic", "SELECT pg_relation_filepath('clinic.ledger')")
    event = cloud.rds.create_automated_snapshot("clinic-db")
    snapshot = cloud.rds.snapshot_data_dir(str(event["detail"]["SourceIdentifier"]))
    assert snapshot is not None
    with (snapshot / str(path)).open("r+b") as heap:
        heap.seek(1500 * BLCKSZ)
        heap.write(random.Random(7).randbytes(BLCKSZ))
    # When it is drilled
    cloud.aws.emit(event)
    run = cloud.wait_for_run(cloud.run_id_for_snapshot_event(event), timeout=180)
    # Then the drill fails, and the report names the ledger and the one damaged range
    assert run is not None and run.verdict is Verdict.FAILED, run
    assert_invariants(cloud, run, Verdict.FAILED)
    assert run.report_key is not None
    report = cloud.report(run.report_key)
    heap_check = check(report, "amcheck_heap")
    assert heap_check["status"] == "fail"
    [problem] = heap_check["evidence"]["problems"]
    assert problem["relation"] == '"clinic"."ledger"'
    [damaged] = problem["ranges"]
    assert damaged["blocks"] == "blocks 1408-1535"
    # And it was found in a late round
    assert damaged["round"] >= 3
    assert "blocks 1408-1535" in heap_check["message"]


ROTATE_POLICY = """\
version: 1
defaults:
  level: 3
  parallelism: 2
  amcheck: {include_system_catalogs: false}
  coverage: rotate
  max_days_full_coverage: 7
  rounds: {enabled: true, task_mib: 1, tasks_per_invocation: 8, budget_mib: %d}
"""


def test_three_rotating_drills_of_about_40_percent_reach_full_coverage(tmp_path: Path) -> None:
    # Given a database of about 30 MiB of planned reads and a rotating policy whose budget is
    # about 40% of them
    policy = tmp_path / "drill-policy.yaml"
    policy.write_text(ROTATE_POLICY % 12)
    with LocalCloud(patients=300, policy_file=policy) as cloud:
        source = cloud.create_source_database("clinic-db")
        add_ledger(source.server)
        # When three automated snapshots are drilled one after the other
        reports = []
        for _ in range(3):
            run = cloud.wait_for_run(cloud.start_drill("clinic-db"), timeout=180)
            assert run is not None and run.verdict is Verdict.PASSED, run
            assert_invariants(cloud, run, Verdict.PASSED)
            assert run.report_key is not None
            reports.append(cloud.report(run.report_key))
    # Then each verified about 40% of the bytes, and together all of them
    coverages = [check(r, "check_rounds")["evidence"]["coverage"] for r in reports]
    assert all(30 <= c["drill_pct"] <= 50 for c in coverages), coverages
    assert coverages[0]["cumulative_pct"] < coverages[1]["cumulative_pct"] < 100
    assert coverages[2]["cumulative_pct"] == 100.0 and coverages[2]["never_verified"] == 0
    assert "100.0% verified within 7 days" in check(reports[2], "check_rounds")["message"]
    # And the compliance summary flags the database after the first drill, not after the third
    now = datetime.now(UTC)
    since = now - timedelta(days=30)
    after_first = build_summary(reports[:1], [], since=since, now=now)
    after_third = build_summary(reports, [], since=since, now=now)
    [first] = after_first.databases
    [third] = after_third.databases
    assert first.verification is not None and first.verification.stale
    assert third.verification is not None and not third.verification.stale
    assert third.verification.cumulative_pct == 100.0
    assert "fully verified: 100% of the bytes within 7 days" in render_summary(after_third, "md")
    assert "not fully verified within the window" in render_summary(after_first, "md")


@pytest.mark.parametrize(
    ("fault", "verdict"),
    [
        # advance dies right after invoking a round: the round is claimed again and invoked
        # again; the check runner refuses the second attempt's claim, the first one's answer is
        # used
        ("crash-after-checker-invoke", Verdict.PASSED),
        # every event three times: each round still runs once
        ("duplicate-events", Verdict.PASSED),
        # the server stops answering: round 0's checker is killed at its timeout and the drill
        # ends in ERROR, torn down
        ("checker-hangs", Verdict.ERROR),
    ],
)
def test_faults_during_rounds_keep_every_promise(
    rounds_cloud: LocalCloud, fault: str, verdict: Verdict
) -> None:
    cloud = rounds_cloud
    # Given a drill in rounds with the fault armed
    # When it runs
    run = cloud.wait_for_run(cloud.start_drill("clinic-db", fault=fault), timeout=240)
    # Then it reaches the fault's verdict, keeping every promise of a drill
    assert run is not None and run.verdict is verdict, run
    assert_invariants(cloud, run, verdict)
    if verdict is Verdict.PASSED:
        assert run.report_key is not None
        rounds = check(cloud.report(run.report_key), "check_rounds")
        assert rounds["evidence"]["verified_pct"] == 100.0 and rounds["evidence"]["rounds"] >= 5
