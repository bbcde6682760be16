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
    "size_text",
    "summarize",
    "throughput",
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


def size_text(size: int | None) -> str:
    """A byte count for people: ``640.0 MiB``."""
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def throughput(bytes_read: int, connection_ms: float) -> tuple[dict[str, Any], str]:
    """The evidence and the words for what a check phase read: its bytes, and MiB/s per
    connection (its bytes over the time its statements ran, summed over connections). On RDS a
    restored volume is read at the speed of lazy loading: this is the figure that sizes the
    drill's instance class and its time budget."""
    evidence: dict[str, Any] = {
        "bytes_read": bytes_read,
        "connection_seconds": connection_ms / 1000,
    }
    if bytes_read <= 0 or connection_ms <= 0:
        return evidence | {"mib_per_s": None}, ""
    rate = bytes_read / (1 << 20) / (connection_ms / 1000)
    evidence["mib_per_s"] = round(rate, 1)
    return evidence, f"read {size_text(bytes_read)} at {rate:.0f} MiB/s per connection"
