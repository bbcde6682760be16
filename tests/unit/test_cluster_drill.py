"""Aurora PostgreSQL cluster drills against in-memory adapters: the cluster is restored, its
instance created into it, the cluster's password reset, and both torn down, instance first."""

import contextlib
import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from restoredrill.domain.drill import advance_drill, poll_drill, start_drill, sweep
from restoredrill.domain.report.document import report_topology
from restoredrill.domain.report.schema import report_schema
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.inbound_events import (
    InvalidEvent,
    parse_drill_requested,
    parse_instance_event,
    parse_snapshot_event,
)
from restoredrill.ports.policy import PolicyError, parse_policy_text
from restoredrill.ports.records import (
    AURORA_DEFAULT_INSTANCE_CLASS,
    OWNER_TAG,
    RUN_ID_TAG,
    AccountQuota,
    CheckerOutcome,
    ClusterView,
    DrillRequest,
    InstanceView,
    RunRecord,
    RunState,
    Verdict,
)

from tests.unit.check_suites import passed_suite
from tests.unit.fakes import STACK, World, world

EVENTS = Path(__file__).resolve().parents[2] / "events"
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER
OPTED_IN = {"restoredrill:drill": "enabled", "team": "orders"}
SNAPSHOT = "rds:orders-aurora-2026-11-27-03-10"


def cluster_request() -> DrillRequest:
    return DrillRequest(snapshot_id=SNAPSHOT, trigger="RDS-EVENT-0169", cluster=True)


def given_an_opted_in_cluster() -> World:
    w = world()
    w.rds.add_source_cluster("orders-aurora", OPTED_IN, SNAPSHOT)
    return w


def passed(run_id: str) -> CheckerOutcome:
    return CheckerOutcome(
        run_id=run_id, succeeded=True, verdict=Verdict.PASSED, result=passed_suite()
    )


def stored(w: World, run_id: str) -> RunRecord:
    run = w.runs.get(run_id)
    assert run is not None
    return run


def drive_to_checking(w: World) -> RunRecord:
    run = start_drill(cluster_request(), w.ctx)
    assert run.cluster_id is not None
    w.clock.advance(minutes=8)
    w.rds.set_cluster_status(
        run.cluster_id, "available", address="writer.cluster-x.local", port=5432
    )
    advance_drill(run.run_id, w.ctx)
    w.clock.advance(minutes=6)
    w.rds.set_status(run.instance_id, "available", address="10.0.0.7", port=5432)
    advance_drill(run.run_id, w.ctx)
    w.rds.set_cluster_status(run.cluster_id, "available")
    advance_drill(run.run_id, w.ctx, credentials_reset_event=True)
    return stored(w, run.run_id)


def test_a_whole_cluster_drill_restores_creates_checks_the_writer_and_deletes_both() -> None:
    # Given an opted-in Aurora cluster with a new automated cluster snapshot
    w = given_an_opted_in_cluster()
    # When the drill runs through every step
    run = drive_to_checking(w)
    assert run.state is RunState.CHECKING and run.cluster_id is not None
    # Then the cluster was restored, one instance created into it, and the password set on the
    # cluster (never on the instance)
    assert w.rds.count("restore_cluster") == 1 and w.rds.count("restore") == 0
    assert w.rds.count("create_instance") == 1
    assert w.rds.count("set_cluster_master_password") == 1
    assert w.rds.count("set_master_password") == 0
    assert run.instance_class == AURORA_DEFAULT_INSTANCE_CLASS
    # And the checker connects to the cluster's writer endpoint with the cluster's password
    (payload,) = w.checker.items
    assert payload["target"]["host"] == "writer.cluster-x.local"
    assert w.vault.params[payload["password_parameter"]] == w.rds.passwords[run.cluster_id]
    # When the checks pass
    advance_drill(run.run_id, w.ctx, checker_outcome=passed(run.run_id))
    # Then the instance is deleted first, and the cluster not yet
    assert w.rds.count("delete") == 1 and w.rds.count("delete_cluster") == 0
    assert stored(w, run.run_id).state is RunState.TEARING_DOWN
    # When the instance is gone
    del w.rds.instances[run.instance_id]
    poll_drill(run.run_id, w.ctx)
    # Then the cluster is deleted, and the run waits for it to go
    assert w.rds.count("delete_cluster") == 1
    assert stored(w, run.run_id).state is RunState.TEARING_DOWN
    del w.rds.clusters[run.cluster_id]
    final = poll_drill(run.run_id, w.ctx)
    # And only then the report is written: PASSED, once
    assert final is not None and final.state is RunState.FINISHED
    assert final.verdict is Verdict.PASSED
    assert len(w.reports.documents) == 1 and len(w.events.items) == 1
    assert w.vault.params == {}
    # And the report names the topology (cluster, its writer and class, engine) and the RTO's
    # split, and validates against the current schema
    (report,) = w.reports.documents.values()
    validator = Draft202012Validator(report_schema(), format_checker=FORMAT_CHECKER)
    assert [error.message for error in validator.iter_errors(report)] == []
    assert report["topology"] == {
        "kind": "aurora-cluster",
        "engine": "aurora-postgresql",
        "engine_version": "16.4",
        "db_cluster_identifier": run.cluster_id,
        "instances": [
            {
                "db_instance_identifier": run.instance_id,
                "instance_class": AURORA_DEFAULT_INSTANCE_CLASS,
                "role": "writer",
            }
        ],
        "serverless_v2_min_acu": None,
        "serverless_v2_max_acu": None,
        "cluster_restore_seconds": 8 * 60,
        "instance_create_seconds": 6 * 60,
    }
    assert report["recovery"]["rto_seconds"] == 14 * 60
    # And its HTML page names the cluster and the split
    (page,) = [body for key, (body, _) in w.reports.objects.items() if key.endswith(".html")]
    assert f'id="cluster">{run.cluster_id}<' in page.decode()
    assert "restore: cluster 8m00s, then its instance 6m00s" in page.decode()
    # And the restore time splits into the cluster's restore and the instance's creation
    assert final.cluster_available_at is not None and final.instance_requested_at is not None
    restoring = final.phases[RunState.RESTORING]
    assert (final.cluster_available_at - restoring.started_at).total_seconds() == 8 * 60
    assert restoring.ended_at is not None
    assert (restoring.ended_at - final.cluster_available_at).total_seconds() == 6 * 60


def test_no_instance_is_created_before_the_cluster_is_available() -> None:
    w = given_an_opted_in_cluster()
    run = start_drill(cluster_request(), w.ctx)
    w.clock.advance(minutes=3)
    advance_drill(run.run_id, w.ctx)
    assert w.rds.count("create_instance") == 0
    assert stored(w, run.run_id).state is RunState.RESTORING


def test_a_refused_instance_creation_still_deletes_the_cluster() -> None:
    # Given a cluster restored, and RDS refusing the instance (a class it does not offer)
    w = given_an_opted_in_cluster()
    w.rds.refuse_create_instance = EffectRejected("InvalidParameterCombination", "no class")
    run = start_drill(cluster_request(), w.ctx)
    assert run.cluster_id is not None
    w.rds.set_cluster_status(run.cluster_id, "available")
    # When the drill tries to create the instance
    advance_drill(run.run_id, w.ctx)
    # Then the cluster (whose instance never came up) is deleted, and the verdict says why
    assert w.rds.count("delete_cluster") == 1
    after = stored(w, run.run_id)
    assert after.state is RunState.TEARING_DOWN and after.verdict is Verdict.ERROR
    assert after.reason is not None and "instance creation refused" in after.reason
    del w.rds.clusters[run.cluster_id]
    final = poll_drill(run.run_id, w.ctx)
    assert final is not None and final.is_finished and final.verdict is Verdict.ERROR


def test_a_failed_cluster_restore_fails_the_backup_and_deletes_the_cluster() -> None:
    w = given_an_opted_in_cluster()
    run = start_drill(cluster_request(), w.ctx)
    assert run.cluster_id is not None
    w.rds.set_cluster_status(run.cluster_id, "incompatible-restore")
    advance_drill(run.run_id, w.ctx)
    after = stored(w, run.run_id)
    assert after.verdict is Verdict.FAILED and w.rds.count("create_instance") == 0
    assert w.rds.count("delete_cluster") == 1


def test_an_instance_that_never_appears_ends_the_drill_and_deletes_the_cluster() -> None:
    # Given a creation that went through a trigger that died before the call (nothing created)
    w = given_an_opted_in_cluster()
    run = start_drill(cluster_request(), w.ctx)
    assert run.cluster_id is not None
    w.rds.set_cluster_status(run.cluster_id, "available")
    w.rds.refuse_create_instance = None
    advance_drill(run.run_id, w.ctx)
    instance_id = run.instance_id
    del w.rds.instances[instance_id]
    # When the instance is still missing after the visibility grace
    w.clock.advance(minutes=11)
    advance_drill(run.run_id, w.ctx)
    # Then the drill ends with ERROR and deletes the cluster it restored
    after = stored(w, run.run_id)
    assert after.verdict is Verdict.ERROR and w.rds.count("delete_cluster") == 1


def test_a_crash_after_create_db_instance_creates_no_second_instance() -> None:
    # Given a trigger that created the instance and died before recording it
    w = given_an_opted_in_cluster()
    run = start_drill(cluster_request(), w.ctx)
    assert run.cluster_id is not None
    w.rds.set_cluster_status(run.cluster_id, "available")
    real_create = w.rds.create_cluster_instance

    def create_then_crash(r: RunRecord) -> None:
        real_create(r)
        raise RuntimeError("the handler died")

    w.rds.create_cluster_instance = create_then_crash  # type: ignore[method-assign,assignment]
    with contextlib.suppress(RuntimeError):
        advance_drill(run.run_id, w.ctx)
    w.rds.create_cluster_instance = real_create  # type: ignore[method-assign]
    # When the next triggers come, before and after the claim's lease
    advance_drill(run.run_id, w.ctx)
    w.clock.advance(minutes=3)
    w.rds.set_status(run.instance_id, "available")
    advance_drill(run.run_id, w.ctx)
    # Then there was one creation, and the drill went on to secure the cluster
    assert w.rds.count("create_instance") == 1
    assert stored(w, run.run_id).state is RunState.SECURING


def test_a_cluster_without_this_drills_tags_is_never_touched() -> None:
    w = given_an_opted_in_cluster()
    run = start_drill(cluster_request(), w.ctx)
    assert run.cluster_id is not None
    w.rds.clusters[run.cluster_id] = ClusterView(
        cluster_id=run.cluster_id, status="available", tags={OWNER_TAG: "someone-else"}
    )
    advance_drill(run.run_id, w.ctx)
    after = stored(w, run.run_id)
    assert after.verdict is Verdict.ERROR and after.state is RunState.FINISHED
    assert w.rds.count("delete_cluster") == 0 and w.rds.count("create_instance") == 0


def test_the_sweeper_deletes_orphaned_drill_clusters_instance_first_and_only_its_own() -> None:
    # Given an orphaned drill cluster with its instance, and a cluster of another stack
    w = world()
    tags = {OWNER_TAG: STACK, RUN_ID_TAG: "0" * 20}
    w.rds.clusters["restoredrill-" + "0" * 20] = ClusterView(
        cluster_id="restoredrill-" + "0" * 20, status="available", tags=tags
    )
    w.rds.clusters["restoredrill-" + "1" * 20] = ClusterView(
        cluster_id="restoredrill-" + "1" * 20, status="available", tags={OWNER_TAG: "other"}
    )
    w.rds.instances["restoredrill-" + "0" * 20 + "-writer"] = InstanceView(
        instance_id="restoredrill-" + "0" * 20 + "-writer",
        status="available",
        cluster_id="restoredrill-" + "0" * 20,
        tags=tags,
    )
    # When the sweeper runs
    first = sweep(w.ctx)
    # Then the instance goes first, the cluster is kept until it has no instance
    assert first.orphans_deleted == ["restoredrill-" + "0" * 20 + "-writer"]
    del w.rds.instances["restoredrill-" + "0" * 20 + "-writer"]
    second = sweep(w.ctx)
    assert second.orphans_deleted == ["restoredrill-" + "0" * 20]
    # And the other stack's cluster is never touched
    assert ("delete_cluster", "restoredrill-" + "1" * 20) not in w.rds.calls


def test_the_automated_cluster_snapshot_event_requests_a_cluster_drill() -> None:
    event = json.loads(
        (EVENTS / "start_drill" / "automated-cluster-snapshot-created.json").read_text()
    )
    request = parse_snapshot_event(event)
    assert request is not None and request.cluster is True
    assert request.snapshot_id == "rds:orders-aurora-2026-11-27-03-10"


def test_a_cluster_snapshot_arn_in_an_instance_snapshot_event_is_refused() -> None:
    event = json.loads((EVENTS / "start_drill" / "automated-snapshot-created.json").read_text())
    bad = copy.deepcopy(event)
    bad["detail"]["SourceArn"] = bad["detail"]["SourceArn"].replace(
        ":snapshot:", ":cluster-snapshot:"
    )
    with pytest.raises(InvalidEvent, match="not an RDS DB snapshot ARN"):
        parse_snapshot_event(bad)


def test_cluster_events_for_drill_clusters_and_their_instances_name_the_run() -> None:
    run_id = "0123456789abcdef0123"
    for arn in (
        f"arn:aws:rds:us-east-1:123456789012:cluster:restoredrill-{run_id}",
        f"arn:aws:rds:us-east-1:123456789012:db:restoredrill-{run_id}-writer",
    ):
        event = {
            "version": "0",
            "id": "1",
            "detail-type": "RDS DB Cluster Event",
            "source": "aws.rds",
            "account": "123456789012",
            "time": "2026-11-27T03:00:00Z",
            "region": "us-east-1",
            "resources": [arn],
            "detail": {"EventID": "RDS-EVENT-0016", "SourceArn": arn},
        }
        assert parse_instance_event(event) == (run_id, True)


def test_drill_requested_for_a_cluster_is_a_cluster_drill() -> None:
    event = json.loads((EVENTS / "start_drill" / "drill-requested.json").read_text())
    detail = event["detail"]
    detail.pop("db_instance_identifier", None)
    detail.pop("snapshot_id", None)
    detail["db_cluster_identifier"] = "orders-aurora"
    request = parse_drill_requested(event)
    assert request.cluster is True and request.source_db == "orders-aurora"


def test_a_cluster_drill_waits_while_the_db_cluster_quota_is_used_up() -> None:
    # Given an account whose DB cluster quota is used up (instances and storage to spare)
    w = given_an_opted_in_cluster()
    w.rds.quotas = [
        AccountQuota(name="DBInstances", used=0, max=40),
        AccountQuota(name="DBClusters", used=40, max=40),
        AccountQuota(name="AllocatedStorage", used=0, max=100000),
    ]
    # When a cluster drill asks for admission
    run = start_drill(cluster_request(), w.ctx)
    # Then it stays queued, says why, and restores nothing
    after = stored(w, run.run_id)
    assert after.state is RunState.QUEUED and w.rds.count("restore_cluster") == 0
    assert after.wait_reason is not None and "DBClusters 40 of 40" in after.wait_reason
    # And once a cluster is freed, it is admitted and restores
    w.rds.quotas[1] = AccountQuota(name="DBClusters", used=39, max=40)
    advance_drill(run.run_id, w.ctx)
    assert w.rds.count("restore_cluster") == 1


SERVERLESS_POLICY = """
databases:
  orders-aurora:
    serverless_v2: {min_acu: 0.5, max_acu: 4}
"""


def test_a_serverless_v2_policy_drills_a_db_serverless_instance_with_its_acu_range() -> None:
    # Given a policy entry naming the cluster with an Aurora Serverless v2 capacity range, and
    # RDS offering db.serverless for the snapshot's engine version
    w = given_an_opted_in_cluster()
    w.ctx.policies = parse_policy_text(SERVERLESS_POLICY)
    # When the drill starts
    run = start_drill(cluster_request(), w.ctx)
    # Then its instance is db.serverless and its cluster has the policy's range
    assert run.instance_class == "db.serverless" and run.acu_range == (0.5, 4.0)
    topology = report_topology(run)
    assert (topology.serverless_v2_min_acu, topology.serverless_v2_max_acu) == (0.5, 4.0)


def test_serverless_v2_falls_back_to_provisioned_where_the_version_does_not_offer_it() -> None:
    # Given the same policy, for an engine version RDS offers no db.serverless for
    w = given_an_opted_in_cluster()
    w.ctx.policies = parse_policy_text(SERVERLESS_POLICY)
    w.rds.orderable.clear()
    # When the drill starts, Then it drills the smallest provisioned class, without a range
    run = start_drill(cluster_request(), w.ctx)
    assert run.instance_class == AURORA_DEFAULT_INSTANCE_CLASS and run.acu_range is None
    assert w.rds.count("offers_instance_class") == 1


def test_a_policy_entry_naming_the_cluster_sets_its_instance_class() -> None:
    w = given_an_opted_in_cluster()
    w.ctx.policies = parse_policy_text(
        "databases:\n  orders-aurora:\n    instance_class: db.r7g.large\n"
    )
    run = start_drill(cluster_request(), w.ctx)
    assert run.instance_class == "db.r7g.large" and w.rds.count("offers_instance_class") == 0


def test_an_acu_range_upside_down_is_refused_by_the_policy() -> None:
    with pytest.raises(PolicyError, match="min_acu must not be above max_acu"):
        parse_policy_text("defaults:\n  serverless_v2: {min_acu: 8, max_acu: 2}\n")


def test_an_orphan_cluster_rds_will_not_delete_yet_does_not_stop_the_sweep() -> None:
    # Given two orphaned drill clusters, the first of which RDS refuses to delete for now
    w = world()
    for digit in "23":
        cluster_id = "restoredrill-" + digit * 20
        w.rds.clusters[cluster_id] = ClusterView(
            cluster_id=cluster_id,
            status="available",
            tags={OWNER_TAG: STACK, RUN_ID_TAG: digit * 20},
        )
    real_delete = w.rds.delete_drill_cluster

    def refuse_the_first(run_id: str, cluster_id: str) -> None:
        if cluster_id.endswith("2" * 20):
            raise RuntimeError("InvalidDBClusterStateFault: still creating")
        real_delete(run_id, cluster_id)

    w.rds.delete_drill_cluster = refuse_the_first  # type: ignore[method-assign]
    # When the sweeper runs, Then the other orphan is still deleted
    summary = sweep(w.ctx)
    assert summary.orphans_deleted == ["restoredrill-" + "3" * 20]
