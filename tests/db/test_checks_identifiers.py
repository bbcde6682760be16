"""Untrusted names: a database whose schemas, tables, columns, indexes, constraints (and the
database itself) are named with quotes, semicolons, spaces, unicode, reserved words, dots,
mixed case and 63-byte names passes every check at level 3, with every object really checked
and nothing executed that the names smuggle in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from restoredrill.checksuite import CheckStatus, SuiteVerdict, run_check_suite
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer
from tests.db.checker import checker_target, ensure_checker, run_sql

LONG_ASCII = "L" * 63  # NAMEDATALEN - 1
LONG_UNICODE = "é" * 31 + "x"  # 63 bytes in UTF-8
LONG_INDEX = "ï" * 31 + "i"
# (schema, table) pairs as PostgreSQL stores them, and their DDL spelled out by hand
SCHEMA_A = 'Schéma"; DROP TABLE public.canary; --'
TABLE_A = "Order Items; DELETE FROM public.canary"
SCHEMA_B = "select"
TABLE_B = 'a"b.c'
TABLE_C = LONG_ASCII
TABLE_D = LONG_UNICODE
TABLE_E = "表 (ünïcødé) 'quoted'"
COLUMN_TS = "Created At; --"

DDL = [
    "CREATE TABLE public.canary (id int PRIMARY KEY)",
    "INSERT INTO public.canary VALUES (1)",
    'CREATE SCHEMA "Schéma""; DROP TABLE public.canary; --"',
    'CREATE SCHEMA "select"',
    'CREATE TABLE "Schéma""; DROP TABLE public.canary; --"."Order Items; DELETE FROM public.canary"'
    ' ("Id" int CONSTRAINT "pk; DROP" PRIMARY KEY, "Created At; --" timestamptz NOT NULL,'
    ' "from" text CONSTRAINT "chk ""x""" CHECK ("from" <> \'\'), "Big Value" text)',
    'CREATE INDEX "idx ""q""; --" ON "Schéma""; DROP TABLE public.canary; --"'
    '."Order Items; DELETE FROM public.canary" ("Created At; --", "from")',
    'INSERT INTO "Schéma""; DROP TABLE public.canary; --"."Order Items; DELETE FROM public.canary"'
    " SELECT g, now() - make_interval(mins => g), 'f' || g,"
    " CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 400) END FROM generate_series(1, 3000) g",
    'CREATE TABLE "select"."a""b.c" ("user" int UNIQUE, "table" jsonb, "ORDER" point)',
    'INSERT INTO "select"."a""b.c" SELECT g, jsonb_build_object(\'k\', g),'
    " point(g, g) FROM generate_series(1, 700) g",
    f'CREATE TABLE "select"."{LONG_ASCII}" ("{LONG_ASCII}" int PRIMARY KEY)',
    f'INSERT INTO "select"."{LONG_ASCII}" SELECT generate_series(1, 42)',
    f'CREATE TABLE public."{LONG_UNICODE}" ("{LONG_UNICODE}" text)',
    f'CREATE INDEX "{LONG_INDEX}" ON public."{LONG_UNICODE}" ("{LONG_UNICODE}")',
    f"INSERT INTO public.\"{LONG_UNICODE}\" SELECT 'v' || g FROM generate_series(1, 10) g",
    'CREATE TABLE public."表 (ünïcødé) \'quoted\'" ("MixedCase" int, "mixedcase" int)',
    "INSERT INTO public.\"表 (ünïcødé) 'quoted'\" VALUES (1, 2), (3, 4)",
    'CREATE MATERIALIZED VIEW "select"."mv; --" AS SELECT "user" FROM "select"."a""b.c"',
    "ANALYZE",
]


@pytest.fixture
def hostile(pg_server: PostgresServer) -> Iterator[str]:
    """A database named like an injection, full of hostile names (dropped afterwards)."""
    ensure_checker(pg_server)
    name = f'host"ile; db {uuid.uuid4().hex[:6]}'
    quoted = '"' + name.replace('"', '""') + '"'
    run_sql(pg_server, "postgres", f"CREATE DATABASE {quoted}")
    run_sql(pg_server, name, *DDL)
    yield name
    run_sql(pg_server, "postgres", f"DROP DATABASE {quoted} WITH (FORCE)")


def q(schema: str, table: str) -> str:
    """The quoted key the checker uses, spelled by hand."""
    return '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'


def test_hostile_names_pass_every_check_with_every_object_checked(
    pg_server: PostgresServer, hostile: str
) -> None:
    # Given the hostile database, and a policy naming its hostile table and column
    target = checker_target(pg_server, hostile)
    policy = DrillPolicy.model_validate(
        {
            "include_databases": [hostile],
            "content_fingerprint": True,
            "freshness": [
                {
                    "schema": SCHEMA_A,
                    "table": TABLE_A,
                    "column": COLUMN_TS,
                    "max_age": "1h",
                    "name": "hostile freshness",
                }
            ],
            "assertions": [
                {
                    "name": "hostile rows",
                    "expect": "== 3000",
                    "sql": 'SELECT count(*) FROM "Schéma""; DROP TABLE public.canary; --"'
                    '."Order Items; DELETE FROM public.canary"',
                }
            ],
        }
    )
    # When the whole suite runs twice (the second against the first's baseline)
    first = run_check_suite(target, policy, snapshot_time=datetime.now(UTC) + timedelta(minutes=1))
    second = run_check_suite(
        target,
        policy,
        baseline=first.baseline,
        snapshot_time=datetime.now(UTC) + timedelta(minutes=1),
    )
    # Then every check passes both times
    for result in (first, second):
        bad = [
            f"{c.display_name}: {c.message}"
            for c in result.checks
            if c.status is not CheckStatus.PASS
        ]
        assert bad == [] and result.verdict is SuiteVerdict.PASSED
    assert "identical" in next(c for c in second.checks if c.name == "schema_fingerprint").message
    # And each hostile table was counted exactly (so each name reached the server intact)
    assert second.baseline is not None
    database = second.baseline.databases[hostile]
    assert database.row_counts == {
        q("public", "canary"): 1,
        q(SCHEMA_A, TABLE_A): 3000,
        q(SCHEMA_B, TABLE_B): 700,
        q(SCHEMA_B, TABLE_C): 42,
        q("public", TABLE_D): 10,
        q("public", TABLE_E): 2,
        q(SCHEMA_B, "mv; --"): 700,
    }
    # And the hostile columns, constraints and indexes are in the schema fingerprint by name
    shape = database.tables[q(SCHEMA_A, TABLE_A)]
    assert list(shape.columns) == ["Id", COLUMN_TS, "from", "Big Value"]
    assert set(shape.constraints) == {"pk; DROP", 'chk "x"'}
    assert set(shape.indexes) == {"pk; DROP", 'idx "q"; --'}
    assert set(database.tables[q(SCHEMA_B, TABLE_C)].columns) == {LONG_ASCII}
    assert set(database.tables[q("public", TABLE_D)].indexes) == {LONG_INDEX}
    # And content fingerprints covered every table (json and point columns included)
    assert set(database.content_fingerprints) == set(database.row_counts)
    # And amcheck verified the hostile heaps (plus their TOAST) and every btree index
    heap = next(c for c in second.checks if c.name == "amcheck_heap")
    btree = next(c for c in second.checks if c.name == "amcheck_btree")
    assert heap.evidence["problems"] == [] and heap.evidence["checked"] >= 7
    assert btree.evidence["problems"] == [] and btree.evidence["checked"] >= 6
    # And the freshness rule found the hostile column
    fresh = next(c for c in second.checks if c.name == "freshness")
    assert fresh.evidence["rpo_s"] < 600
    # And nothing the names smuggle in was executed: the canary is alive and whole
    connection = pg_server.admin_connect(hostile)
    try:
        assert connection.run("SELECT count(*) FROM public.canary") == [[1]]
    finally:
        connection.close()
