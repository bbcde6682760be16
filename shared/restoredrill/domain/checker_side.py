"""The checker's side of the drill: run the check suite against the restored instance.

The checker has no AWS permissions. Everything it needs comes in the check runner's synchronous
invoke, and what it returns (aggregates only, never rows, never the password) goes back to the
runner, whose async destination carries it to the checker-results queue.

TLS is always required. With the RDS CA bundle deployed beside the policy (its layer), the
server's certificate and host name are verified too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from restoredrill.checksuite import ConnectionTarget, run_check_suite
from restoredrill.checksuite.results import summarize
from restoredrill.domain.check_rounds import run_planning_checker, run_share_checker
from restoredrill.ports.inbound_events import InvalidEvent
from restoredrill.ports.messages import CheckerAnswer, CheckerRequest, CheckResult, CheckStatus
from restoredrill.ports.payload_transport import pack_document
from restoredrill.ports.policy import DrillPolicy

# Packing the result (compressed when large) and returning it, after the suite's budget ends.
RESULT_HANDOVER_SECONDS = 15.0
MIN_BUDGET_SECONDS = 1.0


def parse_checker_request(event: Any) -> CheckerRequest:
    """The request, its baseline read too: a malformed baseline is a malformed request, found
    here rather than halfway through the suite (and named, never quoted)."""
    try:
        return CheckerRequest.model_validate(event)
    except ValidationError as error:
        raise InvalidEvent.naming_fields("checker request", error) from None


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
    """``seconds_left``: how long the function may still run (its context's remaining time).
    The answer is a :class:`CheckerAnswer`, within the size its way back allows; with the
    policy's ``rounds``, a share's outcomes (see :mod:`restoredrill.domain.check_rounds`)."""
    if request.mode != "suite":
        return _run_rounds_mode(request, ca_bundle_file, seconds_left)
    result = run_check_suite(
        with_ca_bundle(request.target, ca_bundle_file),
        policy_within(request.policy, seconds_left),
        baseline=request.baseline,
        snapshot_time=request.snapshot_time,
        vcpus=request.vcpus,
        install_amcheck=request.install_amcheck,
    )
    if request.baseline_omitted:
        # Said where the report and Slack's readers look: among the checks.
        note = CheckResult(
            name="baseline",
            level=1,
            status=CheckStatus.WARN,
            message=request.baseline_omitted,
        )
        checks = [*result.checks, note]
        result = result.model_copy(update={"checks": checks, "summary": summarize(checks)})
    if request.whole_answer:
        return {"run_id": request.run_id, "result": pack_document(result.model_dump(mode="json"))}
    return CheckerAnswer(run_id=request.run_id, result=result).model_dump(mode="json")


def round_seconds(seconds_left: float | None, policy: DrillPolicy) -> float:
    """The time a round's invocation gives its tasks: what the function has left, less the time
    to hand the answer back (a quarter of it when the function is short, as locally)."""
    if seconds_left is None:
        return policy.time_budget
    handover = min(RESULT_HANDOVER_SECONDS, seconds_left / 4)
    return max(seconds_left - handover, MIN_BUDGET_SECONDS)


def _run_rounds_mode(
    request: CheckerRequest, ca_bundle_file: str | None, seconds_left: float | None
) -> dict[str, Any]:
    secured = request.model_copy(update={"target": with_ca_bundle(request.target, ca_bundle_file)})
    seconds = round_seconds(seconds_left, request.policy)
    if request.mode == "plan":
        return run_planning_checker(secured, seconds)
    return run_share_checker(secured, seconds)
