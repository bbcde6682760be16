"""Level 2 (data) for one database: exact row counts against the baseline, content fingerprints,
freshness of chosen timestamp columns (the measured RPO) and the user's SQL assertions. Every
number is computed on the server; Python receives one row per statement."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from restoredrill.checksuite.connection import (
    UNDEFINED_FUNCTION,
    CheckConnection,
    classify_error,
)
from restoredrill.checksuite.database_catalog import DatabaseCatalog, Relation
from restoredrill.checksuite.results import (
    CheckResult,
    CheckStatus,
    capped,
    throughput,
    worst_status,
)
from restoredrill.checksuite.sql import (
    HASH_FINGERPRINT,
    TEXT_FINGERPRINT,
    count_batch_sql,
    count_sql,
    fingerprint_sql,
    freshness_sql,
)
from restoredrill.checksuite.tasks import Budget, Outcome, Runner, Task, failed_statement
from restoredrill.ports.baseline import ContentFingerprint, DatabaseBaseline
from restoredrill.ports.policy import Assertion, DrillPolicy, FreshnessRule, RowCountPolicy

__all__ = [
    "assertion_result",
    "assertion_task",
    "batched",
    "compare_count",
    "count_tasks",
    "fingerprint_check",
    "freshness_result",
    "freshness_task",
    "row_count_check",
]

SMALL_RELATION_BYTES = 1 << 20  # relations below this are batched
BATCH_MAX_ITEMS = 64
BATCH_MAX_BYTES = 16 << 20
TIMESTAMP_TYPES = ("timestamp", "date")


def batched(items: Sequence[Any], size_of: Callable[[Any], int]) -> list[list[Any]]:
    """Big items alone, small ones grouped (at most BATCH_MAX_ITEMS / BATCH_MAX_BYTES a group)."""
    groups: list[list[Any]] = []
    current: list[Any] = []
    current_bytes = 0
    for item in items:
        size = size_of(item)
        if size >= SMALL_RELATION_BYTES:
            groups.append([item])
            continue
        if current and (len(current) >= BATCH_MAX_ITEMS or current_bytes + size > BATCH_MAX_BYTES):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        groups.append(current)
    return groups


def batched_tasks(
    kind: str,
    items: Sequence[Any],
    size_of: Callable[[Any], int],
    cost_per_byte: float,
    run: Runner,
    params: dict[str, Any],
) -> list[Task]:
    """One task per batch of items (see :func:`batched`), its cost estimated from their size."""
    return [
        Task(
            kind,
            group,
            [item.key for item in group],
            float(sum(size_of(item) for item in group)) * cost_per_byte + 8192,
            run,
            params,
        )
        for group in batched(items, size_of)
    ]


# --------------------------------------------------------------------------------------------
# row counts and content fingerprints
# --------------------------------------------------------------------------------------------


def count_tasks(
    catalog: DatabaseCatalog, policy: DrillPolicy, secrets: Sequence[str]
) -> list[Task]:
    relations = [r for r in catalog.relations if r.countable]
    params = {"secrets": list(secrets)}
    if policy.content_fingerprint.enabled:
        return [
            Task(
                "fingerprint",
                [r],
                [r.key],
                float(r.heap_bytes) * 1.5 + 8192,
                _run_fingerprint,
                params,
            )
            for r in relations
        ]
    return batched_tasks("count", relations, lambda r: r.heap_bytes, 1.0, _run_count, params)


def _run_count(
    task: Task, connection: CheckConnection, budget: Budget
) -> list[Outcome] | list[Task]:
    relations: Sequence[Relation] = task.items
    started = time.perf_counter()
    try:
        if len(relations) == 1:
            rows = connection.run(count_sql(relations[0].schema, relations[0].name))
        else:
            rows = connection.run(count_batch_sql([(r.schema, r.name) for r in relations]))
    except Exception as exc:
        return failed_statement(task, connection, budget, exc, task.params["secrets"])
    elapsed = (time.perf_counter() - started) * 1000
    return [
        Outcome(
            "count",
            relation.key,
            CheckStatus.PASS,
            data={"rows": int(value)},
            duration_ms=elapsed / len(relations),
            item=relation,
        )
        for relation, value in zip(relations, rows[0], strict=True)
    ]


def _run_fingerprint(
    task: Task, connection: CheckConnection, budget: Budget
) -> list[Outcome] | list[Task]:
    relation: Relation = task.items[0]
    started = time.perf_counter()
    method = HASH_FINGERPRINT
    try:
        try:
            rows = connection.run(fingerprint_sql(relation.schema, relation.name, method))
        except Exception as exc:
            # a column type without an extended hash function (json, point, ...): hash the text
            if classify_error(exc).sqlstate != UNDEFINED_FUNCTION:
                raise
            method = TEXT_FINGERPRINT
            rows = connection.run(fingerprint_sql(relation.schema, relation.name, method))
    except Exception as exc:
        return failed_statement(task, connection, budget, exc, task.params["secrets"])
    count, digest = rows[0]
    return [
        Outcome(
            "fingerprint",
            relation.key,
            CheckStatus.PASS,
            data={"rows": int(count), "fingerprint": {"method": method, "hash": str(digest)}},
            duration_ms=(time.perf_counter() - started) * 1000,
            item=relation,
        )
    ]


def compare_count(
    old: int | None,
    new: int,
    policy: RowCountPolicy,
    *,
    schema: str = "",
    table: str = "",
    database: str = "",
    unlogged: bool = False,
) -> tuple[CheckStatus, str]:
    """How a table's exact row count compares with the baseline's, under the policy."""
    rule = policy.rule_for(database, schema, table)
    if rule is not None and rule.ignore:
        return CheckStatus.PASS, f"{new} rows (not compared: ignored by the policy)"
    if unlogged:
        return CheckStatus.PASS, f"{new} rows (unlogged: empty after a restore, not compared)"
    if old is None:
        return CheckStatus.PASS, f"{new} rows (no baseline)"
    if new == old:
        return CheckStatus.PASS, f"{new} rows, as at the last drill"
    max_drop_pct = policy.max_drop_pct
    max_drop_rows = policy.max_drop_rows
    max_growth_pct = policy.max_growth_pct
    if rule is not None:
        max_drop_pct = rule.max_drop_pct if rule.max_drop_pct is not None else max_drop_pct
        max_drop_rows = rule.max_drop_rows if rule.max_drop_rows is not None else max_drop_rows
        max_growth_pct = rule.max_growth_pct if rule.max_growth_pct is not None else max_growth_pct
    if new < old:
        drop = old - new
        pct = drop * 100.0 / old
        text = f"{old} -> {new} rows (-{drop}, -{pct:.1f}%)"
        if drop > max_drop_rows and pct > max_drop_pct:
            return CheckStatus.FAIL, f"{text}: more than the {max_drop_pct:g}% the policy allows"
        return CheckStatus.PASS, f"{text}: within the policy ({max_drop_pct:g}%)"
    growth = new - old
    pct = growth * 100.0 / old if old else math.inf
    shown = f"+{pct:.1f}%" if math.isfinite(pct) else "from 0"
    text = f"{old} -> {new} rows (+{growth}, {shown})"
    if max_growth_pct is not None and pct > max_growth_pct and growth > policy.min_growth_rows:
        return CheckStatus.WARN, f"{text}: unexpected growth (more than {max_growth_pct:g}%)"
    return CheckStatus.PASS, text


def row_count_check(
    catalog: DatabaseCatalog,
    outcomes: list[Outcome],
    previous: DatabaseBaseline | None,
    policy: DrillPolicy,
) -> tuple[CheckResult, dict[str, int]]:
    """One result for every table's count in the database, and the counts for the baseline."""
    counts: dict[str, int] = {}
    problems: list[dict[str, Any]] = []
    statuses: list[CheckStatus] = []
    duration = 0.0
    skipped: list[str] = []
    grown = dropped = 0
    for outcome in outcomes:
        duration += outcome.duration_ms
        relation: Relation = outcome.item
        if outcome.status is not CheckStatus.PASS:
            statuses.append(outcome.status)
            if outcome.status is CheckStatus.SKIPPED:
                skipped.append(outcome.key)
            else:
                problems.append(
                    {
                        "table": outcome.key,
                        "status": outcome.status.value,
                        "message": outcome.message,
                    }
                    | outcome.data
                )
            continue
        rows = int(outcome.data["rows"])
        counts[outcome.key] = rows
        old = previous.row_counts.get(outcome.key) if previous is not None else None
        status, message = compare_count(
            old,
            rows,
            policy.row_counts,
            schema=relation.schema,
            table=relation.name,
            database=catalog.database,
            unlogged=relation.unlogged,
        )
        statuses.append(status)
        if old is not None and rows < old:
            dropped += 1
        if old is not None and rows > old:
            grown += 1
        if status is not CheckStatus.PASS:
            problems.append(
                {
                    "table": outcome.key,
                    "status": status.value,
                    "baseline_rows": old,
                    "rows": rows,
                    "message": message,
                }
            )
    status = worst_status(statuses)
    problems.sort(key=lambda p: ["fail", "error", "warn", "skipped"].index(p["status"]))
    head = f"{len(counts)} table(s) counted, {sum(counts.values())} rows"
    if previous is None:
        head += " (no baseline to compare with)"
    else:
        head += f"; {dropped} shrank, {grown} grew since the last drill"
    details = [f"{p['table']}: {p['message']}" for p in problems[:5]]
    if skipped:
        details.append(f"{len(skipped)} not counted (time budget)")
    passed = [o for o in outcomes if o.status is CheckStatus.PASS]
    rate, rate_text = throughput(
        sum(o.item.heap_bytes for o in passed), sum(o.duration_ms for o in passed)
    )
    details += [rate_text] if rate_text else []
    message = head + ("; " + "; ".join(details) if details else "")
    return (
        CheckResult(
            name="row_counts",
            level=2,
            status=status,
            database=catalog.database,
            message=message,
            evidence={
                "tables_counted": len(counts),
                "total_rows": sum(counts.values()),
                "compared_with_baseline": previous is not None,
                "problems": capped(problems),
                "skipped": capped(skipped),
                "skipped_count": len(skipped),
            }
            | rate,
            duration_ms=duration,
        ),
        counts,
    )


def fingerprint_check(
    catalog: DatabaseCatalog,
    outcomes: list[Outcome],
    previous: DatabaseBaseline | None,
    policy: DrillPolicy,
) -> tuple[CheckResult, dict[str, ContentFingerprint]]:
    fingerprints: dict[str, ContentFingerprint] = {}
    changed: list[str] = []
    mismatched: list[str] = []
    statuses: list[CheckStatus] = []
    for outcome in outcomes:
        if outcome.status is not CheckStatus.PASS:
            statuses.append(outcome.status)
            continue
        relation: Relation = outcome.item
        fp = ContentFingerprint(
            method=outcome.data["fingerprint"]["method"],
            rows=int(outcome.data["rows"]),
            hash=outcome.data["fingerprint"]["hash"],
        )
        fingerprints[outcome.key] = fp
        old = previous.content_fingerprints.get(outcome.key) if previous is not None else None
        if old is None or old.method != fp.method:
            continue
        if (old.rows, old.hash) != (fp.rows, fp.hash):
            changed.append(outcome.key)
            must = any(
                ref.matches(catalog.database, relation.schema, relation.name)
                for ref in policy.content_fingerprint.must_match
            )
            if must:
                mismatched.append(outcome.key)
                statuses.append(CheckStatus.FAIL)
    status = worst_status(statuses)
    message = f"{len(fingerprints)} table(s) fingerprinted on the server"
    if previous is not None:
        message += f"; {len(changed)} changed since the last drill"
    if mismatched:
        message += "; must not change but did: " + ", ".join(capped(mismatched, 10))
    failed = [o for o in outcomes if o.status in (CheckStatus.FAIL, CheckStatus.ERROR)]
    if failed:
        message += "; " + "; ".join(f"{o.key}: {o.message}" for o in failed[:5])
    return (
        CheckResult(
            name="content_fingerprint",
            level=2,
            status=status,
            database=catalog.database,
            message=message,
            evidence={
                "tables": len(fingerprints),
                "changed": capped(changed),
                "must_match_mismatched": capped(mismatched),
                "problems": capped(
                    [
                        {"table": o.key, "status": o.status.value, "message": o.message}
                        for o in failed
                    ]
                ),
            },
            duration_ms=sum(o.duration_ms for o in outcomes),
        ),
        fingerprints,
    )


# --------------------------------------------------------------------------------------------
# freshness
# --------------------------------------------------------------------------------------------


def freshness_task(
    rule: FreshnessRule,
    relation: Relation,
    reference: datetime | None,
    secrets: Sequence[str],
) -> Task:
    key = f"{relation.key}.{json.dumps(rule.column, ensure_ascii=False)}"
    return Task(
        "freshness",
        [rule],
        [key],
        float(relation.heap_bytes) + 8192,
        _run_freshness,
        {"secrets": list(secrets), "relation": relation, "reference": reference},
    )


def _run_freshness(
    task: Task, connection: CheckConnection, budget: Budget
) -> list[Outcome] | list[Task]:
    rule: FreshnessRule = task.items[0]
    relation: Relation = task.params["relation"]
    column_type = relation.shape.columns.get(rule.column)
    if column_type is None:
        return [
            Outcome(
                "freshness",
                task.keys[0],
                CheckStatus.FAIL,
                f"column {rule.column!r} not found in {relation.key}",
                item=rule,
            )
        ]
    if not column_type.startswith(TIMESTAMP_TYPES):
        return [
            Outcome(
                "freshness",
                task.keys[0],
                CheckStatus.ERROR,
                f"column {rule.column!r} of {relation.key} is {column_type}, "
                "not a timestamp or date",
                item=rule,
            )
        ]
    reference: datetime | None = task.params["reference"]
    try:
        rows = connection.run(freshness_sql(relation.schema, relation.name, rule.column, reference))
    except Exception as exc:
        return failed_statement(task, connection, budget, exc, task.params["secrets"])
    newest, ref_text, age = rows[0]
    data: dict[str, Any] = {
        "newest": newest,
        "reference": ref_text,
        "reference_is": "snapshot time" if reference is not None else "server now()",
        "max_age_s": rule.max_age,
    }
    if newest is None:
        return [
            Outcome(
                "freshness",
                task.keys[0],
                CheckStatus.FAIL,
                f"{relation.key}.{rule.column} has no value (empty table or all NULL)",
                data,
                item=rule,
            )
        ]
    age_s = float(age)
    data["rpo_s"] = age_s
    if age_s > rule.max_age:
        status = CheckStatus.FAIL
        message = (
            f"newest {rule.column} is {_human(age_s)} older than the "
            f"{data['reference_is']} ({newest}); the limit is {_human(rule.max_age)}"
        )
    else:
        status = CheckStatus.PASS
        message = (
            f"measured RPO {_human(max(age_s, 0))} (newest {rule.column} {newest}), "
            f"limit {_human(rule.max_age)}"
        )
        if age_s < 0:
            message += "; the newest value is after the reference time"
    return [Outcome("freshness", task.keys[0], status, message, data, item=rule)]


def _human(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def freshness_result(outcome: Outcome, database: str | None) -> CheckResult:
    rule: FreshnessRule = outcome.item
    return CheckResult(
        name="freshness",
        level=2,
        status=outcome.status,
        database=database,
        object=rule.label,
        message=outcome.message,
        evidence={"column": outcome.key} | outcome.data,
        duration_ms=outcome.duration_ms,
    )


# --------------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------------


def assertion_task(assertion: Assertion, secrets: Sequence[str]) -> Task:
    return Task(
        "assertion", [assertion], [assertion.name], 1e9, _run_assertion, {"secrets": list(secrets)}
    )


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _run_assertion(
    task: Task, connection: CheckConnection, budget: Budget
) -> list[Outcome] | list[Task]:
    assertion: Assertion = task.items[0]
    # a sub-select: one statement only, and at most two rows ever reach Python
    sql = f"SELECT * FROM (\n{assertion.sql}\n) AS restoredrill_assertion LIMIT 2"
    try:
        rows = connection.run(sql)
    except Exception as exc:
        error = classify_error(exc, *task.params["secrets"])
        if error.connection_lost or error.canceled or error.corruption:
            return failed_statement(task, connection, budget, exc, task.params["secrets"])
        return [
            Outcome(
                "assertion",
                assertion.name,
                CheckStatus.ERROR,
                f"the assertion's query failed: {error}",
                error.as_evidence(),
                item=assertion,
            )
        ]
    data: dict[str, Any] = {"expect": assertion.expect.text}
    if len(rows) != 1 or len(rows[0]) != 1:
        shape = f"{len(rows)}{'+' if len(rows) > 1 else ''} row(s)"
        if rows:
            shape += f" of {len(rows[0])} column(s)"
        return [
            Outcome(
                "assertion",
                assertion.name,
                CheckStatus.ERROR,
                f"the assertion's query must return one row with one value, it returned {shape}",
                data,
                item=assertion,
            )
        ]
    value = rows[0][0]
    holds, explanation = assertion.expect.check(value)
    data["value"] = _json_value(value)
    return [
        Outcome(
            "assertion",
            assertion.name,
            CheckStatus.PASS if holds else CheckStatus.FAIL,
            explanation,
            data,
            item=assertion,
        )
    ]


def assertion_result(outcome: Outcome, database: str | None) -> CheckResult:
    return CheckResult(
        name="assertion",
        level=2,
        status=outcome.status,
        database=database,
        object=outcome.key,
        message=outcome.message,
        evidence=outcome.data,
        duration_ms=outcome.duration_ms,
    )
