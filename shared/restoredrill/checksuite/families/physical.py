"""Level 3 (physical) for one database: amcheck's ``verify_heapam`` on every heap (tables,
materialized views, their TOAST tables) and ``bt_index_check`` on every btree index, as
``pg_amcheck`` does, spread over the pool's connections."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from restoredrill.checksuite.connection import CheckConnection, classify_error
from restoredrill.checksuite.database_catalog import (
    AMCHECK_INSTALL_SCHEMA,
    AmcheckTarget,
    AmcheckTargets,
    DatabaseCatalog,
    read_amcheck_targets,
)
from restoredrill.checksuite.families.data import batched_tasks
from restoredrill.checksuite.results import (
    CheckResult,
    CheckStatus,
    capped,
    throughput,
    worst_status,
)
from restoredrill.checksuite.sql import (
    bt_index_check_sql,
    quote_ident,
    verify_heapam_batch_sql,
    verify_heapam_sql,
)
from restoredrill.checksuite.tasks import Budget, Outcome, Task, failed_statement, split
from restoredrill.ports.policy import DrillPolicy

__all__ = ["AmcheckSetup", "AmcheckStage", "amcheck_results", "amcheck_tasks", "ensure_amcheck"]

INSTALL_SCHEMA = AMCHECK_INSTALL_SCHEMA
# Relative cost per byte, measured on PostgreSQL 15 (warm cache): verify_heapam reads a heap at
# about the speed of count(*); bt_index_check takes about five times longer per index byte.
HEAP_COST = 1.0
BTREE_COST = 5.0
# What the system catalogs (not in the catalog's relation list) add to the estimate of level 3.
SYSTEM_CATALOGS_BYTES = 8 << 20


@dataclass
class AmcheckSetup:
    """Where amcheck's functions are, or why level 3 cannot run in this database."""

    schema: str | None
    installed_by_us: bool = False
    status: CheckStatus = CheckStatus.PASS  # SKIPPED / ERROR when schema is None
    message: str = ""
    evidence: dict[str, Any] | None = None


def ensure_amcheck(
    connection: CheckConnection,
    catalog: DatabaseCatalog,
    *,
    install: bool,
    secrets: Sequence[str],
) -> AmcheckSetup:
    if catalog.amcheck_schema is not None:
        return AmcheckSetup(schema=catalog.amcheck_schema)
    if not install:
        return AmcheckSetup(
            schema=None,
            status=CheckStatus.SKIPPED,
            message=(
                "the amcheck extension is not installed in this database; level 3 needs it: "
                "install it yourself (CREATE EXTENSION amcheck) or let restoredrill do it with "
                "--install-amcheck"
            ),
        )
    if not catalog.amcheck_available:
        # An engine version without amcheck (not every managed version ships it): level 3
        # cannot run there, which is said, never passed over as verified.
        return AmcheckSetup(
            schema=None,
            status=CheckStatus.SKIPPED,
            message=(
                "the amcheck extension is not available on this server's engine version (or "
                "its contrib modules are missing): level 3 was not verified"
            ),
        )
    # The throwaway instance's own database: install amcheck where we may create objects.
    schema = (
        "public" if catalog.public_creatable and "public" in catalog.schemas else INSTALL_SCHEMA
    )
    statements = ["BEGIN READ WRITE"]
    if schema == INSTALL_SCHEMA:
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    statements += [f"CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {quote_ident(schema)}", "COMMIT"]
    try:
        for statement in statements:
            connection.run(statement)
        found = connection.scalar(
            "SELECT n.nspname FROM pg_extension AS e"
            " JOIN pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'"
        )
    except Exception as exc:
        error = classify_error(exc, *secrets)
        with contextlib.suppress(Exception):  # the connection may be gone; the error says why
            connection.run("ROLLBACK")
        return AmcheckSetup(
            schema=None,
            status=CheckStatus.ERROR,
            message=f"could not install the amcheck extension: {error}",
            evidence=error.as_evidence(),
        )
    return AmcheckSetup(schema=str(found), installed_by_us=True)


@dataclass
class AmcheckStage:
    """Level 3 of one database as one task of the pool: it installs amcheck when needed and may,
    lists the heaps and indexes to verify and hands back their tasks. Run in the pool, it lets
    the other connections start the row counts at once instead of waiting for the listing."""

    catalog: DatabaseCatalog
    policy: DrillPolicy
    install: bool
    secrets: Sequence[str]
    setup: AmcheckSetup | None = None
    targets: AmcheckTargets | None = None

    def task(self) -> Task:
        """The preparation, its cost the work it will hand back (so it is taken early)."""
        estimate = SYSTEM_CATALOGS_BYTES * HEAP_COST
        for relation in self.catalog.relations:
            if relation.countable:
                estimate += relation.heap_bytes * HEAP_COST
                estimate += max(0, relation.total_bytes - relation.heap_bytes) * BTREE_COST
        return Task("amcheck_setup", [self.catalog.database], ["amcheck"], estimate, self._prepare)

    def _prepare(
        self, task: Task, connection: CheckConnection, budget: Budget
    ) -> list[Outcome] | list[Task]:
        self.setup = ensure_amcheck(
            connection, self.catalog, install=self.install, secrets=self.secrets
        )
        if self.setup.schema is None:
            return []
        try:
            self.targets = read_amcheck_targets(
                connection, self.policy.amcheck.include_system_catalogs
            )
        except Exception as exc:
            error = classify_error(exc, *self.secrets)
            self.setup = AmcheckSetup(
                schema=None,
                status=CheckStatus.ERROR,
                message=f"could not list the relations to verify: {error}",
                evidence=error.as_evidence(),
            )
            return []
        return amcheck_tasks(self.targets, self.setup, self.policy, self.secrets)

    def results(self, outcomes: list[Outcome]) -> list[CheckResult]:
        """The level 3 results of the database, from the pool's outcomes."""
        setup = self.setup
        if setup is None:  # the preparation never ran: the budget was spent, or no connection
            (unrun,) = [o for o in outcomes if o.kind == "amcheck_setup"]
            setup = AmcheckSetup(
                schema=None, status=unrun.status, message=unrun.message, evidence=unrun.data
            )
        verified = [o for o in outcomes if o.kind in ("heap", "btree")]
        return amcheck_results(self.catalog.database, verified, setup, self.targets, self.policy)


def amcheck_tasks(
    targets: AmcheckTargets, setup: AmcheckSetup, policy: DrillPolicy, secrets: Sequence[str]
) -> list[Task]:
    assert setup.schema is not None
    params: dict[str, Any] = {
        "secrets": list(secrets),
        "schema": setup.schema,
        "check_toast": policy.amcheck.check_toast,
        "heapallindexed": policy.amcheck.heapallindexed,
    }
    tasks: list[Task] = []
    if "verify_heapam" in targets.functions:
        tasks += batched_tasks("heap", targets.heaps, _size, HEAP_COST, _run_heap, params)
    factor = BTREE_COST * (4.0 if policy.amcheck.heapallindexed else 1.0)
    tasks += batched_tasks("btree", targets.indexes, _size, factor, _run_btree, params)
    return tasks


def _size(target: AmcheckTarget) -> int:
    return target.size_bytes


def _run_heap(
    task: Task, connection: CheckConnection, budget: Budget
) -> list[Outcome] | list[Task]:
    heaps: Sequence[AmcheckTarget] = task.items
    schema, toast = task.params["schema"], task.params["check_toast"]
    started = time.perf_counter()
    try:
        if len(heaps) > 1:
            reports = int(
                connection.scalar(verify_heapam_batch_sql(schema, [h.oid for h in heaps], toast))
            )
            if reports:
                return split(task)
            elapsed = (time.perf_counter() - started) * 1000
            return [
                Outcome("heap", h.key, CheckStatus.PASS, duration_ms=elapsed / len(heaps), item=h)
                for h in heaps
            ]
        count, first = connection.run(verify_heapam_sql(schema, heaps[0].oid, toast))[0]
    except Exception as exc:
        return failed_statement(task, connection, budget, exc, task.params["secrets"])
    heap = heaps[0]
    elapsed = (time.perf_counter() - started) * 1000
    count = int(count)
    if count == 0:
        return [Outcome("heap", heap.key, CheckStatus.PASS, duration_ms=elapsed, item=heap)]
    reports = json.loads(first) if isinstance(first, str) else first
    shown = "; ".join(
        f"block {r['block']}, offset {r['offset']}: {r['message']}" for r in reports[:3]
    )
    return [
        Outcome(
            "heap",
            heap.key,
            CheckStatus.FAIL,
            f"{count} corruption report(s): {shown}",
            {"reports": count, "first_reports": reports},
            duration_ms=elapsed,
            item=heap,
        )
    ]


def _run_btree(
    task: Task, connection: CheckConnection, budget: Budget
) -> list[Outcome] | list[Task]:
    indexes: Sequence[AmcheckTarget] = task.items
    started = time.perf_counter()
    try:
        connection.run(
            bt_index_check_sql(
                task.params["schema"], [i.oid for i in indexes], task.params["heapallindexed"]
            )
        )
    except Exception as exc:
        return failed_statement(task, connection, budget, exc, task.params["secrets"])
    elapsed = (time.perf_counter() - started) * 1000
    return [
        Outcome("btree", i.key, CheckStatus.PASS, duration_ms=elapsed / len(indexes), item=i)
        for i in indexes
    ]


def _aggregate(
    name: str, noun: str, database: str, outcomes: list[Outcome], setup: AmcheckSetup
) -> CheckResult:
    statuses = [o.status for o in outcomes]
    status = worst_status(statuses)
    order = (CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.WARN)
    bad = sorted((o for o in outcomes if o.status in order), key=lambda o: order.index(o.status))
    skipped = [o.key for o in outcomes if o.status is CheckStatus.SKIPPED]
    passed = sum(1 for s in statuses if s is CheckStatus.PASS)
    problems = []
    for outcome in bad:
        item: AmcheckTarget = outcome.item
        entry = {
            "relation": outcome.key,
            "status": outcome.status.value,
            "message": outcome.message,
        }
        if noun == "index":
            entry["table"] = item.detail
        problems.append(entry | outcome.data)
    plural = {"index": "indexes", "heap": "heaps"}[noun]
    message = f"{passed} of {len(outcomes)} {plural} verified"
    if bad:
        message += "; " + "; ".join(f"{o.key}: {o.message}" for o in bad[:3])
    if skipped:
        message += f"; {len(skipped)} not checked (time budget)"
    verified = [o for o in outcomes if o.status is CheckStatus.PASS]
    rate, rate_text = throughput(
        sum(o.item.size_bytes for o in verified), sum(o.duration_ms for o in verified)
    )
    message += f"; {rate_text}" if rate_text else ""
    evidence: dict[str, Any] = {
        "checked": len(outcomes) - len(skipped),
        "passed": passed,
        "problems": capped(problems),
        "skipped": capped(skipped),
        "skipped_count": len(skipped),
        "amcheck_schema": setup.schema,
        "amcheck_installed_by_restoredrill": setup.installed_by_us,
    } | rate
    return CheckResult(
        name=name,
        level=3,
        status=status,
        database=database,
        message=message,
        evidence=evidence,
        duration_ms=sum(o.duration_ms for o in outcomes),
    )


def amcheck_results(
    database: str,
    outcomes: list[Outcome],
    setup: AmcheckSetup,
    targets: AmcheckTargets | None,
    policy: DrillPolicy,
) -> list[CheckResult]:
    if setup.schema is None or targets is None:
        return [
            CheckResult(
                name=name,
                level=3,
                status=setup.status,
                database=database,
                message=setup.message,
                evidence=setup.evidence or {},
            )
            for name in ("amcheck_heap", "amcheck_btree")
        ]
    results: list[CheckResult] = []
    if "verify_heapam" in targets.functions:
        heap = _aggregate(
            "amcheck_heap", "heap", database, [o for o in outcomes if o.kind == "heap"], setup
        )
        heap.evidence["check_toast"] = policy.amcheck.check_toast
        results.append(heap)
    else:
        results.append(
            CheckResult(
                name="amcheck_heap",
                level=3,
                status=CheckStatus.SKIPPED,
                database=database,
                message="verify_heapam needs PostgreSQL 14 or later (amcheck 1.3)",
            )
        )
    btree = _aggregate(
        "amcheck_btree", "index", database, [o for o in outcomes if o.kind == "btree"], setup
    )
    btree.evidence["heapallindexed"] = policy.amcheck.heapallindexed
    results.append(btree)
    return results
