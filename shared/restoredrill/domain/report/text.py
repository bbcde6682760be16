"""How a report's names and durations read for people, wherever they are shown (the HTML page,
Slack, the CLI)."""

from __future__ import annotations

from typing import Any

from restoredrill.ports.messages import CheckResult
from restoredrill.ports.records import RecoveryPoint

# The smallest amount shown in dollars: four decimals, a hundredth of a cent.
USD_SHOWN_MIN = 0.0001


def display_name(check: dict[str, Any] | CheckResult) -> str:
    """A check named for people: ``row_counts[app]``, ``freshness[app/orders.created_at]``."""
    if isinstance(check, CheckResult):
        return check.display_name
    where = "/".join(str(part) for part in (check.get("database"), check.get("object")) if part)
    return f"{check.get('name')}[{where}]" if where else str(check.get("name"))


def duration_text(seconds: float | None) -> str:
    """A duration for people: ``14.7s``, ``16m03s``, ``3h05m``, ``2d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes}m{rest:02d}s"
    if whole < 172_800:
        hours, rest = divmod(whole, 3600)
        return f"{hours}h{rest // 60:02d}m"
    days, rest = divmod(whole, 86_400)
    return f"{days}d{rest // 3600:02d}h"


def usd_text(amount: float | None) -> str:
    """Dollars for people: ``$0.0074`` below a dollar (a drill costs fractions of a cent),
    ``$12.40`` above, ``< $0.0001`` for less, ``$0`` for nothing; ``no price`` when unknown."""
    if amount is None:
        return "no price"
    if amount == 0:
        return "$0"
    if amount < USD_SHOWN_MIN:
        return f"< ${USD_SHOWN_MIN}"
    return f"${amount:.4f}" if amount < 1 else f"${amount:,.2f}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def recovery_point_text(recovery_point: RecoveryPoint) -> str:
    """An AWS Backup recovery point in one line: what made it, in which vault, from which plan
    (the report's page and Slack say it so)."""
    what = "AWS Backup copy" if recovery_point.kind == "copy" else "AWS Backup recovery point"
    parts = [
        f"copy job {recovery_point.copy_job_id}" if recovery_point.copy_job_id else "",
        f"backup job {recovery_point.backup_job_id}" if recovery_point.backup_job_id else "",
        f"plan {recovery_point.backup_plan_id}" if recovery_point.backup_plan_id else "",
        f"copied from {recovery_point.source_region}" if recovery_point.source_region else "",
    ]
    vault = f" in vault {recovery_point.vault_name}" if recovery_point.vault_name else ""
    jobs = ", ".join(part for part in parts if part)
    return f"{what}{vault}" + (f" ({jobs})" if jobs else "")
