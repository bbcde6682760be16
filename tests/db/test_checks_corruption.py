"""Level 3 against a real corrupted cluster: each kind of damage is caught by its own failing
check. The damage is done as the issue says: stop the server, edit the relation file, fix the
checksum (or not) with pg_checksums, start it again."""

from __future__ import annotations

import os
import random
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from restoredrill.checksuite import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    SuiteVerdict,
    run_check_suite,
)
from restoredrill.ports.policy import DrillPolicy

from localcloud.postgres import PostgresServer, postgres_bin_dir
from tests.db.checker import CHECKER, PASSWORD, checker_target, run_sql

DB = "victim"
BLCKSZ = 8192
PAGE_HEADER = 24  # SizeOfPageHeaderData: the line pointer array starts here
POLICY = DrillPolicy(include_databases=[DB])


@pytest.fixture
def victim(fresh_pg_server: PostgresServer) -> PostgresServer:
    """A fresh cluster (checksums on) with a database of ordinary tables and indexes."""
    run_sql(
        fresh_pg_server,
        "postgres",
        f"CREATE ROLE {CHECKER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'",
        f"CREATE DATABASE {DB}",
    )
    run_sql(
        fresh_pg_server,
        DB,
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint)",
        "INSERT INTO accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 5000) g",
        "CREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), what text)",
        "INSERT INTO audit (what) SELECT 'event ' || g FROM generate_series(1, 2000) g",
        "CREATE INDEX audit_what ON audit (what)",
        "VACUUM FREEZE ANALYZE",
        "CHECKPOINT",
    )
    return fresh_pg_server


def relation_file(server: PostgresServer, relation: str) -> Path:
    [[path]] = run_sql(server, DB, f"SELECT pg_relation_filepath('{relation}')")
    return Path(server.data_dir) / str(path)


def pg_checksums(server: PostgresServer, *args: str) -> None:
    argv = [str(postgres_bin_dir() / "pg_checksums"), "-D", str(server.data_dir), *args]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def edit_page(path: Path, block: int, edit: Callable[[bytearray], object]) -> None:
    with path.open("r+b") as handle:
        handle.seek(block * BLCKSZ)
        page = bytearray(handle.read(BLCKSZ))
        edit(page)
        handle.seek(block * BLCKSZ)
        handle.write(page)


def item_id(page: bytearray, number: int) -> tuple[int, int, int]:
    """(lp_off, lp_flags, lp_len) of line pointer ``number`` (1-based)."""
    (raw,) = struct.unpack_from("<I", page, PAGE_HEADER + (number - 1) * 4)
    return raw & 0x7FFF, (raw >> 15) & 0x3, raw >> 17


def set_item_id(page: bytearray, number: int, off: int, flags: int, length: int) -> None:
    struct.pack_into(
        "<I", page, PAGE_HEADER + (number - 1) * 4, off | (flags << 15) | (length << 17)
    )


def check(result: CheckSuiteResult, name: str) -> CheckResult:
    [found] = [c for c in result.checks if c.name == name and c.database == DB]
    return found


def failing(result: CheckSuiteResult) -> set[str]:
    return {c.name for c in result.checks if c.status is CheckStatus.FAIL}


def assert_clean(server: PostgresServer) -> None:
    result = run_check_suite(checker_target(server, DB), POLICY)
    bad = [c.display_name for c in result.checks if c.status is not CheckStatus.PASS]
    assert result.verdict is SuiteVerdict.PASSED and bad == []


def test_a_heap_page_overwritten_with_garbage_fails_amcheck_heap(victim: PostgresServer) -> None:
    # Given a clean database that passes every check
    assert_clean(victim)
    heap = relation_file(victim, "accounts")
    # When block 1 of `accounts` is overwritten with garbage, its checksum left stale
    victim.stop()
    noise = random.Random(3).randbytes(BLCKSZ)
    edit_page(heap, 1, lambda page: page.__setitem__(slice(0, BLCKSZ), noise))
    victim.start()
    result = run_check_suite(checker_target(victim, DB), POLICY)
    # Then amcheck_heap fails, naming the table and quoting the checksum failure
    heap_check = check(result, "amcheck_heap")
    assert heap_check.status is CheckStatus.FAIL
    [problem] = heap_check.evidence["problems"]
    assert problem["relation"] == '"public"."accounts"'
    assert problem["sqlstate"] == "XX001"
    assert "invalid page in block 1" in problem["message"]
    # And the exact count could not read it either; the indexes are intact; verdict FAILED
    assert check(result, "row_counts").status is CheckStatus.FAIL
    assert check(result, "amcheck_btree").status is CheckStatus.PASS
    assert result.verdict is SuiteVerdict.FAILED


def test_a_misaligned_line_pointer_with_a_valid_checksum_fails_amcheck_heap(
    victim: PostgresServer,
) -> None:
    # Given a clean database that passes every check
    assert_clean(victim)
    heap = relation_file(victim, "audit")
    # When, server stopped and checksums off, line pointer 5 of block 0 of `audit` is moved
    # off its 8-byte alignment, and the checksums are recomputed so the page looks valid
    victim.stop()
    pg_checksums(victim, "--disable")

    def misalign(page: bytearray) -> None:
        off, flags, length = item_id(page, 5)
        assert flags == 1 and off % 8 == 0  # LP_NORMAL, aligned
        set_item_id(page, 5, off - 4, flags, length)

    edit_page(heap, 0, misalign)
    pg_checksums(victim, "--enable")
    pg_checksums(victim, "--check")  # the checksums are valid: only amcheck can tell
    victim.start()
    result = run_check_suite(checker_target(victim, DB), POLICY)
    # Then amcheck_heap fails on `audit`, block 0, offset 5, with amcheck's own words
    heap_check = check(result, "amcheck_heap")
    assert heap_check.status is CheckStatus.FAIL
    [problem] = heap_check.evidence["problems"]
    assert problem["relation"] == '"public"."audit"'
    assert problem["first_reports"][0]["block"] == 0
    assert problem["first_reports"][0]["offset"] == 5
    assert "not maximally aligned" in problem["first_reports"][0]["message"]
    assert result.verdict is SuiteVerdict.FAILED


def test_two_keys_swapped_in_a_btree_leaf_with_a_valid_checksum_fail_amcheck_btree(
    victim: PostgresServer,
) -> None:
    # Given a clean database, and block 1 of accounts_pkey being a leaf page with many keys
    run_sql(victim, DB, "CREATE EXTENSION pageinspect")
    [[kind, live]] = run_sql(
        victim, DB, "SELECT type, live_items FROM bt_page_stats('accounts_pkey', 1)"
    )
    assert kind == "l" and int(str(live)) > 10
    run_sql(victim, DB, "DROP EXTENSION pageinspect", "CHECKPOINT")
    assert_clean(victim)
    index = relation_file(victim, "accounts_pkey")
    # When, server stopped and checksums off, the line pointers of two neighbouring keys are
    # swapped (so the keys are out of order) and the checksums recomputed
    victim.stop()
    pg_checksums(victim, "--disable")

    def swap(page: bytearray) -> None:
        a, b = item_id(page, 5), item_id(page, 6)
        set_item_id(page, 5, *b)
        set_item_id(page, 6, *a)

    edit_page(index, 1, swap)
    pg_checksums(victim, "--enable")
    victim.start()
    result = run_check_suite(checker_target(victim, DB), POLICY)
    # Then amcheck_btree fails on accounts_pkey with the index_corrupted error, nothing else does
    btree = check(result, "amcheck_btree")
    assert btree.status is CheckStatus.FAIL
    [problem] = btree.evidence["problems"]
    assert problem["relation"] == '"public"."accounts_pkey"'
    assert problem["table"] == "accounts"
    assert problem["sqlstate"] == "XX002"
    assert "item order invariant violated" in problem["message"]
    assert failing(result) == {"amcheck_btree"}
    assert check(result, "amcheck_heap").status is CheckStatus.PASS
    assert result.verdict is SuiteVerdict.FAILED
