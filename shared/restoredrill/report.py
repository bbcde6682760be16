"""The drill report (the audit evidence) and the Drill Finished event, both built from the run.

Both are pure functions of the run record, so a retried publish writes the same document again.
Neither ever holds a password: the run record does not carry one.

The report's shape is a JSON Schema (draft 2020-12) shipped in this package,
``restoredrill/schemas/drill-report-<version>.json`` (:data:`REPORT_SCHEMA_PATH`, read with
:func:`report_schema`); its ``$id`` ends with :data:`REPORT_SCHEMA_VERSION`, which every report
carries as ``schema_version``. The repository keeps the same file as
``schemas/drill-report/<version>.json``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from restoredrill.baseline import unpack_document
from restoredrill.models import RunRecord, RunState

REPORT_SCHEMA_VERSION = "1.2"
REPORT_SCHEMA_ID = f"urn:restoredrill:schema:drill-report:{REPORT_SCHEMA_VERSION}"
REPORT_SCHEMA_PATH = (
    Path(__file__).resolve().parent / "schemas" / f"drill-report-{REPORT_SCHEMA_VERSION}.json"
)
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


@cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema every drill report validates against (see the module's docstring)."""
    schema: dict[str, Any] = json.loads(REPORT_SCHEMA_PATH.read_text(encoding="utf-8"))
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


def phase_timings(run: RunRecord) -> list[dict[str, Any]]:
    timings = []
    for state, name in PHASE_NAMES.items():
        phase = run.phases.get(state)
        if phase is None:
            continue
        timings.append(
            {
                "phase": name,
                "started_at": phase.started_at.isoformat(),
                "ended_at": phase.ended_at.isoformat() if phase.ended_at else None,
                "seconds": _round(phase.duration_seconds),
            }
        )
    return timings


def expanded_checks(checks: dict[str, Any] | None) -> dict[str, Any] | None:
    """The check suite result in full, whether it travelled plain or compressed."""
    return unpack_document(checks) if checks else None


def display_name(check: dict[str, Any]) -> str:
    """A check named for people: ``row_counts[app]``, ``freshness[app/orders.created_at]``."""
    where = "/".join(str(part) for part in (check.get("database"), check.get("object")) if part)
    return f"{check.get('name')}[{where}]" if where else str(check.get("name"))


def failed_checks(checks: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The checks that failed or could not run, named for people (``row_counts[app]``)."""
    result = expanded_checks(checks) or {}
    failed = []
    for check in result.get("checks", []):
        if not isinstance(check, dict) or check.get("status") not in NOT_PASSED:
            continue
        failed.append(
            {
                "name": display_name(check),
                "status": check.get("status"),
                "message": check.get("message"),
            }
        )
    return failed


# ------------------------------------------------------------------------------ measured RPO


def freshness_results(checks: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The results of the ``freshness`` checks (one per rule) in the run's check suite."""
    result = expanded_checks(checks) or {}
    return [
        check
        for check in result.get("checks", [])
        if isinstance(check, dict) and check.get("name") == "freshness"
    ]


def measured_rpo(checks: dict[str, Any] | None) -> dict[str, Any] | None:
    """The measured RPO: the largest age (``evidence.rpo_s``: how much older the newest row was
    than the snapshot) among the freshness checks, floored at 0, with the check that measured it.
    None when no freshness rule ran or none could measure an age (empty table, error, skipped)."""
    worst: dict[str, Any] | None = None
    worst_age = 0.0
    for check in freshness_results(checks):
        evidence = check.get("evidence")
        age = evidence.get("rpo_s") if isinstance(evidence, dict) else None
        if isinstance(age, bool) or not isinstance(age, int | float):
            continue
        if worst is None or age > worst_age:
            worst, worst_age = check, float(age)
    if worst is None:
        return None
    evidence = worst["evidence"]
    return {
        "seconds": _round(max(worst_age, 0.0)),
        "check": display_name(worst),
        "column": evidence.get("column"),
        "newest": _text_or_none(evidence.get("newest")),
        "reference": _text_or_none(evidence.get("reference")),
        "reference_is": _text_or_none(evidence.get("reference_is")),
    }


# ------------------------------------------------------------------------------ the report


def _normalised_suite(checks: dict[str, Any] | None) -> dict[str, Any] | None:
    """The expanded suite with every check carrying all its fields (defaults as the checker's
    model has them), so that each check in the report has its evidence, even if empty."""
    suite = expanded_checks(checks)
    if suite is None:
        return None
    normalised = []
    for check in suite.get("checks", []):
        if isinstance(check, dict):
            check = {
                "message": "",
                "evidence": {},
                "duration_ms": 0,
                "database": None,
                "object": None,
            } | check
        normalised.append(check)
    return {**suite, "checks": normalised}


def _check_summary(suite: dict[str, Any] | None) -> dict[str, Any] | None:
    if suite is None:
        return None
    by_status: dict[str, int] = {}
    for check in suite["checks"]:
        status = str(check.get("status")) if isinstance(check, dict) else "invalid"
        by_status[status] = by_status.get(status, 0) + 1
    return {
        "total": len(suite["checks"]),
        "by_status": by_status,
        "failed": failed_checks(suite),
    }


def build_report(run: RunRecord, *, bucket: str, key: str) -> dict[str, Any]:
    snapshot = run.snapshot
    suite = _normalised_suite(run.checks)
    rpo = measured_rpo(suite)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "restoredrill.drill-report",
        "run": {
            "run_id": run.run_id,
            "trigger": run.trigger,
            "requested_by": run.requested_by,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "deadline": run.deadline.isoformat(),
        },
        "verdict": run.verdict.value if run.verdict else None,
        "reason": run.reason,
        "source": {
            "db_instance_identifier": run.source_db,
            "engine": snapshot.engine,
            "engine_version": snapshot.engine_version,
            "region": snapshot.region,
            "account_id": snapshot.account_id,
        },
        "snapshot": {
            "snapshot_id": snapshot.snapshot_id,
            "snapshot_arn": snapshot.snapshot_arn,
            "snapshot_type": snapshot.snapshot_type,
            "created_at": (
                snapshot.snapshot_created_at.isoformat() if snapshot.snapshot_created_at else None
            ),
            "encrypted": snapshot.encrypted,
            "kms_key_id": snapshot.kms_key_id,
            "allocated_storage_gib": snapshot.allocated_storage_gib,
        },
        "restored_instance": {
            "db_instance_identifier": run.instance_id,
            "instance_class": run.instance_class,
            "deleted": run.state in (RunState.REPORTING, RunState.FINISHED),
        },
        "timings": {
            "phases": phase_timings(run),
            "restore_seconds": _round(run.restore_seconds),
            "total_seconds": _round(
                (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
            ),
        },
        "recovery": {
            "rto_seconds": _round(run.restore_seconds),
            "rpo_seconds": rpo["seconds"] if rpo else None,
            "rpo_measured_by": rpo,
            "freshness_checks": len(freshness_results(suite)),
        },
        "policy": run.policy,
        "checks": suite,
        "check_summary": _check_summary(suite),
        "chain": {
            "algorithm": CHAIN_ALGORITHM,
            "previous": (
                run.chain.previous.model_dump(mode="json")
                if run.chain is not None and run.chain.previous is not None
                else None
            ),
        },
        "location": {"bucket": bucket, "key": key, "html_key": html_report_key(key)},
    }


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


def _failed_check_entry(check: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": display_name(check),
        "status": check.get("status"),
        "message": _clip(str(check.get("message") or ""), EVENT_MESSAGE_MAX_CHARS) or None,
        "check": _text_or_none(check.get("name")),
        "database": _text_or_none(check.get("database")),
        "object": _text_or_none(check.get("object")),
        "evidence_summary": evidence_summary(check),
    }


def finished_event_detail(
    run: RunRecord, *, bucket: str, key: str, report_sha256: str | None = None
) -> dict[str, Any]:
    """The Drill Finished event's detail: what Slack (or any subscriber) needs without reading
    the report. At most :data:`EVENT_DETAIL_MAX_BYTES` of JSON: failed checks (failures first)
    are listed while they fit; ``failed_checks_total`` says how many there were."""
    suite = expanded_checks(run.checks) or {}
    not_passed = [
        check
        for check in suite.get("checks", [])
        if isinstance(check, dict) and check.get("status") in NOT_PASSED
    ]
    not_passed.sort(key=lambda check: NOT_PASSED.index(check["status"]))
    rpo = measured_rpo(run.checks)
    snapshot = run.snapshot
    detail: dict[str, Any] = {
        "run_id": run.run_id,
        "verdict": run.verdict.value if run.verdict else None,
        "reason": _clip(run.reason, EVENT_REASON_MAX_CHARS) if run.reason else None,
        "source_db": run.source_db,
        "snapshot_id": snapshot.snapshot_id,
        "snapshot_created_at": (
            snapshot.snapshot_created_at.isoformat() if snapshot.snapshot_created_at else None
        ),
        "engine_version": snapshot.engine_version,
        "region": snapshot.region,
        "account_id": snapshot.account_id,
        "instance_id": run.instance_id,
        "trigger": run.trigger,
        "requested_by": run.requested_by,
        "phases": [
            {"phase": timing["phase"], "seconds": timing["seconds"]}
            for timing in phase_timings(run)
        ],
        "restore_seconds": _round(run.restore_seconds),
        "rpo_seconds": rpo["seconds"] if rpo else None,
        "rpo_check": rpo["check"] if rpo else None,
        "failed_checks": [],
        "failed_checks_total": len(not_passed),
        "report": {
            "bucket": bucket,
            "key": key,
            "uri": f"s3://{bucket}/{key}",
            "html_key": html_report_key(key),
            "sha256": report_sha256,
        },
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    size = _json_size(detail)
    for check in not_passed:
        entry = _failed_check_entry(check)
        entry_size = _json_size(entry) + 1  # and its comma
        if size + entry_size > EVENT_DETAIL_MAX_BYTES:
            break
        detail["failed_checks"].append(entry)
        size += entry_size
    return detail


def _json_size(value: Any) -> int:
    # ASCII-escaped, as the adapter sends it: never smaller than the UTF-8 bytes.
    return len(json.dumps(value).encode("utf-8"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
