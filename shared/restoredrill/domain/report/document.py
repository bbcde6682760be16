"""The drill report (the audit evidence) and the Drill Finished event, both built from the run.

Both are pure functions of the run record, so a retried publish writes the same document again.
Neither ever holds a password: the run record does not carry one.

Both are models (:mod:`restoredrill.report_model`): the report's JSON Schema (draft 2020-12) is
generated from :class:`~restoredrill.report_model.DrillReport` and shipped in this package,
``restoredrill/schemas/drill-report-<version>.json`` (:data:`REPORT_SCHEMA_PATH`, read with
:func:`report_schema`); its ``$id`` ends with :data:`REPORT_SCHEMA_VERSION`, which every report
carries as ``schema_version``. The repository keeps the same file as
``schemas/drill-report/<version>.json``, beside the earlier versions that stored reports follow.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from restoredrill.messages import CheckResult, CheckSuiteResult
from restoredrill.models import RunRecord, RunState
from restoredrill.report_model import (
    REPORT_KIND,
    REPORT_SCHEMA_VERSION,
    CheckSummary,
    DrillFinished,
    DrillReport,
    EventReportLocation,
    FailedCheck,
    FailedCheckSummary,
    PhaseSeconds,
    PreviousReport,
    ReportChain,
    ReportLocation,
    ReportPhase,
    ReportRecovery,
    ReportRestoredInstance,
    ReportRun,
    ReportSnapshot,
    ReportSource,
    ReportTimings,
    RpoMeasurement,
    s3_console_url,
)
from restoredrill.report_model import REPORT_SCHEMA_ID as REPORT_SCHEMA_ID

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
PUBLISHED_SCHEMA_VERSIONS = ("1.1", "1.2", "1.3")
REPORT_SCHEMA_PATH = SCHEMA_DIR / f"drill-report-{REPORT_SCHEMA_VERSION}.json"
PHASE_NAMES = {
    RunState.REQUESTED: "request",
    RunState.RESTORING: "restore",
    RunState.SECURING: "secure",
    RunState.CHECKING: "check",
    RunState.TEARING_DOWN: "teardown",
}
NOT_PASSED = ("fail", "error")
REPORT_CONTENT_TYPE = "application/json"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
CHAIN_ALGORITHM = "sha256"

# The Drill Finished event: EventBridge takes at most 256 KB per entry; the detail stays far
# below, whatever the checks found (the report holds everything).
EVENT_DETAIL_MAX_BYTES = 16_000
EVENT_REASON_MAX_CHARS = 1_000
EVENT_MESSAGE_MAX_CHARS = 400
EVIDENCE_LINES_MAX = 5
EVIDENCE_LINE_MAX_CHARS = 240


def report_schema_path(version: str) -> Path:
    return SCHEMA_DIR / f"drill-report-{version}.json"


@cache
def report_schema(version: str = REPORT_SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of one version of the report; by default the one every report written
    now validates against (see the module's docstring). Reports already stored follow the
    version they name in ``schema_version``."""
    if version not in PUBLISHED_SCHEMA_VERSIONS:
        raise ValueError(f"no drill report schema {version!r}")
    schema: dict[str, Any] = json.loads(report_schema_path(version).read_text(encoding="utf-8"))
    return schema


def report_key(run: RunRecord) -> str:
    """``reports/<region>/<db>/<yyyy>/<mm>/<dd>/<run id>.json``: the region keeps databases of the
    same name apart when every region's stack writes to one central bucket."""
    day = run.created_at.strftime("%Y/%m/%d")
    return f"{reports_prefix(region_of(run), run.source_db)}{day}/{run.run_id}.json"


def reports_prefix(region: str, source_db: str) -> str:
    """Where every report of one database is: the chain of that database."""
    return f"reports/{region}/{source_db}/"


def region_of(run: RunRecord) -> str:
    snapshot = run.snapshot
    if snapshot.region:
        return snapshot.region
    parts = snapshot.snapshot_arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else "unknown-region"


def html_report_key(key: str) -> str:
    """The HTML rendering is stored beside the JSON report, under the same name."""
    return key.removesuffix(".json") + ".html"


def report_bytes(document: dict[str, Any]) -> bytes:
    """The report exactly as stored: its SHA-256 is what the next report of the database carries,
    so the serialisation is fixed (sorted keys, two-space indent, ASCII)."""
    return json.dumps(document, indent=2, sort_keys=True).encode("ascii")


def phase_timings(run: RunRecord) -> list[ReportPhase]:
    timings = []
    for state, name in PHASE_NAMES.items():
        phase = run.phases.get(state)
        if phase is None:
            continue
        timings.append(
            ReportPhase(
                phase=name,
                started_at=phase.started_at,
                ended_at=phase.ended_at,
                seconds=_round(phase.duration_seconds),
            )
        )
    return timings


def display_name(check: dict[str, Any] | CheckResult) -> str:
    """A check named for people: ``row_counts[app]``, ``freshness[app/orders.created_at]``."""
    if isinstance(check, CheckResult):
        return check.display_name
    where = "/".join(str(part) for part in (check.get("database"), check.get("object")) if part)
    return f"{check.get('name')}[{where}]" if where else str(check.get("name"))


def _not_passed(checks: CheckSuiteResult | None) -> list[CheckResult]:
    return [c for c in (checks.checks if checks else []) if c.status.value in NOT_PASSED]


def failed_checks(checks: CheckSuiteResult | None) -> list[dict[str, Any]]:
    """The checks that failed or could not run, named for people (``row_counts[app]``)."""
    return [
        {"name": check.display_name, "status": check.status.value, "message": check.message}
        for check in _not_passed(checks)
    ]


# ------------------------------------------------------------------------------ measured RPO


def freshness_results(checks: CheckSuiteResult | None) -> list[CheckResult]:
    """The results of the ``freshness`` checks (one per rule) in the run's check suite."""
    return [check for check in (checks.checks if checks else []) if check.name == "freshness"]


def measured_rpo(checks: CheckSuiteResult | None) -> RpoMeasurement | None:
    """The measured RPO: the largest age (``evidence.rpo_s``: how much older the newest row was
    than the snapshot) among the freshness checks, floored at 0, with the check that measured it.
    None when no freshness rule ran or none could measure an age (empty table, error, skipped)."""
    worst: CheckResult | None = None
    worst_age = 0.0
    for check in freshness_results(checks):
        age = check.evidence.get("rpo_s")
        if isinstance(age, bool) or not isinstance(age, int | float):
            continue
        if worst is None or age > worst_age:
            worst, worst_age = check, float(age)
    if worst is None:
        return None
    evidence = worst.evidence
    return RpoMeasurement(
        seconds=round(max(worst_age, 0.0), 3),
        check=worst.display_name,
        column=_text_or_none(evidence.get("column")),
        newest=_text_or_none(evidence.get("newest")),
        reference=_text_or_none(evidence.get("reference")),
        reference_is=_text_or_none(evidence.get("reference_is")),
    )


# ------------------------------------------------------------------------------ the report


def _check_summary(suite: CheckSuiteResult | None) -> CheckSummary | None:
    if suite is None:
        return None
    by_status: dict[Any, int] = {}
    for check in suite.checks:
        by_status[check.status] = by_status.get(check.status, 0) + 1
    return CheckSummary(
        total=len(suite.checks),
        by_status=by_status,
        failed=[
            FailedCheckSummary(
                name=check.display_name,
                status=check.status.value,
                message=check.message,
            )
            for check in _not_passed(suite)
        ],
    )


def partition_of(run: RunRecord) -> str:
    """The AWS partition the snapshot is in (``aws``, ``aws-cn``, ``aws-us-gov``), from its ARN."""
    parts = run.snapshot.snapshot_arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def report_location(run: RunRecord, *, bucket: str, key: str) -> ReportLocation:
    """Where the report and its HTML page are, with the S3 console's page of each in the
    report's region (the region its key names)."""
    html_key = html_report_key(key)
    region, partition = region_of(run), partition_of(run)
    return ReportLocation(
        bucket=bucket,
        key=key,
        html_key=html_key,
        console_url=s3_console_url(bucket, key, region, partition),
        html_console_url=s3_console_url(bucket, html_key, region, partition),
    )


def drill_report(run: RunRecord, *, bucket: str, key: str) -> DrillReport:
    """The report of a finished run (its verdict and finish time set)."""
    snapshot = run.snapshot
    suite = run.checks
    rpo = measured_rpo(suite)
    previous = run.chain.previous if run.chain is not None else None
    return DrillReport(
        schema_version=REPORT_SCHEMA_VERSION,
        kind=REPORT_KIND,
        run=ReportRun(
            run_id=run.run_id,
            trigger=run.trigger,
            requested_by=run.requested_by,
            created_at=run.created_at,
            finished_at=run.finished_at,
            deadline=run.deadline,
        ),
        verdict=run.verdict,
        reason=run.reason,
        source=ReportSource(
            db_instance_identifier=run.source_db,
            engine=snapshot.engine,
            engine_version=snapshot.engine_version,
            region=snapshot.region,
            account_id=snapshot.account_id,
        ),
        snapshot=ReportSnapshot(
            snapshot_id=snapshot.snapshot_id,
            snapshot_arn=snapshot.snapshot_arn,
            snapshot_type=snapshot.snapshot_type,
            created_at=snapshot.snapshot_created_at,
            encrypted=snapshot.encrypted,
            kms_key_id=snapshot.kms_key_id,
            allocated_storage_gib=snapshot.allocated_storage_gib,
        ),
        restored_instance=ReportRestoredInstance(
            db_instance_identifier=run.instance_id,
            instance_class=run.instance_class,
            deleted=run.state in (RunState.REPORTING, RunState.FINISHED),
        ),
        timings=ReportTimings(
            phases=phase_timings(run),
            restore_seconds=_round(run.restore_seconds),
            total_seconds=_round(
                (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
            ),
        ),
        recovery=ReportRecovery(
            rto_seconds=_round(run.restore_seconds),
            rpo_seconds=rpo.seconds if rpo else None,
            rpo_measured_by=rpo,
            freshness_checks=len(freshness_results(suite)),
        ),
        policy=run.policy,
        checks=suite,
        check_summary=_check_summary(suite),
        chain=ReportChain(
            algorithm=CHAIN_ALGORITHM,
            previous=(
                PreviousReport(run_id=previous.run_id, key=previous.key, sha256=previous.sha256)
                if previous is not None
                else None
            ),
        ),
        location=report_location(run, bucket=bucket, key=key),
    )


def build_report(run: RunRecord, *, bucket: str, key: str) -> dict[str, Any]:
    """The report as the JSON document stored (see :func:`report_bytes`)."""
    return drill_report(run, bucket=bucket, key=key).model_dump(mode="json")


# ------------------------------------------------------------------------------ evidence, briefly


def evidence_summary(check: dict[str, Any]) -> list[str]:
    """What a person needs from a failed check's evidence, in a few short lines: for row counts
    the table and the numbers, for amcheck the relation and the server's message, for an
    assertion its value and expectation, for freshness the column and the age."""
    evidence = check.get("evidence")
    evidence = evidence if isinstance(evidence, dict) else {}
    name = check.get("name")
    if name == "row_counts" or name == "content_fingerprint":
        lines = [_table_problem(problem) for problem in _dicts(evidence.get("problems"))]
        if evidence.get("must_match_mismatched"):
            lines.append("changed but must match: " + _joined(evidence["must_match_mismatched"]))
        if evidence.get("skipped_count"):
            lines.append(f"{evidence['skipped_count']} table(s) not counted (time budget)")
    elif name in ("amcheck_heap", "amcheck_btree"):
        lines = [_amcheck_problem(problem) for problem in _dicts(evidence.get("problems"))]
    elif name == "assertion":
        lines = [_assertion_line(check, evidence)]
    elif name == "freshness":
        lines = [_freshness_line(evidence)]
    elif name == "schema_fingerprint":
        lines = [
            f"{what}: {_joined(evidence[what])}"
            for what in ("missing", "changed", "added")
            if evidence.get(what)
        ]
    else:
        lines = []
    if not lines and (evidence.get("server_message") or evidence.get("sqlstate")):
        lines = [_server_said(evidence)]
    if not lines:
        lines = [
            f"{key}: {value}"
            for key, value in evidence.items()
            if isinstance(value, str | int | float | bool) or value is None
        ][:3]
    shown = [_clip(line, EVIDENCE_LINE_MAX_CHARS) for line in lines[:EVIDENCE_LINES_MAX]]
    if len(lines) > EVIDENCE_LINES_MAX:
        shown.append(f"… and {len(lines) - EVIDENCE_LINES_MAX} more")
    return shown


def _table_problem(problem: dict[str, Any]) -> str:
    table = problem.get("table", "?")
    old, new = problem.get("baseline_rows"), problem.get("rows")
    if isinstance(old, int) and isinstance(new, int):
        return f"{table}: {old} → {new} rows ({new - old:+d})"
    if problem.get("server_message"):
        return f"{table}: {_server_said(problem)}"
    return f"{table}: {problem.get('message') or problem.get('status')}"


def _amcheck_problem(problem: dict[str, Any]) -> str:
    where = str(problem.get("relation", "?"))
    if problem.get("table"):
        where += f" (on {problem['table']})"
    first = _dicts(problem.get("first_reports"))
    if first:
        report = first[0]
        return (
            f"{where}: {problem.get('reports', len(first))} corruption report(s), first at "
            f"block {report.get('block')}, offset {report.get('offset')}: {report.get('message')}"
        )
    if problem.get("server_message"):
        return f"{where}: {_server_said(problem)}"
    return f"{where}: {problem.get('message') or problem.get('status')}"


def _assertion_line(check: dict[str, Any], evidence: dict[str, Any]) -> str:
    name = check.get("object") or "assertion"
    if "value" in evidence:
        return f"{name}: value {json.dumps(evidence['value'])}, expected {evidence.get('expect')}"
    if evidence.get("server_message"):
        return f"{name}: {_server_said(evidence)} (expected {evidence.get('expect')})"
    return f"{name}: {check.get('message') or 'no value'} (expected {evidence.get('expect')})"


def _freshness_line(evidence: dict[str, Any]) -> str:
    column = evidence.get("column") or ".".join(
        str(evidence[k]) for k in ("schema", "table", "column") if evidence.get(k)
    )
    age = evidence.get("rpo_s")
    limit = evidence.get("max_age_s")
    limit_text = f" (limit {duration_text(limit)})" if isinstance(limit, int | float) else ""
    if isinstance(age, int | float):
        reference = evidence.get("reference_is") or "the snapshot"
        return (
            f"{column}: newest {evidence.get('newest')}, {duration_text(max(age, 0))} "
            f"older than the {reference}{limit_text}"
        )
    if evidence.get("server_message"):
        return f"{column}: {_server_said(evidence)}"
    return f"{column}: no age measured{limit_text}"


def _server_said(evidence: dict[str, Any]) -> str:
    message = str(evidence.get("server_message") or "server error")
    code = f" [{evidence['sqlstate']}]" if evidence.get("sqlstate") else ""
    return f"{message}{code}"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _joined(items: Any, limit: int = 5) -> str:
    items = [str(item) for item in items] if isinstance(items, list) else [str(items)]
    shown = ", ".join(items[:limit])
    return shown + (f" … and {len(items) - limit} more" if len(items) > limit else "")


def duration_text(seconds: float | None) -> str:
    """A duration for people: ``14.7s``, ``16m03s``, ``3h05m``, ``2d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes}m{rest:02d}s"
    if whole < 172_800:
        hours, rest = divmod(whole, 3600)
        return f"{hours}h{rest // 60:02d}m"
    days, rest = divmod(whole, 86_400)
    return f"{days}d{rest // 3600:02d}h"


# ------------------------------------------------------------------------------ the event


def _failed_check_entry(check: CheckResult) -> FailedCheck:
    return FailedCheck(
        name=check.display_name,
        status=check.status.value,
        message=_clip(check.message, EVENT_MESSAGE_MAX_CHARS) or None,
        check=check.name,
        database=check.database,
        object=check.object,
        evidence_summary=evidence_summary(check.model_dump(mode="json")),
    )


def finished_event(
    run: RunRecord, *, bucket: str, key: str, report_sha256: str | None = None
) -> DrillFinished:
    """The Drill Finished event's detail: what Slack (or any subscriber) needs without reading
    the report. At most :data:`EVENT_DETAIL_MAX_BYTES` of JSON: failed checks (failures first)
    are listed while they fit; ``failed_checks_total`` says how many there were."""
    not_passed = sorted(_not_passed(run.checks), key=lambda c: NOT_PASSED.index(c.status.value))
    rpo = measured_rpo(run.checks)
    snapshot = run.snapshot
    location = report_location(run, bucket=bucket, key=key)
    detail = DrillFinished(
        run_id=run.run_id,
        verdict=run.verdict.value if run.verdict else None,
        reason=_clip(run.reason, EVENT_REASON_MAX_CHARS) if run.reason else None,
        source_db=run.source_db,
        snapshot_id=snapshot.snapshot_id,
        snapshot_created_at=(
            snapshot.snapshot_created_at.isoformat() if snapshot.snapshot_created_at else None
        ),
        engine_version=snapshot.engine_version,
        region=snapshot.region,
        account_id=snapshot.account_id,
        instance_id=run.instance_id,
        trigger=run.trigger,
        requested_by=run.requested_by,
        phases=[PhaseSeconds(phase=t.phase, seconds=t.seconds) for t in phase_timings(run)],
        restore_seconds=_round(run.restore_seconds),
        rpo_seconds=rpo.seconds if rpo else None,
        rpo_check=rpo.check if rpo else None,
        failed_checks_total=len(not_passed),
        report=EventReportLocation(
            bucket=bucket,
            key=key,
            uri=f"s3://{bucket}/{key}",
            html_key=location.html_key,
            sha256=report_sha256,
            console_url=location.console_url,
            html_console_url=location.html_console_url,
        ),
        created_at=run.created_at.isoformat(),
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )
    size = _json_size(detail.model_dump(mode="json"))
    for check in not_passed:
        entry = _failed_check_entry(check)
        entry_size = _json_size(entry.model_dump(mode="json")) + 2  # and its ", "
        if size + entry_size > EVENT_DETAIL_MAX_BYTES:
            break
        detail.failed_checks.append(entry)
        size += entry_size
    return detail


def finished_event_detail(
    run: RunRecord, *, bucket: str, key: str, report_sha256: str | None = None
) -> dict[str, Any]:
    """:func:`finished_event`, as the JSON the event carries."""
    return finished_event(run, bucket=bucket, key=key, report_sha256=report_sha256).model_dump(
        mode="json"
    )


def _json_size(value: Any) -> int:
    # ASCII-escaped, as the adapter sends it: never smaller than the UTF-8 bytes.
    return len(json.dumps(value).encode("utf-8"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
