"""Reports written by earlier versions stay readable: by their own schema, by verify-chain (a
chain from 1.3, or from 1.4, into the current version) and by the compliance summary.
tests/unit/data/drill-report-1.3.json is a report as the 1.3 code wrote it (commit 8afacc9, the
"passed with checks" drill of test_report_schema.py), drill-report-1.4.json the same drill as the
1.4 code wrote it (commit 29157c5, before `topology`), drill-report-1.5.json as the 1.5 code wrote
it (commit 1f17b0a, before `point_in_time`), all stored as report_bytes writes them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from restoredrill.domain.chain import StoredReport, sha256_hex, verify_chain
from restoredrill.domain.report.document import report_bytes
from restoredrill.domain.report.model import REPORT_SCHEMA_VERSION
from restoredrill.domain.report.schema import PUBLISHED_SCHEMA_VERSIONS, report_schema

from restoredrill_cli.compliance import OptedInDatabase, build_summary
from tests.unit.test_report_schema import finished_drill

DATA = Path(__file__).resolve().parent / "data"


def stored_1_3() -> tuple[dict[str, Any], bytes]:
    stored = (DATA / "drill-report-1.3.json").read_bytes()
    return json.loads(stored), stored


def stored_1_4() -> tuple[dict[str, Any], bytes]:
    stored = (DATA / "drill-report-1.4.json").read_bytes()
    return json.loads(stored), stored


def stored_1_5() -> tuple[dict[str, Any], bytes]:
    stored = (DATA / "drill-report-1.5.json").read_bytes()
    return json.loads(stored), stored


def errors(report: dict[str, Any], version: str) -> list[str]:
    validator = Draft202012Validator(
        report_schema(version), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [error.message for error in validator.iter_errors(report)]


def a_current_report_after(previous: dict[str, Any], previous_bytes: bytes) -> dict[str, Any]:
    """The drill of the next day, linked to ``previous`` by the SHA-256 of its stored bytes."""
    _, _, report = finished_drill("failed by checks")
    run_id = "fedcba9876543210fedc"
    report["run"]["run_id"] = run_id
    report["location"]["key"] = f"reports/us-east-1/clinic-db/2026/11/28/{run_id}.json"
    report["chain"]["previous"] = {
        "run_id": previous["run"]["run_id"],
        "key": previous["location"]["key"],
        "sha256": sha256_hex(previous_bytes),
    }
    return report


def test_every_published_version_is_still_shipped_and_1_3_reports_validate_against_theirs() -> None:
    old, _ = stored_1_3()
    assert PUBLISHED_SCHEMA_VERSIONS == ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6")
    assert old["schema_version"] == "1.3" and "cost" not in old
    assert errors(old, "1.3") == []
    # And 1.4 requires the cost the 1.3 report does not have
    assert any("'cost' is a required property" in message for message in errors(old, "1.4"))


def test_1_4_reports_validate_against_theirs_and_not_against_the_current_one() -> None:
    old, _ = stored_1_4()
    assert old["schema_version"] == "1.4" and "topology" not in old
    assert errors(old, "1.4") == []
    # And the current version requires the topology the 1.4 report does not have
    current = errors(old, REPORT_SCHEMA_VERSION)
    assert any("'topology' is a required property" in message for message in current)


def test_1_5_reports_validate_against_theirs_and_not_against_the_current_one() -> None:
    old, _ = stored_1_5()
    assert old["schema_version"] == "1.5" and "point_in_time" not in old
    assert errors(old, "1.5") == []
    # And the current version requires the point_in_time the 1.5 report does not have
    current = errors(old, REPORT_SCHEMA_VERSION)
    assert any("'point_in_time' is a required property" in message for message in current)


def test_verify_chain_follows_a_chain_from_a_1_5_report_into_the_current_version() -> None:
    old, old_bytes = stored_1_5()
    new = a_current_report_after(old, old_bytes)
    assert errors(new, REPORT_SCHEMA_VERSION) == []
    stored = [
        StoredReport(old["location"]["key"], old_bytes),
        StoredReport(new["location"]["key"], report_bytes(new)),
    ]
    verification = verify_chain(stored)
    assert verification.intact and verification.findings == []
    assert verification.links_checked == 1 and verification.head == new["location"]["key"]


def test_verify_chain_follows_a_chain_from_a_1_4_report_into_the_current_version() -> None:
    old, old_bytes = stored_1_4()
    new = a_current_report_after(old, old_bytes)
    assert new["schema_version"] == REPORT_SCHEMA_VERSION == "1.6"
    assert errors(new, REPORT_SCHEMA_VERSION) == []
    stored = [
        StoredReport(old["location"]["key"], old_bytes),
        StoredReport(new["location"]["key"], report_bytes(new)),
    ]
    verification = verify_chain(stored)
    assert verification.intact and verification.findings == []
    assert verification.links_checked == 1 and verification.head == new["location"]["key"]


def test_verify_chain_follows_a_chain_from_a_1_3_report_into_the_current_version() -> None:
    # Given a stored 1.3 report and the next day's current report linked to its bytes
    old, old_bytes = stored_1_3()
    new = a_current_report_after(old, old_bytes)
    assert new["schema_version"] == REPORT_SCHEMA_VERSION
    assert errors(new, REPORT_SCHEMA_VERSION) == []
    stored = [
        StoredReport(old["location"]["key"], old_bytes),
        StoredReport(new["location"]["key"], report_bytes(new)),
    ]
    # When verify-chain checks them, then the chain holds across the versions
    verification = verify_chain(stored)
    assert verification.intact and verification.findings == []
    assert verification.links_checked == 1 and verification.head == new["location"]["key"]


def test_the_compliance_summary_reads_1_3_and_1_4_reports_side_by_side() -> None:
    old, old_bytes = stored_1_3()
    new = a_current_report_after(old, old_bytes)
    created = datetime.fromisoformat(old["run"]["created_at"])
    summary = build_summary(
        [old, new],
        [OptedInDatabase(region="us-east-1", db_instance_identifier="clinic-db")],
        since=created - timedelta(days=1),
        now=created + timedelta(days=1),
    )
    assert summary.unreadable_reports == []
    (clinic,) = summary.databases
    assert clinic.drills == 2 and clinic.drills_costed == 1
    assert clinic.estimated_cost_usd == round(new["cost"]["total_usd"], 6)
