"""What the catalog of one database says: relations (with their shapes and sizes), schemas,
extensions, and the heaps and btree indexes amcheck should visit.

One query per database returns the whole description as a single JSON document, built on the
server: a catalog of thousands of tables costs one round trip and one ``json.loads``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from restoredrill.checksuite.connection import CheckConnection
from restoredrill.checksuite.sql import qualified_name
from restoredrill.ports.baseline import DatabaseBaseline, TableShape, schema_fingerprint

__all__ = ["AmcheckTargets", "DatabaseCatalog", "Relation", "read_amcheck_targets", "read_catalog"]

# Where restoredrill installs amcheck when ``public`` is not usable.
AMCHECK_INSTALL_SCHEMA = "restoredrill"

KIND_NAMES = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "t": "TOAST table",
    "i": "index",
}

# Namespaces that belong to PostgreSQL itself (or to sessions) rather than to the application.
_USER_NAMESPACE = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%'"
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

CATALOG_SQL = f"""
SELECT json_build_object(
  'database', current_database(),
  'size_bytes', pg_database_size(current_database()),
  'schemas', (SELECT coalesce(json_agg(n.nspname ORDER BY n.nspname), '[]')
              FROM pg_namespace AS n WHERE {_USER_NAMESPACE}),
  'extensions', (SELECT coalesce(
                    json_object_agg(e.extname, e.extversion ORDER BY e.extname), '{{}}')
                 FROM pg_extension AS e),
  'amcheck_schema', (SELECT n.nspname FROM pg_extension AS e
                     JOIN pg_namespace AS n ON n.oid = e.extnamespace
                     WHERE e.extname = 'amcheck'),
  'amcheck_available', EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'),
  'public_creatable', (SELECT has_schema_privilege(n.oid, 'CREATE')
                       FROM pg_namespace AS n WHERE n.nspname = 'public'),
  'relations', (SELECT coalesce(json_agg(r ORDER BY r.schema, r.name), '[]') FROM (
      SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name,
             c.relkind::text AS kind, c.relpersistence::text AS persistence,
             pg_relation_size(c.oid) AS heap_bytes,
             pg_total_relation_size(c.oid) AS total_bytes,
             (SELECT coalesce(json_object_agg(a.attname,
                        format_type(a.atttypid, a.atttypmod)
                        || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                        ORDER BY a.attnum), '{{}}')
                FROM pg_attribute AS a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
             (SELECT coalesce(json_object_agg(co.conname, pg_get_constraintdef(co.oid)
                        ORDER BY co.conname), '{{}}')
                FROM pg_constraint AS co WHERE co.conrelid = c.oid) AS constraints,
             (SELECT coalesce(json_object_agg(i.relname, pg_get_indexdef(i.oid)
                        ORDER BY i.relname), '{{}}')
                FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
               WHERE x.indrelid = c.oid) AS indexes
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relpersistence <> 't'
         AND {_USER_NAMESPACE}
  ) AS r)
)::text
"""

# Heaps (tables, materialized views and their TOAST tables) and the btree indexes on them that
# amcheck can verify, like pg_amcheck's defaults: valid and ready indexes, no temporary
# relations. ``{system}`` is true to include PostgreSQL's own catalogs.
AMCHECK_TARGETS_SQL = """
WITH base AS (
  SELECT c.oid, c.reltoastrelid
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
     AND ({system} OR n.nspname NOT IN ('pg_catalog', 'information_schema'))
), heap AS (
  SELECT oid FROM base
  UNION ALL
  SELECT reltoastrelid FROM base WHERE reltoastrelid <> 0
)
SELECT json_build_object(
  'heaps', (SELECT coalesce(json_agg(json_build_array(
                      c.oid::bigint, n.nspname, c.relname, c.relkind::text,
                      pg_relation_size(c.oid))), '[]')
              FROM heap AS h JOIN pg_class AS c ON c.oid = h.oid
              JOIN pg_namespace AS n ON n.oid = c.relnamespace),
  'indexes', (SELECT coalesce(json_agg(json_build_array(
                      i.oid::bigint, n.nspname, i.relname, t.relname,
                      pg_relation_size(i.oid))), '[]')
                FROM pg_index AS x
                JOIN heap AS h ON h.oid = x.indrelid
                JOIN pg_class AS i ON i.oid = x.indexrelid
                JOIN pg_class AS t ON t.oid = x.indrelid
                JOIN pg_namespace AS n ON n.oid = i.relnamespace
                JOIN pg_am AS am ON am.oid = i.relam
               WHERE am.amname = 'btree' AND x.indisvalid AND x.indisready
                 AND i.relpersistence <> 't'),
  'functions', (SELECT coalesce(json_agg(DISTINCT p.proname), '[]')
                  FROM pg_extension AS e JOIN pg_proc AS p ON p.pronamespace = e.extnamespace
                 WHERE e.extname = 'amcheck' AND p.proname IN ('verify_heapam', 'bt_index_check'))
)::text
"""


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    kind: str
    persistence: str
    heap_bytes: int
    total_bytes: int
    shape: TableShape

    @property
    def key(self) -> str:
        return qualified_name(self.schema, self.name)

    @property
    def countable(self) -> bool:
        """Has rows of its own to count (partitioned parents, views, foreign tables do not)."""
        return self.kind in ("r", "m")

    @property
    def unlogged(self) -> bool:
        return self.persistence == "u"


@dataclass
class DatabaseCatalog:
    database: str
    size_bytes: int | None
    schemas: list[str]
    extensions: dict[str, str]
    amcheck_schema: str | None
    amcheck_available: bool
    public_creatable: bool | None
    relations: list[Relation] = field(default_factory=list)

    def find(self, schema: str, name: str) -> Relation | None:
        for relation in self.relations:
            if relation.schema == schema and relation.name == name:
                return relation
        return None

    def to_baseline(self) -> DatabaseBaseline:
        """The schema part of the baseline. amcheck (and the empty schema restoredrill may have
        created for it) is restoredrill's own tool, not the application's: leaving it out keeps
        drills of fresh restores and repeated ``restoredrill check --install-amcheck`` runs
        comparable."""
        tables = {relation.key: relation.shape for relation in self.relations}
        used = {relation.schema for relation in self.relations}
        extensions = {k: v for k, v in self.extensions.items() if k != "amcheck"}
        schemas = [s for s in self.schemas if s != AMCHECK_INSTALL_SCHEMA or s in used]
        return DatabaseBaseline(
            schema_fingerprint=schema_fingerprint(tables, extensions, schemas),
            schemas=schemas,
            extensions=extensions,
            tables=tables,
            size_bytes=self.size_bytes,
        )


def parse_catalog(document: dict[str, Any]) -> DatabaseCatalog:
    relations = [
        Relation(
            oid=int(item["oid"]),
            schema=item["schema"],
            name=item["name"],
            kind=item["kind"],
            persistence=item["persistence"],
            heap_bytes=int(item["heap_bytes"] or 0),
            total_bytes=int(item["total_bytes"] or 0),
            shape=TableShape(
                kind=KIND_NAMES.get(item["kind"], item["kind"]),
                unlogged=item["persistence"] == "u",
                columns=item["columns"] or {},
                constraints=item["constraints"] or {},
                indexes=item["indexes"] or {},
            ),
        )
        for item in document["relations"]
    ]
    return DatabaseCatalog(
        database=document["database"],
        size_bytes=document.get("size_bytes"),
        schemas=list(document["schemas"]),
        extensions=dict(document["extensions"]),
        amcheck_schema=document.get("amcheck_schema"),
        amcheck_available=bool(document.get("amcheck_available")),
        public_creatable=document.get("public_creatable"),
        relations=relations,
    )


def _load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def read_catalog(connection: CheckConnection) -> DatabaseCatalog:
    return parse_catalog(_load(connection.scalar(CATALOG_SQL)))


@dataclass(frozen=True)
class AmcheckTarget:
    oid: int
    schema: str
    name: str
    detail: str  # relkind of a heap, or the table an index is on
    size_bytes: int

    @property
    def key(self) -> str:
        return qualified_name(self.schema, self.name)


@dataclass
class AmcheckTargets:
    heaps: list[AmcheckTarget]
    indexes: list[AmcheckTarget]
    functions: set[str]


def read_amcheck_targets(connection: CheckConnection, include_system: bool) -> AmcheckTargets:
    sql = AMCHECK_TARGETS_SQL.format(system="true" if include_system else "false")
    document = _load(connection.scalar(sql))
    return AmcheckTargets(
        heaps=[AmcheckTarget(int(o), s, n, d, int(b or 0)) for o, s, n, d, b in document["heaps"]],
        indexes=[
            AmcheckTarget(int(o), s, n, d, int(b or 0)) for o, s, n, d, b in document["indexes"]
        ],
        functions=set(document["functions"]),
    )
