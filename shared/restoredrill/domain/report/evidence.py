"""A failed check's evidence, in a few short lines a person can act on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from restoredrill.domain.report.text import clip, duration_text

EVIDENCE_LINES_MAX = 5
EVIDENCE_LINE_MAX_CHARS = 240


def evidence_summary(check: dict[str, Any]) -> list[str]:
    """What a person needs from a failed check's evidence, in a few short lines: for row counts
    the table and the numbers, for amcheck the relation and the server's message, for an
    assertion its value and expectation, for freshness the column and the age."""
    evidence = check.get("evidence")
    evidence = evidence if isinstance(evidence, dict) else {}
    lines_of = _LINES_BY_CHECK.get(str(check.get("name")))
    lines = lines_of(check, evidence) if lines_of else []
    if not lines and (evidence.get("server_message") or evidence.get("sqlstate")):
        lines = [_server_said(evidence)]
    if not lines:
        lines = [
            f"{key}: {value}"
            for key, value in evidence.items()
            if isinstance(value, str | int | float | bool) or value is None
        ][:3]
    shown = [clip(line, EVIDENCE_LINE_MAX_CHARS) for line in lines[:EVIDENCE_LINES_MAX]]
    if len(lines) > EVIDENCE_LINES_MAX:
        shown.append(f"… and {len(lines) - EVIDENCE_LINES_MAX} more")
    return shown


def _table_lines(check: dict[str, Any], evidence: dict[str, Any]) -> list[str]:
    lines = [_table_problem(problem) for problem in _dicts(evidence.get("problems"))]
    if evidence.get("must_match_mismatched"):
        lines.append("changed but must match: " + _joined(evidence["must_match_mismatched"]))
    if evidence.get("skipped_count"):
        lines.append(f"{evidence['skipped_count']} table(s) not counted (time budget)")
    return lines


def _amcheck_lines(check: dict[str, Any], evidence: dict[str, Any]) -> list[str]:
    return [_amcheck_problem(problem) for problem in _dicts(evidence.get("problems"))]


def _assertion_lines(check: dict[str, Any], evidence: dict[str, Any]) -> list[str]:
    return [_assertion_line(check, evidence)]


def _freshness_lines(check: dict[str, Any], evidence: dict[str, Any]) -> list[str]:
    return [_freshness_line(evidence)]


def _schema_lines(check: dict[str, Any], evidence: dict[str, Any]) -> list[str]:
    return [
        f"{what}: {_joined(evidence[what])}"
        for what in ("missing", "changed", "added")
        if evidence.get(what)
    ]


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


_LINES_BY_CHECK: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[str]]] = {
    "row_counts": _table_lines,
    "content_fingerprint": _table_lines,
    "amcheck_heap": _amcheck_lines,
    "amcheck_btree": _amcheck_lines,
    "assertion": _assertion_lines,
    "freshness": _freshness_lines,
    "schema_fingerprint": _schema_lines,
}


def partly_verified(suite: dict[str, Any] | None) -> str | None:
    """What a drill did not verify of what its policy asks for, in one sentence; None when it
    verified all of it. From the check suite's JSON (a run's checks or a report's): the share
    of the planned bytes when the checks ran in rounds, and the checks the time budget cut."""
    if not suite:
        return None
    checks = suite.get("checks") or []
    skipped = sum(1 for check in checks if check.get("status") == "skipped")
    rounds = next((c for c in checks if c.get("name") == "check_rounds"), None)
    parts = []
    if rounds is not None and rounds.get("status") != "pass":
        pct = (rounds.get("evidence") or {}).get("verified_pct")
        parts.append(f"{pct}% of the planned bytes verified" if pct is not None else "plan cut")
    if skipped:
        parts.append(f"{skipped} check(s) not run or not finished (see the report)")
    if not parts and suite.get("complete", True):
        return None
    return "Partly verified: " + ("; ".join(parts) or "the check suite was cut short")
