"""The drill report's JSON Schema: shipped with the code, and every report the drill writes
validates against it, whatever the verdict; the Drill Finished event stays small."""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import restoredrill
from jsonschema import Draft202012Validator
from restoredrill.checksuite.results import CheckResult, CheckStatus, CheckSuiteResult, verdict_of
from restoredrill.domain.chain import StoredReport, sha256_hex, verify_chain
from restoredrill.domain.drill import advance_drill, poll_drill, start_drill
from restoredrill.domain.report.document import build_report, measured_rpo, report_bytes
from restoredrill.domain.report.finished_event import EVENT_DETAIL_MAX_BYTES, finished_event_detail
from restoredrill.domain.report.location import report_key
from restoredrill.domain.report.model import (
    REPORT_SCHEMA_ID,
    REPORT_SCHEMA_VERSION,
    generated_report_schema,
    schema_text,
)
from restoredrill.domain.report.schema import (
    PUBLISHED_SCHEMA_VERSIONS,
    REPORT_SCHEMA_PATH,
    report_schema,
    report_schema_path,
)
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.payload_transport import PAYLOAD_ENCODING, PAYLOAD_PLAIN_LIMIT
from restoredrill.ports.records import CheckerOutcome, DrillRequest, Verdict

from tests.unit.fakes import World, world

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


def script_module(path: Path) -> ModuleType:
    """A script of scripts/ imported as a module (its name has a hyphen)."""
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate_schemas = script_module(ROOT / "scripts" / "generate-schemas.py")
REPOSITORY_SCHEMA = ROOT / "schemas" / "drill-report" / f"{REPORT_SCHEMA_VERSION}.json"
SNAPSHOT = "rds:clinic-db-2026-11-27-03-10"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1f2e3d4c-5b6a-4789-8abc-def012345678"
CHECKED_AT = datetime(2026, 11, 27, 3, 12, tzinfo=UTC)


# ------------------------------------------------------------------------------ check suites
# Check results shaped as the checker's levels build them (level0-3: names, evidence keys).


def connect_passed() -> CheckResult:
    return CheckResult(
        name="connect",
        level=0,
        status=CheckStatus.PASS,
        message="connected over TLS",
        evidence={"ssl": True, "server_version": "15.5"},
        duration_ms=40,
    )


def freshness(
    label: str, column: str, rpo_s: float | None, max_age_s: float = 86400
) -> CheckResult:
    evidence: dict[str, Any] = {
        "column": column,
        "newest": "2026-11-27 02:41:00+00",
        "reference": "2026-11-27 02:45:00+00",
        "reference_is": "snapshot time",
        "max_age_s": max_age_s,
    }
    if rpo_s is not None:
        evidence["rpo_s"] = rpo_s
    failing = rpo_s is None or rpo_s > max_age_s
    return CheckResult(
        name="freshness",
        level=2,
        status=CheckStatus.FAIL if failing else CheckStatus.PASS,
        database="clinic",
        object=label,
        message="newest value too old" if failing else "measured RPO",
        evidence=evidence,
    )


def row_counts(lost: int = 0) -> CheckResult:
    problems = []
    if lost:
        problems.append(
            {
                "table": '"clinic"."prescriptions"',
                "status": "fail",
                "baseline_rows": 300,
                "rows": 300 - lost,
                "message": f"300 -> {300 - lost} rows: more than the 5% the policy allows",
            }
        )
    return CheckResult(
        name="row_counts",
        level=2,
        status=CheckStatus.FAIL if lost else CheckStatus.PASS,
        database="clinic",
        message=f"4 table(s) counted, {1100 - lost} rows",
        evidence={
            "tables_counted": 4,
            "total_rows": 1100 - lost,
            "compared_with_baseline": True,
            "problems": problems,
            "skipped": [],
            "skipped_count": 0,
        },
    )


def assertion_failed() -> CheckResult:
    return CheckResult(
        name="assertion",
        level=2,
        status=CheckStatus.FAIL,
        database="clinic",
        object="at least a million patients",
        message="300 is not >= 1000000",
        evidence={"expect": ">= 1000000", "value": 300},
    )


def btree_corrupt() -> CheckResult:
    server_message = 'index "patients_pkey" lacks a main relation tuple'
    return CheckResult(
        name="amcheck_btree",
        level=3,
        status=CheckStatus.FAIL,
        database="clinic",
        message="11 of 12 indexes verified",
        evidence={
            "checked": 12,
            "passed": 11,
            "problems": [
                {
                    "relation": '"clinic"."patients_pkey"',
                    "status": "fail",
                    "message": f"the server could not read the data: {server_message} [XX002]",
                    "table": '"clinic"."patients"',
                    "sqlstate": "XX002",
                    "server_message": server_message,
                }
            ],
            "skipped": [],
            "skipped_count": 0,
            "amcheck_schema": "public",
            "amcheck_installed_by_restoredrill": True,
            "heapallindexed": False,
        },
    )


def suite(*checks: CheckResult) -> CheckSuiteResult:
    return CheckSuiteResult(
        verdict=verdict_of(list(checks)),
        checks=list(checks),
        started_at=CHECKED_AT,
        finished_at=CHECKED_AT + timedelta(seconds=14),
        duration_ms=14_000,
        server_version="15.5",
    )


def passing_suite() -> CheckSuiteResult:
    return suite(
        connect_passed(),
        row_counts(),
        freshness("appointments", '"clinic"."appointments"."booked_at"', 754.25),
        freshness("prescriptions", '"clinic"."prescriptions"."issued_at"', 95.0),
    )


def failing_suite() -> CheckSuiteResult:
    return suite(
        connect_passed(),
        row_counts(lost=100),
        freshness("appointments", '"clinic"."appointments"."booked_at"', 200_000.0),
        assertion_failed(),
        btree_corrupt(),
    )


def huge_suite() -> CheckSuiteResult:
    """A passing suite whose evidence is far over the 200 KB an async payload carries plain."""
    catalog = CheckResult(
        name="catalog",
        level=1,
        status=CheckStatus.PASS,
        database="clinic",
        message="a big schema",
        evidence={"tables": [f"clinic.table_{i:05d}" for i in range(20_000)]},
    )
    return suite(connect_passed(), catalog, row_counts())


def outcome_of(run_id: str, result: CheckSuiteResult) -> CheckerOutcome:
    """What the checker's destination delivers: the result as a size-limited payload."""
    return CheckerOutcome(
        run_id=run_id,
        succeeded=True,
        verdict=Verdict(result.verdict.value),
        result=result.to_payload(),
    )


# ------------------------------------------------------------------------------ whole drills


def given_an_opted_in_database() -> World:
    w = world()
    w.rds.add_source("clinic-db", {"restoredrill:drill": "enabled"}, SNAPSHOT)
    info, source = w.rds.snapshots[SNAPSHOT]
    encrypted = info.model_copy(
        update={"encrypted": True, "kms_key_id": KMS_KEY, "allocated_storage_gib": 20}
    )
    w.rds.snapshots[SNAPSHOT] = (encrypted, source)
    return w


def start(w: World) -> str:
    request = DrillRequest(
        snapshot_id=SNAPSHOT,
        idempotency_key=f"snapshot:{SNAPSHOT}",
        trigger="RDS-EVENT-0091 automated snapshot created",
    )
    return start_drill(request, w.ctx).run_id


def to_checking(w: World) -> str:
    run_id = start(w)
    instance_id = w.runs.runs[run_id].instance_id
    w.clock.advance(minutes=12)
    w.rds.set_status(instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run_id, w.ctx)
    w.rds.set_status(instance_id, "available")
    advance_drill(run_id, w.ctx, credentials_reset_event=True)
    return run_id


def checked(w: World, outcome: Callable[[str], CheckerOutcome]) -> str:
    run_id = to_checking(w)
    w.clock.advance(seconds=20)
    advance_drill(run_id, w.ctx, checker_outcome=outcome(run_id))
    w.clock.advance(minutes=6)
    del w.rds.instances[w.runs.runs[run_id].instance_id]
    poll_drill(run_id, w.ctx)
    return run_id


def drill_passed(w: World) -> str:
    return checked(w, lambda run_id: outcome_of(run_id, passing_suite()))


def drill_failed_by_checks(w: World) -> str:
    return checked(w, lambda run_id: outcome_of(run_id, failing_suite()))


def drill_with_compressed_checks(w: World) -> str:
    return checked(w, lambda run_id: outcome_of(run_id, huge_suite()))


def drill_with_checker_error(w: World) -> str:
    return checked(
        w,
        lambda run_id: CheckerOutcome(
            run_id=run_id, succeeded=False, error="Sandbox.Timedout: Task timed out"
        ),
    )


def drill_with_failed_restore(w: World) -> str:
    run_id = start(w)
    instance_id = w.runs.runs[run_id].instance_id
    w.clock.advance(minutes=20)
    w.rds.set_status(instance_id, "incompatible-restore")
    advance_drill(run_id, w.ctx)
    del w.rds.instances[instance_id]
    advance_drill(run_id, w.ctx)
    return run_id


def drill_with_refused_restore(w: World) -> str:
    w.rds.refuse_restore = EffectRejected("DBSnapshotNotFound", "snapshot gone")
    run_id = start(w)
    advance_drill(run_id, w.ctx)
    return run_id


def drill_timed_out(w: World) -> str:
    run_id = start(w)
    w.clock.advance(hours=5)
    poll_drill(run_id, w.ctx)
    del w.rds.instances[w.runs.runs[run_id].instance_id]
    poll_drill(run_id, w.ctx)
    return run_id


DRILLS: dict[str, tuple[Callable[[World], str], Verdict]] = {
    "passed with checks": (drill_passed, Verdict.PASSED),
    "failed by checks": (drill_failed_by_checks, Verdict.FAILED),
    "failed restore, no checks": (drill_with_failed_restore, Verdict.FAILED),
    "refused restore, no checks": (drill_with_refused_restore, Verdict.FAILED),
    "checker error": (drill_with_checker_error, Verdict.ERROR),
    "timed out": (drill_timed_out, Verdict.TIMED_OUT),
    "compressed checks": (drill_with_compressed_checks, Verdict.PASSED),
}


def finished_drill(name: str) -> tuple[World, str, dict[str, Any]]:
    """Runs the named drill to its end; the world, the run id and the report it wrote."""
    drive, _ = DRILLS[name]
    w = given_an_opted_in_database()
    run_id = drive(w)
    run = w.runs.runs[run_id]
    assert run.is_finished, run
    ((key, report),) = w.reports.documents.items()
    assert key == report_key(run)
    return w, run_id, report


def validator() -> Draft202012Validator:
    return Draft202012Validator(report_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors_of(report: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator().iter_errors(report)
    ]


# ------------------------------------------------------------------------------ the schema file


@pytest.mark.parametrize("version", PUBLISHED_SCHEMA_VERSIONS)
def test_the_schemas_the_code_ships_are_the_repository_schemas_byte_for_byte(version: str) -> None:
    # Given a published version's schema kept in the repository and the copy inside the Lambda
    # layer's package (every version stays: stored reports follow the one they name)
    shipped = report_schema_path(version)
    # When both are read
    # Then they are the same file: editing one without the other fails here
    assert shipped.parent == Path(restoredrill.__file__).resolve().parent / "schemas"
    assert (
        shipped.read_bytes() == (ROOT / "schemas" / "drill-report" / f"{version}.json").read_bytes()
    )
    assert report_schema(version)["$id"].endswith(f":{version}")


def test_the_published_schema_is_the_one_generated_from_the_report_model() -> None:
    # Given the report's model, and the current schema as checked in, in both places
    generated = schema_text(generated_report_schema())
    # Then the files are exactly what the model generates: changing the model without running
    # `make schemas` (or editing a file by hand) fails here
    assert REPORT_SCHEMA_PATH.read_text(encoding="utf-8") == generated
    assert REPOSITORY_SCHEMA.read_text(encoding="utf-8") == generated
    # And the generator's own check agrees
    assert generate_schemas.main(["--check"]) == 0


def test_the_generator_check_fails_when_a_published_file_drifts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a copy of the published file with one description changed by hand
    drifted = tmp_path / "1.3.json"
    drifted.write_text(REPOSITORY_SCHEMA.read_text().replace("Measured RTO", "RTO"))
    monkeypatch.setattr(generate_schemas, "TARGETS", (drifted,))
    monkeypatch.setattr(generate_schemas, "ROOT", tmp_path)
    # When the generator checks it
    # Then it fails, and writes nothing
    assert generate_schemas.main(["--check"]) == 1
    assert "Measured RTO" not in drifted.read_text()


def test_a_report_written_by_the_previous_version_still_validates_against_its_own_version() -> None:
    # Given a report as version 1.2 of the code wrote it (tests/unit/data)
    old = json.loads((DATA / "drill-report-1.2.json").read_text())
    assert old["schema_version"] == "1.2"
    # Then it validates against the schema it names, which is still shipped
    validator_12 = Draft202012Validator(
        report_schema(old["schema_version"]), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    assert list(validator_12.iter_errors(old)) == []
    # And not against the current one, whose version it does not claim
    assert errors_of(old) != []


def test_verify_chain_follows_a_chain_from_a_previous_version_report_to_a_current_one() -> None:
    # Given a 1.2 report stored as the previous version wrote it, and a current report of the
    # next day linked to it by the SHA-256 of its stored bytes
    old = json.loads((DATA / "drill-report-1.2.json").read_text())
    old_bytes = report_bytes(old)
    _, _, new = finished_drill("failed by checks")
    new_run = "fedcba9876543210fedc"
    new["run"]["run_id"] = new_run
    new["location"]["key"] = f"reports/us-east-1/clinic-db/2026/11/28/{new_run}.json"
    new["chain"]["previous"] = {
        "run_id": old["run"]["run_id"],
        "key": old["location"]["key"],
        "sha256": sha256_hex(old_bytes),
    }
    stored = [
        StoredReport(old["location"]["key"], old_bytes),
        StoredReport(new["location"]["key"], report_bytes(new)),
    ]
    # When verify-chain checks them
    verification = verify_chain(stored)
    # Then the chain holds across the versions
    assert verification.intact and verification.findings == []
    assert verification.links_checked == 1 and verification.head == new["location"]["key"]


def test_the_schema_is_draft_2020_12_and_its_id_and_version_move_together() -> None:
    # Given the schema the code loads
    schema = report_schema()
    # When it is checked against the draft 2020-12 meta-schema
    Draft202012Validator.check_schema(schema)
    # Then it declares that draft, and its $id, file name and const version all say the version
    # the code writes into every report
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == REPORT_SCHEMA_ID
    assert schema["$id"].endswith(f":{REPORT_SCHEMA_VERSION}")
    assert schema["properties"]["schema_version"]["const"] == REPORT_SCHEMA_VERSION
    assert REPORT_SCHEMA_PATH.name == f"drill-report-{REPORT_SCHEMA_VERSION}.json"


def nullable_properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every property (at any depth, $defs included) whose value may be null."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(node, dict):
        return found
    for name, prop in node.get("properties", {}).items():
        types = prop.get("type")
        options = prop.get("oneOf", []) + prop.get("anyOf", [])
        if (isinstance(types, list) and "null" in types) or {"type": "null"} in options:
            found.append((f"{path}/{name}", prop))
        found += nullable_properties(prop, f"{path}/{name}")
        for index, option in enumerate(options):
            found += nullable_properties(option, f"{path}/{name}/anyOf/{index}")
    for name, definition in node.get("$defs", {}).items():
        found += nullable_properties(definition, f"{path}/$defs/{name}")
    return found


def test_every_nullable_field_says_when_it_is_null() -> None:
    # Given the schema's properties that may be null, the check suite's and the baseline's too
    nullable = nullable_properties(report_schema())
    assert len(nullable) > 15
    # Then each one's description says when it is null
    unexplained = [
        path for path, prop in nullable if "null" not in prop.get("description", "").lower()
    ]
    assert unexplained == []


# ------------------------------------------------------------------------------ every verdict


@pytest.mark.parametrize("name", list(DRILLS))
def test_every_report_the_drill_writes_validates(name: str) -> None:
    # Given a drill that ends this way, driven through the domain with in-memory adapters
    _, expected = DRILLS[name]
    # When it finishes and writes its report
    _, run_id, report = finished_drill(name)
    # Then the report validates against the schema and carries the verdict reached
    assert errors_of(report) == []
    assert report["schema_version"] == REPORT_SCHEMA_VERSION
    assert report["verdict"] == expected.value
    assert report["run"]["run_id"] == run_id
    # And nothing in it is still packed: the checks are there in full or not at all
    assert PAYLOAD_ENCODING not in json.dumps(report)


def test_a_passed_report_holds_everything_an_auditor_looks_for() -> None:
    # Given a drill of an encrypted snapshot that passed with two freshness rules
    _, _, report = finished_drill("passed with checks")
    # Then the source, engine version, region and account are named
    assert report["source"] == {
        "db_instance_identifier": "clinic-db",
        "engine": "postgres",
        "engine_version": "15.5",
        "region": "us-east-1",
        "account_id": "123456789012",
    }
    # And the snapshot's id, time and encryption key
    assert report["snapshot"]["snapshot_id"] == SNAPSHOT
    assert report["snapshot"]["created_at"] == "2026-11-27T02:45:00+00:00"
    assert report["snapshot"]["encrypted"] is True
    assert report["snapshot"]["kms_key_id"] == KMS_KEY
    # And the measured RTO (12 minutes of restore) and RPO (the larger of the two ages)
    assert report["recovery"]["rto_seconds"] == 12 * 60
    assert report["recovery"]["rpo_seconds"] == 754.25
    assert report["recovery"]["rpo_measured_by"]["check"] == "freshness[clinic/appointments]"
    assert report["recovery"]["freshness_checks"] == 2
    # And who or what started it, the policy used, the phases with start, end and duration
    assert report["run"]["trigger"] == "RDS-EVENT-0091 automated snapshot created"
    assert report["run"]["requested_by"] is None
    assert report["policy"]["level"] == 3
    phases = report["timings"]["phases"]
    assert [p["phase"] for p in phases] == ["request", "restore", "secure", "check", "teardown"]
    assert all(p["started_at"] and p["ended_at"] and p["seconds"] is not None for p in phases)
    # And each check with its evidence
    assert [c["name"] for c in report["checks"]["checks"]] == [
        "connect",
        "row_counts",
        "freshness",
        "freshness",
    ]
    assert report["checks"]["checks"][2]["evidence"]["rpo_s"] == 754.25
    assert report["check_summary"] == {"total": 4, "by_status": {"pass": 4}, "failed": []}


def test_a_report_failed_by_checks_names_them_and_keeps_their_evidence() -> None:
    # Given a drill whose row counts, freshness, assertion and btree check failed
    _, _, report = finished_drill("failed by checks")
    # Then the reason and the summary name every failed check
    failed = [c["name"] for c in report["check_summary"]["failed"]]
    assert failed == [
        "row_counts[clinic]",
        "freshness[clinic/appointments]",
        "assertion[clinic/at least a million patients]",
        "amcheck_btree[clinic]",
    ]
    assert all(name in report["reason"] for name in failed)
    # And the RPO is the stale table's age, even though that check failed
    assert report["recovery"]["rpo_seconds"] == 200_000.0
    # And the evidence is whole
    btree = report["checks"]["checks"][-1]
    assert btree["evidence"]["problems"][0]["sqlstate"] == "XX002"


@pytest.mark.parametrize(
    "name",
    ["failed restore, no checks", "refused restore, no checks", "timed out", "checker error"],
)
def test_a_drill_without_checks_reports_null_checks_rto_and_rpo_with_a_reason(name: str) -> None:
    # Given a drill that never got results from the checker
    _, _, report = finished_drill(name)
    # Then checks, their summary and the RPO are null, and so is the RTO unless the restore
    # became available (only the checker error got that far)
    assert report["checks"] is None and report["check_summary"] is None
    assert report["recovery"]["rpo_seconds"] is None
    assert report["recovery"]["rpo_measured_by"] is None
    assert (report["recovery"]["rto_seconds"] is None) is (name != "checker error")
    # And the reason says why
    assert report["reason"]


def test_checks_that_travelled_compressed_are_reported_expanded() -> None:
    # Given a check result over the plain payload limit, so the run stores it gzip+base64
    w, run_id, report = finished_drill("compressed checks")
    stored = w.runs.runs[run_id].model_dump(mode="json")
    assert stored["checks"]["encoding"] == PAYLOAD_ENCODING
    assert len(json.dumps(huge_suite().model_dump(mode="json"))) > PAYLOAD_PLAIN_LIMIT
    # Then the report holds every check and every bit of evidence, expanded
    catalog = report["checks"]["checks"][1]
    assert catalog["name"] == "catalog" and len(catalog["evidence"]["tables"]) == 20_000
    assert report["checks"]["verdict"] == "PASSED"
    # And a report that held the packed document instead would not validate
    packed = copy.deepcopy(report)
    packed["checks"] = stored["checks"]
    assert errors_of(packed) != []


# ------------------------------------------------------------------------------ the schema bites


def broken(report: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(report)
    change(copied)
    return copied


BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "the RPO left out": lambda r: r["recovery"].pop("rpo_seconds"),
    "the encryption key left out": lambda r: r["snapshot"].pop("kms_key_id"),
    "a PASSED drill with a reason": lambda r: r.update(reason="oops"),
    "a PASSED drill without checks": lambda r: r.update(checks=None, check_summary=None),
    "a PASSED drill without an RTO": lambda r: r["recovery"].update(rto_seconds=None),
    "a check without evidence": lambda r: r["checks"]["checks"][0].pop("evidence"),
    "an unknown verdict": lambda r: r.update(verdict="MAYBE"),
    "a naive timestamp": lambda r: r["run"].update(created_at="2026-11-27T03:00:00"),
    "a negative phase duration": lambda r: r["timings"]["phases"][0].update(seconds=-1),
    "a field the schema does not know": lambda r: r["source"].update(password="x"),
    "an RPO without the check that measured it": lambda r: r["recovery"].update(
        rpo_measured_by=None
    ),
    "another schema version": lambda r: r.update(schema_version="1.0"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_the_schema_rejects_what_a_broken_report_builder_would_write(breakage: str) -> None:
    # Given a valid PASSED report
    _, _, report = finished_drill("passed with checks")
    assert errors_of(report) == []
    # When it is broken the way a faulty builder would break it
    bad = broken(report, BREAKAGES[breakage])
    # Then it no longer validates
    assert errors_of(bad) != []


def test_a_failed_report_without_a_reason_does_not_validate() -> None:
    # Given a FAILED report
    _, _, report = finished_drill("failed restore, no checks")
    # When its reason is lost
    # Then the schema says so
    assert errors_of(broken(report, lambda r: r.update(reason=None))) != []


# ------------------------------------------------------------------------------ measured RPO


def test_the_rpo_is_the_largest_age_among_freshness_checks_and_never_negative() -> None:
    # Given freshness results: one ahead of the snapshot, one 95 s, one with no value at all
    result = suite(
        freshness("a", "a.t", -30.0),
        freshness("b", "b.t", 95.0),
        freshness("c", "c.t", None),
        row_counts(),
    )
    # When the RPO is measured
    rpo = measured_rpo(result)
    # Then it is the largest age measured, from the check that measured it
    assert rpo is not None and rpo.seconds == 95.0 and rpo.check == "freshness[clinic/b]"
    # And an age after the snapshot counts as zero, not as a negative RPO
    only_ahead = measured_rpo(suite(freshness("a", "a.t", -30.0)))
    assert only_ahead is not None and only_ahead.seconds == 0


def test_no_freshness_rule_means_no_rpo() -> None:
    # Given check results without any freshness check, or whose freshness measured nothing
    # Then there is no RPO (not zero: nothing was measured)
    assert measured_rpo(suite(connect_passed(), row_counts())) is None
    assert measured_rpo(suite(freshness("c", "c.t", None))) is None
    assert measured_rpo(None) is None


# ------------------------------------------------------------------------------ the event


def test_the_event_carries_failed_checks_with_evidence_summaries() -> None:
    # Given a drill failed by row counts, freshness, an assertion and a btree index
    w, _, _ = finished_drill("failed by checks")
    (detail,) = w.events.items
    # Then each failed check comes with a short summary of its evidence
    by_name = {check["name"]: check for check in detail["failed_checks"]}
    assert by_name["row_counts[clinic]"]["evidence_summary"] == [
        '"clinic"."prescriptions": 300 → 200 rows (-100)'
    ]
    (btree,) = by_name["amcheck_btree[clinic]"]["evidence_summary"]
    assert '"clinic"."patients_pkey"' in btree and "lacks a main relation tuple" in btree
    (assertion,) = by_name["assertion[clinic/at least a million patients]"]["evidence_summary"]
    assert "value 300" in assertion and ">= 1000000" in assertion
    (fresh,) = by_name["freshness[clinic/appointments]"]["evidence_summary"]
    assert '"clinic"."appointments"."booked_at"' in fresh and "2d07h" in fresh
    # And the fields that existed before are all still there
    assert {
        "run_id",
        "verdict",
        "reason",
        "source_db",
        "snapshot_id",
        "instance_id",
        "phases",
        "restore_seconds",
        "failed_checks",
        "report",
        "created_at",
        "finished_at",
    } <= set(detail)
    assert detail["rpo_seconds"] == 200_000.0 and detail["failed_checks_total"] == 4


def test_the_report_and_the_event_name_the_s3_console_pages_of_the_report_and_its_page() -> None:
    # Given a finished drill of a us-east-1 snapshot: its report and its Drill Finished event
    w, _, report = finished_drill("passed with checks")
    (detail,) = w.events.items
    location = report["location"]
    # Then the report says where the console pages are, in the report's region, key encoded
    prefix = "https://us-east-1.console.aws.amazon.com/s3/object/reports-bucket?region=us-east-1"
    assert location["console_url"] == (
        f"{prefix}&bucketType=general&prefix={location['key'].replace('/', '%2F')}"
    )
    assert location["html_console_url"] == (
        f"{prefix}&bucketType=general&prefix={location['html_key'].replace('/', '%2F')}"
    )
    # And the event carries the same pages beside the s3:// URI
    assert detail["report"]["console_url"] == location["console_url"]
    assert detail["report"]["html_console_url"] == location["html_console_url"]
    assert detail["report"]["uri"] == f"s3://reports-bucket/{location['key']}"


def test_the_event_stays_small_however_many_checks_failed() -> None:
    # Given a run whose checks failed by the hundred, each with a long message and evidence
    w, run_id, _ = finished_drill("passed with checks")
    many = [
        CheckResult(
            name="amcheck_heap",
            level=3,
            status=CheckStatus.ERROR if i % 2 else CheckStatus.FAIL,
            database=f"db{i}",
            message="x" * 5000,
            evidence={
                "problems": [
                    {"relation": f"t{j}", "status": "fail", "message": "y" * 2000}
                    for j in range(50)
                ]
            },
        )
        for i in range(400)
    ]
    run = w.runs.runs[run_id].model_copy(
        update={
            "checks": suite(*many),
            "verdict": Verdict.FAILED,
            "reason": "failed checks: " + "z" * 50_000,
        }
    )
    # When the event detail is built
    detail = finished_event_detail(run, bucket="b", key=report_key(run))
    # Then it fits the bound, says how many failed, and lists failures before errors
    assert len(json.dumps(detail)) <= EVENT_DETAIL_MAX_BYTES
    assert detail["failed_checks_total"] == 400
    listed = detail["failed_checks"]
    assert 0 < len(listed) < 400
    assert all(check["status"] == "fail" for check in listed)
    # And the report, unlike the event, still holds all of them and still validates
    report = build_report(run, bucket="b", key=report_key(run))
    assert len(report["checks"]["checks"]) == 400 and errors_of(report) == []
