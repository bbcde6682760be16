"""The drill's use cases against in-memory adapters: a whole drill, duplicates, races, sweeps."""

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.drill import (
    DrillRejected,
    advance_drill,
    poll_drill,
    run_id_for,
    start_drill,
    sweep,
)
from restoredrill.ports.config import ConfigError
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.inbound_events import parse_checker_record, parse_snapshot_event
from restoredrill.ports.policy import PolicyError, parse_policy_text
from restoredrill.ports.records import (
    OWNER_TAG,
    RUN_ID_TAG,
    CheckerOutcome,
    DrillRequest,
    InstanceView,
    RequestedDrill,
    RunRecord,
    RunState,
    Verdict,
)

from tests.unit.check_suites import passed_suite
from tests.unit.fakes import STACK, World, world

OPTED_IN = {"restoredrill:drill": "enabled", "team": "clinic"}
EVENTS = Path(__file__).resolve().parents[2] / "events"
SNAPSHOT = "rds:clinic-db-2026-11-27-03-10"


def snapshot_request(key: str = SNAPSHOT) -> DrillRequest:
    return DrillRequest(
        snapshot_id=SNAPSHOT, idempotency_key=f"snapshot:{key}", trigger="RDS-EVENT-0091"
    )


def given_an_opted_in_database(tags: dict[str, str] | None = None) -> World:
    w = world()
    w.rds.add_source("clinic-db", OPTED_IN if tags is None else tags, SNAPSHOT)
    return w


def passed(run_id: str) -> CheckerOutcome:
    return CheckerOutcome(
        run_id=run_id, succeeded=True, verdict=Verdict.PASSED, result=passed_suite()
    )


def drive_to_checking(w: World) -> str:
    run = start_drill(snapshot_request(), w.ctx)
    w.clock.advance(minutes=12)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run.run_id, w.ctx)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    return run.run_id


def test_a_whole_drill_passes_reports_and_cleans_up() -> None:
    # Given an opted-in database with a new automated snapshot
    w = given_an_opted_in_database()
    # When the drill runs through every step
    run_id = drive_to_checking(w)
    run = w.runs.get(run_id)
    assert run is not None and run.state is RunState.CHECKING
    payload = w.checker.items[0]
    assert payload["target"]["host"] == "10.0.0.9"
    # The check runner's payload names the run's password but never carries it
    assert "password" not in payload["target"]
    password = w.vault.params[payload["password_parameter"]]
    assert password == w.rds.passwords[run.instance_id]
    assert password not in json.dumps(payload)
    w.clock.advance(seconds=20)
    advance_drill(run_id, w.ctx, checker_outcome=passed(run_id))
    w.clock.advance(minutes=6)
    del w.rds.instances[run.instance_id]
    final = poll_drill(run_id, w.ctx)
    # Then it passed, the instance was deleted, the password forgotten, the report written once
    assert (
        final is not None and final.state is RunState.FINISHED and final.verdict is Verdict.PASSED
    )
    assert w.rds.count("restore") == 1 and w.rds.count("delete") == 1
    assert w.vault.params == {}
    ((key, report),) = w.reports.documents.items()
    assert key == f"reports/us-east-1/clinic-db/2026/11/27/{run_id}.json"
    assert report["verdict"] == "PASSED"
    assert report["timings"]["restore_seconds"] == 12 * 60
    # An instance drill's topology: the one instance, no cluster, no split of its restore time
    assert report["topology"]["kind"] == "db-instance"
    assert report["topology"]["db_cluster_identifier"] is None
    assert report["topology"]["instances"] == [
        {
            "db_instance_identifier": run.instance_id,
            "instance_class": "db.t4g.micro",
            "role": "instance",
        }
    ]
    assert report["topology"]["cluster_restore_seconds"] is None
    assert [p["phase"] for p in report["timings"]["phases"]] == [
        "request",
        "restore",
        "secure",
        "check",
        "teardown",
    ]
    assert all(p["seconds"] is not None for p in report["timings"]["phases"])
    assert len(w.events.items) == 1 and w.events.items[0]["verdict"] == "PASSED"
    # And the password appears in neither the report nor the event
    assert password not in str(report) and password not in str(w.events.items)


def test_the_restore_is_private_throwaway_and_tagged_as_ours() -> None:
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    instance = w.rds.instances[run.instance_id]
    assert instance.tags[OWNER_TAG] == STACK and instance.tags[RUN_ID_TAG] == run.run_id
    assert run.instance_id.startswith("restoredrill-") and len(run.instance_id) <= 63


def test_the_same_snapshot_event_three_times_makes_one_drill() -> None:
    w = given_an_opted_in_database()
    runs = [start_drill(snapshot_request(), w.ctx) for _ in range(3)]
    assert len({run.run_id for run in runs}) == 1
    assert len(w.runs.runs) == 1
    assert w.rds.count("restore") == 1
    assert len(w.polls.items) == 1  # one poll chain, not three


def test_a_database_that_is_not_opted_in_is_skipped_and_nothing_is_created() -> None:
    w = given_an_opted_in_database(tags={"team": "clinic", "restoredrill:drill": "disabled"})
    with pytest.raises(DrillRejected, match="not opted in"):
        start_drill(snapshot_request(), w.ctx)
    assert w.runs.runs == {} and w.rds.calls == []


def test_a_missing_snapshot_is_rejected() -> None:
    w = world()
    with pytest.raises(DrillRejected, match=f"no snapshot {SNAPSHOT}"):
        start_drill(snapshot_request(), w.ctx)


def test_a_drill_request_without_snapshot_takes_the_newest_automated_one() -> None:
    w = given_an_opted_in_database()
    request = DrillRequest(
        source_db="clinic-db", idempotency_key="request:1", trigger="Drill Requested"
    )
    run = start_drill(request, w.ctx)
    assert run.snapshot.snapshot_id == SNAPSHOT


def test_a_refused_restore_finishes_the_drill_with_a_report() -> None:
    # Given RDS refuses the restore for good
    w = given_an_opted_in_database()
    w.rds.refuse_restore = EffectRejected("DBSnapshotNotFound", "snapshot gone")
    # When the drill starts
    run = start_drill(snapshot_request(), w.ctx)
    final = advance_drill(run.run_id, w.ctx)
    # Then it is finished as FAILED with the reason, reported and announced
    assert (
        final is not None and final.state is RunState.FINISHED and final.verdict is Verdict.FAILED
    )
    assert "DBSnapshotNotFound" in (final.reason or "")
    assert len(w.reports.documents) == 1 and len(w.events.items) == 1


def test_a_failed_restore_is_deleted_and_reported_failed() -> None:
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    w.rds.set_status(run.instance_id, "incompatible-restore")
    advance_drill(run.run_id, w.ctx)
    assert w.rds.instances[run.instance_id].status == "deleting"
    del w.rds.instances[run.instance_id]
    final = advance_drill(run.run_id, w.ctx)
    assert final is not None and final.verdict is Verdict.FAILED and final.is_finished
    assert w.events.items[0]["reason"] == "restore ended in status incompatible-restore"


def test_duplicate_checker_results_give_one_report_and_one_event() -> None:
    w = given_an_opted_in_database()
    run_id = drive_to_checking(w)
    for _ in range(3):
        advance_drill(run_id, w.ctx, checker_outcome=passed(run_id))
    instance_id = w.runs.runs[run_id].instance_id
    del w.rds.instances[instance_id]
    for _ in range(3):
        advance_drill(run_id, w.ctx)
    assert len(w.events.items) == 1 and len(w.reports.documents) == 1
    assert w.rds.count("delete") == 1


def test_a_lost_race_on_the_record_leaves_the_winner_in_charge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given another trigger wrote the run between our read and our write
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    original_replace = w.runs.replace
    calls = {"n": 0}

    def replace_after_a_rival(record: RunRecord, expected_version: int) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            rival = w.runs.runs[record.run_id].model_copy(update={"version": expected_version + 1})
            w.runs.runs[record.run_id] = rival
        return original_replace(record, expected_version)

    monkeypatch.setattr(w.runs, "replace", replace_after_a_rival)
    # When our advance loses the conditional write
    result = advance_drill(run.run_id, w.ctx)
    # Then it stops with the stored (rival's) record instead of overwriting it
    assert result is not None and result.version == w.runs.runs[run.run_id].version
    assert result.state is RunState.RESTORING


def test_the_poll_chain_continues_until_the_run_is_finished() -> None:
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    poll_drill(run.run_id, w.ctx)
    assert len(w.polls.items) == 2
    w.clock.advance(hours=5)
    poll_drill(run.run_id, w.ctx)  # deadline passed: torn down
    del w.rds.instances[run.instance_id]
    final = poll_drill(run.run_id, w.ctx)
    assert final is not None and final.is_finished and final.verdict is Verdict.TIMED_OUT
    assert len(w.polls.items) == 3  # no poll after the finish


def test_the_sweeper_times_out_stuck_runs_and_deletes_orphans_but_nothing_else() -> None:
    # Given a run stuck in restore past its deadline, an orphaned drill instance,
    # and a production instance whose name looks like ours but carries no ownership tag
    w = given_an_opted_in_database()
    stuck = start_drill(snapshot_request(), w.ctx)
    w.rds.instances["restoredrill-ffffffffffffffffffff"] = InstanceView(
        instance_id="restoredrill-ffffffffffffffffffff",
        status="available",
        tags={OWNER_TAG: STACK, RUN_ID_TAG: "ffffffffffffffffffff"},
    )
    w.rds.instances["restoredrill-prod"] = InstanceView(
        instance_id="restoredrill-prod", status="available", tags={"team": "payments"}
    )
    w.clock.advance(hours=4, seconds=1)
    # When the sweeper runs
    summary = sweep(w.ctx)
    # Then the stuck run is torn down as TIMED_OUT, the orphan is deleted, production untouched
    assert summary.runs_timed_out == 1
    assert summary.orphans_deleted == ["restoredrill-ffffffffffffffffffff"]
    assert w.runs.runs[stuck.run_id].verdict is Verdict.TIMED_OUT
    assert w.rds.instances[stuck.instance_id].status == "deleting"
    assert w.rds.instances["restoredrill-prod"].status == "available"
    # And a second sweep counts nothing twice
    again = sweep(w.ctx)
    assert again.runs_timed_out == 0 and again.orphans_deleted == []


def test_the_checker_result_record_sample_parses_into_an_outcome() -> None:
    # Given the sample destination record in events/ (what the checker's destination delivers)
    sample = json.loads((EVENTS / "advance/checker-result.json").read_text())
    outcome = parse_checker_record(sample["Records"][0]["body"])
    assert outcome.succeeded and outcome.verdict is Verdict.PASSED
    assert outcome.result is not None and outcome.result.checks[0].name == "connect"


def test_a_trigger_that_loses_the_claim_does_not_invoke_a_second_checker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a run ready to check, and a rival trigger that claims the step first
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run.run_id, w.ctx)
    w.rds.set_status(run.instance_id, "available")
    stored = w.runs.runs[run.run_id]
    original_replace = w.runs.replace

    def rival_claims_first(record: RunRecord, expected_version: int) -> bool:
        current = w.runs.runs[record.run_id]
        if current.version == expected_version:
            w.runs.runs[record.run_id] = current.model_copy(
                update={"version": expected_version + 1}
            )
        return original_replace(record, expected_version)

    monkeypatch.setattr(w.runs, "replace", rival_claims_first)
    # When our trigger advances
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    # Then it invoked no checker: the step belongs to the rival
    assert w.checker.items == []
    assert stored.state is RunState.SECURING


def test_a_bad_policy_refuses_new_drills_but_runs_under_way_go_on() -> None:
    # Given a drill under way, then an invalid policy deployed
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    try:
        load_policy_text_that_is_invalid()
    except PolicyError as error:
        w.ctx.policies = error
    # When a new snapshot arrives and the running drill is polled
    with pytest.raises(ConfigError, match="invalid drill policy"):
        start_drill(snapshot_request(key="another-snapshot"), w.ctx)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advanced = poll_drill(run.run_id, w.ctx)
    # Then no second run exists, and the first one still moved forward
    assert list(w.runs.runs) == [run.run_id]
    assert advanced is not None and advanced.state is RunState.SECURING


def load_policy_text_that_is_invalid() -> None:
    parse_policy_text("version: 1\ndefaults:\n  level: eleven\n", "drill-policy.yaml")


def test_the_finish_is_reported_once_by_the_trigger_that_wrote_it() -> None:
    # Given a drill whose run finishes, with triggers arriving again afterwards
    w = given_an_opted_in_database()
    finished: list[str] = []
    w.ctx.on_finished = lambda run: finished.append(run.run_id)
    run = start_drill(snapshot_request(), w.ctx)
    w.rds.set_status(run.instance_id, "incompatible-restore")
    advance_drill(run.run_id, w.ctx)
    del w.rds.instances[run.instance_id]
    # When the finishing trigger and three late duplicates advance it
    for _ in range(4):
        advance_drill(run.run_id, w.ctx)
    # Then the finish (metrics, the finished log line) is reported exactly once
    assert finished == [run.run_id]


def test_a_stale_trigger_never_restores_a_second_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a drill whose restore failed and was torn down and finished within a second
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    stale = w.runs.runs[run.run_id].model_copy(
        update={"state": RunState.REQUESTED, "version": 0, "phases": {}}
    )
    w.rds.set_status(run.instance_id, "incompatible-restore")
    advance_drill(run.run_id, w.ctx)
    del w.rds.instances[run.instance_id]
    advance_drill(run.run_id, w.ctx)
    assert w.runs.runs[run.run_id].is_finished
    # When a slow trigger that read the run while it was still REQUESTED acts on that read
    reads = iter([stale])
    fresh_get = w.runs.get
    monkeypatch.setattr(w.runs, "get", lambda run_id: next(reads, None) or fresh_get(run_id))
    advance_drill(run.run_id, w.ctx)
    # Then it loses the claim and restores nothing: the only restore is the first one
    assert w.rds.count("restore") == 1
    assert run.instance_id not in w.rds.instances


def snapshot_event() -> dict[str, Any]:
    path = EVENTS / "start_drill" / "automated-snapshot-created.json"
    event: dict[str, Any] = json.loads(path.read_text())
    return event


def test_the_arn_form_and_the_id_form_event_of_one_snapshot_are_one_drill() -> None:
    # Given an opted-in database, and its snapshot's event once by ARN and once by id only
    w = given_an_opted_in_database()
    id_form = snapshot_event()
    del id_form["detail"]["SourceArn"]
    by_arn = parse_snapshot_event(snapshot_event())
    by_id = parse_snapshot_event(id_form)
    assert by_arn is not None and by_id is not None
    # When StartDrill gets both
    runs = [start_drill(by_arn, w.ctx), start_drill(by_id, w.ctx)]
    # Then they are one drill, keyed by the snapshot's ARN as RDS describes it
    arn = w.rds.snapshots[SNAPSHOT][0].snapshot_arn
    assert {run.run_id for run in runs} == {run_id_for(f"snapshot:{arn}")}
    assert len(w.runs.runs) == 1 and w.rds.count("restore") == 1


def test_a_repeated_start_reports_the_drill_started_once() -> None:
    # Given an opted-in database, and the start of its drills observed
    w = given_an_opted_in_database()
    started: list[str] = []
    w.ctx.on_started = lambda run: started.append(run.run_id)
    # When the same snapshot event arrives three times
    request = parse_snapshot_event(snapshot_event())
    assert request is not None
    runs = [start_drill(request, w.ctx) for _ in range(3)]
    # Then the start (the DrillsStarted metric, the "drill started" line) is reported once
    assert started == [runs[0].run_id]


def test_a_request_naming_one_database_and_anothers_snapshot_drills_nothing() -> None:
    # Given two opted-in databases, each with its snapshot
    w = given_an_opted_in_database()
    w.rds.add_source("orders-db", OPTED_IN, "rds:orders-db-2026-11-27-03-10")
    # When a Drill Requested names orders-db and clinic-db's snapshot
    request = RequestedDrill(
        source_db="orders-db",
        snapshot_id=SNAPSHOT,
        idempotency_key="request:mismatch",
        trigger="Drill Requested",
    )
    # Then it is refused, saying whose snapshot it is, and nothing is created or restored
    with pytest.raises(DrillRejected, match=f"snapshot {SNAPSHOT} is of clinic-db, not orders-db"):
        start_drill(request, w.ctx)
    assert w.runs.runs == {} and w.rds.calls == []


def passed_earlier(w: World, run_id: str, data_as_of: datetime, baseline_key: str) -> None:
    """A finished, passing drill of clinic-db whose backup holds data as of ``data_as_of``."""
    template = next(iter(w.runs.runs.values()))
    w.runs.runs[run_id] = template.model_copy(
        update={
            "run_id": run_id,
            "state": RunState.FINISHED,
            "verdict": Verdict.PASSED,
            "created_at": w.clock() - timedelta(hours=1),
            "snapshot": template.snapshot.model_copy(update={"snapshot_created_at": data_as_of}),
            "baseline_key": baseline_key,
        }
    )


def test_a_drill_is_compared_with_the_last_passing_drill_of_older_data_not_newer() -> None:
    # Given a drill of a snapshot taken at 02:45 on the way to its checks
    w = given_an_opted_in_database()
    run = start_drill(snapshot_request(), w.ctx)
    own_data = run.snapshot.snapshot_created_at
    assert own_data is not None
    # And two passing drills before it: the newest restored data from 10 minutes after this
    # snapshot (a point-in-time drill, or a newer snapshot drilled first), the other from a day
    # before
    passed_earlier(w, "a" * 20, own_data + timedelta(minutes=10), "baselines/newer-data")
    passed_earlier(w, "b" * 20, own_data - timedelta(days=1), "baselines/older-data")
    w.runs.runs["a" * 20] = w.runs.runs["a" * 20].model_copy(
        update={"created_at": w.clock() - timedelta(minutes=5)}
    )
    # When it reaches its checks
    w.clock.advance(minutes=12)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run.run_id, w.ctx)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    # Then it is compared with the drill of older data, although the other one passed later
    assert w.checker.items[0]["baseline_key"] == "baselines/older-data"
