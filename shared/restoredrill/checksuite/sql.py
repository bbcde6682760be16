"""SQL text built from untrusted names, safely.

Every name that comes from a restored database's catalog (schemas, tables, columns, indexes,
extensions) or from a policy file is untrusted input. It reaches SQL text only through
:func:`quote_ident`, which makes it a double-quoted identifier; values go as bind parameters
(``:name`` placeholders of pg8000.native) and relations are passed by OID where the function
takes a ``regclass`` (``verify_heapam``, ``bt_index_check``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = [
    "HASH_FINGERPRINT",
    "TEXT_FINGERPRINT",
    "UnsafeIdentifierError",
    "bt_index_check_sql",
    "count_batch_sql",
    "count_range_sql",
    "count_sql",
    "fingerprint_sql",
    "freshness_sql",
    "oid_array_literal",
    "qualified_name",
    "quote_ident",
    "timestamptz_literal",
    "verify_heapam_batch_sql",
    "verify_heapam_sql",
]

HASH_FINGERPRINT = "hash_record_extended"
TEXT_FINGERPRINT = "hashtextextended"


class UnsafeIdentifierError(ValueError):
    """A name that cannot be an identifier at all (it contains a NUL character)."""


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier, whatever it contains.

    Always quotes (even names that would not need it) so that case, reserved words, spaces,
    quotes, semicolons and unicode all keep their meaning: ``a"b`` becomes ``"a""b"``.
    """
    if not isinstance(name, str):
        raise TypeError(f"an identifier must be a str, not {type(name).__name__}")
    if "\x00" in name:
        raise UnsafeIdentifierError("an identifier cannot contain a NUL character")
    if name == "":
        raise UnsafeIdentifierError("an identifier cannot be empty")
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str, name: str) -> str:
    """``"schema"."name"``: the unambiguous key of a relation in results and baselines."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def count_sql(schema: str, table: str) -> str:
    """Exact row count of one table, computed on the server."""
    return f"SELECT count(*) FROM {qualified_name(schema, table)}"


def count_batch_sql(tables: Sequence[tuple[str, str]]) -> str:
    """Exact row counts of several (small) tables in one round trip: one row, one column each."""
    if not tables:
        raise ValueError("no tables to count")
    parts = [f"(SELECT count(*) FROM {qualified_name(s, t)})" for s, t in tables]
    return "SELECT " + ", ".join(parts)


def count_range_sql(schema: str, table: str, first_block: int, last_block: int | None) -> str:
    """Exact row count of the tuples in an inclusive block range of a table (a missing end: to
    the last block), by a TID range scan (PostgreSQL 14 and later)."""
    where = f"ctid >= CAST('({int(first_block):d},0)' AS tid)"
    if last_block is not None:
        where += f" AND ctid < CAST('({int(last_block) + 1:d},0)' AS tid)"
    return f"SELECT count(*) FROM {qualified_name(schema, table)} WHERE {where}"


def fingerprint_sql(schema: str, table: str, method: str = HASH_FINGERPRINT) -> str:
    """Row count and an order-independent content hash of a table, computed on the server.

    ``hash_record_extended`` needs every column type to have an extended hash function;
    ``hashtextextended`` over the row's text form works for every type (slower).
    """
    alias = '"restoredrill_row"'
    if method == HASH_FINGERPRINT:
        expr = f"hash_record_extended({alias}.*, 0)"
    elif method == TEXT_FINGERPRINT:
        expr = f"hashtextextended({alias}.*::text, 0)"
    else:
        raise ValueError(f"unknown fingerprint method {method!r}")
    return (
        f"SELECT count(*), coalesce(sum({expr}), 0)::text "
        f"FROM {qualified_name(schema, table)} AS {alias}"
    )


def timestamptz_literal(value: datetime) -> str:
    """A ``timestamptz`` literal for an aware datetime (its ISO text holds only digits and
    ``-:+.T``)."""
    if not isinstance(value, datetime):
        raise TypeError("a timestamp literal needs a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    if not re.fullmatch(r"[0-9T:+.\-]+", text):
        raise ValueError(f"unexpected timestamp text {text!r}")
    return f"CAST('{text}' AS timestamptz)"


def oid_array_literal(oids: Sequence[int]) -> str:
    """``ARRAY[...]::oid[]`` of integers (each one checked to be an int)."""
    if not oids:
        raise ValueError("no OIDs")
    return "CAST(ARRAY[" + ",".join(f"{int(oid):d}" for oid in oids) + "] AS oid[])"


def freshness_sql(schema: str, table: str, column: str, reference: datetime | None) -> str:
    """The newest value of a timestamp/date column (as timestamptz; the session time zone is UTC),
    the reference time, and the age of the newest value at the reference time in seconds.
    ``reference=None`` means the server's ``now()``."""
    col = quote_ident(column)
    ref = "now()" if reference is None else timestamptz_literal(reference)
    return (
        "SELECT newest::text, ref::text, extract(epoch FROM (ref - newest))::float8"
        f" FROM (SELECT max({col})::timestamptz AS newest, {ref} AS ref"
        f" FROM {qualified_name(schema, table)}) AS m"
    )


def verify_heapam_sql(
    amcheck_schema: str,
    oid: int,
    check_toast: bool,
    *,
    first_block: int | None = None,
    last_block: int | None = None,
) -> str:
    """Corruption reports of one heap relation (by OID), aggregated on the server: how many, and
    the first five as JSON text. ``first_block``/``last_block``: an inclusive block range (a
    missing end: to the last block), as ``verify_heapam``'s ``startblock``/``endblock``."""
    fn = f"{quote_ident(amcheck_schema)}.verify_heapam"
    toast = "true" if check_toast else "false"
    blocks = ""
    if first_block is not None:
        blocks += f", startblock => {int(first_block):d}"
    if last_block is not None:
        blocks += f", endblock => {int(last_block):d}"
    return (
        "WITH v AS MATERIALIZED ("
        f"SELECT blkno, offnum, attnum, msg FROM {fn}("
        f"CAST(CAST({int(oid):d} AS oid) AS regclass), on_error_stop => false, "
        f"check_toast => {toast}, skip => 'none'{blocks}))"
        " SELECT (SELECT count(*) FROM v),"
        " (SELECT coalesce(json_agg(json_build_object("
        "'block', blkno, 'offset', offnum, 'attribute', attnum, 'message', msg)), '[]')"
        " FROM (SELECT * FROM v LIMIT 5) AS first)::text"
    )


def verify_heapam_batch_sql(amcheck_schema: str, oids: Sequence[int], check_toast: bool) -> str:
    """The number of corruption reports over several heap relations, in one round trip."""
    fn = f"{quote_ident(amcheck_schema)}.verify_heapam"
    toast = "true" if check_toast else "false"
    return (
        f"SELECT count(v.*) FROM unnest({oid_array_literal(oids)}) AS r(relid),"
        f" LATERAL {fn}(CAST(r.relid AS regclass), on_error_stop => false,"
        f" check_toast => {toast}, skip => 'none') AS v"
    )


def bt_index_check_sql(amcheck_schema: str, oids: Sequence[int], heapallindexed: bool) -> str:
    """``bt_index_check`` of one or more btree indexes by OID. It raises ``index_corrupted``
    (XX002) on the first problem; a batch that fails is re-run one index at a time to name the
    culprit."""
    fn = f"{quote_ident(amcheck_schema)}.bt_index_check"
    hai = "true" if heapallindexed else "false"
    return (
        f"SELECT count(*) FROM unnest({oid_array_literal(oids)}) AS r(relid),"
        f" LATERAL {fn}(CAST(r.relid AS regclass), {hai}) AS checked"
    )
