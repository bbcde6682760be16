"""What a check suite returns: one result per check, a verdict, and the next baseline.

Everything here is JSON-serialisable with ``model_dump(mode="json")`` and carries no secret: the
only password is :attr:`ConnectionTarget.password`, a ``SecretStr`` that never leaves this module
in clear (and a :class:`CheckSuiteResult` does not contain the target at all).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from restoredrill.baseline import PAYLOAD_PLAIN_LIMIT, Baseline, pack_document, unpack_document

__all__ = [
    "STATUS_SEVERITY",
    "CheckResult",
    "CheckStatus",
    "CheckSuiteResult",
    "ConnectionTarget",
    "SuiteVerdict",
    "worst_status",
]


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


# How bad a status is when several are combined into one (higher wins).
STATUS_SEVERITY: dict[CheckStatus, int] = {
    CheckStatus.PASS: 0,
    CheckStatus.SKIPPED: 1,
    CheckStatus.WARN: 2,
    CheckStatus.ERROR: 3,
    CheckStatus.FAIL: 4,
}


def worst_status(
    statuses: list[CheckStatus], default: CheckStatus = CheckStatus.PASS
) -> CheckStatus:
    """The most severe of ``statuses`` (fail > error > warn > skipped > pass)."""
    if not statuses:
        return default
    return max(statuses, key=lambda status: STATUS_SEVERITY[status])


class CheckResult(BaseModel):
    """One check: what was checked, how it went, and the evidence (numbers, objects, messages).

    ``name`` is the kind of check (``row_counts``, ``amcheck_heap``...); ``database`` and
    ``object`` say where (``None`` for instance-wide checks). Checks over many relations
    (row counts, amcheck) give one result per database whose evidence lists the offending
    relations; the full per-table numbers live in the baseline.
    """

    name: str
    level: int
    status: CheckStatus
    message: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float = 0
    database: str | None = None
    object: str | None = None

    @property
    def display_name(self) -> str:
        """``name`` qualified with the database and object, for people: ``row_counts[app]``."""
        where = "/".join(part for part in (self.database, self.object) if part)
        return f"{self.name}[{where}]" if where else self.name


class SuiteVerdict(StrEnum):
    PASSED = "PASSED"  # every check passed (or warned / was skipped for the time budget)
    FAILED = "FAILED"  # at least one check found a problem with the data
    ERROR = "ERROR"  # the suite could not check (connection refused, a check errored)


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


class CheckSuiteResult(BaseModel):
    """The whole suite. ``baseline`` is what the next drill compares against; store it only when
    the verdict is PASSED (it is computed whatever the verdict, so that an operator can accept a
    legitimate change by hand)."""

    verdict: SuiteVerdict
    checks: list[CheckResult]
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    server_version: str | None = None
    baseline: Baseline | None = None
    level: int = 3
    complete: bool = True  # False when the time budget cut some checks short
    summary: dict[str, int] = Field(default_factory=dict)  # checks per status
    python_cpu_ms: float | None = None  # CPU this process spent (the server does the work)

    def to_payload(self, max_plain_bytes: int = PAYLOAD_PLAIN_LIMIT) -> dict[str, Any]:
        """The result as a JSON-able dict for a size-limited channel (a Lambda async destination
        carries at most 256 KB): as is when small, else gzip+base64 of its JSON with the verdict
        and the failed checks readable beside it. Read it back with :meth:`from_payload`."""
        return pack_document(
            self.model_dump(mode="json"),
            max_plain_bytes,
            verdict=self.verdict.value,
            failed_checks=[c.display_name for c in self.failed()],
        )

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CheckSuiteResult:
        """The inverse of :meth:`to_payload` (a plain result dict is accepted too)."""
        return cls.model_validate(unpack_document(payload))

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if check.status is CheckStatus.FAIL]

    def errored(self) -> list[CheckResult]:
        return [check for check in self.checks if check.status is CheckStatus.ERROR]


def verdict_of(checks: list[CheckResult]) -> SuiteVerdict:
    """FAILED when any check failed; otherwise ERROR when any could not run; otherwise PASSED."""
    statuses = {check.status for check in checks}
    if CheckStatus.FAIL in statuses:
        return SuiteVerdict.FAILED
    if CheckStatus.ERROR in statuses or not checks:
        return SuiteVerdict.ERROR
    return SuiteVerdict.PASSED


def summarize(checks: list[CheckResult]) -> dict[str, int]:
    counts = {status.value: 0 for status in CheckStatus}
    for check in checks:
        counts[check.status.value] += 1
    return counts
