"""Starts a drill: an automated snapshot was created, AWS Backup completed a backup or a copy of
a database (its recovery point), or someone published Drill Requested."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from restoredrill.composition.wiring import drill_context
from restoredrill.domain.drill import DrillNotDue, DrillRejected, start_drill
from restoredrill.ports.inbound_events import (
    InvalidEvent,
    is_drill_requested,
    parse_drill_requested,
    parse_snapshot_event,
)
from restoredrill.ports.records import DrillRequest
from restoredrill.ports.recovery_points import is_recovery_point_event, parse_recovery_point_event

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request: DrillRequest | None
        if is_drill_requested(event):
            request = parse_drill_requested(event)
        elif is_recovery_point_event(event):
            request = parse_recovery_point_event(event)
        else:
            request = parse_snapshot_event(event)
        if request is None:
            return {"status": "ignored"}
        run = start_drill(request, drill_context())
    except DrillNotDue as skipped:
        # Logged and counted (DrillsSkippedBySchedule) by the drill context's on_skipped.
        return {"status": "skipped", "reason": str(skipped)}
    except (InvalidEvent, DrillRejected) as rejected:
        # Retrying cannot make this event a drill: say why and let it go.
        logger.warning("no drill started", extra={"reason": str(rejected)})
        return {"status": "rejected", "reason": str(rejected)}
    # "drill started" and DrillsStarted come from the drill's creation (telemetry.record_started),
    # once per drill: a repeated event or request lands here too.
    return {"status": "started", "run_id": run.run_id, "state": run.state.value}
