"""`restoredrill verify-chain DB` and `restoredrill report`: the evidence, as an auditor reads it.

verify-chain recomputes the SHA-256 of every stored report of one database and follows the links
each report carries to its predecessor, then compares the digests the run table recorded at
publish time. report builds the compliance summary of every opted-in database of one or more
stacks (regions) from their stored reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from restoredrill.domain.chain import ChainVerification, StoredReport, verify_chain
from restoredrill.domain.report.location import reports_prefix
from restoredrill.ports.policy import PolicyDocument, PolicyError, load_policy_file

from restoredrill_cli import compliance
from restoredrill_cli.defaults import DEFAULT_POLICY_FILE, DEFAULT_WINDOW_DAYS
from restoredrill_cli.resolve import resolve_target, resolve_targets
from restoredrill_cli.stack import StackClient
from restoredrill_cli.target import CliError, Target

EXIT_BROKEN = 1
# Every run of a database the run table still holds (its TTL bounds them): the digests recorded.
ANCHOR_RUNS_MAX = 10_000
# Reports from before the window are read back only until the last passing one is found.
BEFORE_WINDOW_REPORTS_MAX = 60


# ------------------------------------------------------------------------------ verify-chain


def chain_of(stack: StackClient, db: str) -> ChainVerification:
    """Verify the chain of ``db``'s reports in the stack's region, with the run table's digests."""
    prefix = reports_prefix(stack.target.region, db)
    keys = [key for key in stack.report_keys(prefix) if key.endswith(".json")]
    reports = [StoredReport(key, stack.report_bytes(key)) for key in keys]
    anchors = {
        run.report_key: run.report_sha256
        for run in stack.runs_of(db, ANCHOR_RUNS_MAX)
        if run.report_key and run.report_sha256 and run.report_key.startswith(prefix)
    }
    return verify_chain(reports, anchors, stack.report_history(prefix))


def run_verify_chain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    target = resolve_target(args)
    verification = chain_of(StackClient(target), args.db)
    if verification.reports == 0 and not verification.findings:
        raise CliError(
            f"no reports of {args.db} under s3://{target.report_bucket}/"
            f"{reports_prefix(target.region, args.db)}"
        )
    if args.json:
        document = verification.model_dump(mode="json") | {"intact": verification.intact}
        print(json.dumps(document, indent=2), file=out)
    else:
        _print_chain(verification, target, args.db, out)
    return 0 if verification.intact else EXIT_BROKEN


def _print_chain(verification: ChainVerification, target: Target, db: str, out: TextIO) -> None:
    where = f"s3://{target.report_bucket}/{reports_prefix(target.region, db)}"
    print(f"chain of {db} ({target.region}): {where}", file=out)
    for link in verification.links:
        previous = link.previous_key.rsplit("/", 1)[-1] if link.previous_key else "-"
        print(
            f"  {link.created_at or '?':<32} {link.run_id or '?':<20} "
            f"{link.verdict or '?':<9} sha256 {link.sha256[:16]}  after {previous}",
            file=out,
        )
    for finding in verification.findings:
        print(
            f"{finding.severity.upper()}: {finding.kind}: {finding.key}: {finding.message}",
            file=out,
        )
    summary = (
        f"{verification.reports} reports, {verification.links_checked} links and "
        f"{verification.anchors_checked} run-table digests checked"
    )
    if verification.intact:
        print(f"chain intact: {summary}", file=out)
    else:
        errors = sum(1 for finding in verification.findings if finding.severity == "error")
        print(f"CHAIN BROKEN: {errors} problem(s); {summary}", file=out)


# ------------------------------------------------------------------------------ report


def _policy(path: Path | None) -> PolicyDocument | None:
    if path is None and not DEFAULT_POLICY_FILE.exists():
        return None
    try:
        return load_policy_file(path or DEFAULT_POLICY_FILE)
    except PolicyError as error:
        raise CliError(f"invalid drill policy:\n{error}") from None


def _key_day(key: str) -> date | None:
    """The day in ``reports/<region>/<db>/<yyyy>/<mm>/<dd>/<run>.json``."""
    parts = key.split("/")
    try:
        return date(int(parts[-4]), int(parts[-3]), int(parts[-2]))
    except (IndexError, ValueError):
        return None


def reports_for_summary(stack: StackClient, since: datetime) -> list[dict[str, Any]]:
    """The stack's region's reports from the window, plus, per database, the newest ones before
    it back to the last passing one (so an old pass still shows as the last passing drill)."""
    region_prefix = f"reports/{stack.target.region}/"
    by_db: dict[str, list[str]] = defaultdict(list)
    for key in stack.report_keys(region_prefix):
        if key.endswith(".json"):
            by_db[key[len(region_prefix) :].split("/", 1)[0]].append(key)
    documents: list[dict[str, Any]] = []
    for keys in by_db.values():
        days = {key: _key_day(key) or date.min for key in keys}
        keys.sort(key=lambda key: (days[key], key))
        before = [key for key in keys if days[key] < since.date()]
        inside = keys[len(before) :]
        documents += [_document(stack, key) for key in inside]
        for key in reversed(before[-BEFORE_WINDOW_REPORTS_MAX:]):
            document = _document(stack, key)
            documents.append(document)
            if document.get("verdict") == "PASSED":
                break
    return documents


def _document(stack: StackClient, key: str) -> dict[str, Any]:
    body = stack.report_bytes(key)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    # Whatever it holds, it goes to the summary, which lists what it cannot read, and where.
    if not isinstance(document, dict):
        return {"location": {"key": key}, "unreadable": "not a JSON object"}
    document.setdefault("location", {"key": key})
    return document


def opted_in(stack: StackClient, policy: PolicyDocument | None) -> list[compliance.OptedInDatabase]:
    databases = []
    for found in stack.opted_in_databases():
        database = compliance.OptedInDatabase(
            region=found.region or stack.target.region,
            account_id=found.account_id,
            db_instance_identifier=found.db_id,
            engine_version=found.engine_version,
        )
        if policy is not None:
            hours = policy.for_database(found.db_id).coverage_hours
            database = compliance.OptedInDatabase.model_validate(
                database.model_dump() | {"max_hours_between_drills": hours}
            )
        databases.append(database)
    return databases


def run_report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    now = datetime.now(UTC)
    since = args.since or now - timedelta(days=DEFAULT_WINDOW_DAYS)
    if since >= now:
        raise CliError(f"--since {since.isoformat()} is not in the past")
    policy = _policy(args.policy)
    reports: list[dict[str, Any]] = []
    databases: list[compliance.OptedInDatabase] = []
    for target in resolve_targets(args):
        stack = StackClient(target)
        reports += reports_for_summary(stack, since)
        databases += opted_in(stack, policy)
    summary = compliance.build_summary(reports, databases, since=since, now=now)
    rendered = compliance.render_summary(summary, args.format)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(rendered, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        (out or sys.stdout).write(rendered)
    return 0
