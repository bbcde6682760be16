"""``make bench`` (wide part): a database of 20,000 tables drilled twice at level 2, the second
drill against the first one's baseline, through the check runner's and the checker's own code
(the Lambda transport taken out), with the size of every message measured.

What it measures, per drill: the check runner's request (advance's async invoke payload), the
checker's request and answer (the synchronous invoke, 6 MB each way), the runner's answer and
the async destination record that carries request and answer back to ``advance`` (SQS: 256 KB),
and the baseline kept in the work store. It fails (exit 1) when the second drill does not pass
against the baseline, or when a message is over its limit.

    python -m bench.wide [--tables 20000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from typing import Any

from restoredrill.domain.checker_side import parse_checker_request, run_checker
from restoredrill.domain.password_broker import run_check
from restoredrill.ports.messages import (
    DESTINATION_RECORD_LIMIT,
    CheckerTarget,
    CheckRunRequest,
    CheckSuiteResult,
    json_size,
)
from restoredrill.ports.policy import DrillPolicy

from bench.plan import BENCH_RUN_ID
from localcloud.postgres import PostgresServer, init_cluster, make_parent_dir
from tests.unit.fakes import MemoryWorkStore

DATABASE = "wide"
USER = "wide_owner"
PASSWORD = "wide-Pass-1414"  # noqa: S105 - a throwaway local cluster
SYNC_INVOKE_LIMIT = 6 * 1024 * 1024
TABLES_PER_TRANSACTION = 1000
# A destination record's own fields around the request and the answer.
RECORD_ENVELOPE = {
    "version": "1.0",
    "timestamp": "2026-12-05T03:00:00.000Z",
    "requestContext": {
        "requestId": "e8d4c2b2-1c9f-4b8e-9a55-2f5c1c3d9e11",
        "functionArn": "arn:aws:lambda:eu-central-1:123456789012:function:"
        "restoredrill-prod-CheckRunnerFunction-AbCdEfGhIjKl:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
}


class MeasuringChecker:
    """The checker function in-process, measuring its request and its answer."""

    def __init__(self) -> None:
        self.request_bytes = 0
        self.answer_bytes = 0

    def check(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.request_bytes = max(self.request_bytes, json_size(payload))
        answer = run_checker(parse_checker_request(payload))
        self.answer_bytes = max(self.answer_bytes, json_size(answer))
        return answer


class _Vault:
    def get(self, name: str) -> str | None:
        return PASSWORD


def build(server: PostgresServer, tables: int) -> None:
    admin = server.admin_connect()
    admin.run(f"CREATE ROLE {USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    admin.run(f"CREATE DATABASE {DATABASE} OWNER {USER}")
    admin.close()
    connection = server.admin_connect(DATABASE, timeout=3600)
    connection.run("CREATE SCHEMA tenants")
    # One transaction per thousand tables: each holds its locks until it commits.
    for first in range(1, tables + 1, TABLES_PER_TRANSACTION):
        last = min(first + TABLES_PER_TRANSACTION - 1, tables)
        connection.run(
            f"DO $$ BEGIN FOR i IN {first}..{last} LOOP"
            " EXECUTE format('CREATE TABLE tenants.t%s (id int PRIMARY KEY, note text)', i);"
            " EXECUTE format('INSERT INTO tenants.t%s SELECT g, md5(g::text)"
            " FROM generate_series(1, %s) AS g', i, i % 7 + 1);"
            " END LOOP; END $$"
        )
    connection.run("ANALYZE")
    connection.close()


def drill(
    server: PostgresServer, store: MemoryWorkStore, previous: dict[str, Any] | None, run_id: str
) -> tuple[dict[str, Any], dict[str, int], float]:
    """One drill's checks as the check runner runs them; ``previous``: the last passing drill's
    answer, whose baseline (in it, or kept in the work store) advance hands to this one."""
    checker = MeasuringChecker()
    baseline = CheckSuiteResult.from_payload(previous["result"]).baseline if previous else None
    request = CheckRunRequest(
        run_id=run_id,
        password_parameter="/bench/wide/password",  # noqa: S106 - an SSM parameter name
        target=CheckerTarget(host=server.host, port=server.port, user=USER, database=DATABASE),
        policy=DrillPolicy(level=2, include_databases=[DATABASE]).model_dump(mode="json"),
        snapshot_time=datetime.now(UTC),
        vcpus=2,
        source_db="wide-db",
        baseline=baseline,
        baseline_key=previous.get("baseline_key") if previous else None,
    )
    payload = request.to_payload()
    started = time.perf_counter()
    answer = run_check(CheckRunRequest.model_validate(payload), _Vault(), checker, store)
    seconds = time.perf_counter() - started
    record = RECORD_ENVELOPE | {"requestPayload": payload, "responsePayload": answer}
    sizes = {
        "check runner request (async invoke)": json_size(payload),
        "checker request (sync invoke)": checker.request_bytes,
        "checker answer (sync invoke)": checker.answer_bytes,
        "check runner answer": json_size(answer),
        "destination record (SQS)": json_size(record),
    }
    return answer, sizes, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wide", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--tables", type=int, default=20_000)
    args = parser.parse_args(argv)
    parent = make_parent_dir("restoredrill-wide-")
    server = init_cluster(parent, "wide")
    server.start()
    try:
        started = time.perf_counter()
        build(server, args.tables)
        print(f"{args.tables} tables built in {time.perf_counter() - started:.0f} s", flush=True)
        store = MemoryWorkStore()
        first, first_sizes, first_s = drill(server, store, None, BENCH_RUN_ID)
        second, second_sizes, second_s = drill(server, store, first, "be4c4be4c4be4c4be4c5")
    finally:
        server.destroy()
        shutil.rmtree(parent, ignore_errors=True)
    kept = store.baselines.get(first.get("baseline_key") or "")
    print(f"\n{'message (bytes)':<40}{'first drill':>14}{'second drill':>14}")
    for name in first_sizes:
        print(f"{name:<40}{first_sizes[name]:>14,}{second_sizes[name]:>14,}")
    if kept is not None:
        print(f"{'baseline kept in the work store (JSON)':<40}{len(json.dumps(kept)):>14,}")
    print(f"{'drill wall time (s)':<40}{first_s:>14.1f}{second_s:>14.1f}")
    result = CheckSuiteResult.from_payload(second["result"])
    counts = next(c for c in result.checks if c.name == "row_counts")
    schema = next(c for c in result.checks if c.name == "schema_fingerprint")
    print(f"\nsecond drill: {result.verdict.value}; row_counts: {counts.message}")
    print(f"schema_fingerprint: {schema.message}")
    over = [
        name
        for sizes in (first_sizes, second_sizes)
        for name, size in sizes.items()
        if size
        > (DESTINATION_RECORD_LIMIT if "runner" in name or "record" in name else SYNC_INVOKE_LIMIT)
    ]
    compared = "since the last drill" in counts.message
    ok = result.verdict.value == "PASSED" and compared and not over
    print("PASS" if ok else f"MISS: over the limit: {over}; compared with the baseline: {compared}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
