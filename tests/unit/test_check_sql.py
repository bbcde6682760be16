"""Identifier quoting and the SQL text built from untrusted names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from restoredrill.checksuite.sql import (
    UnsafeIdentifierError,
    bt_index_check_sql,
    count_batch_sql,
    count_sql,
    fingerprint_sql,
    freshness_sql,
    oid_array_literal,
    qualified_name,
    quote_ident,
    timestamptz_literal,
    verify_heapam_sql,
)

HOSTILE = [
    'a"b',
    '"; DROP TABLE users; --',
    "Mixed Case",
    "select",
    "täblé ünïcødé 表",
    "x" * 63,
    "semi;colon",
    "back\\slash",
    "'single'",
    '""',
]


def unquote_ident(text: str) -> str:
    """Read a double-quoted identifier back the way PostgreSQL's lexer does."""
    assert text.startswith('"') and text.endswith('"')
    body = text[1:-1]
    assert re.fullmatch(r'(?:[^"]|"")*', body), "a lone quote would end the identifier early"
    return body.replace('""', '"')


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_one_identifier(name: str) -> None:
    # Given a name with quotes, semicolons, spaces, unicode or a reserved word
    # When quoted
    quoted = quote_ident(name)
    # Then the lexer reads back exactly that name, as a single identifier
    assert unquote_ident(quoted) == name


@given(st.text(alphabet=st.characters(blacklist_characters="\x00"), min_size=1))
def test_any_name_round_trips(name: str) -> None:
    # Given any text without NUL / When quoted / Then it reads back unchanged
    assert unquote_ident(quote_ident(name)) == name


def test_simple_names_are_quoted_too_so_case_is_kept() -> None:
    # Given a mixed-case name that would fold to lower case unquoted / Then it is quoted
    assert quote_ident("Orders") == '"Orders"'


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_impossible_identifiers_are_refused(bad: str) -> None:
    # Given an empty name or one with NUL (which PostgreSQL cannot store) / Then it is refused
    with pytest.raises(UnsafeIdentifierError):
        quote_ident(bad)


def test_qualified_names_quote_both_parts() -> None:
    # Given a schema and table that contain dots and quotes
    # Then the qualified name is two quoted identifiers joined by one dot
    assert qualified_name('s."x', "t.y") == '"s.""x"."t.y"'


def test_statements_embed_only_quoted_names() -> None:
    # Given hostile schema, table and column names
    schema, table, column = '"; DROP SCHEMA x; --', "t'1", 'c"; --'
    # When every statement is built
    statements = [
        count_sql(schema, table),
        count_batch_sql([(schema, table), ("public", "plain")]),
        fingerprint_sql(schema, table),
        freshness_sql(schema, table, column, None),
    ]
    # Then the names appear only in their quoted form
    for sql in statements:
        assert qualified_name(schema, table) in sql
        without = sql.replace(qualified_name(schema, table), "").replace(quote_ident(column), "")
        assert "DROP" not in without
        assert "t'1" not in without


def test_amcheck_statements_take_oids_as_integers_only() -> None:
    # Given OIDs / When the amcheck statements are built / Then they are plain integer literals
    assert oid_array_literal([16384, 16385]) == "CAST(ARRAY[16384,16385] AS oid[])"
    assert "CAST(CAST(16384 AS oid) AS regclass)" in verify_heapam_sql("public", 16384, True)
    assert "check_toast => true" in verify_heapam_sql("public", 16384, True)
    sql = bt_index_check_sql('my"ext', [1, 2], heapallindexed=True)
    assert '"my""ext".bt_index_check' in sql and "true" in sql
    # And anything that is not an integer is refused
    with pytest.raises(ValueError):  # noqa: PT011
        oid_array_literal(["1); DROP TABLE x; --"])  # type: ignore[list-item]


def test_timestamp_literals_are_utc_iso_text() -> None:
    # Given aware and naive datetimes
    aware = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 5, 1, 12, 0)
    # Then the literal is the ISO text, naive times read as UTC
    assert timestamptz_literal(aware) == "CAST('2024-05-01T12:00:00+02:00' AS timestamptz)"
    assert timestamptz_literal(naive) == "CAST('2024-05-01T12:00:00+00:00' AS timestamptz)"
    assert "now()" in freshness_sql("s", "t", "c", None)
    assert "2024-05-01T12:00:00+00:00" in freshness_sql("s", "t", "c", naive.replace(tzinfo=UTC))
