"""Rotating coverage over consecutive drills: which ranges a drill takes, and what its report
says of coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from restoredrill.checksuite.coverage import (
    VerificationHistory,
    coverage_of,
    range_key,
    rotation_order,
    within_budget,
)
from restoredrill.checksuite.plan import PlannedTask, PlanProgress, TaskOutcome
from restoredrill.checksuite.results import CheckStatus

DAY = timedelta(days=1)
START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def heap_ranges(count: int, size: int = 100) -> list[PlannedTask]:
    """`count` equal heap ranges of one table (ids and keys as the plan makes them)."""
    return [
        PlannedTask(
            id=f"heap:7:{n * 10}",
            kind="heap",
            oid=7,
            schema_name="public",
            name="orders",
            first_block=n * 10,
            last_block=None if n == count - 1 else n * 10 + 9,
            bytes=size,
        )
        for n in range(count)
    ]


def verified(tasks: list[PlannedTask]) -> PlanProgress:
    return PlanProgress(done={t.id: TaskOutcome(id=t.id, status=CheckStatus.PASS) for t in tasks})


def drill(
    tasks: list[PlannedTask], history: VerificationHistory, budget: int, when: datetime
) -> tuple[list[PlannedTask], PlanProgress, VerificationHistory]:
    chosen = within_budget(rotation_order(tasks, history), budget)
    progress = verified(chosen)
    return chosen, progress, history.after(tasks, progress, when)


def test_three_rotating_drills_of_40_percent_each_cover_the_whole_database() -> None:
    # Given ten equal ranges and a budget of 40 % of the bytes per drill
    tasks = heap_ranges(10)
    history = VerificationHistory()
    seen: list[set[str]] = []
    # When three drills run, a day apart, each taking what was verified longest ago
    for day in range(3):
        chosen, progress, history = drill(tasks, history, 400, START + day * DAY)
        seen.append({t.id for t in chosen})
    coverage = coverage_of(tasks, progress, history, now=START + 2 * DAY, window=7 * DAY)
    # Then no range was taken twice before every range was taken once, and all are covered
    assert seen[0].isdisjoint(seen[1]) and len(seen[0] | seen[1]) == 8
    assert seen[2] >= {t.id for t in tasks} - seen[0] - seen[1]
    assert coverage.cumulative_pct == 100.0 and coverage.never_verified == 0
    # And the last drill's own share is its 40 %, the oldest verification the first drill's
    assert coverage.drill_pct == 40.0
    assert coverage.oldest_verification == START


def test_after_full_coverage_the_next_drill_takes_the_oldest_ranges_again() -> None:
    # Given three drills that covered everything, a day apart
    tasks = heap_ranges(10)
    history = VerificationHistory()
    for day in range(3):
        _, _, history = drill(tasks, history, 400, START + day * DAY)
    # When a fourth drill runs
    chosen, _, after = drill(tasks, history, 400, START + 3 * DAY)
    # Then it takes the four ranges verified longest ago (days 0 and 1, none from day 2)
    taken = sorted(history.verified_at[range_key(t)] for t in chosen)
    assert taken == [START, START, START + DAY, START + DAY]
    # And afterwards the oldest verification is a day later than before
    now = START + 3 * DAY
    before = coverage_of(tasks, verified([]), history, now=now, window=7 * DAY)
    later = coverage_of(tasks, verified(chosen), after, now=now, window=7 * DAY)
    assert before.oldest_verification == START
    assert later.oldest_verification == START + DAY


def test_coverage_outside_the_window_does_not_count_and_a_never_verified_range_is_named() -> None:
    # Given one drill that verified half of the ranges, 30 days ago
    tasks = heap_ranges(4)
    _, progress, history = drill(tasks, VerificationHistory(), 200, START)
    # When coverage is measured now, over a 7-day window
    coverage = coverage_of(tasks, progress, history, now=START + 30 * DAY, window=7 * DAY)
    # Then nothing counts as recently covered, and two ranges were never verified
    assert coverage.cumulative_pct == 0.0
    assert coverage.never_verified == 2 and coverage.oldest_verification is None


def test_a_failed_range_counts_as_verified_and_an_error_does_not() -> None:
    # Given a drill where one range failed (damage found) and one errored (not read)
    tasks = heap_ranges(2)
    progress = PlanProgress(
        done={
            tasks[0].id: TaskOutcome(id=tasks[0].id, status=CheckStatus.FAIL),
            tasks[1].id: TaskOutcome(id=tasks[1].id, status=CheckStatus.ERROR),
        }
    )
    # When the history is updated
    history = VerificationHistory().after(tasks, progress, START)
    # Then only the range that was read to the end is verified
    assert list(history.verified_at) == [range_key(tasks[0])]


def test_a_range_too_big_for_the_budget_is_passed_over_for_smaller_ones() -> None:
    # Given a large range first in order, then small ones
    big, *small = heap_ranges(1, size=500) + heap_ranges(3, size=100)
    # When a budget of 250 bytes is filled, the big one first in line
    chosen = within_budget([small[0], big, small[1], small[2]], 250)
    # Then the small ones fill the budget, and a budget too small still takes one task
    assert chosen == [small[0], small[1]]
    assert within_budget([big], 10) == [big]


def test_range_keys_do_not_depend_on_the_relations_oid() -> None:
    # Given the same range of the same table in two restores, with different OIDs
    one = heap_ranges(1)[0]
    other = one.model_copy(update={"oid": 99, "id": "heap:99:0"})
    # Then both have one key, so their verification history carries over
    assert range_key(one) == range_key(other) == 'heap:"public"."orders":0'
