"""Baselines: schema diffs, row-count thresholds, finding a baseline in a report, carrying
measurements forward."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from restoredrill.checksuite.families.catalog import schema_check
from restoredrill.checksuite.families.data import compare_count
from restoredrill.checksuite.results import CheckStatus
from restoredrill.ports.baseline import (
    Baseline,
    DatabaseBaseline,
    TableShape,
    carry_forward,
    diff_schema,
    find_baseline,
    schema_fingerprint,
)
from restoredrill.ports.payload_transport import pack_document
from restoredrill.ports.policy import DrillPolicy, RowCountPolicy, TableRowCountRule

ORDERS = '"public"."orders"'
ITEMS = '"public"."items"'


def db(tables: dict[str, TableShape]) -> DatabaseBaseline:
    return DatabaseBaseline(
        schema_fingerprint=schema_fingerprint(tables, {}, ["public"]),
        schemas=["public"],
        tables=tables,
    )


def test_identical_schemas_have_identical_fingerprints_whatever_the_order() -> None:
    # Given the same columns listed in two orders
    a = {ORDERS: TableShape(kind="table", columns={"id": "integer", "ts": "date"})}
    b = {ORDERS: TableShape(kind="table", columns={"ts": "date", "id": "integer"})}
    # Then the fingerprints are equal, and differ once a type changes
    assert schema_fingerprint(a, {}, []) == schema_fingerprint(b, {}, [])
    c = {ORDERS: TableShape(kind="table", columns={"id": "bigint", "ts": "date"})}
    assert schema_fingerprint(a, {}, []) != schema_fingerprint(c, {}, [])


def test_the_diff_names_missing_added_and_changed_objects() -> None:
    # Given a baseline with two tables and a current schema that lost one table, one column,
    # one index, gained a column and changed a type
    before = db(
        {
            ORDERS: TableShape(
                kind="table",
                columns={"id": "integer not null", "total": "numeric", "note": "text"},
                indexes={"orders_pkey": "def1", "orders_total": "def2"},
            ),
            ITEMS: TableShape(kind="table", columns={"id": "integer"}),
        }
    )
    after = db(
        {
            ORDERS: TableShape(
                kind="table",
                columns={"id": "bigint not null", "total": "numeric", "added": "text"},
                indexes={"orders_pkey": "def1"},
            )
        }
    )
    # When diffed
    diff = diff_schema(before, after)
    # Then each change is named
    assert diff.missing_tables == [ITEMS]
    assert diff.missing_columns == [f'{ORDERS}."note"']
    assert diff.missing_indexes == [f'{ORDERS}."orders_total"']
    assert diff.added_columns == [f'{ORDERS}."added"']
    assert any("integer not null -> bigint not null" in c for c in diff.changed)


def test_missing_objects_fail_the_schema_check_and_new_ones_only_report() -> None:
    # Given a baseline and a schema with one table dropped
    before = db({ORDERS: TableShape(kind="table"), ITEMS: TableShape(kind="table")})
    dropped = db({ORDERS: TableShape(kind="table")})
    grown = db(
        {
            ORDERS: TableShape(kind="table"),
            ITEMS: TableShape(kind="table"),
            '"public"."new"': TableShape(kind="table"),
        }
    )
    policy = DrillPolicy()
    # When checked
    failed = schema_check(dropped, before, policy, "app")
    passed = schema_check(grown, before, policy, "app")
    # Then the drop fails naming the table, the addition passes but is reported
    assert failed.status is CheckStatus.FAIL and ITEMS in failed.message
    assert passed.status is CheckStatus.PASS and '"public"."new"' in passed.message
    # And a policy may downgrade missing objects to a warning
    lenient = DrillPolicy.model_validate({"schema_drift": {"on_missing": "warn"}})
    assert schema_check(dropped, before, lenient, "app").status is CheckStatus.WARN


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        (1000, 1000, CheckStatus.PASS),
        (1000, 960, CheckStatus.PASS),  # -4% within the default 5%
        (1000, 940, CheckStatus.FAIL),  # -6%
        (1000, 0, CheckStatus.FAIL),
        (1000, 1500, CheckStatus.PASS),  # +50%: normal growth
        (1000, 5000, CheckStatus.WARN),  # +400% and +4000 rows: unexpected
        (10, 100, CheckStatus.PASS),  # +900% but only 90 rows: noise
        (0, 5000, CheckStatus.WARN),
        (None, 5, CheckStatus.PASS),  # no baseline
    ],
)
def test_row_count_changes_against_default_thresholds(
    old: int | None, new: int, status: CheckStatus
) -> None:
    # Given a baseline count and today's exact count / When compared under the defaults
    result, message = compare_count(old, new, RowCountPolicy())
    # Then drops beyond the threshold fail and unexpected growth warns
    assert result is status
    assert str(new) in message


def test_absolute_drop_allowance_and_per_table_rules() -> None:
    # Given a policy allowing 100 rows of drop, with a rule ignoring one table
    policy = RowCountPolicy(
        max_drop_rows=100,
        tables=[
            TableRowCountRule(schema_name="public", table="sessions", ignore=True),
            TableRowCountRule(schema_name="public", table="outbox", max_drop_pct=100),
        ],
    )
    # Then a 50% drop of 80 rows passes (under the absolute allowance), 200 rows fails
    assert compare_count(160, 80, policy)[0] is CheckStatus.PASS
    assert compare_count(400, 200, policy)[0] is CheckStatus.FAIL
    # And the ignored or fully-allowed tables never fail
    assert compare_count(10**6, 0, policy, schema="public", table="sessions")[0] is CheckStatus.PASS
    assert compare_count(10**6, 0, policy, schema="public", table="outbox")[0] is CheckStatus.PASS
    # And an unlogged table (empty after a restore) is not compared
    assert compare_count(10**6, 0, RowCountPolicy(), unlogged=True)[0] is CheckStatus.PASS


def _baseline(**databases: DatabaseBaseline) -> Baseline:
    return Baseline(taken_at=datetime(2024, 1, 1, tzinfo=UTC), databases=databases)


def test_a_baseline_is_found_in_a_result_a_report_or_on_its_own() -> None:
    # Given a baseline, and documents that hold it in different places
    base = _baseline(app=db({ORDERS: TableShape(kind="table")}))
    dumped = base.model_dump(mode="json")
    documents = [
        dumped,
        {"verdict": "PASSED", "checks": [], "baseline": dumped},
        {"kind": "restoredrill.drill-report", "run": {}, "checks": {"baseline": dumped}},
        json.loads(json.dumps({"report": {"checks": {"verdict": "PASSED", "baseline": dumped}}})),
    ]
    # When searched / Then the same baseline comes back every time
    for document in documents:
        assert find_baseline(document) == base
    # And a document without one gives None
    assert find_baseline({"checks": [], "baseline": None}) is None
    assert find_baseline([1, 2]) is None


def test_unmeasured_tables_keep_their_previous_counts() -> None:
    # Given a previous baseline with counts for two tables, and a new one that counted only one
    previous = _baseline(
        app=db({ORDERS: TableShape(kind="table"), ITEMS: TableShape(kind="table")})
    )
    previous.databases["app"].row_counts = {ORDERS: 10, ITEMS: 20}
    new = _baseline(app=db({ORDERS: TableShape(kind="table"), ITEMS: TableShape(kind="table")}))
    new.databases["app"].row_counts = {ORDERS: 11}
    # When carried forward
    merged = carry_forward(new, previous)
    # Then the new count wins and the unmeasured table keeps its old one
    assert merged.databases["app"].row_counts == {ORDERS: 11, ITEMS: 20}
    # And a dropped table's count is not resurrected
    gone = _baseline(app=db({ORDERS: TableShape(kind="table")}))
    assert ITEMS not in carry_forward(gone, previous).databases["app"].row_counts


def test_a_large_baseline_travels_compressed_and_comes_back_whole() -> None:
    # Given a baseline of a database with thousands of tables
    tables = {
        f'"public"."t{i}"': TableShape(kind="table", columns={f"c{j}": "integer" for j in range(8)})
        for i in range(3000)
    }
    big = _baseline(app=db(tables))
    big.databases["app"].row_counts = dict.fromkeys(tables, 1000)
    # When packed for a Lambda payload
    payload = big.to_payload()
    # Then it is compressed under 256 KB and reads back identical; a small one stays plain JSON
    assert payload["encoding"] == "gzip+base64"
    assert len(json.dumps(payload)) < 200_000
    assert Baseline.from_payload(payload) == big
    small = _baseline(app=db({ORDERS: TableShape(kind="table")}))
    assert "encoding" not in small.to_payload()
    assert Baseline.from_payload(small.to_payload()) == small


def test_a_baseline_is_found_inside_a_packed_result() -> None:
    # Given a drill report holding a compressed check-suite payload
    base = _baseline(app=db({ORDERS: TableShape(kind="table")}))
    packed = pack_document({"verdict": "PASSED", "baseline": base.model_dump(mode="json")}, 10)
    # When searched / Then the baseline inside is found
    assert packed["encoding"] == "gzip+base64"
    assert find_baseline({"run": {}, "checks": packed}) == base
