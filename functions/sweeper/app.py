"""The safety net: enforces deadlines and deletes drill instances that no live run owns."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.composition.telemetry import record_sweep
from restoredrill.composition.wiring import drill_context
from restoredrill.domain.drill import sweep

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = sweep(drill_context())
    record_sweep(summary)
    logger.info(
        "sweep done",
        extra={
            "advanced": summary.runs_advanced,
            "failed": summary.runs_failed,
            "orphans": summary.orphans_deleted,
        },
    )
    return {
        "runs_advanced": summary.runs_advanced,
        "runs_timed_out": summary.runs_timed_out,
        "runs_failed": summary.runs_failed,
        "orphans_deleted": summary.orphans_deleted,
        "point_in_time_started": summary.point_in_time_started,
    }
