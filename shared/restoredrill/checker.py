"""The checker's side of the drill: run the check suite against the restored instance.

The checker has no AWS permissions. Everything it needs comes in the check runner's synchronous
invoke, and what it returns (aggregates only, never rows, never the password) goes back to the
runner, whose async destination carries it to the checker-results queue.

TLS is always required. With the RDS CA bundle deployed beside the policy (its layer), the
server's certificate and host name are verified too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from restoredrill.baseline import Baseline
from restoredrill.checks import ConnectionTarget, run_check_suite
from restoredrill.events import RUN_ID_PATTERN, InvalidEvent
from restoredrill.policy import DrillPolicy

# Packing the result (compressed when large) and returning it, after the suite's budget ends.
RESULT_HANDOVER_SECONDS = 15.0
MIN_BUDGET_SECONDS = 1.0


class CheckerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(pattern=RUN_ID_PATTERN.pattern)
    target: ConnectionTarget
    policy: DrillPolicy = Field(default_factory=DrillPolicy)
    baseline: dict[str, Any] | None = None
    snapshot_time: datetime | None = None
    vcpus: int | None = Field(default=None, ge=1, le=128)


def parse_checker_request(event: Any) -> CheckerRequest:
    try:
        request = CheckerRequest.model_validate(event)
    except ValidationError as error:
        raise InvalidEvent.naming_fields("checker request", error) from None
    if request.baseline:
        # The baseline is read here, not halfway through the suite: a malformed one is a
        # malformed request (and its errors would quote it).
        try:
            Baseline.from_payload(request.baseline)
        except Exception:  # any failure to read it: bad gzip, base64 or JSON, the wrong shape
            raise InvalidEvent("malformed checker request: baseline") from None
    return request


def with_ca_bundle(target: ConnectionTarget, bundle_file: str | None) -> ConnectionTarget:
    """`target` verified against the CA bundle in `bundle_file` if there is one; TLS always."""
    ssl = "require" if target.ssl == "disable" else target.ssl
    if bundle_file and Path(bundle_file).is_file():
        pem = Path(bundle_file).read_text()
        return target.model_copy(update={"ssl": "verify-full", "ca_bundle_pem": pem})
    return target.model_copy(update={"ssl": ssl})


def policy_within(policy: DrillPolicy, seconds_left: float | None) -> DrillPolicy:
    """The policy with its time budget cut to what the function has left, less the time to hand
    the result back: a budget longer than the function's timeout would have the function killed
    mid-suite and every result lost, where a cut budget reports the checks it could not reach as
    skipped."""
    if seconds_left is None:
        return policy
    available = max(seconds_left - RESULT_HANDOVER_SECONDS, MIN_BUDGET_SECONDS)
    if policy.time_budget <= available:
        return policy
    return policy.model_copy(update={"time_budget": available})


def run_checker(
    request: CheckerRequest,
    *,
    ca_bundle_file: str | None = None,
    seconds_left: float | None = None,
) -> dict[str, Any]:
    """``seconds_left``: how long the function may still run (its context's remaining time)."""
    result = run_check_suite(
        with_ca_bundle(request.target, ca_bundle_file),
        policy_within(request.policy, seconds_left),
        baseline=Baseline.from_payload(request.baseline) if request.baseline else None,
        snapshot_time=request.snapshot_time,
        vcpus=request.vcpus,
    )
    # The async destination carries at most 256 KB: a large result travels compressed.
    return {"run_id": request.run_id, "result": result.to_payload()}
