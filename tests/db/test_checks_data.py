"""Levels 0-3 against a real PostgreSQL: a clean database passes everything; lost rows, a dropped
table, stale data and a broken invariant are each caught by their own check."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from restoredrill.checksuite import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    SuiteVerdict,
    run_check_suite,
)
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer
from tests.db.checker import PASSWORD, checker_target, ensure_checker, run_sql

SHOP = [
    "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE)",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,"
    " total numeric(10,2) CHECK (total >= 0), created_at timestamptz NOT NULL, note text)",
    "CREATE INDEX orders_created_at ON orders (created_at)",
    "CREATE INDEX orders_customer ON orders (customer_id, created_at DESC)",
    "CREATE TABLE events (id serial PRIMARY KEY, at timestamp NOT NULL, payload jsonb)",
    "CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text)",
    "CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(total) AS total"
    " FROM orders GROUP BY customer_id",
    "CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100",
    "INSERT INTO customers SELECT g, 'c' || g, 'c' || g || '@x' FROM generate_series(1, 2000) g",
    "INSERT INTO orders SELECT g, 1 + g % 2000, g % 500, now() - make_interval(mins => g),"
    " repeat('n', g % 3000) FROM generate_series(1, 20000) g",
    "INSERT INTO events (at, payload) SELECT now() - make_interval(hours => g),"
    " jsonb_build_object('g', g) FROM generate_series(1, 3000) g",
    "INSERT INTO cache SELECT g::text, 'v' FROM generate_series(1, 100) g",
    "REFRESH MATERIALIZED VIEW order_totals",
    "ANALYZE",
]


@pytest.fixture
def shop(pg_server: PostgresServer) -> Iterator[str]:
    """A database of the session server with a small shop in it (dropped afterwards)."""
    ensure_checker(pg_server)
    name = f"shop_{uuid.uuid4().hex[:8]}"
    run_sql(pg_server, "postgres", f"CREATE DATABASE {name}")
    run_sql(pg_server, name, *SHOP)
    yield name
    run_sql(pg_server, "postgres", f"DROP DATABASE {name} WITH (FORCE)")


def shop_policy(database: str, **overrides: object) -> DrillPolicy:
    document: dict[str, object] = {
        "include_databases": [database],
        "freshness": [
            {"table": "orders", "column": "created_at", "max_age": "1h", "name": "orders"},
            {"table": "events", "column": "at", "max_age": "2h"},
        ],
        "assertions": [
            {
                "name": "customers exist",
                "sql": "SELECT count(*) FROM public.customers",
                "expect": ">= 1000",
            },
            {
                "name": "no orphan orders",
                "expect": "== 0",
                "sql": "SELECT count(*) FROM public.orders o WHERE NOT EXISTS"
                " (SELECT 1 FROM public.customers c WHERE c.id = o.customer_id)",
            },
        ],
        "content_fingerprint": {"enabled": True},
    }
    document.update(overrides)
    return DrillPolicy.model_validate(document)


def by_name(result: CheckSuiteResult, name: str, obj: str | None = None) -> CheckResult:
    matches = [c for c in result.checks if c.name == name and (obj is None or c.object == obj)]
    assert len(matches) == 1, f"expected one {name} check, got {[c.display_name for c in matches]}"
    return matches[0]


def not_passing(result: CheckSuiteResult) -> list[str]:
    return [
        f"{c.display_name}: {c.status} {c.message}"
        for c in result.checks
        if c.status is not CheckStatus.PASS
    ]


def test_a_clean_database_passes_every_check_twice(pg_server: PostgresServer, shop: str) -> None:
    # Given a clean shop database and a policy using every level and feature
    target, policy = checker_target(pg_server, shop), shop_policy(shop)
    # When the suite runs once (no baseline) and again with the first run's baseline
    first = run_check_suite(target, policy, vcpus=2)
    second = run_check_suite(target, policy, baseline=first.baseline, vcpus=2)
    # Then both pass every check, the second compared with the first
    assert not_passing(first) == []
    assert not_passing(second) == [], second.model_dump_json(indent=1)
    assert first.verdict is second.verdict is SuiteVerdict.PASSED and second.complete
    names = {c.name for c in second.checks}
    assert names >= {
        "connect",
        "tls",
        "server_version",
        "not_in_recovery",
        "databases",
        "roles",
        "catalog",
        "schema_fingerprint",
        "row_counts",
        "content_fingerprint",
        "freshness",
        "assertion",
        "amcheck_heap",
        "amcheck_btree",
    }
    assert "identical" in by_name(second, "schema_fingerprint").message
    # And the baseline holds the exact counts (the unlogged table's too) and fingerprints
    assert second.baseline is not None
    counts = second.baseline.databases[shop].row_counts
    assert counts['"public"."orders"'] == 20000
    assert counts['"public"."customers"'] == 2000
    assert counts['"public"."order_totals"'] == 2000
    assert counts['"public"."cache"'] == 100
    assert '"public"."big_orders"' not in counts  # a view has no rows of its own
    assert set(second.baseline.databases[shop].content_fingerprints) == set(counts)
    # And level 3 verified the shop's heaps and btree indexes (TOAST ones included)
    heap = by_name(second, "amcheck_heap")
    assert heap.evidence["checked"] >= 6 and heap.evidence["problems"] == []
    assert by_name(second, "amcheck_btree").evidence["checked"] >= 7
    # And TLS was used and the RPO measured
    assert by_name(second, "tls").evidence["version"].startswith("TLS")
    assert by_name(second, "freshness", "orders").evidence["rpo_s"] < 3600


def test_the_result_is_json_without_the_password(pg_server: PostgresServer, shop: str) -> None:
    # Given a run of the suite
    result = run_check_suite(checker_target(pg_server, shop), shop_policy(shop))
    # When dumped as the drill report would / Then it is JSON and never contains the password
    text = json.dumps(result.model_dump(mode="json"))
    assert PASSWORD not in text
    assert CheckSuiteResult.model_validate_json(text).verdict is SuiteVerdict.PASSED


def test_rows_deleted_since_the_last_drill_fail_row_counts(
    pg_server: PostgresServer, shop: str
) -> None:
    # Given a baseline from a passing run
    target, policy = checker_target(pg_server, shop), shop_policy(shop, content_fingerprint=False)
    baseline = run_check_suite(target, policy).baseline
    # When a tenth of the orders disappear and the suite runs again
    run_sql(pg_server, shop, "DELETE FROM orders WHERE id % 10 = 0")
    result = run_check_suite(target, policy, baseline=baseline)
    # Then row_counts fails naming the table and both counts; the other tables are fine
    check = by_name(result, "row_counts")
    assert result.verdict is SuiteVerdict.FAILED
    assert check.status is CheckStatus.FAIL
    [problem] = check.evidence["problems"]
    assert problem["table"] == '"public"."orders"'
    assert (problem["baseline_rows"], problem["rows"]) == (20000, 18000)
    assert '"public"."orders": 20000 -> 18000' in check.message
    assert [c.display_name for c in result.failed()] == [f"row_counts[{shop}]"]


def test_a_dropped_table_fails_the_schema_fingerprint(pg_server: PostgresServer, shop: str) -> None:
    # Given a baseline from a passing run
    target, policy = checker_target(pg_server, shop), shop_policy(shop, content_fingerprint=False)
    baseline = run_check_suite(target, policy).baseline
    # When a table (and so its index) is dropped
    run_sql(pg_server, shop, "DROP TABLE events")
    result = run_check_suite(target, policy, baseline=baseline)
    # Then schema_fingerprint fails naming the missing table
    check = by_name(result, "schema_fingerprint")
    assert check.status is CheckStatus.FAIL
    assert 'table "public"."events"' in check.evidence["missing"]
    assert "events" in check.message
    # And the freshness rule on that table fails too: its data is gone
    assert by_name(result, "freshness", "public.events.at").status is CheckStatus.FAIL
    assert result.verdict is SuiteVerdict.FAILED


def test_data_older_than_the_freshness_limit_fails_with_the_measured_rpo(
    pg_server: PostgresServer, shop: str
) -> None:
    # Given a snapshot time three hours after the newest order
    run_sql(
        pg_server,
        shop,
        "UPDATE orders SET created_at = '2024-03-01 09:00:00+00'"
        " WHERE created_at > '2024-03-01 09:00:00+00'",
    )
    snapshot_time = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    # When the suite runs against it with a one-hour limit
    result = run_check_suite(
        checker_target(pg_server, shop), shop_policy(shop), snapshot_time=snapshot_time
    )
    # Then the orders freshness check fails with an RPO of three hours
    check = by_name(result, "freshness", "orders")
    assert check.status is CheckStatus.FAIL
    assert check.evidence["rpo_s"] == pytest.approx(3 * 3600)
    assert check.evidence["reference_is"] == "snapshot time"
    assert "3.0 h" in check.message
    assert result.verdict is SuiteVerdict.FAILED


def test_a_fresh_timestamp_without_time_zone_passes(pg_server: PostgresServer, shop: str) -> None:
    # Given `events.at` (timestamp without time zone, read as UTC) newest one hour ago
    snapshot_time = datetime.now(UTC) + timedelta(minutes=30)
    # When checked against a two-hour limit
    result = run_check_suite(
        checker_target(pg_server, shop), shop_policy(shop), snapshot_time=snapshot_time
    )
    # Then it passes with an RPO between 1h30 and 2h
    check = by_name(result, "freshness", "public.events.at")
    assert check.status is CheckStatus.PASS
    assert 5400 - 120 < check.evidence["rpo_s"] < 7200


def test_a_failing_user_assertion_fails_with_its_value(
    pg_server: PostgresServer, shop: str
) -> None:
    # Given orders whose customers were deleted behind the foreign key's back
    run_sql(
        pg_server,
        shop,
        "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey",
        "DELETE FROM customers WHERE id <= 10",
    )
    # When the suite runs
    result = run_check_suite(checker_target(pg_server, shop), shop_policy(shop))
    # Then the orphan assertion fails with the value it saw, the other one passes
    orphans = by_name(result, "assertion", "no orphan orders")
    assert orphans.status is CheckStatus.FAIL
    assert orphans.evidence["value"] == 100
    assert "does not satisfy == 0" in orphans.message
    assert by_name(result, "assertion", "customers exist").status is CheckStatus.PASS
    assert result.verdict is SuiteVerdict.FAILED


def test_assertions_run_read_only_and_report_bad_sql_as_errors(
    pg_server: PostgresServer, shop: str
) -> None:
    # Given assertions that write, return two columns, and do not parse
    policy = shop_policy(
        shop,
        assertions=[
            {"name": "writes", "sql": "SELECT nextval('public.events_id_seq')", "expect": "> 0"},
            {
                "name": "deletes",
                "sql": "WITH d AS (DELETE FROM public.customers RETURNING 1)"
                " SELECT count(*) FROM d",
                "expect": "== 0",
            },
            {"name": "two values", "sql": "SELECT 1, 2", "expect": "== 1"},
            {"name": "typo", "sql": "SELEC 1", "expect": "== 1"},
        ],
    )
    # When the suite runs
    result = run_check_suite(checker_target(pg_server, shop), policy)
    # Then each is an error (the drill could not check it), never a silent pass
    for name in ("writes", "deletes", "two values", "typo"):
        assert by_name(result, "assertion", name).status is CheckStatus.ERROR, name
    assert "read-only" in by_name(result, "assertion", "writes").message
    assert result.verdict is SuiteVerdict.ERROR
    # And nothing was deleted
    connection = pg_server.admin_connect(shop)
    assert connection.run("SELECT count(*) FROM customers") == [[2000]]
    assert connection.run("SELECT last_value FROM events_id_seq") == [[3000]]
    connection.close()


def test_a_changed_must_match_table_fails_its_content_fingerprint(
    pg_server: PostgresServer, shop: str
) -> None:
    # Given a baseline with fingerprints and customers declared as never changing
    target = checker_target(pg_server, shop)
    policy = shop_policy(
        shop, content_fingerprint={"enabled": True, "must_match": [{"table": "customers"}]}
    )
    baseline = run_check_suite(target, policy).baseline
    # When one customer's name changes (same row count) and an order is updated
    run_sql(
        pg_server,
        shop,
        "UPDATE customers SET name = 'renamed' WHERE id = 7",
        "UPDATE orders SET note = 'x' WHERE id = 1",
    )
    result = run_check_suite(target, policy, baseline=baseline)
    # Then the fingerprint check fails for customers and only reports orders
    check = by_name(result, "content_fingerprint")
    assert check.status is CheckStatus.FAIL
    assert check.evidence["must_match_mismatched"] == ['"public"."customers"']
    assert set(check.evidence["changed"]) == {'"public"."customers"', '"public"."orders"'}
    assert by_name(result, "row_counts").status is CheckStatus.PASS
