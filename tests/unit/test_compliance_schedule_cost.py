"""The compliance summary with schedules and costs: `every` sets the coverage interval, and the
drills' estimated costs add up per database and per month (reports before 1.4 carry none)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from restoredrill.ports.policy import parse_policy_text

from restoredrill_cli.compliance import OptedInDatabase, build_summary, render_summary
from tests.unit.test_compliance import DRILL_MINUTES, US, drill_report

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
WEEKLY = {"level": 2, "max_hours_between_drills": 36, "every": 7 * 86400.0}


def costed(report: dict[str, Any], usd: float) -> dict[str, Any]:
    """The report as version 1.4 writes it: with its cost (only the total is read here)."""
    return report | {"schema_version": "1.4", "cost": {"total_usd": usd, "estimate": True}}


def opted(db: str) -> OptedInDatabase:
    return OptedInDatabase(region=US, db_instance_identifier=db)


def test_a_database_drilled_weekly_by_policy_is_not_overdue_after_two_days() -> None:
    # Given two databases last drilled 3 days ago: one weekly by policy, one with the defaults
    three_days_ago = NOW - timedelta(days=3, minutes=DRILL_MINUTES)
    weekly = drill_report("weekly-db", three_days_ago, policy=WEEKLY)
    daily = drill_report("daily-db", three_days_ago, policy={"level": 2})
    # When summarised
    summary = build_summary(
        [weekly, daily], [opted("weekly-db"), opted("daily-db")], since=SINCE, now=NOW
    )
    by_name = {db.db_instance_identifier: db for db in summary.databases}
    # Then the weekly one is covered for every + 12 h (180 h), the daily one is overdue
    assert by_name["weekly-db"].coverage == "covered"
    assert by_name["weekly-db"].max_hours_between_drills == 7 * 24 + 12
    assert by_name["weekly-db"].max_hours_from == "report policy"
    assert by_name["daily-db"].coverage == "overdue"
    # And eight days after its last drill the weekly one is overdue
    late = build_summary([weekly], [opted("weekly-db")], since=SINCE, now=NOW + timedelta(days=5))
    assert late.databases[0].coverage == "overdue"


def test_a_larger_max_hours_between_drills_wins_over_every() -> None:
    policy = WEEKLY | {"max_hours_between_drills": 400}
    report = drill_report("weekly-db", NOW - timedelta(days=10), policy=policy)
    (db,) = build_summary([report], [opted("weekly-db")], since=SINCE, now=NOW).databases
    assert (db.coverage, db.max_hours_between_drills) == ("covered", 400)


def test_an_opted_in_database_takes_its_interval_from_every_in_the_policy_file() -> None:
    # The CLI gives each opted-in database the coverage hours of the policy it reads
    policy = parse_policy_text("databases:\n  weekly-db: {every: 7d}\n")
    assert policy.for_database("weekly-db").coverage_hours == 180
    assert policy.for_database("other-db").coverage_hours == 36


def test_costs_add_up_per_database_and_per_month_and_older_reports_count_as_uncosted() -> None:
    # Given drills in October (before the window), November and December, one written by 1.1
    reports = [
        costed(drill_report("orders-db", datetime(2026, 10, 30, 3, tzinfo=UTC)), 1.0),
        costed(drill_report("orders-db", datetime(2026, 11, 10, 3, tzinfo=UTC)), 0.0075),
        costed(drill_report("orders-db", datetime(2026, 11, 11, 3, tzinfo=UTC)), 0.0075),
        costed(drill_report("orders-db", datetime(2026, 12, 1, 3, tzinfo=UTC)), 0.075),
        costed(drill_report("billing-db", datetime(2026, 11, 30, 23, tzinfo=UTC)), 0.02),
        drill_report("billing-db", datetime(2026, 12, 1, 3, tzinfo=UTC)),
    ]
    # When summarised from November on
    summary = build_summary(
        reports, [opted("orders-db"), opted("billing-db")], since=SINCE, now=NOW
    )
    by_name = {db.db_instance_identifier: db for db in summary.databases}
    orders, billing = by_name["orders-db"], by_name["billing-db"]
    # Then each database sums the costed drills of the window, by month
    assert (orders.estimated_cost_usd, orders.drills_costed) == (0.09, 3)
    assert orders.cost_by_month == {"2026-11": 0.015, "2026-12": 0.075}
    assert (billing.estimated_cost_usd, billing.drills_costed, billing.drills) == (0.02, 1, 2)
    # And the months add every database's drills; October's is outside the window
    assert [(m.month, m.usd, m.drills_costed) for m in summary.cost_by_month] == [
        ("2026-11", 0.035, 3),
        ("2026-12", 0.075, 1),
    ]
    assert (summary.totals.estimated_cost_usd, summary.totals.drills_costed) == (0.11, 4)
    # And markdown and HTML show both
    markdown = render_summary(summary, "md")
    assert "| ≈ $0.0900 (3 drills) |" in markdown
    assert "| 2026-11 | 3 | ≈ $0.0350 |" in markdown and "| 2026-12 | 1 | ≈ $0.0750 |" in markdown
    page = render_summary(summary, "html")
    assert '<tr data-month="2026-12"><td>2026-12</td><td class="num">1</td>' in page
    assert "≈ $0.1100" in page


def test_a_window_without_costed_drills_says_so() -> None:
    report = drill_report("orders-db", NOW - timedelta(days=1))
    summary = build_summary([report], [opted("orders-db")], since=SINCE, now=NOW)
    assert summary.databases[0].estimated_cost_usd is None and summary.cost_by_month == []
    assert "No drill in the window carries a cost estimate." in render_summary(summary, "md")
