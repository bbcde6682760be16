"""Checks in rounds: advance's side (pure state machine) and the check runner's side (with an
in-memory work store and a scripted checker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from restoredrill.checksuite.plan import DatabasePlan, PlannedRelation, PlannedTask, TaskOutcome
from restoredrill.domain.check_rounds import (
    CheckWork,
    ShareAnswer,
    keep_baseline,
    run_check_round,
    shares_of,
    with_kept_baseline,
)
from restoredrill.domain.runstate import Effect, decide
from restoredrill.ports.baseline import Baseline, DatabaseBaseline
from restoredrill.ports.gateways import CheckerFailed
from restoredrill.ports.inbound_events import parse_checker_record
from restoredrill.ports.messages import (
    CheckerAnswer,
    CheckResult,
    CheckRunRequest,
    CheckStatus,
    CheckSuiteResult,
    SuiteVerdict,
    json_size,
)
from restoredrill.ports.policy import PolicyError, parse_policy_text
from restoredrill.ports.records import CheckerOutcome, RunState, Verdict

from tests.unit.fakes import MemoryWorkStore
from tests.unit.test_runstate import RULES, RUN_ID, a_run, an_instance, seen

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
ROUNDS: dict[str, Any] = {"enabled": True, "tasks_per_invocation": 2}
POLICY: dict[str, Any] = {"level": 3, "parallelism": 2, "rounds": ROUNDS}


# ---------------------------------------------------------------------------------------------
# advance's side
# ---------------------------------------------------------------------------------------------


def round_done(number: int) -> CheckerOutcome:
    return CheckerOutcome(run_id=RUN_ID, succeeded=True, round_finished=number)


def test_a_finished_round_starts_the_next_one_claimed_like_the_first_invoke() -> None:
    # Given a drill checking round 0
    run = a_run(RunState.CHECKING, checker_invoked_at=None)
    # When round 0's answer arrives
    step = decide(run, seen(an_instance("available"), checker_outcome=round_done(0)), RULES)
    # Then the check runner is invoked for round 1, claimed first, confirmed after
    assert step.effect is Effect.INVOKE_CHECKER
    assert step.claim is not None and step.claim.check_round == 1
    assert step.claim.check_attempt == 0 and step.claim.checker_invoked_at is None
    assert step.record is not None and step.record.checker_invoked_at is not None
    assert step.record.state is RunState.CHECKING and step.record.verdict is None


@pytest.mark.parametrize(
    "outcome",
    [round_done(0), CheckerOutcome(run_id=RUN_ID, succeeded=True, duplicate_round=True)],
    ids=["stale-round", "duplicate-round"],
)
def test_a_stale_or_duplicate_round_answer_changes_nothing(outcome: CheckerOutcome) -> None:
    # Given a drill already at round 1
    run = a_run(RunState.CHECKING, check_round=1, checker_invoked_at=NOW)
    # When round 0's answer arrives again, or a duplicate trigger's answer
    step = decide(run, seen(an_instance("available"), checker_outcome=outcome), RULES)
    # Then nothing is invoked and nothing is written
    assert step.effect is None and step.record is None


def test_a_lost_round_is_asked_again_once_then_the_drill_ends_in_error() -> None:
    # Given round 2 invoked long ago, with no answer since
    run = a_run(RunState.CHECKING, check_round=2, checker_invoked_at=a_run().created_at)
    late = RULES.checker_timeout + RULES.checker_result_grace + timedelta(seconds=1)
    # When the poll sees it
    step = decide(run, seen(an_instance("available"), after=late), RULES)
    # Then round 2 is asked again, as its second attempt
    assert step.effect is Effect.INVOKE_CHECKER
    assert step.record is not None
    assert (step.record.check_round, step.record.check_attempt) == (2, 1)
    # And when that attempt is lost too, the drill ends in ERROR and tears down
    again = step.record.model_copy(update={"checker_invoked_at": a_run().created_at})
    final = decide(again, seen(an_instance("available"), after=late), RULES)
    assert final.record is not None and final.record.verdict is Verdict.ERROR
    assert final.effect is Effect.DELETE_INSTANCE
    assert final.record.reason == "the checker's result never arrived"


def test_a_lost_first_round_ends_in_error_as_a_lost_single_check_does() -> None:
    # Given round 0 (or a drill without rounds) invoked long ago, with no answer
    run = a_run(RunState.CHECKING, checker_invoked_at=a_run().created_at)
    late = RULES.checker_timeout + RULES.checker_result_grace + timedelta(seconds=1)
    # When the poll sees it
    step = decide(run, seen(an_instance("available"), after=late), RULES)
    # Then the drill ends in ERROR
    assert step.record is not None and step.record.verdict is Verdict.ERROR


def destination_record(response: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-12-05T03:00:00.000Z",
            "requestContext": {
                "requestId": "e8d4c2b2-1c9f-4b8e-9a55-2f5c1c3d9e11",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:runner:$LATEST",
                "condition": "Success",
                "approximateInvokeCount": 1,
            },
            "requestPayload": {"run_id": RUN_ID},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": response,
        }
    )


def test_the_runners_round_answer_reaches_advance_as_a_finished_round() -> None:
    # Given the destination record of a round that ended with the plan going on
    body = destination_record({"run_id": RUN_ID, "round": 3, "tasks_done": 5, "tasks_total": 9})
    # When advance reads it
    outcome = parse_checker_record(body)
    # Then it is round 3 finished, with no verdict
    assert outcome.round_finished == 3 and outcome.verdict is None and outcome.succeeded


def test_a_malformed_round_answer_is_a_checker_failure_naming_the_field() -> None:
    # Given a round answer whose round is not a number
    outcome = parse_checker_record(destination_record({"run_id": RUN_ID, "round": "three"}))
    # Then it is a failure naming the field, never a finished round
    assert not outcome.succeeded and outcome.round_finished is None
    assert outcome.error is not None and "round" in outcome.error


def test_rounds_and_a_content_fingerprint_cannot_be_combined() -> None:
    # Given a policy asking for both
    text = "version: 1\ndefaults:\n  rounds: {enabled: true}\n  content_fingerprint: true\n"
    # When it is loaded, then it is refused saying why
    with pytest.raises(PolicyError, match="rounds and content_fingerprint cannot be combined"):
        parse_policy_text(text)


# ---------------------------------------------------------------------------------------------
# the check runner's side
# ---------------------------------------------------------------------------------------------


def a_task(number: int, size: int = 1 << 20) -> PlannedTask:
    return PlannedTask(
        id=f"count:16400:{number * 128}",
        kind="count",
        oid=16400,
        schema_name="public",
        name="ledger",
        first_block=number * 128,
        last_block=number * 128 + 127,
        bytes=size,
    )


def a_plan(tasks: int) -> DatabasePlan:
    return DatabasePlan(
        database="app",
        level=2,
        server_version_num=150000,
        block_size=8192,
        task_bytes=1 << 20,
        tasks=[a_task(n) for n in range(tasks)],
        relations=[
            PlannedRelation(
                oid=16400,
                schema_name="public",
                name="ledger",
                kind="r",
                persistence="p",
                heap_bytes=tasks << 20,
            )
        ],
    )


def early_result() -> CheckSuiteResult:
    connect = CheckResult(name="connect", level=0, status=CheckStatus.PASS)
    return CheckSuiteResult(
        verdict=SuiteVerdict.PASSED,
        checks=[connect],
        started_at=NOW,
        finished_at=NOW,
        duration_ms=1,
        level=2,
        complete=True,
    )


class ScriptedChecker:
    """Answers ``plan`` with the plan and the first task done; ``tasks`` by passing every task
    of the share, except that shares holding a task in ``crash_on`` fail, and a task in
    ``damaged`` fails its count."""

    def __init__(
        self, plan: DatabasePlan, crash_on: set[str] | None = None, run_id: str = RUN_ID
    ) -> None:
        self.plan = plan
        self.run_id = run_id
        self.crash_on = crash_on or set()
        self.damaged: set[str] = set()
        self.requests: list[dict[str, Any]] = []

    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(payload)
        if payload["mode"] == "plan":
            # As the checker does: no task in round 0 when the runner chooses them (rotate).
            first = [TaskOutcome(id=self.plan.tasks[0].id, status=CheckStatus.PASS, rows=10)]
            rotating = payload["policy"].get("coverage") == "rotate"
            answer = ShareAnswer(
                run_id=self.run_id,
                early=early_result(),
                plans=[self.plan],
                outcomes={} if rotating else {"app": first},
            )
            return answer.model_dump(mode="json")
        ids = [t["id"] for p in payload["work"]["plans"] for t in p["tasks"]]
        if self.crash_on & set(ids):
            raise CheckerFailed("Sandbox.Timedout: Task timed out after 3.00 seconds")
        outcomes = [
            TaskOutcome(id=i, status=CheckStatus.FAIL, message="could not read block")
            if i in self.damaged
            else TaskOutcome(id=i, status=CheckStatus.PASS, rows=10)
            for i in ids
        ]
        return ShareAnswer(run_id=self.run_id, outcomes={"app": outcomes}).model_dump(mode="json")


def a_request(round_: int, attempt: int = 0) -> CheckRunRequest:
    return CheckRunRequest.model_validate(
        {
            "run_id": RUN_ID,
            "password_parameter": "/restoredrill/test/runs/x",
            "target": {"host": "db.internal", "port": 5432, "user": "admin"},
            "policy": POLICY,
            "round": round_,
            "attempt": attempt,
            "deadline": (NOW + timedelta(hours=2)).isoformat(),
        }
    )


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def run_round(
    checker: ScriptedChecker, store: MemoryWorkStore, round_: int, attempt: int = 0
) -> dict[str, Any]:
    return run_check_round(a_request(round_, attempt), "pw", checker, store, clock=lambda: NOW)


def test_rounds_run_the_whole_plan_and_end_with_one_verdict_like_a_single_check() -> None:
    # Given a plan of 9 tasks; round 0 does 1, each later round 2 shares of 2 tasks
    checker, store = ScriptedChecker(a_plan(9)), MemoryWorkStore()
    answers = [run_round(checker, store, 0)]
    while "result" not in answers[-1]:
        answers.append(run_round(checker, store, len(answers)))
    # Then rounds 0 to 2 answer with progress, and round 3 with the verdict
    assert [a["round"] for a in answers[:-1]] == [0, 1]
    assert answers[0]["tasks_done"] == 1 and answers[1]["tasks_done"] == 5
    final = answers[-1]["result"]
    assert final["verdict"] == "PASSED" and len(answers) == 3
    rounds = next(c for c in final["checks"] if c["name"] == "check_rounds")
    assert rounds["status"] == "pass"
    assert rounds["evidence"]["verified_pct"] == 100.0
    assert rounds["evidence"]["rounds"] == 3 and rounds["evidence"]["invocations"] == 5
    counts = next(c for c in final["checks"] if c["name"] == "row_counts")
    assert counts["status"] == "pass" and "90 rows" in counts["message"]
    # And the baseline-bearing early result was kept: connect passed
    assert final["checks"][0]["name"] == "connect"


def test_a_round_triggered_twice_runs_once() -> None:
    # Given round 0 and 1 done
    checker, store = ScriptedChecker(a_plan(9)), MemoryWorkStore()
    run_round(checker, store, 0)
    run_round(checker, store, 1)
    asked = len(checker.requests)
    # When round 1 is triggered again (a duplicated event)
    answer = run_round(checker, store, 1)
    # Then the second trigger does no work and says it was a duplicate
    assert answer["duplicate"] is True and len(checker.requests) == asked


def test_a_share_whose_checker_dies_twice_is_an_error_naming_its_blocks() -> None:
    # Given a checker that is killed whenever its share holds the task of blocks 1024-1151
    plan = a_plan(9)
    checker, store = ScriptedChecker(plan, crash_on={plan.tasks[8].id}), MemoryWorkStore()
    answers = [run_round(checker, store, 0)]
    while "result" not in answers[-1]:
        answers.append(run_round(checker, store, len(answers)))
    # Then the drill still ends, and the count fails as ERROR naming the table and the range
    final = answers[-1]["result"]
    counts = next(c for c in final["checks"] if c["name"] == "row_counts")
    assert counts["status"] == "error" and final["verdict"] == "ERROR"
    assert "blocks 1024-1151" in counts["message"]
    assert "stopped twice" in counts["message"]


def test_damage_found_in_a_late_round_fails_naming_the_table_and_blocks() -> None:
    # Given a plan whose last range is damaged
    plan = a_plan(9)
    checker, store = ScriptedChecker(plan), MemoryWorkStore()
    checker.damaged = {plan.tasks[8].id}
    answers = [run_round(checker, store, 0)]
    while "result" not in answers[-1]:
        answers.append(run_round(checker, store, len(answers)))
    # Then the verdict is FAILED and the message names the range
    final = answers[-1]["result"]
    counts = next(c for c in final["checks"] if c["name"] == "row_counts")
    assert final["verdict"] == "FAILED" and counts["status"] == "fail"
    assert "blocks 1024-1151: could not read block" in counts["message"]


def test_a_new_attempt_at_a_lost_round_charges_the_tasks_the_lost_attempt_claimed() -> None:
    # Given round 1 claimed by an attempt whose runner died before storing anything
    plan = a_plan(9)
    checker, store = ScriptedChecker(plan), MemoryWorkStore()
    run_round(checker, store, 0)
    lost = {"app": [plan.tasks[1].id]}
    store.claim(RUN_ID, 1, 0, lost)
    # When advance asks for round 1 again (attempt 1)
    run_round(checker, store, 1, attempt=1)
    # Then the lost attempt's task has used one attempt (and was done this time)
    work = CheckWork.model_validate(store.work[RUN_ID])
    assert work.progress["app"].attempts.get(plan.tasks[1].id) == 1
    assert plan.tasks[1].id in work.progress["app"].done


def test_a_round_whose_plan_is_gone_fails_clearly() -> None:
    # Given no stored work (the work bucket lost it, or round 0 never ran)
    # When round 1 runs, then it fails saying so
    with pytest.raises(CheckerFailed, match="check plan is gone"):
        run_round(ScriptedChecker(a_plan(3)), MemoryWorkStore(), 1)


def test_shares_balance_the_work_and_hold_at_most_the_tasks_per_invocation() -> None:
    # Given a plan of one large and six small tasks
    plan = a_plan(0).model_copy(
        update={"tasks": [a_task(0, 60 << 20)] + [a_task(n, 10 << 20) for n in range(1, 7)]}
    )
    work = CheckWork(run_id=RUN_ID, started_at=NOW, early=early_result(), plans=[plan])
    # When it is cut into 2 shares of at most 6 tasks
    shares = shares_of(work, parallelism=2, per_share=6, round_=1)
    # Then the large task is alone, balanced by the six small ones in the other share
    sizes = sorted(sum(t.bytes for p in s.plans for t in p.tasks) >> 20 for s in shares)
    assert sizes == [60, 60]
    assert sorted(sum(len(p.tasks) for p in s.plans) for s in shares) == [1, 6]
    # And with a cap of 2 per share, only 4 tasks are taken this round
    capped = shares_of(work, parallelism=2, per_share=2, round_=1)
    assert sum(len(p.tasks) for s in capped for p in s.plans) == 4


def test_three_rotating_drills_of_40_percent_cover_the_whole_database() -> None:
    # Given a 10-range database, a rotating policy with a budget of 4 ranges per drill
    plan = a_plan(10)
    store = MemoryWorkStore()
    policy = {**POLICY, "coverage": "rotate", "rounds": {**ROUNDS, "budget_mib": 4}}
    coverages = []
    for day in range(3):
        today = NOW + timedelta(days=day)
        run_id = f"{day:020x}"
        checker = ScriptedChecker(plan, run_id=run_id)
        answers: list[dict[str, Any]] = []
        while not answers or "result" not in answers[-1]:
            request = a_request(len(answers)).model_copy(
                update={
                    "policy": policy,
                    "source_db": "clinic-db",
                    "run_id": run_id,
                    "deadline": today + timedelta(hours=2),
                }
            )
            answers.append(run_check_round(request, "pw", checker, store, clock=at(today)))
        final = answers[-1]["result"]
        rounds = next(c for c in final["checks"] if c["name"] == "check_rounds")
        coverages.append(rounds["evidence"]["coverage"])
        # Then every drill passes, having done what its budget allows and no more
        assert final["verdict"] == "PASSED" and rounds["status"] == "pass", rounds["message"]
        assert rounds["evidence"]["tasks_done"] == 4
    # And the cumulative coverage grows to 100% on the third day, never verifying a range twice
    assert [c["drill_pct"] for c in coverages] == [40.0, 40.0, 40.0]
    assert [c["cumulative_pct"] for c in coverages] == [40.0, 80.0, 100.0]
    assert [c["never_verified"] for c in coverages] == [6, 2, 0]
    assert coverages[2]["oldest_verification"] == NOW.isoformat().replace("+00:00", "Z")


def test_a_rotating_policy_needs_a_budget() -> None:
    text = "version: 1\ndefaults:\n  coverage: rotate\n  rounds: {enabled: true}\n"
    with pytest.raises(PolicyError, match="coverage: rotate needs rounds with a budget"):
        parse_policy_text(text)


def test_a_baseline_is_kept_in_the_work_store_and_read_back_by_the_next_drill() -> None:
    # Given the final answer of a drill whose baseline lists 20,000 tables
    tables = {f'"public"."t{n}"': n for n in range(20_000)}
    baseline = Baseline(
        taken_at=NOW,
        server_version="15.8",
        level=2,
        database_names=["app"],
        databases={"app": DatabaseBaseline(schema_fingerprint="x", row_counts=tables)},
    )
    result = early_result().model_copy(update={"baseline": baseline})
    store = MemoryWorkStore()
    # When the runner keeps it
    kept = keep_baseline(CheckerAnswer(run_id=RUN_ID, result=result), store, "clinic-db")
    # Then the answer names it by key and is small enough for its way back to advance
    assert kept.result.baseline is None and kept.baseline_key is not None
    assert json_size(kept.model_dump(mode="json")) < 2_000
    # And the next drill's request, holding only the key, gets it back whole
    request = a_request(0).model_copy(update={"baseline_key": kept.baseline_key})
    restored = with_kept_baseline(request, store)
    assert restored.baseline is not None
    assert restored.baseline.databases["app"].row_counts == tables


def test_a_baseline_gone_from_the_work_store_is_said_not_guessed() -> None:
    # Given a request naming a baseline the store no longer has
    request = a_request(0).model_copy(update={"baseline_key": "baselines/clinic-db/x.json.gz"})
    # When the runner reads it back, then the drill has none and says why
    restored = with_kept_baseline(request, MemoryWorkStore())
    assert restored.baseline is None
    assert restored.baseline_omitted is not None and "is gone" in restored.baseline_omitted
