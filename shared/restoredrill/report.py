"""The drill report (the audit evidence) and the Drill Finished event, both built from the run.

Both are pure functions of the run record, so a retried publish writes the same document again.
Neither ever holds a password: the run record does not carry one.
"""

from __future__ import annotations

from typing import Any

from restoredrill.baseline import unpack_document
from restoredrill.models import RunRecord, RunState

REPORT_SCHEMA_VERSION = "1.0"
PHASE_NAMES = {
    RunState.REQUESTED: "request",
    RunState.RESTORING: "restore",
    RunState.SECURING: "secure",
    RunState.CHECKING: "check",
    RunState.TEARING_DOWN: "teardown",
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


def expanded_checks(checks: dict[str, Any] | None) -> dict[str, Any] | None:
    """The check suite result in full, whether it travelled plain or compressed."""
    return unpack_document(checks) if checks else None


def failed_checks(checks: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The checks that failed or could not run, named for people (``row_counts[app]``)."""
    result = expanded_checks(checks) or {}
    failed = []
    for check in result.get("checks", []):
        if not isinstance(check, dict) or check.get("status") not in ("fail", "error"):
            continue
        where = "/".join(str(part) for part in (check.get("database"), check.get("object")) if part)
        name = f"{check.get('name')}[{where}]" if where else str(check.get("name"))
        failed.append(
            {"name": name, "status": check.get("status"), "message": check.get("message")}
        )
    return failed


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
        "policy": run.policy,
        "checks": expanded_checks(run.checks),
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
        "failed_checks": failed_checks(run.checks),
        "report": {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}"},
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
