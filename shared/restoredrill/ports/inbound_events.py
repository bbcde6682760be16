"""Parsing what arrives: RDS events, our own events, poll messages, checker destination records.

Everything outside is untrusted: a malformed event raises InvalidEvent with a clear message; an
event that is well formed but not for us returns None.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, Json, StrictBool, field_validator

from restoredrill.ports.messages import CheckerAnswer, RoundAnswer
from restoredrill.ports.records import (
    CheckerOutcome,
    DrillRequest,
    RequestedDrill,
    Verdict,
    drill_run_id,
)

AUTOMATED_SNAPSHOT_CREATED = "RDS-EVENT-0091"
AUTOMATED_CLUSTER_SNAPSHOT_CREATED = "RDS-EVENT-0169"
CREDENTIALS_RESET = "RDS-EVENT-0016"
RUN_ID_PATTERN = re.compile(r"^[0-9a-f]{20}$")
_ARN_RESOURCE = re.compile(r"arn:[^:]+:rds:[^:]*:[^:]*:(db|snapshot|cluster-snapshot|cluster):(.+)")
# What RDS accepts as an identifier: a letter, then letters, digits and single hyphens, no hyphen
# at the end. Anything else RDS answers with InvalidParameterValue, even on Describe calls.
_RDS_NAME = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*")
_SNAPSHOT_ARN = re.compile(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:snapshot:(.+)")
_CLUSTER_SNAPSHOT_ARN = re.compile(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:cluster-snapshot:(.+)")
# Automated (rds:) and AWS Backup (awsbackup:) snapshot ids carry a prefix RDS gives them itself.
_SNAPSHOT_PREFIXES = ("rds:", "awsbackup:")


class InvalidEvent(Exception):
    """The event is malformed; the message says what is wrong (never the event's secrets)."""

    @classmethod
    def naming_fields(cls, what: str, error: ValidationError) -> InvalidEvent:
        """Names the bad fields only: their values may be secrets (a password) or huge."""
        fields = ", ".join(".".join(str(p) for p in problem["loc"]) for problem in error.errors())
        return cls(f"malformed {what}: {fields}")


def is_instance_identifier(value: str) -> bool:
    """A well-formed RDS DB instance identifier (1-63 letters, digits, single hyphens)."""
    return 1 <= len(value) <= 63 and _RDS_NAME.fullmatch(value) is not None


def is_snapshot_identifier(value: str) -> bool:
    """A well-formed RDS DB snapshot identifier: a name, rds:/awsbackup: and a name, or an ARN."""
    if len(value) > 255:
        return False
    arn = _SNAPSHOT_ARN.fullmatch(value)
    name = arn.group(1) if arn else value
    for prefix in _SNAPSHOT_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return _RDS_NAME.fullmatch(name) is not None


class RdsEventDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    EventID: str | None = None
    SourceArn: str | None = None
    SourceIdentifier: str | None = None
    SourceType: str | None = None
    Message: str | None = None
    Tags: dict[str, str] | None = None


class RdsEvent(EventBridgeModel):
    detail: RdsEventDetail


class DrillRequestedDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db_instance_identifier: str | None = Field(default=None, min_length=1, max_length=63)
    # An Aurora DB cluster instead (restoredrill run CLUSTER_ID).
    db_cluster_identifier: str | None = Field(default=None, min_length=1, max_length=63)
    snapshot_id: str | None = Field(default=None, min_length=1, max_length=255)
    requested_by: str | None = Field(default=None, max_length=200)
    request_id: str | None = Field(default=None, min_length=1, max_length=200)
    # Restore the DB instance to its latest restorable time (RestoreDBInstanceToPointInTime)
    # rather than from a snapshot.
    point_in_time: StrictBool = False

    # RDS refuses a malformed identifier with InvalidParameterValue: refuse it here, clearly,
    # instead of raising from the Describe call (which EventBridge would retry).
    @field_validator("db_instance_identifier")
    @classmethod
    def _instance_identifier(cls, value: str | None) -> str | None:
        if value is not None and not is_instance_identifier(value):
            raise ValueError("not an RDS DB instance identifier")
        return value

    @field_validator("db_cluster_identifier")
    @classmethod
    def _cluster_identifier(cls, value: str | None) -> str | None:
        # DB cluster identifiers follow the same rules as DB instance identifiers.
        if value is not None and not is_instance_identifier(value):
            raise ValueError("not an RDS DB cluster identifier")
        return value

    @field_validator("snapshot_id")
    @classmethod
    def _snapshot_identifier(cls, value: str | None) -> str | None:
        if value is not None and not is_snapshot_identifier(value):
            raise ValueError("not an RDS DB snapshot identifier")
        return value


class DrillRequestedEvent(EventBridgeModel):
    source: Literal["restoredrill"]
    detail_type: Literal["Drill Requested"] = Field(alias="detail-type")
    detail: DrillRequestedDetail


class PollMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(pattern=RUN_ID_PATTERN.pattern)


class DestinationRequestContext(BaseModel):
    model_config = ConfigDict(extra="ignore")

    condition: str
    approximateInvokeCount: int = 1


class CheckerRequestPayload(BaseModel):
    # Only the run id is read back: the rest of the request (the connection) is never kept.
    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(pattern=RUN_ID_PATTERN.pattern)


class CheckerDestinationRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    requestContext: DestinationRequestContext
    requestPayload: CheckerRequestPayload
    responsePayload: Any = None


class CheckerResultMessage(BaseModel):
    body: Json[CheckerDestinationRecord]


def _validate(model: type[BaseModel], event: Any, what: str) -> Any:
    try:
        return parse(event=event, model=model)
    except ValidationError as error:
        fields = ", ".join(
            ".".join(str(part) for part in problem["loc"]) + f" ({problem['msg']})"
            for problem in error.errors()
        )
        raise InvalidEvent(f"malformed {what}: {fields}") from None
    except (TypeError, ValueError) as error:
        raise InvalidEvent(f"malformed {what}: {type(error).__name__}") from None


def resource_id_from_arn(arn: str | None) -> str | None:
    """`orders-db` from ...:db:orders-db, `rds:orders-db-2024-...` from ...:snapshot:rds:...."""
    if not arn:
        return None
    match = _ARN_RESOURCE.fullmatch(arn)
    return match.group(2) if match else None


def parse_snapshot_event(event: Any) -> DrillRequest | None:
    """A drill request for an automated-snapshot-created event; None for any other RDS event.

    The request names the snapshot only: StartDrill keys the run by the snapshot's ARN as RDS
    describes it, so the same snapshot named by ARN in one event and by id in another is one
    drill, and no malformed field can fold another snapshot into an existing run.
    """
    parsed: RdsEvent = _validate(RdsEvent, event, "RDS snapshot event")
    detail = parsed.detail
    if detail.EventID not in (AUTOMATED_SNAPSHOT_CREATED, AUTOMATED_CLUSTER_SNAPSHOT_CREATED):
        return None
    cluster = detail.EventID == AUTOMATED_CLUSTER_SNAPSHOT_CREATED
    if detail.SourceArn is not None:
        arn = (_CLUSTER_SNAPSHOT_ARN if cluster else _SNAPSHOT_ARN).fullmatch(detail.SourceArn)
        if arn is None:
            kind = "DB cluster snapshot" if cluster else "DB snapshot"
            raise InvalidEvent(f"malformed RDS snapshot event: SourceArn is not an RDS {kind} ARN")
        snapshot_id = arn.group(1)
    else:
        snapshot_id = detail.SourceIdentifier or ""
    if not snapshot_id:
        raise InvalidEvent("malformed RDS snapshot event: no SourceArn or SourceIdentifier")
    if not is_snapshot_identifier(snapshot_id):
        raise InvalidEvent("malformed RDS snapshot event: not an RDS DB snapshot identifier")
    what = "automated cluster snapshot created" if cluster else "automated snapshot created"
    return DrillRequest(
        snapshot_id=snapshot_id,
        trigger=f"{detail.EventID} {what}",
        event_tags=detail.Tags or {},
        cluster=cluster,
    )


def parse_drill_requested(event: Any) -> RequestedDrill:
    parsed: DrillRequestedEvent = _validate(DrillRequestedEvent, event, "Drill Requested event")
    detail = parsed.detail
    if detail.db_instance_identifier is not None and detail.db_cluster_identifier is not None:
        raise InvalidEvent(
            "malformed Drill Requested event: give db_instance_identifier or "
            "db_cluster_identifier, not both"
        )
    source_db = detail.db_instance_identifier or detail.db_cluster_identifier
    if source_db is None and detail.snapshot_id is None:
        raise InvalidEvent(
            "malformed Drill Requested event: give db_instance_identifier, db_cluster_identifier "
            "or snapshot_id"
        )
    if detail.point_in_time and (source_db is None or detail.snapshot_id is not None):
        raise InvalidEvent(
            "malformed Drill Requested event: a point-in-time drill (point_in_time: true) "
            "names db_instance_identifier or db_cluster_identifier, and no snapshot_id"
        )
    cluster = detail.db_cluster_identifier is not None or (
        detail.snapshot_id is not None
        and _CLUSTER_SNAPSHOT_ARN.fullmatch(detail.snapshot_id) is not None
    )
    return RequestedDrill(
        cluster=cluster,
        source_db=source_db,
        snapshot_id=detail.snapshot_id,
        idempotency_key=f"request:{detail.request_id or parsed.id}",
        trigger="Drill Requested",
        requested_by=detail.requested_by,
        point_in_time=detail.point_in_time,
    )


def is_drill_requested(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") == "Drill Requested"


def parse_instance_event(event: Any) -> tuple[str, bool] | None:
    """(run id, is a credentials reset) for an event about one of our instances or Aurora
    clusters, else None."""
    parsed: RdsEvent = _validate(RdsEvent, event, "RDS instance event")
    detail = parsed.detail
    if detail.SourceArn:
        # The ARN says what the event is about: a snapshot that merely carries one of our
        # instance names is not one of our instances.
        arn = _ARN_RESOURCE.fullmatch(detail.SourceArn)
        if arn is None or arn.group(1) not in ("db", "cluster"):
            return None
        resource_id = arn.group(2)
    else:
        resource_id = (detail.SourceIdentifier or "").removeprefix("rds:")
    run_id = drill_run_id(resource_id)
    if run_id is None:
        return None
    return run_id, detail.EventID == CREDENTIALS_RESET


def parse_poll_body(body: str) -> str:
    try:
        return PollMessage.model_validate_json(body).run_id
    except ValidationError:
        raise InvalidEvent('malformed poll message: expected {"run_id": <20 hex>}') from None


def _round_outcome(run_id: str, response: dict[str, Any]) -> CheckerOutcome:
    """A round of a plan ended (or was a duplicate): the plan goes on, no verdict yet."""
    try:
        answer = RoundAnswer.model_validate(response)
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in problem["loc"]) for problem in error.errors())
        return CheckerOutcome(
            run_id=run_id,
            succeeded=False,
            error=f"the check runner returned a malformed round: {fields}",
        )
    if answer.run_id != run_id:
        return CheckerOutcome(
            run_id=run_id, succeeded=False, error="the check runner answered for another run"
        )
    if answer.duplicate:
        return CheckerOutcome(run_id=run_id, succeeded=True, duplicate_round=True)
    return CheckerOutcome(run_id=run_id, succeeded=True, round_finished=answer.round)


def parse_checker_record(body: str) -> CheckerOutcome:
    """The Lambda async destination record that carries the checker's result (or its failure)."""
    try:
        record = CheckerDestinationRecord.model_validate_json(body)
    except ValidationError as error:
        raise InvalidEvent.naming_fields("checker result record", error) from None
    run_id = record.requestPayload.run_id
    response = record.responsePayload
    if record.requestContext.condition != "Success":
        message = response.get("errorMessage") if isinstance(response, dict) else None
        error_type = response.get("errorType") if isinstance(response, dict) else None
        return CheckerOutcome(
            run_id=run_id,
            succeeded=False,
            error=f"{error_type or 'Error'}: {message or record.requestContext.condition}",
        )
    if isinstance(response, dict) and "round" in response and "result" not in response:
        return _round_outcome(run_id, response)
    if not isinstance(response, dict) or not isinstance(response.get("result"), dict):
        return CheckerOutcome(
            run_id=run_id, succeeded=False, error="the checker returned no result"
        )
    try:
        answer = CheckerAnswer.model_validate(response)
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in problem["loc"]) for problem in error.errors())
        return CheckerOutcome(
            run_id=run_id,
            succeeded=False,
            error=f"the checker returned a malformed result: {fields}",
        )
    if answer.run_id != run_id:
        return CheckerOutcome(
            run_id=run_id, succeeded=False, error="the checker answered for another run"
        )
    verdict = Verdict(answer.result.verdict.value)
    return CheckerOutcome(
        run_id=run_id,
        succeeded=True,
        verdict=verdict,
        result=answer.result,
        baseline_key=answer.baseline_key,
    )
