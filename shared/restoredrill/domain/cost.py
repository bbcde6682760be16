"""What one drill is estimated to cost: the restored instance's seconds by class, its volume's
GiB-seconds by storage type, and the Lambda invocations of the drill, priced from the list prices
shipped in the layer (``restoredrill/prices/``) with the policy's ``prices`` over them.

An estimate, and said so wherever it is shown: list prices of one region, no free tier, no
discounts; the Lambda part is counted from the drill's timeline, not measured (the drill never
sees its invocations' billed durations). docs/cost.md does the same arithmetic by hand.

A pure function of the run (and the shipped table), so a repeated publish writes the same report.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from restoredrill.domain.report.model import (
    InstanceUsage,
    LambdaUsage,
    PriceBasis,
    ReportCost,
    StorageUsage,
)
from restoredrill.ports.policy import PriceOverrides
from restoredrill.ports.records import RunRecord, RunState

PRICE_TABLE_PATH = Path(__file__).resolve().parents[1] / "prices" / "aws-list-prices-us-east-1.json"
HOURS_PER_MONTH = 730
# RDS bills an instance per second from when it is available, with a 10-minute minimum.
RDS_MINIMUM_BILLED_SECONDS = 600
# The snapshot's storage type when RDS did not describe one; a restore keeps the snapshot's.
DEFAULT_STORAGE_TYPE = "gp2"

# Memory of each function, as template.yaml gives it (tests/unit/test_cost.py compares them).
SHORT_FUNCTION_MEMORY_MB = 256
CHECK_RUNNER_MEMORY_MB = 128
CHECKER_MEMORY_MB = 512
# Assumptions of the Lambda estimate (docs/cost.md): a short invocation bills about half a
# second; a drill instance emits about eight RDS events on AWS (created, restored, credentials
# reset, deleted, and the backup and status events around them).
SHORT_INVOCATION_SECONDS = 0.5
RDS_EVENTS_PER_DRILL = 8
# StartDrill, AdvanceOnCheckerResult and Notify, once each.
ONCE_PER_DRILL_INVOCATIONS = 3
DEFAULT_POLL_DELAY_SECONDS = 60

LAMBDA_BASIS = (
    "estimated, not measured: one StartDrill, {events} RDS events, one poll per {poll}s of the "
    "drill, the checker result and Notify at {short_mb} MB and {short_s}s each; the check runner "
    "({runner_mb} MB) and the checker ({checker_mb} MB) for the whole check phase"
)


class PriceTable(BaseModel):
    """On-demand list prices (USD) the estimate uses, with where they come from."""

    model_config = ConfigDict(frozen=True)

    name: str
    region: str
    currency: str = "USD"
    as_of: str
    note: str
    rds_instance_hourly: dict[str, float]
    rds_storage_gib_month: dict[str, float]
    lambda_gb_second: float
    lambda_requests_per_million: float
    sources: dict[str, str] = Field(default_factory=dict)
    overridden_by_policy: bool = False
    policy_source: str | None = None

    def with_overrides(self, overrides: PriceOverrides) -> PriceTable:
        """This table with the policy's prices over it."""
        if overrides.is_empty:
            return self
        return self.model_copy(
            update={
                "rds_instance_hourly": self.rds_instance_hourly | overrides.instance_hourly,
                "rds_storage_gib_month": self.rds_storage_gib_month | overrides.storage_gib_month,
                "lambda_gb_second": _override(self.lambda_gb_second, overrides.lambda_gb_second),
                "lambda_requests_per_million": _override(
                    self.lambda_requests_per_million, overrides.lambda_requests_per_million
                ),
                "overridden_by_policy": True,
                "policy_source": overrides.source,
            }
        )


def _override(shipped: float, override: float | None) -> float:
    return shipped if override is None else override


@cache
def shipped_price_table() -> PriceTable:
    """The list prices shipped in the layer."""
    return PriceTable.model_validate(json.loads(PRICE_TABLE_PATH.read_text(encoding="utf-8")))


def price_table_for(policy: dict[str, Any]) -> PriceTable:
    """The shipped prices with the run's policy ``prices`` over them."""
    overrides = PriceOverrides.model_validate(policy.get("prices") or {})
    return shipped_price_table().with_overrides(overrides)


# ------------------------------------------------------------------------------ the estimate


def estimate_drill_cost(
    run: RunRecord,
    prices: PriceTable,
    *,
    poll_delay_seconds: int = DEFAULT_POLL_DELAY_SECONDS,
) -> ReportCost:
    """The estimated cost of the finished ``run`` at ``prices``."""
    instance = _instance_usage(run, prices)
    storage = _storage_usage(run, prices)
    functions = _lambda_usage(run, prices, poll_delay_seconds)
    missing = [
        name
        for name, usd in (
            (f"rds_instance_hourly.{instance.instance_class}", instance.usd),
            (f"rds_storage_gib_month.{storage.storage_type}", storage.usd),
        )
        if usd is None
    ]
    total = sum(usd for usd in (instance.usd, storage.usd, functions.usd) if usd is not None)
    return ReportCost(
        estimate=True,
        currency="USD",
        total_usd=_usd(total),
        complete=not missing,
        missing_prices=missing,
        instance=instance,
        storage=storage,
        lambda_invocations=functions,
        prices=PriceBasis(
            table=prices.name,
            region=prices.region,
            as_of=prices.as_of,
            note=prices.note,
            overridden_by_policy=prices.overridden_by_policy,
            policy_source=prices.policy_source,
        ),
    )


def _seconds_between(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return max((end - start).total_seconds(), 0.0)


def _gone_at(run: RunRecord) -> datetime | None:
    """When the restored instance was gone: the end of the teardown (or the run's finish)."""
    teardown = run.phases.get(RunState.TEARING_DOWN)
    if teardown is not None and teardown.ended_at is not None:
        return teardown.ended_at
    return run.finished_at


def _instance_usage(run: RunRecord, prices: PriceTable) -> InstanceUsage:
    """Billed from available (the secure phase's start) until deleted; a restore that never
    became available bills no instance time here."""
    available = run.phases.get(RunState.SECURING)
    seconds = _seconds_between(available.started_at if available else None, _gone_at(run))
    billed = max(seconds, RDS_MINIMUM_BILLED_SECONDS) if seconds > 0 else 0.0
    hourly = prices.rds_instance_hourly.get(run.instance_class)
    return InstanceUsage(
        instance_class=run.instance_class,
        seconds=round(seconds, 3),
        billed_seconds=round(billed, 3),
        price_per_hour=hourly,
        usd=_usd(billed / 3600 * hourly) if hourly is not None else None,
    )


def _storage_usage(run: RunRecord, prices: PriceTable) -> StorageUsage:
    """The restored volume, the snapshot's allocated size, from the restore request until the
    instance is gone (conservative: RDS may start billing it later)."""
    restoring = run.phases.get(RunState.RESTORING)
    seconds = _seconds_between(restoring.started_at if restoring else None, _gone_at(run))
    gib = run.snapshot.allocated_storage_gib or 0
    storage_type = run.snapshot.storage_type or DEFAULT_STORAGE_TYPE
    monthly = prices.rds_storage_gib_month.get(storage_type)
    gib_seconds = gib * seconds
    return StorageUsage(
        storage_type=storage_type,
        allocated_gib=gib,
        seconds=round(seconds, 3),
        gib_seconds=round(gib_seconds, 3),
        price_per_gib_month=monthly,
        usd=(
            _usd(gib_seconds / (HOURS_PER_MONTH * 3600) * monthly) if monthly is not None else None
        ),
    )


def _lambda_usage(run: RunRecord, prices: PriceTable, poll_delay_seconds: int) -> LambdaUsage:
    total = _seconds_between(run.created_at, run.finished_at)
    checking = run.phases.get(RunState.CHECKING)
    check_seconds = _seconds_between(
        checking.started_at if checking else None, checking.ended_at if checking else None
    )
    polls = math.ceil(total / poll_delay_seconds) if total > 0 else 0
    short = ONCE_PER_DRILL_INVOCATIONS + RDS_EVENTS_PER_DRILL + polls
    checked = 2 if checking is not None else 0
    gb_seconds = (
        short * SHORT_FUNCTION_MEMORY_MB / 1024 * SHORT_INVOCATION_SECONDS
        + check_seconds * (CHECK_RUNNER_MEMORY_MB + CHECKER_MEMORY_MB) / 1024
    )
    requests = short + checked
    usd = (
        gb_seconds * prices.lambda_gb_second
        + requests * prices.lambda_requests_per_million / 1_000_000
    )
    return LambdaUsage(
        requests=requests,
        gb_seconds=round(gb_seconds, 3),
        price_per_gb_second=prices.lambda_gb_second,
        price_per_million_requests=prices.lambda_requests_per_million,
        usd=_usd(usd),
        basis=LAMBDA_BASIS.format(
            events=RDS_EVENTS_PER_DRILL,
            poll=poll_delay_seconds,
            short_mb=SHORT_FUNCTION_MEMORY_MB,
            short_s=SHORT_INVOCATION_SECONDS,
            runner_mb=CHECK_RUNNER_MEMORY_MB,
            checker_mb=CHECKER_MEMORY_MB,
        ),
    )


def _usd(amount: float) -> float:
    """Dollars to a millionth of a cent: enough for a drill that costs fractions of a cent."""
    return round(amount, 8)
