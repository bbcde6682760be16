"""One model per message the functions pass to each other: the writer builds it, the reader
parses it, and neither knows any other shape.

- the check suite's result (:class:`CheckSuiteResult`): the checker writes it, the check runner
  relays it, ``advance`` reads it from the async destination record and keeps it in the run record;
- the check runner's request (:class:`CheckRunRequest`, from ``advance``, without the password)
  and the checker's (:class:`CheckerRequest`, from the runner, with it);
- the checker's answer (:class:`CheckerAnswer`);
- the baseline (:class:`restoredrill.ports.baseline.Baseline`) inside requests and results.

The drill report and the Drill Finished event are in :mod:`restoredrill.domain.report.model`.

Sizes are bounded where a message crosses a Lambda limit. The answer comes back to ``advance`` in
a Lambda async destination record delivered to the checker-results SQS queue; that record holds
the runner's whole request *and* its answer, and the queue takes at most its MaximumMessageSize
(SQS's default, 262,144 bytes: the template sets none). So the request (baseline included) is
kept within :data:`CHECK_RUN_REQUEST_LIMIT` and the answer within :data:`CHECKER_ANSWER_LIMIT`,
compressed when large; what still does not fit is left out, and a ``warn`` check says what.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
)

from restoredrill.ports.baseline import Baseline
from restoredrill.ports.payload_transport import (
    PAYLOAD_ENCODING,
    PAYLOAD_PLAIN_LIMIT,
    pack_document,
    unpack_document,
)
from restoredrill.ports.policy import DrillPolicy

__all__ = [
    "CHECKER_ANSWER_LIMIT",
    "CHECK_RESULT_LIMIT",
    "CHECK_RUN_REQUEST_LIMIT",
    "DESTINATION_RECORD_LIMIT",
    "NOT_PASSED",
    "CheckResult",
    "CheckRunRequest",
    "CheckStatus",
    "CheckSuiteResult",
    "CheckerAnswer",
    "CheckerRequest",
    "CheckerTarget",
    "ConnectionTarget",
    "PayloadTooLarge",
    "SuiteVerdict",
    "failed_checks",
    "json_size",
    "not_passed",
]

RUN_ID_PATTERN = r"^[0-9a-f]{20}$"

# SQS's default MaximumMessageSize: the checker-results queue (the destination) sets none.
DESTINATION_RECORD_LIMIT = 262_144
# The record's own fields around the two payloads: version, timestamp, requestContext (request
# id, function ARN, condition, invoke count), responseContext. About 400 bytes; kept generous.
RECORD_ENVELOPE_ALLOWANCE = 4_096
# Both halves carry a baseline of the same database (the last passing drill's, and this drill's
# for the next one), so they share the record equally: 129,024 bytes each.
CHECK_RUN_REQUEST_LIMIT = (DESTINATION_RECORD_LIMIT - RECORD_ENVELOPE_ALLOWANCE) // 2
CHECKER_ANSWER_LIMIT = (
    DESTINATION_RECORD_LIMIT - RECORD_ENVELOPE_ALLOWANCE - CHECK_RUN_REQUEST_LIMIT
)
# The answer is {"run_id": ..., "result": ...}: the result gets all of it but the run id's line.
CHECK_RESULT_LIMIT = CHECKER_ANSWER_LIMIT - 256
FAILED_NAMES_IN_SUMMARY = 20
OMITTED_MESSAGE_MAX = 300
EVIDENCE_ITEMS_KEPT = 20


class PayloadTooLarge(Exception):
    """Even the smallest form of a message does not fit its limit."""


def json_size(document: Any) -> int:
    """Bytes of ``document`` as the Lambda runtime serialises a return value (``json.dumps``
    with its default separators, non-ASCII escaped): never fewer than any compact form."""
    return len(json.dumps(document).encode("utf-8"))


def _unpacked(value: Any) -> Any:
    """A document that travelled gzip+base64, expanded; anything else unchanged. A packed
    document that cannot be read is a validation error, not a crash."""
    if isinstance(value, dict) and value.get("encoding") == PAYLOAD_ENCODING:
        try:
            return unpack_document(value)
        except Exception:  # bad base64, gzip or JSON: all mean the same thing
            raise ValueError("a packed document that cannot be unpacked") from None
    return value


# ------------------------------------------------------------------------------ check results


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


class CheckResult(BaseModel):
    """One check: what was checked, how it went, and the evidence (numbers, objects, messages).

    ``name`` is the kind of check (``row_counts``, ``amcheck_heap``...); ``database`` and
    ``object`` say where (``None`` for instance-wide checks). Checks over many relations
    (row counts, amcheck) give one result per database whose evidence lists the offending
    relations; the full per-table numbers live in the baseline.
    """

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    name: str = Field(
        min_length=1,
        description=(
            "The kind of check: connect, tls, server_version, not_in_recovery, databases, roles, "
            "catalog, schema_fingerprint, row_counts, freshness, assertion, content_fingerprint, "
            "amcheck_heap, amcheck_btree; baseline and result_size say what a size limit left "
            "out."
        ),
    )
    level: int = Field(ge=0, le=3)
    status: CheckStatus
    message: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float = Field(default=0, ge=0)
    database: str | None = Field(
        default=None,
        description="The PostgreSQL database checked; null for instance-wide checks.",
    )
    object: str | None = Field(
        default=None,
        description=(
            "The rule, assertion or relation checked; null when the check covers the whole "
            "database or instance."
        ),
    )

    @property
    def display_name(self) -> str:
        """``name`` qualified with the database and object, for people: ``row_counts[app]``."""
        where = "/".join(part for part in (self.database, self.object) if part)
        return f"{self.name}[{where}]" if where else self.name


class SuiteVerdict(StrEnum):
    PASSED = "PASSED"  # every check passed (or warned / was skipped for the time budget)
    FAILED = "FAILED"  # at least one check found a problem with the data
    ERROR = "ERROR"  # the suite could not check (connection refused, a check errored)


class CheckSuiteResult(BaseModel):
    """The whole suite. ``baseline`` is what the next drill compares against; store it only when
    the verdict is PASSED (it is computed whatever the verdict, so that an operator can accept a
    legitimate change by hand)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    verdict: SuiteVerdict
    checks: list[CheckResult]
    started_at: datetime
    finished_at: datetime
    duration_ms: float = Field(ge=0)
    server_version: str | None = Field(
        default=None, description="The server's version; null when the checker could not log in."
    )
    baseline: Baseline | None = Field(
        default=None,
        description=(
            "What the next drill compares against; null when the checker could not log in, or "
            "when it was left out to fit the way back (a result_size check then says so)."
        ),
    )
    level: int = Field(default=3, ge=0, le=3)
    complete: bool = Field(
        default=True, description="False when the time budget cut some checks short."
    )
    summary: dict[str, int] = Field(default_factory=dict, description="Checks per status.")
    python_cpu_ms: float | None = Field(
        default=None,
        description=(
            "CPU time the checker's process spent (the server does the work); null when not "
            "measured."
        ),
    )

    def to_payload(self, max_bytes: int = CHECK_RESULT_LIMIT) -> dict[str, Any]:
        """The result as a JSON-able dict for a size-limited channel: as is when small, else
        gzip+base64 of its JSON with the verdict and the first failed checks readable beside it.
        When even that is over ``max_bytes``, the biggest parts go first (the baseline or the
        evidence of passed checks, then both, then all but the first items of each evidence
        list, then all evidence, then the passed checks), and a ``warn`` check named
        ``result_size`` says what was left out. Read it back with :meth:`from_payload`."""
        for candidate in _shrinking(self, max_bytes):
            payload = pack_document(
                candidate.model_dump(mode="json"),
                min(PAYLOAD_PLAIN_LIMIT, max_bytes),
                verdict=candidate.verdict.value,
                failed_checks=[c.display_name for c in candidate.failed()][
                    :FAILED_NAMES_IN_SUMMARY
                ],
            )
            if json_size(payload) <= max_bytes:
                return payload
        raise PayloadTooLarge(f"the check suite result does not fit in {max_bytes} bytes")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CheckSuiteResult:
        """The inverse of :meth:`to_payload` (a plain result dict is accepted too)."""
        return cls.model_validate(unpack_document(payload))

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if check.status is CheckStatus.FAIL]

    def errored(self) -> list[CheckResult]:
        return [check for check in self.checks if check.status is CheckStatus.ERROR]


# A check that failed or could not run: what a report, an event or a run's reason names.
NOT_PASSED = ("fail", "error")


def not_passed(checks: CheckSuiteResult | None) -> list[CheckResult]:
    return [c for c in (checks.checks if checks else []) if c.status.value in NOT_PASSED]


def failed_checks(checks: CheckSuiteResult | None) -> list[dict[str, Any]]:
    """The checks that failed or could not run, named for people (``row_counts[app]``)."""
    return [
        {"name": check.display_name, "status": check.status.value, "message": check.message}
        for check in not_passed(checks)
    ]


def _size_note(max_bytes: int, omitted: list[str]) -> CheckResult:
    return CheckResult(
        name="result_size",
        level=0,
        status=CheckStatus.WARN,
        message=(
            f"the result was over the {max_bytes} bytes its way back allows, even compressed: "
            f"left out {', '.join(omitted)}"
        ),
        evidence={"limit_bytes": max_bytes, "omitted": omitted},
    )


def _shrinking(result: CheckSuiteResult, max_bytes: int) -> Iterator[CheckSuiteResult]:
    """``result``, then ever smaller forms of it, each with a note of what it lacks; the caller
    stops at the first that fits. Only a PASSED result's baseline is ever used (by the next
    drill), so a PASSED result first tries giving up the evidence of its passed checks instead;
    any other result gives up its baseline first."""
    yield result
    checks = list(result.checks)
    evidence_note = "the evidence of passed checks"
    baseline_note = "the baseline (the next drill has none to compare with)"
    without_passed_evidence = [c if c.status is not CheckStatus.PASS else _bare(c) for c in checks]
    if result.baseline is not None:
        if result.verdict is SuiteVerdict.PASSED:
            yield _with(
                result, without_passed_evidence, [evidence_note], max_bytes, result.baseline
            )
        yield _with(result, checks, [baseline_note], max_bytes, None)
    omitted = [baseline_note] if result.baseline is not None else []
    omitted = [*omitted, evidence_note]
    checks = without_passed_evidence
    yield _with(result, checks, omitted, max_bytes, None)
    omitted = [*omitted, f"all but the first {EVIDENCE_ITEMS_KEPT} items of each evidence list"]
    checks = [_shortened(c) for c in checks]
    yield _with(result, checks, omitted, max_bytes, None)
    omitted = [*omitted, "all evidence"]
    checks = [_bare(c) for c in checks]
    yield _with(result, checks, omitted, max_bytes, None)
    passed = sum(c.status is CheckStatus.PASS for c in checks)
    omitted = [*omitted, f"{passed} passed check(s)"]
    checks = [c for c in checks if c.status is not CheckStatus.PASS]
    yield _with(result, checks, omitted, max_bytes, None)


def _shortened(check: CheckResult) -> CheckResult:
    """Each list in the evidence cut to its first items; ``<name>_left_out`` counts the rest."""
    evidence: dict[str, Any] = {}
    for name, value in check.evidence.items():
        if isinstance(value, list) and len(value) > EVIDENCE_ITEMS_KEPT:
            evidence[name] = value[:EVIDENCE_ITEMS_KEPT]
            evidence[f"{name}_left_out"] = len(value) - EVIDENCE_ITEMS_KEPT
        else:
            evidence[name] = value
    return check.model_copy(update={"evidence": evidence})


def _bare(check: CheckResult) -> CheckResult:
    return check.model_copy(
        update={"evidence": {}, "message": _clip(check.message, OMITTED_MESSAGE_MAX)}
    )


def _with(
    result: CheckSuiteResult,
    checks: list[CheckResult],
    omitted: list[str],
    max_bytes: int,
    baseline: Baseline | None,
) -> CheckSuiteResult:
    kept = [*checks, _size_note(max_bytes, omitted)]
    summary = {status.value: 0 for status in CheckStatus}
    for check in kept:
        summary[check.status.value] += 1
    return result.model_copy(update={"baseline": baseline, "checks": kept, "summary": summary})


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _result_payload(result: CheckSuiteResult) -> dict[str, Any]:
    return result.to_payload()


# A check suite result wherever it travels or is kept: read plain or packed, written bounded.
TravellingCheckSuite = Annotated[
    CheckSuiteResult,
    BeforeValidator(_unpacked),
    PlainSerializer(_result_payload, return_type=dict[str, Any]),
]


# ------------------------------------------------------------------------------ requests


def _baseline_payload(baseline: Baseline) -> dict[str, Any]:
    return baseline.to_payload()


# A baseline in a request: read plain or packed, written packed when large.
TravellingBaseline = Annotated[
    Baseline,
    BeforeValidator(_unpacked),
    PlainSerializer(_baseline_payload, return_type=dict[str, Any]),
]


class CheckerTarget(BaseModel):
    """Where the restored instance answers, without its password."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    user: str = Field(min_length=1, max_length=63)
    database: str = Field(default="postgres", min_length=1, max_length=63)


class _CheckInputs(BaseModel):
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    baseline: TravellingBaseline | None = None
    baseline_omitted: str | None = Field(
        default=None,
        max_length=1000,
        description="Why the last passing drill's baseline is not here (it was too large).",
    )
    snapshot_time: datetime | None = None
    vcpus: int | None = Field(default=None, ge=1, le=128)


class CheckRunRequest(_CheckInputs):
    """``advance`` → check runner, asynchronously: the whole request comes back in the async
    destination record, so it never holds the password, only the name of its parameter."""

    model_config = ConfigDict(extra="forbid")

    password_parameter: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    target: CheckerTarget
    policy: dict[str, Any] = Field(default_factory=dict)
    deadline: datetime | None = None
    # Checks in rounds (the policy's ``rounds``): which round, and which attempt at it; the
    # source database names the coverage history of ``coverage: rotate``.
    round: int = Field(default=0, ge=0)
    attempt: int = Field(default=0, ge=0)
    source_db: str | None = Field(default=None, max_length=255)
    # The last passing drill's baseline when the check runner kept it in the work bucket.
    baseline_key: str | None = Field(default=None, max_length=1024)

    def to_payload(self, max_bytes: int = CHECK_RUN_REQUEST_LIMIT) -> dict[str, Any]:
        """The request as sent, within ``max_bytes``: a baseline that does not fit (even
        compressed) is left out, and ``baseline_omitted`` says so."""
        payload = self.model_dump(mode="json")
        if json_size(payload) <= max_bytes or self.baseline is None:
            return payload
        payload["baseline"] = pack_document(self.baseline.model_dump(mode="json"), 0)
        if json_size(payload) <= max_bytes:
            return payload
        baseline_bytes = json_size(payload["baseline"])
        without = self.model_copy(
            update={
                "baseline": None,
                "baseline_omitted": (
                    f"the last passing drill's baseline is {baseline_bytes} bytes compressed, "
                    f"more than the {max_bytes} bytes the check runner's request may hold: "
                    "this drill compares nothing with it"
                ),
            }
        )
        payload = without.model_dump(mode="json")
        if json_size(payload) > max_bytes:
            raise PayloadTooLarge(f"the check run request does not fit in {max_bytes} bytes")
        return payload


class ConnectionTarget(BaseModel):
    """Where to connect. ``ssl``: ``require`` (encrypted, not verified), ``verify-full``
    (certificate and host name checked against ``ca_bundle_pem`` or the system trust store) or
    ``disable``."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 5432
    user: str
    password: SecretStr
    database: str = "postgres"
    ssl: Literal["require", "verify-full", "disable"] = "require"
    ca_bundle_pem: str | None = None
    connect_timeout_s: float = 10


class CheckerRequest(_CheckInputs):
    """Check runner → checker, synchronously (recorded nowhere): the runner's request with the
    password read from the vault in place of its parameter's name."""

    model_config = ConfigDict(extra="ignore")

    target: ConnectionTarget
    policy: DrillPolicy = Field(default_factory=DrillPolicy)
    # ``suite``: every check, in this invocation. With the policy's ``rounds``: ``plan`` (every
    # check but the counts and verifications, which are planned, then as many tasks of the plan
    # as time allows) or ``tasks`` (the tasks in ``work``, a share of one round).
    mode: Literal["suite", "plan", "tasks"] = "suite"
    work: dict[str, Any] | None = None
    # The runner keeps the baseline in its work bucket: the answer may be as large as a
    # synchronous invoke allows, the baseline whole.
    whole_answer: bool = False
    # False for an instance restoredrill does not own (an AWS Backup restore test): the checks
    # then only read, and level 3 skips a database without amcheck instead of installing it.
    install_amcheck: bool = True

    @classmethod
    def for_run(cls, request: CheckRunRequest, password: str) -> CheckerRequest:
        return cls(
            run_id=request.run_id,
            target=ConnectionTarget(**request.target.model_dump(), password=SecretStr(password)),
            policy=DrillPolicy.model_validate(request.policy),
            baseline=request.baseline,
            baseline_omitted=request.baseline_omitted,
            snapshot_time=request.snapshot_time,
            vcpus=request.vcpus,
        )

    def to_payload(self) -> dict[str, Any]:
        """The request as the checker reads it, password included (a synchronous invoke's
        payload is recorded nowhere)."""
        payload = self.model_dump(mode="json")
        payload["target"]["password"] = self.target.password.get_secret_value()
        return payload


class RoundAnswer(BaseModel):
    """Check runner → async destination → ``advance`` when a round of a plan ended and the plan
    goes on (no verdict yet), or when the round had been claimed by another trigger already
    (``duplicate``: nothing to do)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    round: int = Field(ge=0)
    attempt: int = Field(default=0, ge=0)
    duplicate: bool = False
    tasks_done: int = Field(default=0, ge=0)
    tasks_total: int = Field(default=0, ge=0)
    bytes_done: int = Field(default=0, ge=0)
    bytes_total: int = Field(default=0, ge=0)


class CheckerAnswer(BaseModel):
    """Checker → check runner → async destination → ``advance``: the suite's result for one
    run, within :data:`CHECK_RESULT_LIMIT`."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    result: TravellingCheckSuite
    # The result's baseline, kept by the check runner in the work bucket instead of here.
    baseline_key: str | None = Field(default=None, max_length=1024)
