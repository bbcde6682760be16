"""A schedule end to end through the local cloud: a weekly database's next automated snapshot is
skipped (logged, nothing restored), and a Drill Requested at the same moment drills it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from restoredrill.domain.drill import run_id_for
from restoredrill.ports.records import Verdict

from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e

SKIPPED_LOG_WAIT_SECONDS = 30


def logs(cloud: LocalCloud) -> str:
    return "\n".join(
        path.read_text(errors="replace") for path in sorted((cloud.work_dir / "logs").glob("*.log"))
    )


def wait_for_log(cloud: LocalCloud, *needles: str) -> str:
    deadline = time.monotonic() + SKIPPED_LOG_WAIT_SECONDS
    while time.monotonic() < deadline:
        lines = [line for line in logs(cloud).splitlines() if all(n in line for n in needles)]
        if lines:
            return lines[0]
        time.sleep(0.2)
    raise AssertionError(f"no log line with {needles}")


def test_a_weekly_database_skips_its_next_snapshot_and_drills_on_request(tmp_path: Path) -> None:
    policy = tmp_path / "drill-policy.yaml"
    policy.write_text("version: 1\ndatabases:\n  clinic-db: {every: 7d}\n")
    with LocalCloud(patients=300, policy_file=policy) as cloud:
        assert cloud.aws is not None
        # Given a weekly database whose first automated snapshot was drilled (never drilled: due)
        cloud.create_source_database("clinic-db")
        first = cloud.wait_for_run(cloud.start_drill("clinic-db"), timeout=120)
        assert first is not None and first.verdict is Verdict.PASSED, first
        # When the next automated snapshot arrives
        event = cloud.take_automated_snapshot("clinic-db")
        skipped_run = cloud.run_id_for_snapshot_event(event)
        snapshot_id = str(event["detail"]["SourceIdentifier"])
        # Then StartDrill logs it as skipped by the schedule, and nothing is created
        line = wait_for_log(cloud, "snapshot skipped by schedule", snapshot_id)
        assert "drills every 7d00h" in line and "clinic-db" in line
        assert cloud.run(skipped_run) is None
        assert cloud.drill_servers_running() == 0
        # And a Drill Requested right after (restoredrill run) bypasses the schedule
        cloud.aws.emit(
            {
                "source": "restoredrill",
                "detail-type": "Drill Requested",
                "detail": {
                    "db_instance_identifier": "clinic-db",
                    "requested_by": "e2e",
                    "request_id": "schedule-bypass",
                },
            },
            bus=cloud.aws.physical_id("DrillBus"),
        )
        requested = cloud.wait_for_run(run_id_for("request:schedule-bypass"), timeout=120)
        assert requested is not None and requested.verdict is Verdict.PASSED, requested
        assert requested.trigger == "Drill Requested"
