"""What a check suite returns: one result per check, a verdict, and the next baseline.

The models themselves are the messages the checker sends back (:mod:`restoredrill.ports.messages`);
this module adds what the suite needs to combine them. Nothing here carries a secret: the only
password is :attr:`ConnectionTarget.password`, a ``SecretStr``, and a :class:`CheckSuiteResult`
does not contain the target at all.
"""

from __future__ import annotations

from typing import Any

from restoredrill.ports.messages import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
)

__all__ = [
    "EVIDENCE_LIST_CAP",
    "STATUS_SEVERITY",
    "CheckResult",
    "CheckStatus",
    "CheckSuiteResult",
    "ConnectionTarget",
    "SuiteVerdict",
    "capped",
    "summarize",
    "verdict_of",
    "worst_status",
]

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


# Evidence lists longer than this are cut: the count beside them says how many there were.
EVIDENCE_LIST_CAP = 50


def capped(items: list[Any], cap: int = EVIDENCE_LIST_CAP) -> list[Any]:
    return items[:cap]
