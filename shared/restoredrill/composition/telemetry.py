"""What a drill tells CloudWatch: a count when it starts; when it finishes, a count by verdict and
the phase durations; per sweep, what the sweeper did and what it could not do.

Each per-run count is recorded once: by the trigger that created the run, by whichever trigger
wrote FINISHED (never by a duplicate that found the run already there), so the counts the alarms
watch are exact. template.yaml's alarms watch the metric names below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from restoredrill.ports.records import RunRecord, RunState

if TYPE_CHECKING:
    from restoredrill.domain.drill import SweepSummary
    from restoredrill.domain.eligibility import DrillNotDue

logger = Logger(child=True)

RUNS_TIMED_OUT = "RunsTimedOut"
ORPHANS_DELETED = "OrphansDeleted"
SWEEP_RUNS_FAILED = "SweepRunsFailed"
DRILLS_SKIPPED_BY_SCHEDULE = "DrillsSkippedBySchedule"

PHASE_METRICS = {
    RunState.RESTORING: "RestoreSeconds",
    RunState.SECURING: "SecureSeconds",
    RunState.CHECKING: "CheckSeconds",
    RunState.TEARING_DOWN: "TeardownSeconds",
}


def record_started(run: RunRecord) -> None:
    """Called once per run, by the trigger that created it (a repeated event or request finds the
    run and calls nothing)."""
    Metrics().add_metric(name="DrillsStarted", unit=MetricUnit.Count, value=1)
    logger.info(
        "drill started",
        extra={"run_id": run.run_id, "source_db": run.source_db, "trigger": run.trigger},
    )


def record_skipped(skipped: DrillNotDue) -> None:
    """An automated snapshot the schedule did not drill: counted, and named in the log with why,
    so that no snapshot goes undrilled unseen."""
    Metrics().add_metric(name=DRILLS_SKIPPED_BY_SCHEDULE, unit=MetricUnit.Count, value=1)
    logger.info(
        "snapshot skipped by schedule",
        extra={
            "source_db": skipped.source_db,
            "snapshot_id": skipped.snapshot_id,
            "reason": skipped.why,
        },
    )


def record_finished(run: RunRecord) -> None:
    # Powertools Metrics instances share one buffer, flushed by the handler's log_metrics.
    metrics = Metrics()
    verdict = run.verdict.value if run.verdict else "UNKNOWN"
    metrics.add_metric(name=f"DrillsFinished{verdict}", unit=MetricUnit.Count, value=1)
    durations = {}
    for state, name in PHASE_METRICS.items():
        phase = run.phases.get(state)
        seconds = phase.duration_seconds if phase else None
        if seconds is not None:
            metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=seconds)
            durations[name] = round(seconds, 3)
    if run.finished_at is not None:
        total = (run.finished_at - run.created_at).total_seconds()
        metrics.add_metric(name="DrillSeconds", unit=MetricUnit.Seconds, value=total)
        durations["DrillSeconds"] = round(total, 3)
    logger.info(
        "drill finished",
        extra={"run_id": run.run_id, "verdict": verdict, "reason": run.reason, **durations},
    )


def record_sweep(summary: SweepSummary) -> None:
    # Counted on every sweep, zeros included: a clean sweep is a data point too.
    metrics = Metrics()
    metrics.add_metric(name=RUNS_TIMED_OUT, unit=MetricUnit.Count, value=summary.runs_timed_out)
    metrics.add_metric(
        name=ORPHANS_DELETED, unit=MetricUnit.Count, value=len(summary.orphans_deleted)
    )
    metrics.add_metric(name=SWEEP_RUNS_FAILED, unit=MetricUnit.Count, value=summary.runs_failed)
