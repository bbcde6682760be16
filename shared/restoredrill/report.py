"""The drill report (the audit evidence) and the Drill Finished event, both built from the run.

Both are pure functions of the run record, so a retried publish writes the same document again.
Neither ever holds a password: the run record does not carry one.
"""

from __future__ import annotations

from typing import Any

from restoredrill.models import RunRecord, RunState

REPORT_SCHEMA_VERSION = "1.0"
PHASE_NAMES = {
    RunState.REQUESTED: "request",
    RunState.RESTORING: "restore",
    RunState.SECURING: "secure",
    RunState.CHECKING: "check",
    RunState.TEARING_DOWN: "teardown",
    RunState.REPORTING: "report",
}


def report_key(run: RunRecord) -> str:
    day = run.created_at.strftime("%Y/%m/%d")
    return f"reports/{run.source_db}/{day}/{run.run_id}.json"


def phase_timings(run: RunRecord) -> list[dict[str, Any]]:
    timings = []
    for state, name in PHASE_NAMES.items():
        phase = run.phases.get(state)
        if phase is None:
            continue
        timings.append(
            {
                "phase": name,
                "started_at": phase.started_at.isoformat(),
                "ended_at": phase.ended_at.isoformat() if phase.ended_at else None,
                "seconds": _round(phase.duration_seconds),
            }
        )
    return timings


def failed_checks(run: RunRecord) -> list[dict[str, Any]]:
    checks = (run.checks or {}).get("checks", [])
    return [
        {"name": check.get("name"), "status": check.get("status"), "message": check.get("message")}
        for check in checks
        if isinstance(check, dict) and check.get("status") in ("fail", "error")
    ]


def build_report(run: RunRecord, *, bucket: str, key: str) -> dict[str, Any]:
    snapshot = run.snapshot
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "restoredrill.drill-report",
        "run": {
            "run_id": run.run_id,
            "trigger": run.trigger,
            "requested_by": run.requested_by,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "deadline": run.deadline.isoformat(),
        },
        "verdict": run.verdict.value if run.verdict else None,
        "reason": run.reason,
        "source": {
            "db_instance_identifier": run.source_db,
            "engine": snapshot.engine,
            "engine_version": snapshot.engine_version,
            "region": snapshot.region,
            "account_id": snapshot.account_id,
        },
        "snapshot": {
            "snapshot_id": snapshot.snapshot_id,
            "snapshot_arn": snapshot.snapshot_arn,
            "snapshot_type": snapshot.snapshot_type,
            "created_at": (
                snapshot.snapshot_created_at.isoformat() if snapshot.snapshot_created_at else None
            ),
            "encrypted": snapshot.encrypted,
            "kms_key_id": snapshot.kms_key_id,
            "allocated_storage_gib": snapshot.allocated_storage_gib,
        },
        "restored_instance": {
            "db_instance_identifier": run.instance_id,
            "instance_class": run.instance_class,
            "deleted": run.state in (RunState.REPORTING, RunState.FINISHED),
        },
        "timings": {
            "phases": phase_timings(run),
            "restore_seconds": _round(run.restore_seconds),
            "total_seconds": _round(
                (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
            ),
        },
        "checks": run.checks,
        "location": {"bucket": bucket, "key": key},
    }


def finished_event_detail(run: RunRecord, *, bucket: str, key: str) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "verdict": run.verdict.value if run.verdict else None,
        "reason": run.reason,
        "source_db": run.source_db,
        "snapshot_id": run.snapshot.snapshot_id,
        "instance_id": run.instance_id,
        "phases": [
            {"phase": timing["phase"], "seconds": timing["seconds"]}
            for timing in phase_timings(run)
        ],
        "restore_seconds": _round(run.restore_seconds),
        "failed_checks": failed_checks(run),
        "report": {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}"},
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
