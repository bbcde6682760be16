"""Admission control as pure functions: which queued drill may take a drill slot now, whether the
account keeps enough RDS quota for production, and when a held slot may be reclaimed.

A drill is created QUEUED. It is admitted (QUEUED -> REQUESTED) by writing its run record and a
lease on one free slot in one transaction, so there are never more holders than slots, however
many triggers race. Waiting drills are served fairly: the database that has gone longest without
a passing drill first, then the one that waited longest. The caller reads the world (leases,
queued runs, quotas); these functions only decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from restoredrill.domain.runstate import transition
from restoredrill.ports.records import (
    SLOT_HOLDING_STATES,
    AccountQuota,
    Lease,
    RunRecord,
    RunState,
)

# A lease outlives the drill's deadline by this much: enough for the teardown and the report of
# a drill torn down at its deadline. Only a holder that died keeps a slot that long; the sweeper
# reclaims the slot of a finished or missing holder at once.
LEASE_MARGIN = timedelta(hours=1)
NEVER = datetime.min.replace(tzinfo=UTC)
INSTANCES_QUOTA = "DBInstances"
STORAGE_QUOTA = "AllocatedStorage"
CLUSTERS_QUOTA = "DBClusters"
SLOT_WAIT = "waiting for a drill slot"


@dataclass(frozen=True)
class AdmissionRules:
    max_concurrent: int
    reserve_instances: int
    reserve_storage_gib: int
    drill_deadline: timedelta


@dataclass(frozen=True)
class Candidacy:
    """A slot this run may take now, or None and why it waits (`why` is recorded on the run when
    it changes, so it stays coarse; `detail` is only logged)."""

    slot: int | None
    why: str
    detail: str = ""


def fairness_key(run: RunRecord) -> tuple[datetime, datetime, str]:
    """Longest without a passing drill first (never passed: first of all), then longest queued."""
    return (run.last_passed_at or NEVER, run.queued_at or run.created_at, run.run_id)


def queue_order(runs: Iterable[RunRecord], now: datetime) -> list[RunRecord]:
    """The queued runs that may be admitted now (not backing off), in the order they are served."""
    ready = {
        run.run_id: run
        for run in runs
        if run.state is RunState.QUEUED and (run.not_before is None or run.not_before <= now)
    }
    return sorted(ready.values(), key=fairness_key)


def live_leases(leases: Iterable[Lease], now: datetime) -> list[Lease]:
    return [lease for lease in leases if lease.expires_at > now]


def free_slots(leases: Iterable[Lease], max_concurrent: int, now: datetime) -> list[int]:
    live = live_leases(leases, now)
    taken = {lease.slot for lease in live}
    free = [slot for slot in range(max_concurrent) if slot not in taken]
    return free[: max(0, max_concurrent - len(live))]


def candidacy(
    run: RunRecord,
    queued: Iterable[RunRecord],
    leases: list[Lease],
    rules: AdmissionRules,
    now: datetime,
) -> Candidacy:
    """Whether `run` may take a slot now: it already holds one (a crash between its lease and
    its next write), or it is among the first `free` of the queue."""
    held = [lease for lease in live_leases(leases, now) if lease.run_id == run.run_id]
    if held:
        return Candidacy(held[0].slot, "already holds a drill slot")
    if run.not_before is not None and now < run.not_before:
        # The reason it backs off (the refusal) stays the recorded one.
        return Candidacy(
            None, run.wait_reason or "backing off", f"until {run.not_before.isoformat()}"
        )
    free = free_slots(leases, rules.max_concurrent, now)
    if not free:
        return Candidacy(None, SLOT_WAIT, f"all {rules.max_concurrent} taken")
    order = [queued_run.run_id for queued_run in queue_order([*queued, run], now)]
    rank = order.index(run.run_id)
    if rank >= len(free):
        return Candidacy(None, SLOT_WAIT, f"{rank} drills ahead in the queue")
    return Candidacy(free[rank], "a drill slot is free")


def headroom_shortfall(
    quotas: Iterable[AccountQuota],
    rules: AdmissionRules,
    storage_gib: int | None,
    *,
    cluster: bool = False,
) -> str | None:
    """Why one more restored instance (and, for an Aurora drill, one more DB cluster) would eat
    into the reserve kept for production; None when there is room. A quota RDS does not report
    is not enforced here (RDS still enforces it, and its refusal requeues the drill)."""
    by_name = {quota.name: quota for quota in quotas}
    clusters = by_name.get(CLUSTERS_QUOTA)
    if cluster and clusters is not None and clusters.used + 1 > clusters.max:
        return (
            f"waiting for quota headroom: {CLUSTERS_QUOTA} {clusters.used} of {clusters.max} used"
        )
    instances = by_name.get(INSTANCES_QUOTA)
    if instances is not None and instances.used + 1 + rules.reserve_instances > instances.max:
        return (
            f"waiting for quota headroom: {INSTANCES_QUOTA} {instances.used} of "
            f"{instances.max} used, {rules.reserve_instances} kept for production"
        )
    storage = by_name.get(STORAGE_QUOTA)
    needed = (storage_gib or 0) + rules.reserve_storage_gib
    if storage is not None and storage.used + needed > storage.max:
        return (
            f"waiting for quota headroom: {STORAGE_QUOTA} {storage.used} of {storage.max} GiB "
            f"used, the drill needs {storage_gib or 0} GiB and "
            f"{rules.reserve_storage_gib} GiB are kept for production"
        )
    return None


def admitted(
    run: RunRecord, slot: int, now: datetime, rules: AdmissionRules
) -> tuple[RunRecord, Lease]:
    """The run admitted on `slot` and its lease; its own deadline starts now."""
    deadline = now + rules.drill_deadline
    lease = Lease(slot=slot, run_id=run.run_id, expires_at=deadline + LEASE_MARGIN)
    record = transition(
        run,
        RunState.REQUESTED,
        now,
        deadline=deadline,
        admitted_at=now,
        lease=lease,
        not_before=None,
        wait_reason=None,
    )
    return record, lease


def reclaim_reason(lease: Lease, holder: RunRecord | None, now: datetime) -> str | None:
    """Why a lease may be taken back from its holder; None while the holder still needs it."""
    if lease.expires_at <= now:
        return "the lease expired"
    if holder is None:
        return "its run does not exist"
    if holder.state not in SLOT_HOLDING_STATES:
        return f"its run is {holder.state.value}"
    if holder.lease != lease:
        return "its run holds another lease"
    return None
