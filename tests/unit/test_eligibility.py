"""The one set of rules StartDrill and the operator CLI apply to a request before any drill."""

from datetime import timedelta

import pytest
from restoredrill.domain.eligibility import DrillRejected, eligible_snapshot
from restoredrill.ports.records import SnapshotInfo, SourceDatabase

from tests.unit.fakes import START, FakeRds

OPT_IN = ("restoredrill:drill", "enabled")
OPTED_IN = {"restoredrill:drill": "enabled"}
CLINIC_SNAPSHOT = "rds:clinic-db-2026-11-27-03-10"
ORDERS_SNAPSHOT = "rds:orders-db-2026-11-27-03-10"


def given_rds() -> FakeRds:
    """clinic-db and orders-db, both opted-in PostgreSQL with an automated snapshot each."""
    rds = FakeRds()
    rds.add_source("clinic-db", OPTED_IN, CLINIC_SNAPSHOT)
    rds.add_source("orders-db", OPTED_IN, ORDERS_SNAPSHOT)
    return rds


def rejection(
    rds: FakeRds,
    *,
    source_db: str | None = None,
    snapshot_id: str | None = None,
    event_tags: dict[str, str] | None = None,
    region: str | None = None,
) -> str:
    with pytest.raises(DrillRejected) as rejected:
        eligible_snapshot(
            rds,
            source_db=source_db,
            snapshot_id=snapshot_id,
            opt_in_tag=OPT_IN,
            event_tags=event_tags,
            region=region,
        )
    return str(rejected.value)


def test_a_database_named_alone_drills_its_newest_automated_snapshot() -> None:
    rds = given_rds()
    eligible = eligible_snapshot(rds, source_db="clinic-db", snapshot_id=None, opt_in_tag=OPT_IN)
    assert (eligible.source_db, eligible.snapshot.snapshot_id) == ("clinic-db", CLINIC_SNAPSHOT)


def test_a_database_named_with_its_own_snapshot_is_eligible() -> None:
    rds = given_rds()
    eligible = eligible_snapshot(
        rds, source_db="orders-db", snapshot_id=ORDERS_SNAPSHOT, opt_in_tag=OPT_IN
    )
    assert (eligible.source_db, eligible.snapshot.snapshot_id) == ("orders-db", ORDERS_SNAPSHOT)


def test_an_unknown_database_is_refused_naming_the_region_when_known() -> None:
    rds = given_rds()
    assert rejection(rds, source_db="absent-db") == "no RDS DB instance absent-db"
    assert (
        rejection(rds, source_db="absent-db", region="eu-west-1")
        == "no RDS DB instance absent-db in eu-west-1"
    )


def test_a_database_that_is_not_postgresql_is_refused() -> None:
    rds = given_rds()
    rds.sources["legacy-db"] = SourceDatabase(
        instance_id="legacy-db", engine="mysql", tags=OPTED_IN
    )
    assert rejection(rds, source_db="legacy-db") == "legacy-db is mysql, not PostgreSQL"


def test_a_database_that_is_not_opted_in_is_refused_naming_the_tag() -> None:
    rds = given_rds()
    rds.sources["clinic-db"] = SourceDatabase(
        instance_id="clinic-db", engine="postgres", tags={"restoredrill:drill": "disabled"}
    )
    assert rejection(rds, source_db="clinic-db") == (
        "clinic-db is not opted in (tag restoredrill:drill=enabled)"
    )


def test_a_database_without_an_automated_snapshot_is_refused() -> None:
    rds = given_rds()
    rds.sources["new-db"] = SourceDatabase(instance_id="new-db", engine="postgres", tags=OPTED_IN)
    assert rejection(rds, source_db="new-db") == "new-db has no available automated snapshot yet"


def test_an_unknown_snapshot_is_refused() -> None:
    rds = given_rds()
    assert rejection(rds, snapshot_id="manual-2", region="us-east-1") == (
        "no snapshot manual-2 in us-east-1"
    )


def test_a_database_named_with_another_databases_snapshot_is_refused() -> None:
    # Given two opted-in databases; When a request names orders-db and clinic-db's snapshot
    rds = given_rds()
    message = rejection(rds, source_db="orders-db", snapshot_id=CLINIC_SNAPSHOT)
    # Then it is refused, saying whose snapshot it is
    assert message == f"snapshot {CLINIC_SNAPSHOT} is of clinic-db, not orders-db"


def test_a_snapshot_named_alone_is_judged_by_its_own_databases_tags() -> None:
    # Given clinic-db opted out, while the event that names its snapshot claims the opt-in tag
    rds = given_rds()
    rds.sources["clinic-db"] = SourceDatabase(instance_id="clinic-db", engine="postgres", tags={})
    # Then the database's own tags win
    assert rejection(rds, snapshot_id=CLINIC_SNAPSHOT, event_tags=OPTED_IN) == (
        "clinic-db is not opted in (tag restoredrill:drill=enabled)"
    )


def test_a_snapshot_of_a_database_that_is_gone_needs_the_events_opt_in_tag() -> None:
    # Given clinic-db was deleted after its snapshot was taken
    rds = given_rds()
    del rds.sources["clinic-db"]
    # When the snapshot's own event carries the opt-in tag, Then the snapshot is drilled
    eligible = eligible_snapshot(
        rds, source_db=None, snapshot_id=CLINIC_SNAPSHOT, opt_in_tag=OPT_IN, event_tags=OPTED_IN
    )
    assert eligible.source_db == "clinic-db"
    # And without it (a Drill Requested carries no tags), it is refused, saying why
    assert "clinic-db, the database of snapshot" in rejection(rds, snapshot_id=CLINIC_SNAPSHOT)
    assert "no longer exists" in rejection(rds, snapshot_id=CLINIC_SNAPSHOT)
    # And naming the gone database itself is refused as an unknown database
    assert rejection(rds, source_db="clinic-db", snapshot_id=CLINIC_SNAPSHOT) == (
        "no RDS DB instance clinic-db"
    )


def test_a_snapshot_that_is_not_postgresql_is_refused() -> None:
    rds = given_rds()
    info, db = rds.snapshots[CLINIC_SNAPSHOT]
    rds.snapshots[CLINIC_SNAPSHOT] = (info.model_copy(update={"engine": "mysql"}), db)
    assert rejection(rds, snapshot_id=CLINIC_SNAPSHOT) == (
        f"snapshot {CLINIC_SNAPSHOT} is mysql, not PostgreSQL"
    )


def test_a_snapshot_described_without_its_arn_is_refused() -> None:
    # The run id is derived from the ARN: an empty one would give every such snapshot one run
    rds = given_rds()
    rds.snapshots["manual-1"] = (
        SnapshotInfo(
            snapshot_id="manual-1",
            snapshot_arn="",
            snapshot_created_at=START - timedelta(hours=1),
            master_username="clinic_admin",
        ),
        "clinic-db",
    )
    assert "without its ARN" in rejection(rds, snapshot_id="manual-1")


def test_a_request_naming_nothing_is_refused() -> None:
    assert rejection(given_rds()) == "a drill needs a database or a snapshot"
