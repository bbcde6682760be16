"""StartDrill's handler with a schedule: a skipped snapshot is answered `skipped`, logged with why
and counted in DrillsSkippedBySchedule, as Lambda would publish it (embedded metric format on
stdout); a Drill Requested at the same moment starts a drill."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from restoredrill.composition.telemetry import (
    DRILLS_SKIPPED_BY_SCHEDULE,
    record_skipped,
    record_started,
)
from restoredrill.ports.policy import parse_policy_text
from restoredrill.ports.records import RunRecord, Verdict

from tests.unit.fakes import START, World, world
from tests.unit.test_sweeper_metrics import LambdaContextStub, published_metrics

ROOT = Path(__file__).resolve().parents[2]
START_DRILL = ROOT / "functions" / "start_drill" / "app.py"
EVENTS = ROOT / "events" / "start_drill"
STACK = "restoredrill-prod"


def weekly_database_drilled_yesterday() -> World:
    w = world()
    w.rds.add_source(
        "clinic-db", {"restoredrill:drill": "enabled"}, "rds:clinic-db-2026-11-27-03-10"
    )
    w.ctx.policies = parse_policy_text("databases:\n  clinic-db: {every: 7d}\n")
    w.ctx.on_started = record_started
    w.ctx.on_skipped = record_skipped
    snapshot = next(iter(w.rds.snapshots.values()))[0]
    yesterday = START - timedelta(days=1)
    w.runs.create(
        RunRecord(
            run_id="0" * 20,
            source_db="clinic-db",
            snapshot=snapshot,
            instance_id="restoredrill-" + "0" * 20,
            instance_class="db.t4g.micro",
            trigger="RDS-EVENT-0091 automated snapshot created",
            created_at=yesterday,
            deadline=yesterday + timedelta(hours=4),
            verdict=Verdict.PASSED,
        )
    )
    return w


def load_start_drill(monkeypatch: pytest.MonkeyPatch, w: World) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "restoredrill")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", STACK)
    spec = importlib.util.spec_from_file_location("start_drill_under_test", START_DRILL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "drill_context", lambda: w.ctx)
    return module


def event(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return document


def test_a_snapshot_skipped_by_schedule_is_answered_logged_and_counted(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a weekly database drilled yesterday
    w = weekly_database_drilled_yesterday()
    start_drill = load_start_drill(monkeypatch, w)
    # When today's automated snapshot event arrives
    answer = start_drill.handler(event("automated-snapshot-created.json"), LambdaContextStub())
    # Then nothing is restored and the answer says why
    assert answer["status"] == "skipped" and w.rds.calls == []
    assert "skipped by its schedule: the last drill started 24h00m ago" in answer["reason"]
    # And the log names the database, the snapshot and why
    (record,) = [r for r in caplog.records if r.getMessage() == "snapshot skipped by schedule"]
    assert record.__dict__["source_db"] == "clinic-db"
    assert record.__dict__["snapshot_id"] == "rds:clinic-db-2026-11-27-03-10"
    assert "drills every 7d00h" in record.__dict__["reason"]
    out = capsys.readouterr().out
    # And DrillsSkippedBySchedule is counted once, under the stack's service dimension
    document = published_metrics(out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "restoredrill" and document["service"] == STACK
    assert document[DRILLS_SKIPPED_BY_SCHEDULE] == [1.0]


def test_a_drill_requested_at_the_same_moment_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = weekly_database_drilled_yesterday()
    start_drill = load_start_drill(monkeypatch, w)
    answer = start_drill.handler(event("drill-requested.json"), LambdaContextStub())
    assert answer["status"] == "started" and w.rds.count("restore") == 1
    document = published_metrics(capsys.readouterr().out)
    assert DRILLS_SKIPPED_BY_SCHEDULE not in document and document["DrillsStarted"] == [1.0]
