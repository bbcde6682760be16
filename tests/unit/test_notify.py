"""The Slack message and the settings: what on-call engineers read, what operators configure."""

import json
from pathlib import Path

import pytest
from restoredrill.config import ConfigError, DrillSettings
from restoredrill.notify import DrillFinished, announce, render

EVENTS = Path(__file__).resolve().parents[2] / "events"


def finished(**changes) -> DrillFinished:
    detail = json.loads((EVENTS / "notify/drill-finished.json").read_text())["detail"]
    detail.update(changes)
    return DrillFinished.model_validate(detail)


def test_a_passed_drill_names_database_snapshot_timings_and_report():
    text, blocks = render(finished())
    assert text.startswith(":white_check_mark: Restore drill PASSED: clinic-db from rds:clinic-db-")
    assert "restore 16m03s" in text and "check 14.7s" in text
    assert "Restore time (RTO): 16m03s" in text
    assert "s3://restoredrill-reportbucket-1x2y3z/reports/clinic-db/2026/11/27/" in text
    assert blocks[0]["text"]["text"] == text


def test_a_failed_drill_says_why_and_names_the_failing_checks():
    text, _ = render(
        finished(
            verdict="FAILED",
            reason="failed checks: row_counts",
            failed_checks=[
                {"name": "row_counts", "status": "fail", "message": "clinic.patients lost 120 rows"}
            ],
        )
    )
    assert text.startswith(":x: Restore drill FAILED")
    assert "Why: failed checks: row_counts" in text
    assert "- check row_counts fail: clinic.patients lost 120 rows" in text


def test_announce_posts_exactly_what_it_rendered():
    posted = []

    class Chat:
        def post(self, text, blocks):
            posted.append((text, blocks))

    text = announce(finished(verdict="ERROR", reason="the checker failed"), Chat())
    assert posted == [render(finished(verdict="ERROR", reason="the checker failed"))]
    assert text.startswith(":warning:")


def test_bad_configuration_names_every_bad_variable():
    with pytest.raises(ConfigError) as raised:
        DrillSettings.from_environ({"STACK_NAME": "x", "POLL_DELAY_SECONDS": "5000"})
    message = str(raised.value)
    assert "POLL_DELAY_SECONDS" in message and "RUN_TABLE_NAME" in message
