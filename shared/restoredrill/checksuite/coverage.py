"""Coverage of a check plan over consecutive drills, for databases larger than a drill's budget.

With policy ``coverage: rotate`` a drill that cannot verify the whole database takes first the
block ranges verified longest ago (never verified: first of all), so consecutive drills cover
every range of every relation. A range is known across drills by a stable key (its kind, the
relation's qualified name and its first block: ranges are aligned to multiples of the task size,
so they keep their keys while a table grows). :class:`VerificationHistory` maps each key to when
it was last verified; everything here is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from restoredrill.checksuite.plan import PlannedTask, PlanProgress
from restoredrill.checksuite.results import CheckStatus

__all__ = [
    "Coverage",
    "VerificationHistory",
    "coverage_of",
    "range_key",
    "rotation_order",
    "within_budget",
]

# Outcomes that verified the range: it was read to the end (a failure read it and found damage).
_VERIFIED = frozenset({CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.WARN})


def range_key(task: PlannedTask) -> str:
    """The key of a task's range, the same in every drill of the database."""
    return f"{task.kind}:{task.relation}:{task.first_block if task.first_block is not None else ''}"


class VerificationHistory(BaseModel):
    """When each range of one database was last verified, over its recent drills."""

    model_config = ConfigDict(extra="forbid")

    verified_at: dict[str, datetime] = Field(default_factory=dict)

    def after(
        self, tasks: Sequence[PlannedTask], progress: PlanProgress, when: datetime
    ) -> VerificationHistory:
        """The history once a drill verified what ``progress`` says it did, at ``when``."""
        verified = dict(self.verified_at)
        for task in tasks:
            outcome = progress.done.get(task.id)
            if outcome is not None and outcome.status in _VERIFIED:
                verified[range_key(task)] = when
        return VerificationHistory(verified_at=verified)


def rotation_order(tasks: Sequence[PlannedTask], history: VerificationHistory) -> list[PlannedTask]:
    """``tasks`` in the order a rotating drill takes them: never verified first (largest first,
    so the drill's parallel connections end together), then the oldest verification first."""
    never = sorted(
        (t for t in tasks if range_key(t) not in history.verified_at), key=lambda t: -t.cost
    )
    seen = sorted(
        (t for t in tasks if range_key(t) in history.verified_at),
        key=lambda t: history.verified_at[range_key(t)],
    )
    return never + seen


def within_budget(ordered: Sequence[PlannedTask], budget_bytes: int) -> list[PlannedTask]:
    """The first tasks of ``ordered`` whose bytes fit ``budget_bytes`` (at least one: a drill
    always verifies something). A task that does not fit is passed over for smaller ones behind
    it, so the budget is used."""
    chosen: list[PlannedTask] = []
    spent = 0
    for task in ordered:
        if not chosen or spent + task.bytes <= budget_bytes:
            chosen.append(task)
            spent += task.bytes
    return chosen


class Coverage(BaseModel):
    """What a report says of coverage: this drill's share of the database's bytes, the share
    verified within the window over recent drills, and the oldest verification of any range."""

    bytes_planned: int
    bytes_verified: int
    drill_pct: float
    cumulative_pct: float
    window_days: float
    oldest_verification: datetime | None = Field(
        description="The oldest last verification of any range; null when one never was."
    )
    never_verified: int = Field(description="Ranges no drill has verified yet.")


def coverage_of(
    tasks: Sequence[PlannedTask],
    progress: PlanProgress,
    history: VerificationHistory,
    *,
    now: datetime,
    window: timedelta,
) -> Coverage:
    """Coverage after this drill: ``history`` must already include it (see
    :meth:`VerificationHistory.after`)."""
    planned = sum(t.bytes for t in tasks) or 0
    verified = sum(
        t.bytes
        for t in tasks
        if (o := progress.done.get(t.id)) is not None and o.status in _VERIFIED
    )
    recent = sum(
        t.bytes
        for t in tasks
        if (at := history.verified_at.get(range_key(t))) is not None and now - at <= window
    )
    times = [history.verified_at.get(range_key(t)) for t in tasks]
    never = sum(1 for at in times if at is None)
    return Coverage(
        bytes_planned=planned,
        bytes_verified=verified,
        drill_pct=_pct(verified, planned),
        cumulative_pct=_pct(recent, planned),
        window_days=window.total_seconds() / 86400,
        oldest_verification=None if never or not times else min(t for t in times if t),
        never_verified=never,
    )


def _pct(part: int, whole: int) -> float:
    return 100.0 if whole == 0 else round(100.0 * part / whole, 1)
