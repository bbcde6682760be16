"""Point-in-time drills in memory: the policy, the request, the run a schedule starts (once per
window), the restore asked for, the RPO arithmetic and the max_rpo verdict, and malformed
requests turned away with clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.announcement import render
from restoredrill.domain.drill import (
    DrillRejected,
    advance_drill,
    poll_drill,
    run_id_for,
    start_drill,
    sweep,
)
from restoredrill.domain.point_in_time import (
    newest_data_age,
    point_in_time_key,
    rpo_exceeded,
)
from restoredrill.domain.report.html import render_report_html
from restoredrill.domain.report.model import DrillFinished
from restoredrill.ports.inbound_events import InvalidEvent, parse_drill_requested
from restoredrill.ports.policy import PolicyError, parse_policy_text
from restoredrill.ports.records import (
    CheckerOutcome,
    DrillRequest,
    PointInTimeRestore,
    RunRecord,
    Verdict,
)

from tests.unit.check_suites import check, suite_of
from tests.unit.fakes import START, World, world
from tests.unit.test_report_schema import errors_of

EVENTS = Path(__file__).resolve().parents[2] / "events"
OPT_IN = {"restoredrill:drill": "enabled"}
FRESHNESS = (
    "    freshness:\n"
    "      - {schema: clinic, table: appointments, column: created_at, max_age: 26h}\n"
)
LATEST = START - timedelta(minutes=5)


def policy(pitr: str, db: str = "clinic-db", extra: str = "") -> Any:
    return parse_policy_text(
        f"version: 1\ndatabases:\n  {db}:\n{FRESHNESS}    pitr: {pitr}\n{extra}", "policy.yaml"
    )


def pitr_world(pitr: str = "{every: 24h, max_rpo: 5m}", **source: Any) -> World:
    w = world()
    w.ctx.policies = policy(pitr)
    w.rds.add_restorable_source(
        "clinic-db", source.get("tags", OPT_IN), source.get("latest", LATEST)
    )
    return w


def requested(**detail: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (EVENTS / "start_drill" / "drill-requested-point-in-time.json").read_text()
    )
    event["detail"].update(detail)
    return {**event, "detail": {k: v for k, v in event["detail"].items() if v is not None}}


def freshness(rpo_s: float, newest: str) -> Any:
    return check(
        "freshness",
        "pass",
        level=2,
        database="clinic",
        object="clinic.appointments.created_at",
        evidence={"rpo_s": rpo_s, "newest": newest, "reference_is": "snapshot time"},
    )


# ------------------------------------------------------------------------------ the policy


def test_pitr_reads_as_a_schedule_a_mapping_or_on_demand() -> None:
    # When the three forms are read
    every = policy("every 24h").for_database("clinic-db").pitr
    mapping = policy("{every: 12h, max_rpo: 15m}").for_database("clinic-db").pitr
    on_demand = policy("on demand").for_database("clinic-db").pitr
    # Then each says when drills run and what RPO is acceptable
    assert every is not None and (every.every, every.max_rpo) == (86400.0, None)
    assert mapping is not None and (mapping.every, mapping.max_rpo) == (43200.0, 900.0)
    assert on_demand is not None and (on_demand.every, on_demand.max_rpo) == (None, None)
    # And a database without it has none
    assert parse_policy_text("version: 1\n").for_database("other-db").pitr is None


@pytest.mark.parametrize(
    ("pitr", "message"),
    [
        ("sometimes", "invalid pitr 'sometimes': use 'every 24h', 'on demand'"),
        ("every often", "invalid duration 'often'"),
        ("every 10m", "greater than or equal to 3600"),
        ("{every: 24h, rpo: 5m}", "Extra inputs are not permitted"),
        ("{max_rpo: -5m}", "invalid duration"),
    ],
)
def test_a_malformed_pitr_is_refused_naming_the_line_and_field(pitr: str, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        policy(pitr)
    text = str(refused.value)
    assert text.startswith("policy.yaml:6: databases.clinic-db.pitr"), text
    assert message in text


def test_pitr_without_a_freshness_rule_is_refused_because_nothing_could_measure_the_rpo() -> None:
    with pytest.raises(PolicyError, match="pitr needs at least one freshness rule"):
        parse_policy_text("version: 1\ndatabases:\n  clinic-db:\n    pitr: every 24h\n")


# ------------------------------------------------------------------------------ the request


def test_the_sample_point_in_time_request_asks_for_a_point_in_time_drill_of_one_instance() -> None:
    request = parse_drill_requested(requested())
    assert request.point_in_time is True
    assert (request.source_db, request.snapshot_id, request.cluster) == ("clinic-db", None, False)
    assert request.idempotency_key == "request:cli-20261127-0930-pitr"


@pytest.mark.parametrize(
    ("detail", "why"),
    [
        ({"snapshot_id": "rds:clinic-db-2026-11-27-03-00"}, "and no snapshot_id"),
        ({"db_instance_identifier": None, "snapshot_id": "snap-1"}, "names db_instance_identifier"),
        ({"db_cluster_identifier": "orders-aurora"}, "not both"),
        ({"point_in_time": "yes"}, "malformed Drill Requested event: detail.point_in_time"),
        ({"point_in_time": 1}, "malformed Drill Requested event: detail.point_in_time"),
    ],
)
def test_a_malformed_point_in_time_request_is_refused_clearly(
    detail: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidEvent, match=why):
        parse_drill_requested(requested(**detail))


# ------------------------------------------------------------------------------ the drill


def test_a_point_in_time_drill_restores_the_source_to_its_latest_restorable_time() -> None:
    # Given an opted-in source whose latest restorable time is five minutes ago
    w = pitr_world()
    # When a point-in-time drill is requested, and the same request arrives again
    request = parse_drill_requested(requested(db_instance_identifier="clinic-db"))
    run = start_drill(request, w.ctx)
    again = start_drill(request, w.ctx)
    # Then one run restores the source to exactly that time, with the policy's max_rpo
    assert again.run_id == run.run_id == run_id_for("request:cli-20261127-0930-pitr")
    assert run.point_in_time == PointInTimeRestore(restore_time=LATEST, max_rpo_seconds=300.0)
    assert w.rds.point_in_time_restores == [("clinic-db", LATEST)]
    # And the backup under test is the source's backups and logs up to that time (the freshness
    # checks' reference), encrypted with the source's key
    snapshot = run.snapshot
    assert snapshot.snapshot_type == "point-in-time"
    assert snapshot.snapshot_created_at == LATEST
    assert snapshot.snapshot_arn == "arn:aws:rds:us-east-1:123456789012:db:clinic-db"
    assert snapshot.kms_key_id == "arn:aws:kms:us-east-1:123456789012:key/source-key"
    assert snapshot.snapshot_id == "clinic-db@2026-11-27T02:55:00Z"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ({"tags": {}}, "clinic-db is not opted in"),
        ({"latest": None}, "clinic-db has no LatestRestorableTime"),
    ],
)
def test_a_source_that_cannot_be_drilled_to_a_point_in_time_is_rejected_with_the_reason(
    source: dict[str, Any], why: str
) -> None:
    w = pitr_world(**source)
    with pytest.raises(DrillRejected, match=why):
        start_drill(parse_drill_requested(requested()), w.ctx)
    assert w.rds.calls == [] and w.runs.runs == {}


def test_a_database_without_a_freshness_rule_is_not_drilled_to_a_point_in_time() -> None:
    w = pitr_world()
    w.ctx.policies = parse_policy_text("version: 1\n")
    with pytest.raises(DrillRejected, match="needs a freshness rule in its drill policy"):
        start_drill(parse_drill_requested(requested()), w.ctx)
    assert w.rds.calls == []


def test_a_request_object_naming_a_snapshot_or_the_wrong_kind_is_not_a_point_in_time_drill() -> (
    None
):
    w = pitr_world()
    with pytest.raises(DrillRejected, match="names one DB instance or cluster and no snapshot"):
        start_drill(
            DrillRequest(
                source_db="clinic-db", snapshot_id="snap-1", trigger="t", point_in_time=True
            ),
            w.ctx,
        )
    # A DB instance asked for as a cluster is no cluster
    with pytest.raises(DrillRejected, match="no RDS DB cluster clinic-db"):
        start_drill(
            DrillRequest(source_db="clinic-db", cluster=True, trigger="t", point_in_time=True),
            w.ctx,
        )
    assert w.rds.calls == []


def aurora_world() -> World:
    w = world()
    w.ctx.policies = policy("on demand", db="orders-aurora")
    w.rds.add_restorable_cluster("orders-aurora", OPT_IN, LATEST)
    return w


def test_an_aurora_point_in_time_drill_restores_the_cluster_to_its_latest_restorable_time() -> None:
    # Given an opted-in Aurora PostgreSQL cluster
    w = aurora_world()
    # When a point-in-time drill of it is requested
    request = parse_drill_requested(
        requested(db_instance_identifier=None, db_cluster_identifier="orders-aurora")
    )
    run = start_drill(request, w.ctx)
    # Then its cluster is restored to the latest restorable time (its instance comes after)
    assert run.cluster_id is not None and run.point_in_time is not None
    assert run.point_in_time.restore_time == LATEST
    assert w.rds.point_in_time_restores == [("orders-aurora", LATEST)]
    assert ("restore_cluster", run.cluster_id) in w.rds.calls
    assert run.snapshot.snapshot_type == "point-in-time"
    assert run.snapshot.engine == "aurora-postgresql"
    assert run.snapshot.snapshot_arn.endswith(":cluster:orders-aurora")
    # And a cluster whose restore failed is FAILED, saying the logs did not replay
    w.rds.set_cluster_status(run.cluster_id, "incompatible-restore")
    after = advance_drill(run.run_id, w.ctx)
    assert after is not None and after.verdict is Verdict.FAILED
    assert (
        after.reason is not None and "could not be replayed to the requested time" in after.reason
    )


# ------------------------------------------------------------------------------ the schedule


def test_the_sweeper_starts_one_point_in_time_drill_per_database_per_window() -> None:
    # Given a database drilled to a point in time every 24h, and one without pitr
    w = pitr_world("every 24h")
    w.rds.add_restorable_source("other-db", OPT_IN, LATEST)
    # When the sweeper runs twice in the same UTC day
    first = sweep(w.ctx)
    w.clock.advance(hours=2)
    second = sweep(w.ctx)
    # Then it started one drill, keyed by the day, and none the second time
    key = point_in_time_key("clinic-db", 86400, START)
    assert first.point_in_time_started == [run_id_for(key)]
    assert second.point_in_time_started == []
    run = w.runs.get(run_id_for(key))
    assert run is not None and run.trigger == "point-in-time schedule"
    # And the next day, another
    w.clock.advance(hours=24)
    assert len(sweep(w.ctx).point_in_time_started) == 1
    assert [db for db, _ in w.rds.point_in_time_restores] == ["clinic-db", "clinic-db"]


def test_the_schedule_respects_the_drill_window_and_skips_a_source_it_cannot_drill() -> None:
    # Given a window that is not now (START is 03:00 UTC)
    w = pitr_world("every 24h")
    w.ctx.policies = policy("every 24h", extra="    window: 05:00-06:00\n")
    assert sweep(w.ctx).point_in_time_started == []
    # And a source without a restorable time: logged and skipped, nothing created
    w = pitr_world("every 24h", latest=None)
    assert sweep(w.ctx).point_in_time_started == []
    assert w.runs.runs == {}


def test_a_failing_call_for_one_database_does_not_keep_the_others_from_their_drill() -> None:
    # Given two scheduled databases, the first of which RDS cannot describe right now
    w = pitr_world("every 24h")
    w.ctx.policies = parse_policy_text(
        "version: 1\ndatabases:\n"
        + "".join(f"  {db}:\n{FRESHNESS}    pitr: every 24h\n" for db in ("a-db", "clinic-db")),
        "policy.yaml",
    )
    throttled = w.rds.describe_restorable_source

    def describe(instance_id: str) -> Any:
        if instance_id == "a-db":
            raise ConnectionError("Rate exceeded")
        return throttled(instance_id)

    w.rds.describe_restorable_source = describe  # type: ignore[method-assign]
    # When the sweeper runs
    started = sweep(w.ctx).point_in_time_started
    # Then the other database's drill started, and the failing one is left for the next sweep
    assert started == [run_id_for(point_in_time_key("clinic-db", 86400, START))]
    assert w.runs.get(run_id_for(point_in_time_key("a-db", 86400, START))) is None


def test_the_schedule_drills_an_aurora_cluster_named_in_the_policy_as_a_cluster() -> None:
    # Given an Aurora cluster scheduled every 24h
    w = aurora_world()
    w.ctx.policies = policy("every 24h", db="orders-aurora")
    # When the sweeper runs
    (run_id,) = sweep(w.ctx).point_in_time_started
    # Then it started a point-in-time drill of the cluster
    run = w.runs.get(run_id)
    assert run is not None and run.cluster_id is not None
    assert w.rds.point_in_time_restores == [("orders-aurora", LATEST)]


def test_the_window_key_changes_exactly_at_the_window_boundary() -> None:
    midnight = datetime(2026, 11, 28, tzinfo=UTC)
    before = point_in_time_key("clinic-db", 86400, midnight - timedelta(microseconds=1))
    assert before != point_in_time_key("clinic-db", 86400, midnight)
    assert point_in_time_key("clinic-db", 86400, midnight) == point_in_time_key(
        "clinic-db", 86400, midnight + timedelta(hours=23, minutes=59)
    )
    assert point_in_time_key("a", 86400, midnight) != point_in_time_key("b", 86400, midnight)


# ------------------------------------------------------------------------------ the RPO


def test_the_rpo_is_the_largest_gap_the_freshness_checks_measured() -> None:
    suite = suite_of(
        "PASSED",
        check("connect", "pass"),
        freshness(12.5, "2026-11-27 02:54:47.5+00"),
        freshness(90.0, "2026-11-27 02:53:30+00"),
    )
    assert newest_data_age(suite) == (90.0, "2026-11-27 02:53:30+00")
    assert newest_data_age(suite_of("PASSED", check("connect", "pass"))) is None
    assert newest_data_age(None) is None


def test_an_rpo_over_the_maximum_is_a_reason_to_fail_with_the_figures() -> None:
    limit = PointInTimeRestore(restore_time=LATEST, max_rpo_seconds=300)
    over = suite_of("PASSED", freshness(301.4, "2026-11-27 02:49:58.6+00"))
    reason = rpo_exceeded(limit, over)
    assert reason == (
        "point-in-time RPO 301 s (5m01s) exceeds the policy's max_rpo of 300 s: requested "
        "2026-11-27 02:55:00 UTC, newest data found 2026-11-27 02:49:58.6+00"
    )
    # At the limit, below it, and newer than the requested time: within
    assert rpo_exceeded(limit, suite_of("PASSED", freshness(300, "x"))) is None
    assert rpo_exceeded(limit, suite_of("PASSED", freshness(-3, "x"))) is None
    # Without a limit nothing fails; with one and nothing measured, the drill cannot show it
    assert rpo_exceeded(PointInTimeRestore(restore_time=LATEST), over) is None
    unmeasured = rpo_exceeded(limit, suite_of("PASSED", check("connect", "pass")))
    assert unmeasured is not None and "could not be measured" in unmeasured


def drill_through(w: World, suite: Any) -> RunRecord:
    run = start_drill(parse_drill_requested(requested()), w.ctx)
    w.clock.advance(minutes=12)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run.run_id, w.ctx)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    verdict = Verdict.PASSED if suite.verdict.value == "PASSED" else Verdict.FAILED
    outcome = CheckerOutcome(run_id=run.run_id, succeeded=True, verdict=verdict, result=suite)
    advance_drill(run.run_id, w.ctx, checker_outcome=outcome)
    del w.rds.instances[run.instance_id]
    finished = poll_drill(run.run_id, w.ctx)
    assert finished is not None and finished.is_finished
    return finished


def test_a_drill_whose_rpo_exceeds_max_rpo_fails_and_its_report_says_point_in_time() -> None:
    # Given a point-in-time drill whose checks passed but whose newest row is 7 minutes old
    w = pitr_world()
    run = drill_through(w, suite_of("PASSED", freshness(420.0, "2026-11-27 02:48:00+00")))
    # Then it failed on its RPO, with the figure
    assert run.verdict is Verdict.FAILED
    assert run.reason is not None
    assert run.reason.startswith("point-in-time RPO 420 s (7m00s) exceeds the policy's max_rpo")
    # And the report, the event, Slack and the page say it was a point-in-time drill
    ((report,),) = [list(w.reports.documents.values())]
    assert report["point_in_time"] == {
        "requested_time": "2026-11-27T02:55:00+00:00",
        "newest_data": "2026-11-27 02:48:00+00",
        "rpo_seconds": 420.0,
        "max_rpo_seconds": 300.0,
    }
    # (a report the published schema describes)
    assert errors_of(report) == []
    finished = DrillFinished.model_validate(w.events.items[0])
    assert finished.point_in_time == "2026-11-27T02:55:00+00:00"
    text, _ = render(finished)
    assert "Point-in-time restore drill FAILED: clinic-db to 2026-11-27T02:55:00+00:00" in text
    assert "Point-in-time RPO: 7m00s" in text
    page = render_report_html(report)
    assert "Point-in-time restore" in page and "point-in-time restore to" in page
    assert "2026-11-27 02:48:00+00" in page


def test_a_drill_within_max_rpo_passes_and_a_snapshot_drills_report_has_no_point_in_time() -> None:
    w = pitr_world()
    run = drill_through(w, suite_of("PASSED", freshness(42.0, "2026-11-27 02:54:18+00")))
    assert run.verdict is Verdict.PASSED and run.reason is None
    ((report,),) = [list(w.reports.documents.values())]
    assert report["point_in_time"]["rpo_seconds"] == 42.0
    # And a snapshot drill's report carries none
    w = world()
    w.rds.add_source("clinic-db", OPT_IN, "rds:clinic-db-1")
    snapshot_run = start_drill(
        DrillRequest(snapshot_id="rds:clinic-db-1", trigger="RDS-EVENT-0091"), w.ctx
    )
    assert snapshot_run.point_in_time is None
    assert w.rds.point_in_time_restores == []


def test_a_failed_point_in_time_restore_says_the_logs_could_not_be_replayed() -> None:
    # Given a point-in-time drill whose restore RDS ended in a failed status
    w = pitr_world()
    run = start_drill(parse_drill_requested(requested()), w.ctx)
    w.rds.set_status(run.instance_id, "incompatible-restore")
    # When the drill advances
    after = advance_drill(run.run_id, w.ctx)
    # Then it is FAILED, saying why
    assert after is not None and after.verdict is Verdict.FAILED
    assert after.reason == (
        "the point-in-time restore to 2026-11-27 02:55:00 UTC ended in status "
        "incompatible-restore: the transaction logs (WAL) could not be replayed to the requested "
        "time"
    )
