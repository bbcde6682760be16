"""The Drill Finished event's detail: what Slack (or any subscriber) needs without reading the
report, built from the run alone so a retried publish sends the same detail again."""

from __future__ import annotations

import json
from typing import Any

from restoredrill.domain.report.document import measured_rpo, phase_timings, seconds_rounded
from restoredrill.domain.report.evidence import evidence_summary, partly_verified
from restoredrill.domain.report.location import report_location
from restoredrill.domain.report.model import (
    DrillFinished,
    EventReportLocation,
    FailedCheck,
    PhaseSeconds,
)
from restoredrill.domain.report.text import clip, recovery_point_text
from restoredrill.ports.messages import NOT_PASSED, CheckResult, not_passed
from restoredrill.ports.records import RunRecord

# EventBridge takes at most 256 KB per entry; the detail stays far below, whatever the checks
# found (the report holds everything).
EVENT_DETAIL_MAX_BYTES = 16_000
EVENT_REASON_MAX_CHARS = 1_000
EVENT_MESSAGE_MAX_CHARS = 400


def _failed_check_entry(check: CheckResult) -> FailedCheck:
    return FailedCheck(
        name=check.display_name,
        status=check.status.value,
        message=clip(check.message, EVENT_MESSAGE_MAX_CHARS) or None,
        check=check.name,
        database=check.database,
        object=check.object,
        evidence_summary=evidence_summary(check.model_dump(mode="json")),
    )


def finished_event(
    run: RunRecord,
    *,
    bucket: str,
    key: str,
    report_sha256: str | None = None,
    estimated_cost_usd: float | None = None,
) -> DrillFinished:
    """The Drill Finished event's detail: what Slack (or any subscriber) needs without reading
    the report. At most :data:`EVENT_DETAIL_MAX_BYTES` of JSON: failed checks (failures first)
    are listed while they fit; ``failed_checks_total`` says how many there were."""
    not_passed_checks = sorted(
        not_passed(run.checks), key=lambda c: NOT_PASSED.index(c.status.value)
    )
    rpo = measured_rpo(run.checks)
    snapshot = run.snapshot
    location = report_location(run, bucket=bucket, key=key)
    detail = DrillFinished(
        run_id=run.run_id,
        verdict=run.verdict.value if run.verdict else None,
        reason=clip(run.reason, EVENT_REASON_MAX_CHARS) if run.reason else None,
        source_db=run.source_db,
        snapshot_id=snapshot.snapshot_id,
        snapshot_created_at=(
            snapshot.snapshot_created_at.isoformat() if snapshot.snapshot_created_at else None
        ),
        engine_version=snapshot.engine_version,
        region=snapshot.region,
        account_id=snapshot.account_id,
        instance_id=run.instance_id,
        trigger=run.trigger,
        requested_by=run.requested_by,
        phases=[PhaseSeconds(phase=t.phase, seconds=t.seconds) for t in phase_timings(run)],
        restore_seconds=seconds_rounded(run.restore_seconds),
        rpo_seconds=rpo.seconds if rpo else None,
        rpo_check=rpo.check if rpo else None,
        failed_checks_total=len(not_passed_checks),
        partly_verified=partly_verified(
            run.checks.model_dump(mode="json") if run.checks is not None else None
        ),
        estimated_cost_usd=estimated_cost_usd,
        recovery_point=(
            recovery_point_text(run.recovery_point) if run.recovery_point is not None else None
        ),
        point_in_time=(
            run.point_in_time.restore_time.isoformat() if run.point_in_time is not None else None
        ),
        report=EventReportLocation(
            bucket=bucket,
            key=key,
            uri=f"s3://{bucket}/{key}",
            html_key=location.html_key,
            sha256=report_sha256,
            console_url=location.console_url,
            html_console_url=location.html_console_url,
        ),
        created_at=run.created_at.isoformat(),
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )
    size = _json_size(detail.model_dump(mode="json"))
    for check in not_passed_checks:
        entry = _failed_check_entry(check)
        entry_size = _json_size(entry.model_dump(mode="json")) + 2  # and its ", "
        if size + entry_size > EVENT_DETAIL_MAX_BYTES:
            break
        detail.failed_checks.append(entry)
        size += entry_size
    return detail


def finished_event_detail(
    run: RunRecord,
    *,
    bucket: str,
    key: str,
    report_sha256: str | None = None,
    estimated_cost_usd: float | None = None,
) -> dict[str, Any]:
    """:func:`finished_event`, as the JSON the event carries (``estimated_cost_usd``: the
    report's cost estimate, for Slack)."""
    return finished_event(
        run,
        bucket=bucket,
        key=key,
        report_sha256=report_sha256,
        estimated_cost_usd=estimated_cost_usd,
    ).model_dump(mode="json")


def _json_size(value: Any) -> int:
    # ASCII-escaped, as the adapter sends it: never smaller than the UTF-8 bytes.
    return len(json.dumps(value).encode("utf-8"))
