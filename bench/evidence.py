"""``make bench`` (evidence part): what the audit side costs, side by side in one run.

A year of daily reports of one database (365 chained JSON reports, each with 40 checks) is
verified the way ``restoredrill verify-chain`` does, against the floor any verification must
pay: hashing every report's bytes and parsing it once. The compliance summary is built over 20
databases x 30 days and rendered as HTML, and one drill report is rendered as its HTML page.
Contenders are interleaved over N rounds; medians are printed.

    python -m bench.evidence [--rounds 7] [--reports 365]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from restoredrill.domain.chain import StoredReport, verify_chain
from restoredrill.domain.report.document import build_report, report_bytes
from restoredrill.domain.report.html import render_report_html
from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import (
    PhaseTiming,
    ReportChain,
    ReportLink,
    RunRecord,
    RunState,
    SnapshotInfo,
    Verdict,
)

from restoredrill_cli.compliance import OptedInDatabase, build_summary, render_summary

START = datetime(2025, 11, 27, 3, 0, tzinfo=UTC)
CHECKS_PER_REPORT = 40


def a_check(number: int) -> dict[str, Any]:
    return {
        "name": "row_counts" if number % 2 else "amcheck_btree",
        "level": 2 + number % 2,
        "status": "pass",
        "message": f"{number * 7} relations verified",
        "database": "app",
        "object": None,
        "duration_ms": 12 + number,
        "evidence": {"checked": number * 7, "passed": number * 7, "skipped_count": 0},
    }


def a_report(db: str, region: str, day: int, previous: dict[str, str] | None) -> dict[str, Any]:
    """A PASSED drill's report, built by the drill's own ``build_report``."""
    created = START + timedelta(days=day)
    run_id = hashlib.sha256(f"{region}/{db}/{day}".encode()).hexdigest()[:20]
    snapshot_id = f"rds:{db}-{created:%Y-%m-%d-%H-%M}"
    ends = {
        RunState.REQUESTED: 1,
        RunState.RESTORING: 900 + day % 60,
        RunState.SECURING: 960 + day % 60,
        RunState.CHECKING: 1020 + day % 60,
        RunState.TEARING_DOWN: 1300 + day % 60,
    }
    phases, begun = {}, 0
    for state, end in ends.items():
        phases[state] = PhaseTiming(
            started_at=created + timedelta(seconds=begun),
            ended_at=created + timedelta(seconds=end),
        )
        begun = end
    finished = created + timedelta(seconds=begun)
    phases[RunState.REPORTING] = PhaseTiming(started_at=finished, ended_at=finished)
    run = RunRecord(
        run_id=run_id,
        state=RunState.FINISHED,
        source_db=db,
        snapshot=SnapshotInfo(
            snapshot_id=snapshot_id,
            snapshot_arn=f"arn:aws:rds:{region}:123456789012:snapshot:{snapshot_id}",
            snapshot_type="automated",
            snapshot_created_at=created,
            engine_version="15.5",
            encrypted=True,
            kms_key_id=f"arn:aws:kms:{region}:123456789012:key/0000",
            master_username="postgres",
            allocated_storage_gib=20,
            region=region,
            account_id="123456789012",
        ),
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="RDS-EVENT-0091 automated snapshot created",
        policy={"level": 3, "max_hours_between_drills": 36},
        created_at=created,
        deadline=created + timedelta(hours=4),
        phases=phases,
        verdict=Verdict.PASSED,
        checks={
            "verdict": "PASSED",
            "level": 3,
            "complete": True,
            "checks": [a_check(number) for number in range(CHECKS_PER_REPORT)],
        },
        chain=ReportChain(previous=ReportLink(**previous) if previous else None),
        finished_at=finished,
    )
    key = report_key(run)
    return build_report(run, bucket="reports", key=key)


def a_chain(days: int, db: str = "orders-db", region: str = "us-east-1") -> list[StoredReport]:
    stored: list[StoredReport] = []
    previous: dict[str, str] | None = None
    for day in range(days):
        document = a_report(db, region, day, previous)
        body = report_bytes(document)
        key = document["location"]["key"]
        stored.append(StoredReport(key, body))
        previous = {
            "run_id": document["run"]["run_id"],
            "key": key,
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    return stored


def timed(work: Callable[[], object]) -> float:
    # Each contender starts from a clean heap: garbage left by the one before is not its cost.
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reports", type=int, default=365, help="reports in the chain")
    args = parser.parse_args(argv)

    chain = a_chain(args.reports)
    anchors = {report.key: hashlib.sha256(report.body).hexdigest() for report in chain}
    verification = verify_chain(chain, anchors)
    assert verification.intact and verification.links_checked == args.reports - 1
    fleet = [
        a_report(f"db-{number:02d}", "us-east-1", day, None)
        for number in range(20)
        for day in range(335, 365)
    ]
    databases = [
        OptedInDatabase(region="us-east-1", db_instance_identifier=f"db-{number:02d}")
        for number in range(20)
    ]
    now = START + timedelta(days=365)
    one_report = a_report("orders-db", "us-east-1", 0, None)

    contenders: dict[str, Callable[[], object]] = {
        "sha256 of every report": lambda: [
            hashlib.sha256(report.body).hexdigest() for report in chain
        ],
        "sha256 + JSON parse of each (floor)": lambda: [
            (hashlib.sha256(report.body).hexdigest(), json.loads(report.body)) for report in chain
        ],
        "verify_chain (verify-chain's work)": lambda: verify_chain(chain, anchors),
        "summary, 20 dbs x 30 days, as HTML": lambda: render_summary(
            build_summary(fleet, databases, since=now - timedelta(days=30), now=now), "html"
        ),
        "one drill report as its HTML page": lambda: render_report_html(one_report),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, work in contenders.items():
            samples[name].append(timed(work))

    size = sum(len(report.body) for report in chain)
    print(f"{args.reports} chained reports, {size / 1e6:.1f} MB; {args.rounds} rounds, interleaved")
    print(f"{'contender':<40} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values)
        print(
            f"{name:<40} {medians[name] * 1000:>10.1f} {min(values) * 1000:>8.1f} "
            f"{max(values) * 1000:>8.1f}"
        )
    floor = medians["sha256 + JSON parse of each (floor)"]
    verify = medians["verify_chain (verify-chain's work)"]
    print(f"verify_chain / (sha256 + parse) floor: {verify / floor:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
