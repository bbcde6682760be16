"""Schedules: the policy's `every` and `window`, the eligibility decision, and StartDrill skipping
an automated snapshot the schedule does not want (on-demand drills bypass both)."""

from datetime import UTC, datetime, timedelta

import pytest
from restoredrill.domain.drill import DrillNotDue, start_drill
from restoredrill.domain.eligibility import schedule_decision
from restoredrill.ports.policy import (
    DrillPolicy,
    PolicyError,
    parse_policy_text,
    parse_window,
)
from restoredrill.ports.records import DrillRequest, RequestedDrill, RunRecord, Verdict

from tests.unit.fakes import START, World, world

OPTED_IN = {"restoredrill:drill": "enabled"}
SNAPSHOT = "rds:clinic-db-2026-11-27-03-10"
DAY = 86400.0


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 27, hour, minute, tzinfo=UTC)


# ------------------------------------------------------------------------------ the policy keys


def test_every_and_window_are_read_from_the_policy_per_database_over_the_defaults() -> None:
    # Given defaults that drill weekly and one database with a night window across midnight
    document = parse_policy_text(
        "defaults: {every: 7d}\ndatabases:\n  orders-db: {window: '22:30-02:00', every: 24h}\n"
    )
    # Then the database has its own, the others the defaults' every and no window
    orders, other = document.for_database("orders-db"), document.for_database("other-db")
    assert orders.every == DAY and orders.window is not None
    assert orders.window.text == "22:30-02:00"
    assert other.every == 7 * DAY and other.window is None
    # And the window is stored as it was written (the report's policy shows it so)
    assert orders.model_dump(mode="json")["window"] == "22:30-02:00"
    assert DrillPolicy.model_validate(orders.model_dump(mode="json")) == orders


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("window: '01:00'", "invalid window '01:00': use UTC hours as HH:MM-HH:MM"),
        ("window: '25:00-02:00'", "hours are 00-23 and minutes 00-59"),
        ("window: '01:60-02:00'", "hours are 00-23 and minutes 00-59"),
        ("window: '03:00-03:00'", "start and end are the same"),
        ("every: 0", "a duration must be positive"),
        ("every: weekly", "invalid duration 'weekly'"),
        ("every: 400d", "less than or equal to"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_file_line_database_and_key(
    entry: str, message: str
) -> None:
    # Given a policy whose orders-db entry has a bad schedule value
    text = f"version: 1\ndatabases:\n  orders-db:\n    {entry}\n"
    # When it is read
    with pytest.raises(PolicyError) as raised:
        parse_policy_text(text, source="drill-policy.yaml")
    # Then the one error names the file, the line, the database and the key
    (issue,) = raised.value.issues
    key = entry.split(":")[0]
    assert str(issue).startswith(f"drill-policy.yaml:4: databases.orders-db.{key}: ")
    assert message in issue.message


def test_a_window_ending_at_24_00_runs_to_midnight() -> None:
    window = parse_window("20:00-24:00")
    assert window.contains(at(23, 59)) and not window.contains(at(0, 0))


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (at(22, 0), True),
        (at(23, 59), True),
        (at(0, 0), True),
        (at(1, 59), True),
        (at(2, 0), False),
        (at(12, 0), False),
        (at(21, 59), False),
    ],
)
def test_a_window_across_midnight_holds_both_sides_of_it(moment: datetime, inside: bool) -> None:
    assert parse_window("22:00-02:00").contains(moment) is inside


def test_a_window_reads_the_moment_in_utc() -> None:
    # 03:30 in UTC+2 is 01:30 UTC: inside 01:00-05:00, outside 03:00-05:00
    plus_two = datetime.fromisoformat("2026-11-27T03:30:00+02:00")
    assert parse_window("01:00-05:00").contains(plus_two)
    assert not parse_window("03:00-05:00").contains(plus_two)


# ------------------------------------------------------------------------------ the decision


def test_every_allows_a_drill_once_the_last_is_old_enough_less_the_drift_allowance() -> None:
    # Given a daily schedule: due after 24 h less a tenth (21.6 h), for a backup window's drift
    policy = DrillPolicy(every="24h")
    last = at(3, 10) - timedelta(days=1)
    # Then a snapshot taken 21.6 h after the last drill's start is due, one a second earlier not
    due_at = last + timedelta(hours=21.6)
    assert schedule_decision(policy, now=due_at, last_drill_started=last, on_demand=False).due
    early = schedule_decision(
        policy, now=due_at - timedelta(seconds=1), last_drill_started=last, on_demand=False
    )
    assert not early.due
    assert early.why is not None and "every 24h00m" in early.why
    # And a snapshot a few minutes earlier in the day than yesterday's is still due
    drifted = last + timedelta(days=1) - timedelta(minutes=25)
    assert schedule_decision(policy, now=drifted, last_drill_started=last, on_demand=False).due


def test_a_weekly_schedule_skips_the_daily_snapshots_in_between() -> None:
    policy = DrillPolicy(every="7d")
    last = at(3, 10) - timedelta(days=7)
    skipped = [
        day
        for day in range(1, 8)
        if not schedule_decision(
            policy, now=last + timedelta(days=day), last_drill_started=last, on_demand=False
        ).due
    ]
    assert skipped == [1, 2, 3, 4, 5, 6]


def test_a_database_never_drilled_is_due_whatever_every_says() -> None:
    policy = DrillPolicy(every="7d")
    assert schedule_decision(policy, now=at(3), last_drill_started=None, on_demand=False).due


def test_outside_the_window_an_automated_snapshot_is_not_due_and_says_when_it_came() -> None:
    policy = DrillPolicy(window="01:00-05:00")
    decision = schedule_decision(policy, now=at(23, 10), last_drill_started=None, on_demand=False)
    assert not decision.due
    assert decision.why == ("it arrived at 23:10 UTC, outside the drill window 01:00-05:00 UTC")


def test_an_on_demand_drill_bypasses_every_and_window() -> None:
    policy = DrillPolicy(every="7d", window="01:00-05:00")
    decision = schedule_decision(policy, now=at(12), last_drill_started=at(11), on_demand=True)
    assert decision.due and decision.why is None


# ------------------------------------------------------------------------------ StartDrill


def given_a_database_with_policy(text: str) -> World:
    w = world()
    w.rds.add_source("clinic-db", OPTED_IN, SNAPSHOT)
    w.ctx.policies = parse_policy_text(text)
    return w


def automated(snapshot: str = SNAPSHOT) -> DrillRequest:
    return DrillRequest(
        snapshot_id=snapshot, idempotency_key=f"snapshot:{snapshot}", trigger="RDS-EVENT-0091"
    )


def a_past_drill(w: World, *, hours_ago: float, verdict: Verdict | None) -> RunRecord:
    created = START - timedelta(hours=hours_ago)
    template = next(iter(w.rds.snapshots.values()))[0]
    run = RunRecord(
        run_id="0" * 19 + str(len(w.runs.runs)),
        source_db="clinic-db",
        snapshot=template,
        instance_id="restoredrill-old",
        instance_class="db.t4g.micro",
        trigger="RDS-EVENT-0091",
        created_at=created,
        deadline=created + timedelta(hours=4),
        verdict=verdict,
    )
    w.runs.create(run)
    return run


def test_start_drill_skips_a_snapshot_the_schedule_does_not_want_and_says_so() -> None:
    # Given a weekly database drilled (PASSED) two days ago
    w = given_a_database_with_policy("databases:\n  clinic-db: {every: 7d}\n")
    a_past_drill(w, hours_ago=48, verdict=Verdict.PASSED)
    skipped: list[DrillNotDue] = []
    w.ctx.on_skipped = skipped.append
    # When today's automated snapshot arrives
    with pytest.raises(DrillNotDue) as raised:
        start_drill(automated(), w.ctx)
    # Then nothing is created or restored, and the skip is reported with the snapshot and why
    assert len(w.runs.runs) == 1 and w.rds.calls == [] and w.polls.items == []
    assert skipped == [raised.value]
    assert raised.value.snapshot_id == SNAPSHOT and raised.value.source_db == "clinic-db"
    assert "the last drill started 2d00h ago" in str(raised.value)


def test_start_drill_drills_the_snapshot_once_the_last_drill_is_old_enough() -> None:
    w = given_a_database_with_policy("databases:\n  clinic-db: {every: 7d}\n")
    a_past_drill(w, hours_ago=7 * 24, verdict=Verdict.FAILED)
    run = start_drill(automated(), w.ctx)
    assert w.rds.count("restore") == 1 and run.source_db == "clinic-db"


def test_a_drill_that_errored_does_not_count_so_the_next_snapshot_is_drilled() -> None:
    # Given a weekly database whose drill yesterday broke (ERROR: nothing said about the backup)
    w = given_a_database_with_policy("databases:\n  clinic-db: {every: 7d}\n")
    a_past_drill(w, hours_ago=24, verdict=Verdict.ERROR)
    a_past_drill(w, hours_ago=30, verdict=Verdict.TIMED_OUT)
    # When today's snapshot arrives, then it is drilled
    start_drill(automated(), w.ctx)
    assert w.rds.count("restore") == 1


def test_a_drill_still_under_way_counts_as_the_last_drill() -> None:
    w = given_a_database_with_policy("databases:\n  clinic-db: {every: 24h}\n")
    a_past_drill(w, hours_ago=2, verdict=None)
    with pytest.raises(DrillNotDue):
        start_drill(automated(), w.ctx)


def test_a_repeated_event_of_a_drill_under_way_is_not_counted_as_skipped() -> None:
    # Given a daily database whose snapshot's drill has started
    w = given_a_database_with_policy("databases:\n  clinic-db: {every: 24h}\n")
    first = start_drill(automated(), w.ctx)
    skipped: list[DrillNotDue] = []
    w.ctx.on_skipped = skipped.append
    # When the same snapshot event is delivered again an hour later
    w.clock.advance(hours=1)
    again = start_drill(automated(), w.ctx)
    # Then it finds the same drill: nothing skipped, nothing restored twice
    assert again.run_id == first.run_id and skipped == [] and w.rds.count("restore") == 1


def test_a_snapshot_outside_the_window_is_skipped_and_one_inside_is_drilled() -> None:
    # Given a database whose drills may start 01:00-05:00 UTC (the clock says 03:00)
    w = given_a_database_with_policy("databases:\n  clinic-db: {window: '04:00-05:00'}\n")
    with pytest.raises(DrillNotDue, match="outside the drill window 04:00-05:00 UTC"):
        start_drill(automated(), w.ctx)
    w.ctx.policies = parse_policy_text("databases:\n  clinic-db: {window: '22:00-03:30'}\n")
    start_drill(automated(), w.ctx)
    assert w.rds.count("restore") == 1


def test_a_drill_requested_on_demand_bypasses_every_and_window() -> None:
    # Given a weekly database drilled an hour ago, with a window that is closed now
    w = given_a_database_with_policy(
        "databases:\n  clinic-db: {every: 7d, window: '12:00-13:00'}\n"
    )
    a_past_drill(w, hours_ago=1, verdict=Verdict.PASSED)
    # When someone requests a drill (restoredrill run, or Drill Requested)
    request = RequestedDrill(
        source_db="clinic-db", idempotency_key="request:abc", trigger="Drill Requested"
    )
    run = start_drill(request, w.ctx)
    # Then it starts at once
    assert w.rds.count("restore") == 1 and run.trigger == "Drill Requested"
