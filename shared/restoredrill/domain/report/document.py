"""The drill report (the audit evidence), built from the run.

A pure function of the run record, so a retried publish writes the same document again. It never
holds a password: the run record does not carry one. The report is a model
(:class:`~restoredrill.domain.report.model.DrillReport`) whose JSON Schema is shipped in the layer
(:mod:`restoredrill.domain.report.schema`); where it is stored is
:mod:`restoredrill.domain.report.location`, the Drill Finished event built from the same run is
:mod:`restoredrill.domain.report.finished_event`.
"""

from __future__ import annotations

import json
from typing import Any

from restoredrill.domain.cost import (
    DEFAULT_POLL_DELAY_SECONDS,
    estimate_drill_cost,
    price_table_for,
)
from restoredrill.domain.point_in_time import newest_data_age
from restoredrill.domain.report.location import report_location
from restoredrill.domain.report.model import (
    REPORT_KIND,
    REPORT_SCHEMA_VERSION,
    CheckSummary,
    DrillReport,
    FailedCheckSummary,
    PreviousReport,
    ReportChain,
    ReportPhase,
    ReportPointInTime,
    ReportRecovery,
    ReportRecoveryPoint,
    ReportRestoredInstance,
    ReportRun,
    ReportSnapshot,
    ReportSource,
    ReportTimings,
    ReportTopology,
    ReportTopologyInstance,
    RpoMeasurement,
)
from restoredrill.ports.messages import CheckResult, CheckSuiteResult, not_passed
from restoredrill.ports.records import RunRecord, RunState

PHASE_NAMES = {
    RunState.REQUESTED: "request",
    RunState.RESTORING: "restore",
    RunState.SECURING: "secure",
    RunState.CHECKING: "check",
    RunState.TEARING_DOWN: "teardown",
}
CHAIN_ALGORITHM = "sha256"


def report_bytes(document: dict[str, Any]) -> bytes:
    """The report exactly as stored: its SHA-256 is what the next report of the database carries,
    so the serialisation is fixed (sorted keys, two-space indent, ASCII)."""
    return json.dumps(document, indent=2, sort_keys=True).encode("ascii")


def phase_timings(run: RunRecord) -> list[ReportPhase]:
    timings = []
    for state, name in PHASE_NAMES.items():
        phase = run.phases.get(state)
        if phase is None:
            continue
        timings.append(
            ReportPhase(
                phase=name,
                started_at=phase.started_at,
                ended_at=phase.ended_at,
                seconds=seconds_rounded(phase.duration_seconds),
            )
        )
    return timings


# ------------------------------------------------------------------------------ measured RPO


def freshness_results(checks: CheckSuiteResult | None) -> list[CheckResult]:
    """The results of the ``freshness`` checks (one per rule) in the run's check suite."""
    return [check for check in (checks.checks if checks else []) if check.name == "freshness"]


def measured_rpo(checks: CheckSuiteResult | None) -> RpoMeasurement | None:
    """The measured RPO: the largest age (``evidence.rpo_s``: how much older the newest row was
    than the snapshot) among the freshness checks, floored at 0, with the check that measured it.
    None when no freshness rule ran or none could measure an age (empty table, error, skipped)."""
    worst: CheckResult | None = None
    worst_age = 0.0
    for check in freshness_results(checks):
        age = check.evidence.get("rpo_s")
        if isinstance(age, bool) or not isinstance(age, int | float):
            continue
        if worst is None or age > worst_age:
            worst, worst_age = check, float(age)
    if worst is None:
        return None
    evidence = worst.evidence
    return RpoMeasurement(
        seconds=round(max(worst_age, 0.0), 3),
        check=worst.display_name,
        column=_text_or_none(evidence.get("column")),
        newest=_text_or_none(evidence.get("newest")),
        reference=_text_or_none(evidence.get("reference")),
        reference_is=_text_or_none(evidence.get("reference_is")),
    )


# ------------------------------------------------------------------------------ the report


def _check_summary(suite: CheckSuiteResult | None) -> CheckSummary | None:
    if suite is None:
        return None
    by_status: dict[Any, int] = {}
    for check in suite.checks:
        by_status[check.status] = by_status.get(check.status, 0) + 1
    return CheckSummary(
        total=len(suite.checks),
        by_status=by_status,
        failed=[
            FailedCheckSummary(
                name=check.display_name,
                status=check.status.value,
                message=check.message,
            )
            for check in not_passed(suite)
        ],
    )


def drill_report(
    run: RunRecord,
    *,
    bucket: str,
    key: str,
    poll_delay_seconds: int = DEFAULT_POLL_DELAY_SECONDS,
) -> DrillReport:
    """The report of a finished run (its verdict and finish time set). ``poll_delay_seconds``:
    the stack's, for the estimate of the drill's poll invocations."""
    snapshot = run.snapshot
    suite = run.checks
    rpo = measured_rpo(suite)
    previous = run.chain.previous if run.chain is not None else None
    return DrillReport(
        schema_version=REPORT_SCHEMA_VERSION,
        kind=REPORT_KIND,
        run=ReportRun(
            run_id=run.run_id,
            trigger=run.trigger,
            requested_by=run.requested_by,
            created_at=run.created_at,
            finished_at=run.finished_at,
            deadline=run.deadline,
        ),
        verdict=run.verdict,
        reason=run.reason,
        source=ReportSource(
            db_instance_identifier=run.source_db,
            engine=snapshot.engine,
            engine_version=snapshot.engine_version,
            region=snapshot.region,
            account_id=snapshot.account_id,
        ),
        snapshot=ReportSnapshot(
            snapshot_id=snapshot.snapshot_id,
            snapshot_arn=snapshot.snapshot_arn,
            snapshot_type=snapshot.snapshot_type,
            created_at=snapshot.snapshot_created_at,
            encrypted=snapshot.encrypted,
            kms_key_id=snapshot.kms_key_id,
            allocated_storage_gib=snapshot.allocated_storage_gib,
        ),
        recovery_point=(
            ReportRecoveryPoint(**run.recovery_point.model_dump())
            if run.recovery_point is not None
            else None
        ),
        restored_instance=ReportRestoredInstance(
            db_instance_identifier=run.instance_id,
            instance_class=run.instance_class,
            deleted=run.state in (RunState.REPORTING, RunState.FINISHED),
        ),
        topology=report_topology(run),
        timings=ReportTimings(
            phases=phase_timings(run),
            restore_seconds=seconds_rounded(run.restore_seconds),
            total_seconds=seconds_rounded(
                (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
            ),
        ),
        recovery=ReportRecovery(
            rto_seconds=seconds_rounded(run.restore_seconds),
            rpo_seconds=rpo.seconds if rpo else None,
            rpo_measured_by=rpo,
            freshness_checks=len(freshness_results(suite)),
        ),
        point_in_time=report_point_in_time(run),
        policy=run.policy,
        checks=suite,
        check_summary=_check_summary(suite),
        chain=ReportChain(
            algorithm=CHAIN_ALGORITHM,
            previous=(
                PreviousReport(run_id=previous.run_id, key=previous.key, sha256=previous.sha256)
                if previous is not None
                else None
            ),
        ),
        location=report_location(run, bucket=bucket, key=key),
        cost=estimate_drill_cost(
            run, price_table_for(run.policy), poll_delay_seconds=poll_delay_seconds
        ),
    )


def report_point_in_time(run: RunRecord) -> ReportPointInTime | None:
    """A point-in-time drill's requested time, the newest data found and the RPO between them;
    None for a snapshot drill."""
    point_in_time = run.point_in_time
    if point_in_time is None:
        return None
    measured = newest_data_age(run.checks)
    return ReportPointInTime(
        requested_time=point_in_time.restore_time,
        newest_data=measured[1] if measured else None,
        rpo_seconds=round(max(measured[0], 0.0), 3) if measured else None,
        max_rpo_seconds=point_in_time.max_rpo_seconds,
    )


def report_topology(run: RunRecord) -> ReportTopology:
    """What was restored; for an Aurora cluster, the RTO split at the moment the cluster was
    seen available (the rest is the instance's creation)."""
    instance = ReportTopologyInstance(
        db_instance_identifier=run.instance_id,
        instance_class=run.instance_class,
        role="writer" if run.is_cluster else "instance",
    )
    cluster_restore = instance_create = None
    restoring = run.phases.get(RunState.RESTORING)
    if run.is_cluster and restoring is not None and run.cluster_available_at is not None:
        cluster_restore = (run.cluster_available_at - restoring.started_at).total_seconds()
        if run.restore_seconds is not None and restoring.ended_at is not None:
            instance_create = (restoring.ended_at - run.cluster_available_at).total_seconds()
    return ReportTopology(
        kind="aurora-cluster" if run.is_cluster else "db-instance",
        engine=run.snapshot.engine,
        engine_version=run.snapshot.engine_version,
        db_cluster_identifier=run.cluster_id,
        instances=[instance],
        serverless_v2_min_acu=run.acu_range[0] if run.acu_range else None,
        serverless_v2_max_acu=run.acu_range[1] if run.acu_range else None,
        cluster_restore_seconds=seconds_rounded(cluster_restore),
        instance_create_seconds=seconds_rounded(instance_create),
    )


def build_report(
    run: RunRecord,
    *,
    bucket: str,
    key: str,
    poll_delay_seconds: int = DEFAULT_POLL_DELAY_SECONDS,
) -> dict[str, Any]:
    """The report as the JSON document stored (see :func:`report_bytes`)."""
    return drill_report(
        run, bucket=bucket, key=key, poll_delay_seconds=poll_delay_seconds
    ).model_dump(mode="json")


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def seconds_rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
