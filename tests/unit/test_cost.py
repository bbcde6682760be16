"""The drill's cost estimate: its arithmetic, the shipped prices, the policy's overrides, and
where it is shown (report, Drill Finished, Slack, the HTML page)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.announcement import render
from restoredrill.domain.cost import (
    CHECK_RUNNER_MEMORY_MB,
    CHECKER_MEMORY_MB,
    SHORT_FUNCTION_MEMORY_MB,
    estimate_drill_cost,
    price_table_for,
    shipped_price_table,
)
from restoredrill.domain.drill import advance_drill, poll_drill, start_drill
from restoredrill.domain.report.html import render_report_html
from restoredrill.domain.report.model import DrillFinished
from restoredrill.domain.report.text import usd_text
from restoredrill.ports.policy import PolicyError, parse_policy_text
from restoredrill.ports.records import (
    CheckerOutcome,
    DrillRequest,
    PhaseTiming,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

from localcloud.template import load_yaml
from tests.unit.check_suites import passed_suite
from tests.unit.fakes import world

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
SECONDS_PER_MONTH = 730 * 3600


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finished_run(
    *,
    available_for: float = 780,
    instance_class: str = "db.t4g.micro",
    storage_type: str | None = "gp3",
    policy: dict[str, Any] | None = None,
    restored: bool = True,
) -> RunRecord:
    """A drill created at -30 s: restore 0-720 s, secure 720-840, check 840-1020, teardown to
    720 + available_for (the instance is gone then), finished 30 s later."""
    gone = 720 + available_for
    phases = {
        RunState.REQUESTED: PhaseTiming(started_at=at(-30), ended_at=at(0)),
        RunState.RESTORING: PhaseTiming(started_at=at(0), ended_at=at(720)),
    }
    if restored:
        phases |= {
            RunState.SECURING: PhaseTiming(started_at=at(720), ended_at=at(840)),
            RunState.CHECKING: PhaseTiming(started_at=at(840), ended_at=at(1020)),
        }
    phases[RunState.TEARING_DOWN] = PhaseTiming(
        started_at=at(1020 if restored else 720), ended_at=at(gone)
    )
    return RunRecord(
        run_id="a" * 20,
        state=RunState.FINISHED,
        source_db="orders-db",
        snapshot=SnapshotInfo(
            snapshot_id="rds:orders-db-1",
            snapshot_arn="arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-db-1",
            master_username="admin",
            allocated_storage_gib=20,
            storage_type=storage_type,
        ),
        instance_id="restoredrill-" + "a" * 20,
        instance_class=instance_class,
        trigger="RDS-EVENT-0091",
        policy=policy or {},
        created_at=at(-30),
        deadline=at(4 * 3600),
        phases=phases,
        verdict=Verdict.PASSED if restored else Verdict.FAILED,
        finished_at=at(gone + 30),
    )


def test_the_estimate_adds_instance_seconds_storage_and_lambda_at_the_shipped_prices() -> None:
    # Given a drill whose instance was available 780 s and whose volume lived 1,500 s
    run = finished_run()
    # When its cost is estimated with the shipped list prices and a 60 s poll
    cost = estimate_drill_cost(run, shipped_price_table(), poll_delay_seconds=60)
    # Then the instance is 780 s of db.t4g.micro at $0.016 an hour
    assert cost.instance.seconds == 780 and cost.instance.billed_seconds == 780
    assert cost.instance.usd == pytest.approx(780 / 3600 * 0.016, abs=1e-8)
    # And the storage 20 GiB x 1,500 s of gp3 at $0.115 per GiB-month (730 hours)
    assert cost.storage.gib_seconds == 20 * 1500
    assert cost.storage.usd == pytest.approx(20 * 1500 / SECONDS_PER_MONTH * 0.115, abs=1e-8)
    # And Lambda: 3 + 8 RDS events + ceil(1,530 s / 60 s) = 26 polls at 0.25 GB x 0.5 s, the
    # check runner and the checker for the 180 s check phase, 39 requests
    lam = cost.lambda_invocations
    assert lam.requests == 3 + 8 + 26 + 2
    assert lam.gb_seconds == pytest.approx(37 * 0.25 * 0.5 + 180 * (128 + 512) / 1024)
    assert lam.usd == pytest.approx(117.125 * 0.0000166667 + 39 * 0.2 / 1e6, abs=1e-8)
    assert "estimated, not measured" in lam.basis
    # And the total is their sum, complete, and marked an estimate of list prices
    assert cost.storage.usd is not None and cost.instance.usd is not None
    assert cost.total_usd == pytest.approx(cost.instance.usd + cost.storage.usd + lam.usd, abs=1e-7)
    assert cost.estimate is True and cost.complete and cost.missing_prices == []
    assert cost.prices.region == "us-east-1" and not cost.prices.overridden_by_policy


def test_an_instance_available_less_than_ten_minutes_is_billed_ten() -> None:
    cost = estimate_drill_cost(finished_run(available_for=120), shipped_price_table())
    assert cost.instance.seconds == 120 and cost.instance.billed_seconds == 600
    assert cost.instance.usd == pytest.approx(600 / 3600 * 0.016, abs=1e-8)


def test_a_restore_that_never_became_available_costs_no_instance_time_but_its_storage() -> None:
    cost = estimate_drill_cost(
        finished_run(restored=False, available_for=60), shipped_price_table()
    )
    assert cost.instance.seconds == 0 and cost.instance.usd == 0
    assert cost.storage.seconds == 780 and cost.storage.usd is not None
    assert cost.storage.usd > 0
    # No check phase: no check runner or checker invocation
    assert cost.lambda_invocations.requests == 3 + 8 + 14


def test_a_class_without_a_price_is_named_and_left_out_of_the_total() -> None:
    run = finished_run(instance_class="db.x2g.16xlarge", storage_type="io2")
    cost = estimate_drill_cost(run, shipped_price_table())
    assert not cost.complete
    assert cost.missing_prices == [
        "rds_instance_hourly.db.x2g.16xlarge",
        "rds_storage_gib_month.io2",
    ]
    assert cost.instance.usd is None and cost.storage.usd is None
    assert cost.total_usd == cost.lambda_invocations.usd


def test_the_policy_prices_replace_the_shipped_ones_and_the_report_says_so() -> None:
    # Given a policy that gives its own prices for the class, io2 and Lambda
    document = parse_policy_text(
        "databases:\n  orders-db:\n    prices:\n"
        "      instance_hourly: {db.x2g.16xlarge: 6.5}\n"
        "      storage_gib_month: {io2: 0.125}\n"
        "      lambda_gb_second: 0.00001\n"
        "      source: our enterprise agreement, 2026\n"
    )
    policy = document.for_database("orders-db").model_dump(mode="json")
    run = finished_run(instance_class="db.x2g.16xlarge", storage_type="io2", policy=policy)
    # When the drill's cost is estimated with the run's policy
    cost = estimate_drill_cost(run, price_table_for(run.policy))
    # Then those prices are used, the others stay the shipped ones, and it says where from
    assert cost.complete
    assert cost.instance.price_per_hour == 6.5
    assert cost.instance.usd == pytest.approx(780 / 3600 * 6.5, abs=1e-8)
    assert cost.storage.price_per_gib_month == 0.125
    assert cost.lambda_invocations.price_per_gb_second == 0.00001
    assert cost.lambda_invocations.price_per_million_requests == 0.2
    assert cost.prices.overridden_by_policy
    assert cost.prices.policy_source == "our enterprise agreement, 2026"
    # And a database without prices keeps the shipped table
    assert not price_table_for(document.for_database("other").model_dump()).overridden_by_policy


def test_a_negative_or_misnamed_price_is_refused_with_its_path() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy_text(
            "defaults:\n  prices:\n    instance_hourly: {t4g.micro: 0.01}\n"
            "    lambda_gb_second: -1\n",
            source="p.yaml",
        )
    paths = sorted(issue.path for issue in raised.value.issues)
    assert paths == [
        "defaults.prices.instance_hourly.t4g.micro.[key]",
        "defaults.prices.lambda_gb_second",
    ]


def test_the_shipped_prices_say_what_they_are_where_they_come_from_and_when() -> None:
    table = shipped_price_table()
    assert table.region == "us-east-1" and table.currency == "USD" and table.as_of == "2026-11"
    assert "list prices" in table.note and "estimate" in table.note
    assert table.rds_instance_hourly["db.t4g.micro"] == 0.016
    assert {"rds_instance_hourly", "lambda_gb_second", "billing"} <= set(table.sources)


def test_the_estimates_memory_sizes_are_the_templates() -> None:
    template = load_yaml(TEMPLATE)
    resources = template["Resources"]
    assert template["Globals"]["Function"]["MemorySize"] == SHORT_FUNCTION_MEMORY_MB
    assert resources["CheckRunnerFunction"]["Properties"]["MemorySize"] == CHECK_RUNNER_MEMORY_MB
    assert resources["CheckerFunction"]["Properties"]["MemorySize"] == CHECKER_MEMORY_MB
    short = [
        name
        for name in (
            "StartDrillFunction",
            "AdvanceOnRdsEventFunction",
            "AdvanceOnPollFunction",
            "AdvanceOnCheckerResultFunction",
            "NotifyFunction",
        )
        if "MemorySize" not in resources[name]["Properties"]
    ]
    assert len(short) == 5


def test_a_drills_report_event_slack_message_and_page_carry_its_estimate() -> None:
    # Given a whole drill through the in-memory adapters
    w = world()
    w.rds.add_source("clinic-db", {"restoredrill:drill": "enabled"}, "rds:clinic-db-1")
    run = start_drill(DrillRequest(snapshot_id="rds:clinic-db-1", trigger="RDS-EVENT-0091"), w.ctx)
    w.clock.advance(minutes=12)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    w.clock.advance(minutes=3)
    outcome = CheckerOutcome(
        run_id=run.run_id, succeeded=True, verdict=Verdict.PASSED, result=passed_suite()
    )
    advance_drill(run.run_id, w.ctx, checker_outcome=outcome)
    w.clock.advance(minutes=6)
    del w.rds.instances[run.instance_id]
    poll_drill(run.run_id, w.ctx)
    # Then its report carries the estimate, and the event, Slack and the page show its total
    ((report,),) = [list(w.reports.documents.values())]
    cost = report["cost"]
    assert report["schema_version"] == "1.6"
    assert cost["complete"] and cost["instance"]["instance_class"] == "db.t4g.micro"
    assert cost["instance"]["billed_seconds"] == 600  # 9 minutes available: the minimum
    assert w.events.items[0]["estimated_cost_usd"] == cost["total_usd"] > 0
    text, blocks = render(DrillFinished.model_validate(w.events.items[0]))
    shown = f"${cost['total_usd']:.4f}"
    assert f"Estimated cost: ≈ {shown} at list prices" in text
    assert any(shown in str(block) for block in blocks)
    page = render_report_html(report)
    assert f"≈ {shown} (estimate)" in page and "us-east-1 list prices 2026-11" in page


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (None, "no price"),
        (0.0, "$0"),
        (0.0000022, "< $0.0001"),
        (0.0027146, "$0.0027"),
        (0.07469, "$0.0747"),
        (1114.5, "$1,114.50"),
    ],
)
def test_dollars_read_for_people_down_to_a_hundredth_of_a_cent(
    amount: float | None, shown: str
) -> None:
    assert usd_text(amount) == shown
