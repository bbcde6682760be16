"""Level 1 (catalog) for one database: what it holds, and how its schema compares with the last
passing drill."""

from __future__ import annotations

from typing import Any

from restoredrill.checksuite.database_catalog import DatabaseCatalog
from restoredrill.checksuite.results import CheckResult, CheckStatus, capped, size_text
from restoredrill.ports.baseline import DatabaseBaseline, diff_schema
from restoredrill.ports.policy import DrillPolicy

__all__ = ["catalog_check", "schema_check"]


def catalog_check(catalog: DatabaseCatalog, duration_ms: float) -> CheckResult:
    kinds: dict[str, int] = {}
    for relation in catalog.relations:
        kinds[relation.shape.kind] = kinds.get(relation.shape.kind, 0) + 1
    largest = sorted(catalog.relations, key=lambda r: r.total_bytes, reverse=True)[:5]
    tables = kinds.get("table", 0) + kinds.get("partitioned table", 0)
    return CheckResult(
        name="catalog",
        level=1,
        status=CheckStatus.PASS,
        database=catalog.database,
        message=(
            f"{len(catalog.schemas)} schema(s), {tables} table(s), "
            f"{len(catalog.extensions)} extension(s), {size_text(catalog.size_bytes)}"
        ),
        evidence={
            "schemas": capped(catalog.schemas, 100),
            "relations_by_kind": kinds,
            "extensions": catalog.extensions,
            "size_bytes": catalog.size_bytes,
            "largest": [{"relation": r.key, "total_bytes": r.total_bytes} for r in largest],
        },
        duration_ms=duration_ms,
    )


def schema_check(
    current: DatabaseBaseline, previous: DatabaseBaseline | None, policy: DrillPolicy, database: str
) -> CheckResult:
    evidence: dict[str, Any] = {"fingerprint": current.schema_fingerprint}
    if previous is None:
        return CheckResult(
            name="schema_fingerprint",
            level=1,
            status=CheckStatus.PASS,
            database=database,
            message="no baseline for this database yet: this schema becomes the baseline",
            evidence=evidence,
        )
    evidence["baseline_fingerprint"] = previous.schema_fingerprint
    if previous.schema_fingerprint == current.schema_fingerprint:
        return CheckResult(
            name="schema_fingerprint",
            level=1,
            status=CheckStatus.PASS,
            database=database,
            message="schema identical to the last passing drill",
            evidence=evidence,
        )
    diff = diff_schema(previous, current)
    missing, added, changed = diff.missing, diff.added, diff.changed
    evidence.update(
        {
            "missing": capped(missing),
            "added": capped(added),
            "changed": capped(changed),
            "counts": {"missing": len(missing), "added": len(added), "changed": len(changed)},
        }
    )
    statuses = [CheckStatus.PASS]
    parts: list[str] = []
    if missing:
        statuses.append(CheckStatus(policy.schema_drift.on_missing))
        parts.append(f"{len(missing)} missing: " + ", ".join(capped(missing, 10)))
    if changed:
        statuses.append(CheckStatus(policy.schema_drift.on_changed))
        parts.append(f"{len(changed)} changed: " + ", ".join(capped(changed, 5)))
    if added:
        statuses.append(CheckStatus(policy.schema_drift.on_added))
        parts.append(f"{len(added)} new: " + ", ".join(capped(added, 10)))
    if not parts:  # the fingerprints differ only in what the diff does not name (ordering)
        parts.append("schema fingerprint differs from the last drill")
        statuses.append(CheckStatus.WARN)
    order = [CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL]
    status = max(statuses, key=order.index)
    return CheckResult(
        name="schema_fingerprint",
        level=1,
        status=status,
        database=database,
        message="; ".join(parts),
        evidence=evidence,
    )
