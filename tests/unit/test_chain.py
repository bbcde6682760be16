"""The hash chain of one database's reports: written by the drill, verified from stored bytes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from restoredrill.domain.chain import StoredReport, StoredVersion, sha256_hex, verify_chain
from restoredrill.domain.drill import advance_drill, poll_drill, start_drill
from restoredrill.domain.report.location import html_report_key, report_key
from restoredrill.domain.report.schema import report_schema
from restoredrill.ports.records import DrillRequest, RunRecord, RunState

from tests.unit.fakes import World, world
from tests.unit.test_report_schema import failing_suite, outcome_of, passing_suite

OPTED_IN = {"restoredrill:drill": "enabled"}


def started(w: World, day: int) -> str:
    snapshot = f"rds:clinic-db-2026-11-{day:02d}-03-10"
    w.rds.add_source("clinic-db", OPTED_IN, snapshot)
    request = DrillRequest(
        snapshot_id=snapshot, idempotency_key=f"snapshot:{snapshot}", trigger="test"
    )
    return start_drill(request, w.ctx).run_id


def drill(w: World, day: int, *, passes: bool = True) -> RunRecord:
    """One whole drill of clinic-db from that day's automated snapshot."""
    run_id = started(w, day)
    instance_id = w.runs.runs[run_id].instance_id
    w.clock.advance(minutes=12)
    w.rds.set_status(instance_id, "available", address="10.0.0.9", port=5432)
    advance_drill(run_id, w.ctx)
    advance_drill(run_id, w.ctx, credentials_reset_event=True)
    w.clock.advance(seconds=20)
    suite = passing_suite() if passes else failing_suite()
    advance_drill(run_id, w.ctx, checker_outcome=outcome_of(run_id, suite))
    w.clock.advance(minutes=6)
    del w.rds.instances[instance_id]
    poll_drill(run_id, w.ctx)
    w.clock.advance(hours=23)
    run = w.runs.runs[run_id]
    assert run.is_finished
    return run


def stored(w: World) -> dict[str, StoredReport]:
    return {
        key: StoredReport(key, body)
        for key, (body, content_type) in w.reports.objects.items()
        if content_type == "application/json"
    }


def anchors(w: World) -> dict[str, str]:
    return {
        run.report_key: run.report_sha256
        for run in w.runs.runs.values()
        if run.report_key and run.report_sha256
    }


def three_drills() -> tuple[World, list[RunRecord]]:
    w = world()
    runs = [drill(w, 25), drill(w, 26, passes=False), drill(w, 27)]
    return w, runs


def edited(body: bytes, **changes: Any) -> bytes:
    document = json.loads(body)
    document.update(changes)
    return json.dumps(document, indent=2, sort_keys=True).encode()


def kinds(verification: Any) -> list[tuple[str, str]]:
    return [(finding.kind, finding.key) for finding in verification.findings]


def test_each_report_carries_the_sha256_of_the_previous_report_of_its_database() -> None:
    # Given three drills of one database, one after the other
    w, runs = three_drills()
    first, second, third = (w.reports.documents[report_key(run)] for run in runs)
    # Then the first report starts the chain and each later one names its predecessor and the
    # SHA-256 of the predecessor's stored bytes
    assert first["chain"] == {"algorithm": "sha256", "previous": None}
    for earlier, later in ((runs[0], second), (runs[1], third)):
        body, _ = w.reports.objects[report_key(earlier)]
        assert later["chain"]["previous"] == {
            "run_id": earlier.run_id,
            "key": report_key(earlier),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    # And the run table keeps each report's digest, which the finished event carries too
    for run in runs:
        body, _ = w.reports.objects[report_key(run)]
        assert run.report_sha256 == hashlib.sha256(body).hexdigest()
    assert [event["report"]["sha256"] for event in w.events.items] == [
        run.report_sha256 for run in runs
    ]


def test_the_html_report_is_stored_beside_the_json_and_shows_its_fingerprint() -> None:
    # Given a finished drill
    w, runs = three_drills()
    key = report_key(runs[2])
    # When its objects are read back
    html, content_type = w.reports.objects[html_report_key(key)]
    # Then the HTML sits under the same name, and shows the JSON's SHA-256 and its predecessor's
    assert html_report_key(key) == key.removesuffix(".json") + ".html"
    assert content_type.startswith("text/html")
    assert runs[2].report_sha256 is not None and runs[2].report_sha256.encode() in html
    assert runs[1].report_sha256 is not None and runs[1].report_sha256.encode() in html


def test_an_untouched_chain_verifies() -> None:
    # Given three drills' reports as stored, and the digests the run table recorded
    w, runs = three_drills()
    # When the chain is verified
    verification = verify_chain(stored(w).values(), anchors(w))
    # Then every link and every anchor holds, and the newest report is the head
    assert verification.intact and verification.findings == []
    assert verification.links_checked == 2 and verification.anchors_checked == 3
    assert verification.head == report_key(runs[2])
    assert [link.run_id for link in verification.links] == [run.run_id for run in runs]


def test_an_edited_report_is_caught_by_the_digest_its_successor_recorded() -> None:
    # Given the failed drill's report rewritten as PASSED after the fact (and no run table left)
    w, runs = three_drills()
    reports = stored(w)
    key = report_key(runs[1])
    reports[key] = StoredReport(key, edited(reports[key].body, verdict="PASSED"))
    # When the chain is verified
    verification = verify_chain(reports.values())
    # Then the chain is broken exactly there
    assert not verification.intact
    assert kinds(verification) == [("tampered", key)]
    assert runs[2].report_sha256 is not None
    assert report_key(runs[2]) in verification.findings[0].message


def test_an_edited_newest_report_is_caught_by_the_run_table() -> None:
    # Given the newest report edited (no later report links to it)
    w, runs = three_drills()
    reports = stored(w)
    key = report_key(runs[2])
    reports[key] = StoredReport(key, edited(reports[key].body, reason="all good"))
    # When the chain is verified with the run table's digests
    verification = verify_chain(reports.values(), anchors(w))
    # Then the run table's digest no longer matches
    assert kinds(verification) == [("anchor_mismatch", key)]


def test_a_deleted_report_leaves_its_successor_pointing_at_nothing() -> None:
    # Given the middle report deleted
    w, runs = three_drills()
    reports = stored(w)
    del reports[report_key(runs[1])]
    # When the chain is verified (with and without the run table)
    without_table = verify_chain(reports.values())
    with_table = verify_chain(reports.values(), anchors(w))
    # Then the gap is named, and the first report no longer has a successor either
    gap = report_key(runs[1])
    assert ("missing", gap) in kinds(without_table)
    assert ("unlinked", report_key(runs[0])) in kinds(without_table)
    assert kinds(with_table).count(("missing", gap)) == 2


def test_a_report_slipped_in_afterwards_is_unlinked() -> None:
    # Given a made-up report of a drill that never ran, placed among the real ones
    w, runs = three_drills()
    reports = stored(w)
    fake_key = report_key(runs[1]).replace(runs[1].run_id, "f" * 20)
    document = json.loads(reports[report_key(runs[1])].body)
    document["run"]["run_id"] = "f" * 20
    document["verdict"] = "PASSED"
    document["location"]["key"] = fake_key
    reports[fake_key] = StoredReport(fake_key, json.dumps(document).encode())
    # When the chain is verified
    verification = verify_chain(reports.values())
    # Then it shows up as a fork from the first report: two reports claim the same predecessor
    assert ("fork", report_key(runs[0])) in kinds(verification)
    # And a made-up report that starts a chain of its own is unlinked
    document["chain"]["previous"] = None
    reports[fake_key] = StoredReport(fake_key, json.dumps(document).encode())
    assert ("unlinked", fake_key) in kinds(verify_chain(reports.values()))


def test_a_report_copied_to_another_key_or_not_json_is_reported() -> None:
    # Given a report copied under another name, and garbage under a report's name
    w, runs = three_drills()
    reports = stored(w)
    copy_key = report_key(runs[0]).replace(".json", "-copy.json")
    reports[copy_key] = StoredReport(copy_key, reports[report_key(runs[0])].body)
    garbage_key = report_key(runs[0]).replace(runs[0].run_id, "0" * 20)
    reports[garbage_key] = StoredReport(garbage_key, b"\xff not json")
    # When the chain is verified
    found = kinds(verify_chain(reports.values(), anchors(w)))
    # Then both are named
    assert ("misplaced", copy_key) in found
    assert ("unreadable", garbage_key) in found


def test_two_drills_finishing_together_fork_the_chain_with_a_warning_only() -> None:
    # Given two drills of one database that reach REPORTING before either has published: the
    # first one's publish fails once (an S3 outage) right after its claim pinned its link
    w = world()
    first = drill(w, 25)
    runs = [started(w, day) for day in (26, 27)]
    w.clock.advance(hours=5)  # past the deadline: both are torn down
    for run_id in runs:
        poll_drill(run_id, w.ctx)
        del w.rds.instances[w.runs.runs[run_id].instance_id]
    w.reports.fail_next = 1
    with pytest.raises(ConnectionError):
        poll_drill(runs[0], w.ctx)
    poll_drill(runs[1], w.ctx)
    w.clock.advance(minutes=5)  # the first one's claim expires; its trigger retries
    poll_drill(runs[0], w.ctx)
    # When the chain is verified
    verification = verify_chain(stored(w).values(), anchors(w))
    # Then both link to the first drill's report: a fork, but every digest still holds
    assert all(w.runs.runs[run_id].is_finished for run_id in runs)
    assert kinds(verification) == [("fork", report_key(first))]
    assert verification.intact


def test_a_repeated_publish_writes_the_same_bytes_even_after_a_later_report() -> None:
    # Given three drills, and the second one's publish repeated after the third was published
    # (a trigger that crashed after writing the report retries once its claim expired)
    w, runs = three_drills()
    key = report_key(runs[1])
    body, _ = w.reports.objects[key]
    w.runs.runs[runs[1].run_id] = w.runs.runs[runs[1].run_id].model_copy(
        update={"state": RunState.REPORTING, "effect_claimed_at": None}
    )
    # When it is published again
    poll_drill(runs[1].run_id, w.ctx)
    # Then it keeps the link it pinned (the first report, not the third), and the bytes and
    # digest are the same
    assert w.reports.objects[key][0] == body
    assert json.loads(body)["chain"]["previous"]["run_id"] == runs[0].run_id
    assert w.runs.runs[runs[1].run_id].report_sha256 == runs[1].report_sha256


def test_every_chained_report_validates_against_the_schema() -> None:
    # Given three chained reports
    w, _ = three_drills()
    validator = Draft202012Validator(report_schema())
    # Then each validates, including its chain and its HTML key
    for document in w.reports.documents.values():
        assert list(validator.iter_errors(document)) == []
        assert document["location"]["html_key"].endswith(".html")


def test_a_report_the_page_cannot_render_still_publishes_evidence_and_a_plain_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an HTML renderer that fails on this report
    def broken(report: dict[str, Any], *, report_sha256: str | None = None) -> str:
        raise KeyError("level")

    monkeypatch.setattr("restoredrill.domain.drill.render_report_html", broken)
    w = world()
    # When a drill finishes
    run = drill(w, 25)
    # Then the JSON report, the run's end and the announcement are not held back, and the page
    # beside it is the report as escaped text with its fingerprint
    page, content_type = w.reports.objects[html_report_key(report_key(run))]
    assert run.is_finished and report_key(run) in w.reports.documents
    assert content_type.startswith("text/html") and len(w.events.items) == 1
    assert run.report_sha256 is not None and run.report_sha256.encode() in page
    assert b"&quot;verdict&quot;: &quot;PASSED&quot;" in page


def versions_of(*bodies: bytes) -> list[StoredVersion]:
    return [
        StoredVersion(f"v{number}", f"2026-11-27T0{number}:00:00Z", sha256_hex(body))
        for number, body in enumerate(bodies, start=1)
    ]


def test_the_version_still_holding_an_edited_reports_original_bytes_is_named() -> None:
    # Given the FAILED report overwritten as PASSED in a versioned bucket
    w, runs = three_drills()
    reports = stored(w)
    key = report_key(runs[1])
    original = reports[key].body
    reports[key] = StoredReport(key, edited(original, verdict="PASSED"))
    # When the chain is verified with the key's version history
    verification = verify_chain(
        reports.values(), anchors(w), {key: versions_of(original, reports[key].body)}
    )
    # Then both findings point at the version that still holds what was recorded
    assert {(f.kind, f.original_version) for f in verification.findings} == {
        ("tampered", "v1"),
        ("anchor_mismatch", "v1"),
    }
    assert "still stored as version v1" in verification.findings[0].message


def test_a_report_written_over_and_put_back_is_a_warning_and_a_repeated_publish_is_nothing() -> (
    None
):
    # Given one report overwritten then restored, and another written twice with the same bytes
    w, runs = three_drills()
    reports = stored(w)
    restored_key, repeated_key = report_key(runs[1]), report_key(runs[2])
    body = reports[restored_key].body
    history = {
        restored_key: versions_of(body, edited(body, verdict="PASSED"), body),
        repeated_key: versions_of(reports[repeated_key].body, reports[repeated_key].body),
    }
    # When the chain is verified with that history
    verification = verify_chain(reports.values(), anchors(w), history)
    # Then the chain holds, with a warning naming the version that held other bytes
    assert verification.intact
    assert kinds(verification) == [("rewritten", restored_key)]
    assert "v2" in verification.findings[0].message


def finish(w: World, run_id: str) -> RunRecord:
    """Past its deadline: torn down, reported, published."""
    poll_drill(run_id, w.ctx)
    del w.rds.instances[w.runs.runs[run_id].instance_id]
    poll_drill(run_id, w.ctx)
    run = w.runs.runs[run_id]
    assert run.is_finished
    return run


def test_the_chain_follows_publish_order_when_a_drill_created_earlier_finishes_later() -> None:
    # Given a slow drill started first and a quick one started after it, which publishes first
    w = world()
    slow = started(w, 24)
    w.clock.advance(minutes=1)
    quick = drill(w, 25)
    w.clock.advance(hours=5)
    late = finish(w, slow)
    # When the next drill publishes
    w.clock.advance(hours=1)
    following = drill(w, 26)
    # Then each report links to the one published just before it, not to the newest created:
    # one line, no fork, and the last published report ends it
    links = {
        run.run_id: w.reports.documents[report_key(run)]["chain"]["previous"]
        for run in (quick, late, following)
    }
    assert links[late.run_id]["run_id"] == quick.run_id
    assert links[following.run_id]["run_id"] == late.run_id
    verification = verify_chain(stored(w).values(), anchors(w))
    assert verification.findings == []
    assert verification.head == report_key(following)
    assert [link.run_id for link in verification.links] == [
        quick.run_id,
        late.run_id,
        following.run_id,
    ]


def linked(key: str, previous: StoredReport | None, created: str) -> StoredReport:
    """A minimal chained report: what verify_chain reads of one."""
    document = {
        "run": {"run_id": key[-25:-5], "created_at": created},
        "verdict": "PASSED",
        "chain": {
            "algorithm": "sha256",
            "previous": None
            if previous is None
            else {"run_id": "0" * 20, "key": previous.key, "sha256": sha256_hex(previous.body)},
        },
        "location": {"key": key},
    }
    return StoredReport(key, json.dumps(document, sort_keys=True).encode())


def test_both_branches_of_a_fork_may_go_on_and_only_the_fork_is_reported() -> None:
    # Given P, then X and Y both linking to P (they finished together), then Z after X and W
    # after Y (their publishes interleaved the same way)
    prefix = "reports/us-east-1/clinic-db/2026/11/"
    p = linked(f"{prefix}01/{'1' * 20}.json", None, "2026-11-01")
    x = linked(f"{prefix}02/{'2' * 20}.json", p, "2026-11-02")
    y = linked(f"{prefix}02/{'3' * 20}.json", p, "2026-11-02")
    z = linked(f"{prefix}03/{'4' * 20}.json", x, "2026-11-03")
    w = linked(f"{prefix}03/{'5' * 20}.json", y, "2026-11-03")
    # When the chain is verified
    verification = verify_chain([p, x, y, z, w])
    # Then the fork is the only finding: both branches start where the chain starts
    assert kinds(verification) == [("fork", p.key)]
    assert verification.intact
    # And a report starting a chain of its own beside them is not connected
    alone = linked(f"{prefix}03/{'6' * 20}.json", None, "2026-11-03")
    assert ("unlinked", alone.key) in kinds(verify_chain([p, x, y, z, w, alone]))


def test_two_first_drills_publishing_at_once_start_two_chains_with_a_warning_only() -> None:
    # Given a database's first two drills, the first one's publish failing once after its claim
    # pinned "no previous report", so that the second also publishes as a first report
    w = world()
    first, second = started(w, 25), started(w, 26)
    w.clock.advance(hours=5)
    for run_id in (first, second):
        poll_drill(run_id, w.ctx)
        del w.rds.instances[w.runs.runs[run_id].instance_id]
    w.reports.fail_next = 1
    with pytest.raises(ConnectionError):
        poll_drill(first, w.ctx)
    poll_drill(second, w.ctx)
    w.clock.advance(minutes=5)
    poll_drill(first, w.ctx)
    # When the chain is verified with the run table, and without it (past its retention)
    with_table = verify_chain(stored(w).values(), anchors(w))
    without_table = verify_chain(stored(w).values())
    # Then both start a chain; the run table recorded both, so it is a warning, not a break
    previous = [document["chain"]["previous"] for document in w.reports.documents.values()]
    assert previous == [None, None]
    assert [finding.kind for finding in with_table.findings] == ["second_chain"]
    assert with_table.intact
    assert [finding.kind for finding in without_table.findings] == ["unlinked"]
