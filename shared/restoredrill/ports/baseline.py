"""Baselines: what a passing drill saw, for the next drill of the same database to compare with.

A baseline holds, per PostgreSQL database of the instance, the schema (tables, columns and their
types, constraints, indexes, extensions) with a fingerprint of it, the exact row count of every
table and, when the policy asks for them, content fingerprints. Relations are keyed by their
quoted qualified name (``"public"."orders"``), which is unambiguous whatever the names contain.
It is plain JSON (``model_dump(mode="json")``) stored in the drill report.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from restoredrill.ports.payload_transport import PAYLOAD_ENCODING, pack_document, unpack_document

__all__ = [
    "BASELINE_FORMAT",
    "Baseline",
    "ContentFingerprint",
    "DatabaseBaseline",
    "SchemaDiff",
    "TableShape",
    "carry_forward",
    "diff_schema",
    "find_baseline",
    "schema_fingerprint",
]

BASELINE_FORMAT = "restoredrill.baseline/1"


class TableShape(BaseModel):
    """The shape of one relation (table, partitioned table, view, materialized view...)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    kind: str
    unlogged: bool = False
    columns: dict[str, str] = Field(default_factory=dict)  # name -> type ("integer not null")
    constraints: dict[str, str] = Field(default_factory=dict)  # name -> definition
    indexes: dict[str, str] = Field(default_factory=dict)  # name -> definition


class ContentFingerprint(BaseModel):
    """``count(*)`` and the sum of per-row hashes of a table, computed on the server."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    method: str
    rows: int
    hash: str


class DatabaseBaseline(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    schema_fingerprint: str
    schemas: list[str] = Field(default_factory=list)
    extensions: dict[str, str] = Field(default_factory=dict)  # name -> version
    tables: dict[str, TableShape] = Field(default_factory=dict)
    row_counts: dict[str, int] = Field(default_factory=dict)
    content_fingerprints: dict[str, ContentFingerprint] = Field(default_factory=dict)
    size_bytes: int | None = Field(
        default=None, description="The database's size on disk; null when it was not measured."
    )


class Baseline(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    format: str = BASELINE_FORMAT
    taken_at: datetime
    server_version: str | None = Field(
        default=None, description="The server's version; null when it could not be read."
    )
    level: int = 0
    database_names: list[str] = Field(default_factory=list)
    roles: list[str] | None = Field(
        default=None, description="The roles of the instance; null below level 1 (not read)."
    )
    databases: dict[str, DatabaseBaseline] = Field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """JSON-able, compressed when large (see :func:`pack_document`)."""
        return pack_document(self.model_dump(mode="json"))

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Baseline:
        return cls.model_validate(unpack_document(payload))


def schema_fingerprint(
    tables: dict[str, TableShape], extensions: dict[str, str], schemas: list[str]
) -> str:
    """sha256 of the canonical JSON of a database's schema: equal schemas, equal fingerprints."""
    canonical = {
        "schemas": sorted(schemas),
        "extensions": dict(sorted(extensions.items())),
        "tables": {key: tables[key].model_dump(mode="json") for key in sorted(tables)},
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class SchemaDiff(BaseModel):
    """What changed between two schemas of one database. Items are readable strings."""

    missing_tables: list[str] = Field(default_factory=list)
    missing_columns: list[str] = Field(default_factory=list)
    missing_indexes: list[str] = Field(default_factory=list)
    missing_constraints: list[str] = Field(default_factory=list)
    missing_schemas: list[str] = Field(default_factory=list)
    missing_extensions: list[str] = Field(default_factory=list)
    added_tables: list[str] = Field(default_factory=list)
    added_columns: list[str] = Field(default_factory=list)
    added_indexes: list[str] = Field(default_factory=list)
    added_constraints: list[str] = Field(default_factory=list)
    added_schemas: list[str] = Field(default_factory=list)
    added_extensions: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)  # types, definitions, kinds, versions

    @property
    def missing(self) -> list[str]:
        return (
            [f"schema {item}" for item in self.missing_schemas]
            + [f"table {item}" for item in self.missing_tables]
            + [f"column {item}" for item in self.missing_columns]
            + [f"index {item}" for item in self.missing_indexes]
            + [f"constraint {item}" for item in self.missing_constraints]
            + [f"extension {item}" for item in self.missing_extensions]
        )

    @property
    def added(self) -> list[str]:
        return (
            [f"schema {item}" for item in self.added_schemas]
            + [f"table {item}" for item in self.added_tables]
            + [f"column {item}" for item in self.added_columns]
            + [f"index {item}" for item in self.added_indexes]
            + [f"constraint {item}" for item in self.added_constraints]
            + [f"extension {item}" for item in self.added_extensions]
        )

    @property
    def empty(self) -> bool:
        return not (self.missing or self.added or self.changed)


def _members(table: str, name: str) -> str:
    return f"{table}.{json.dumps(name, ensure_ascii=False)}"


def diff_schema(old: DatabaseBaseline, new: DatabaseBaseline) -> SchemaDiff:
    """What ``new`` lacks, adds or changes compared with ``old``."""
    diff = SchemaDiff()
    diff.missing_schemas = sorted(set(old.schemas) - set(new.schemas))
    diff.added_schemas = sorted(set(new.schemas) - set(old.schemas))
    diff.missing_extensions = sorted(set(old.extensions) - set(new.extensions))
    diff.added_extensions = sorted(set(new.extensions) - set(old.extensions))
    for ext in sorted(set(old.extensions) & set(new.extensions)):
        if old.extensions[ext] != new.extensions[ext]:
            diff.changed.append(
                f"extension {ext}: version {old.extensions[ext]} -> {new.extensions[ext]}"
            )
    diff.missing_tables = sorted(set(old.tables) - set(new.tables))
    diff.added_tables = sorted(set(new.tables) - set(old.tables))
    for key in sorted(set(old.tables) & set(new.tables)):
        before, after = old.tables[key], new.tables[key]
        if before.kind != after.kind:
            diff.changed.append(f"{key}: {before.kind} -> {after.kind}")
        if before.unlogged != after.unlogged:
            persistence = {True: "unlogged", False: "logged"}
            diff.changed.append(
                f"{key}: {persistence[before.unlogged]} -> {persistence[after.unlogged]}"
            )
        for attr, missing, added in (
            ("columns", diff.missing_columns, diff.added_columns),
            ("indexes", diff.missing_indexes, diff.added_indexes),
            ("constraints", diff.missing_constraints, diff.added_constraints),
        ):
            old_items: dict[str, str] = getattr(before, attr)
            new_items: dict[str, str] = getattr(after, attr)
            missing.extend(_members(key, n) for n in old_items if n not in new_items)
            added.extend(_members(key, n) for n in new_items if n not in old_items)
            for name in old_items:
                if name in new_items and old_items[name] != new_items[name]:
                    diff.changed.append(
                        f"{attr[:-1] if attr != 'indexes' else 'index'} {_members(key, name)}: "
                        f"{old_items[name]} -> {new_items[name]}"
                    )
    return diff


def carry_forward(new: Baseline, previous: Baseline | None) -> Baseline:
    """Keep the previous measurement of tables that this run did not measure (time budget, lower
    level) but that still exist, so that the next drill still has something to compare with."""
    if previous is None:
        return new
    for name, database in new.databases.items():
        old = previous.databases.get(name)
        if old is None:
            continue
        for table, rows in old.row_counts.items():
            if table in database.tables and table not in database.row_counts:
                database.row_counts[table] = rows
        for table, fingerprint in old.content_fingerprints.items():
            if table in database.tables and table not in database.content_fingerprints:
                database.content_fingerprints[table] = fingerprint
    return new


def _candidates(document: Any, depth: int = 0) -> list[Any]:
    """Objects under a key ``baseline`` anywhere in ``document`` (breadth first), then the
    document itself."""
    found: list[Any] = []
    queue: list[tuple[Any, int]] = [(document, 0)]
    while queue:
        node, level = queue.pop(0)
        if level > 6:
            continue
        if isinstance(node, dict):
            if node.get("encoding") == PAYLOAD_ENCODING and isinstance(node.get("data"), str):
                try:
                    node = unpack_document(node)
                except (ValueError, OSError):
                    continue
                found.append(node)
            if isinstance(node.get("baseline"), dict):
                found.append(node["baseline"])
            queue.extend(
                (value, level + 1) for value in node.values() if isinstance(value, dict | list)
            )
        elif isinstance(node, list):
            queue.extend((value, level + 1) for value in node if isinstance(value, dict | list))
    found.append(document)
    return found


def find_baseline(document: Any) -> Baseline | None:
    """The baseline inside a saved check-suite result, a drill report or a bare baseline."""
    for candidate in _candidates(document):
        if not isinstance(candidate, dict) or "taken_at" not in candidate:
            continue
        try:
            return Baseline.model_validate(candidate)
        except ValidationError:
            continue
    return None
