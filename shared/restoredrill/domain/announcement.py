"""The Slack message for a finished drill, built from the Drill Finished event alone.

A Block Kit message (https://api.slack.com/reference/block-kit/blocks) plus the plain ``text``
Slack shows in notifications and wherever blocks cannot be shown. A passed drill reads in one
glance; a failed one names each failing check with its evidence and the reason, then where the
report is: a link to the S3 console's page of the report and of its HTML rendering, so that
on-call gets from Slack to the evidence in one click (an event from an earlier version, without
those pages, names the ``s3://`` URIs instead). Slack's limits are respected whatever the event
holds: at most 50 blocks, 3000 characters of section text, 150 of header text, 10 fields of
2000; what does not fit ends in "… and N more".
"""

from __future__ import annotations

from typing import Any

from restoredrill.domain.report.model import DrillFinished, EventReportLocation, FailedCheck
from restoredrill.domain.report.text import duration_text, usd_text
from restoredrill.ports.gateways import ChatNotifier

__all__ = ["DrillFinished", "announce", "render"]

VERDICT_ICONS = {
    "PASSED": ":white_check_mark:",
    "FAILED": ":x:",
    "ERROR": ":warning:",
    "TIMED_OUT": ":hourglass:",
}
UNKNOWN_ICON = ":hourglass:"
STATUS_ICONS = {"fail": ":x:", "error": ":warning:"}

MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000
CHECK_SECTIONS_MAX = 10  # failed checks shown as their own section; the rest are counted
CHECK_MESSAGE_MAX = 600
FALLBACK_CHECKS_MAX = 25
FALLBACK_MESSAGE_MAX = 300
FALLBACK_NAME_MAX = 200
FALLBACK_REASON_MAX = 1000


def _duration(seconds: float | None) -> str:
    return duration_text(seconds)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Text for mrkdwn: Slack's three control characters escaped, nothing else changed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    inner = _escape(text.replace("`", "'"))
    return f"`{inner}`"


def _lines_within(lines: list[str], limit: int, noun: str = "more") -> str:
    """As many whole ``lines`` as fit in ``limit`` characters, then "… and N more"."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = f"\n… and {rest} {noun}"
        cost = len(line) + (1 if kept else 0)
        # the last line needs no room for a tail; any other must leave room for one
        room = limit - used - (0 if rest == 1 else len(tail))
        if cost > room:
            if not kept:  # not even one line fits: clip it
                clipped = _clip(line, limit - len(tail))
                return clipped + tail if rest > 1 else _clip(line, limit)
            return "\n".join(kept) + tail
        kept.append(line)
        used += cost
    return "\n".join(kept)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_TEXT_MAX)}}


def _headline(finished: DrillFinished) -> str:
    verdict = finished.verdict or "UNKNOWN"
    icon = VERDICT_ICONS.get(verdict, UNKNOWN_ICON)
    if finished.point_in_time is not None:
        return (
            f"{icon} Point-in-time restore drill {verdict}: {finished.source_db} to "
            f"{finished.point_in_time}"
        )
    backup = f" ({finished.recovery_point})" if finished.recovery_point else ""
    return (
        f"{icon} Restore drill {verdict}: {finished.source_db} from {finished.snapshot_id}{backup}"
    )


def _rpo_label(finished: DrillFinished) -> str:
    """The RPO of a point-in-time drill is the gap to the requested time, not to a snapshot."""
    return "Point-in-time RPO" if finished.point_in_time is not None else "Data freshness (RPO)"


def _fallback(finished: DrillFinished) -> str:
    """The text Slack shows in notifications and where blocks cannot be shown: verdict,
    database, why, one line per failing check (``- check <name> <status>: <message>``),
    timings, the report's location and the run."""
    lines = [_headline(finished)]
    if finished.reason:
        lines.append(f"Why: {_clip(finished.reason, FALLBACK_REASON_MAX)}")
    if finished.partly_verified:
        lines.append(_clip(finished.partly_verified, FALLBACK_REASON_MAX))
    for check in finished.failed_checks[:FALLBACK_CHECKS_MAX]:
        detail = f": {_clip(check.message, FALLBACK_MESSAGE_MAX)}" if check.message else ""
        name = _clip(str(check.name), FALLBACK_NAME_MAX)
        lines.append(f"- check {name} {check.status}{detail}")
    unlisted = finished.failed_total - min(len(finished.failed_checks), FALLBACK_CHECKS_MAX)
    if unlisted > 0:
        lines.append(f"… and {unlisted} more failed checks (see the report)")
    timings = ", ".join(f"{p.phase} {_duration(p.seconds)}" for p in finished.phases)
    lines.append(f"Phases: {timings}")
    lines.append(f"Restore time (RTO): {_duration(finished.restore_seconds)}")
    if finished.rpo_seconds is not None:
        lines.append(f"{_rpo_label(finished)}: {_duration(finished.rpo_seconds)}")
    if finished.estimated_cost_usd is not None:
        lines.append(f"Estimated cost: {_cost(finished.estimated_cost_usd)}")
    report = finished.report
    if report.console_url:
        lines.append(f"Report: {report.console_url} ({report.uri})")
    else:
        lines.append(f"Report: {report.uri}")
    html_page = report.html_console_url or report.html_uri
    if html_page:
        lines.append(f"Readable report: {html_page}")
    lines.append(f"Run: {finished.run_id}")
    # Slack reads this text as mrkdwn too: nothing in it may become a mention; the console
    # pages are plain https URLs, which Slack shows as links of their own.
    return _escape("\n".join(lines))


def _cost(amount: float) -> str:
    return f"≈ {usd_text(amount)} at list prices"


def _facts(finished: DrillFinished) -> dict[str, Any]:
    backup = (
        f"*Restored to (point in time)*\n{_code(finished.point_in_time)}"
        if finished.point_in_time is not None
        else f"*Snapshot*\n{_code(finished.snapshot_id)}"
    )
    if finished.recovery_point:
        backup += f"\n{_escape(finished.recovery_point)}"
    fields = [
        f"*Database*\n{_escape(finished.source_db)}",
        backup,
        f"*Restore time (RTO)*\n{_duration(finished.restore_seconds)}",
    ]
    if finished.rpo_seconds is not None:
        fields.append(f"*{_rpo_label(finished)}*\n{_duration(finished.rpo_seconds)}")
    if finished.estimated_cost_usd is not None:
        fields.append(f"*Estimated cost*\n{_cost(finished.estimated_cost_usd)}")
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": _clip(text, FIELD_TEXT_MAX)} for text in fields],
    }


def _check_section(check: FailedCheck) -> dict[str, Any]:
    icon = STATUS_ICONS.get(check.status or "", ":grey_question:")
    head = f"{icon} *{_escape(check.name or 'check')}* {_escape(check.status or '')}".rstrip()
    lines = [head]
    if check.message:
        lines.append(_escape(_clip(check.message, CHECK_MESSAGE_MAX)))
    lines += [f"• {_escape(line)}" for line in check.evidence_summary]
    return _section(_lines_within(lines, SECTION_TEXT_MAX, "more lines"))


def _context(finished: DrillFinished) -> dict[str, Any]:
    parts = [f"Run {_code(finished.run_id)}"]
    if finished.phases:
        parts.append(
            "Phases: " + ", ".join(f"{p.phase} {_duration(p.seconds)}" for p in finished.phases)
        )
    started = finished.requested_by or finished.trigger
    if started:
        parts.append(f"Started by {_escape(started)}")
    if finished.region:
        parts.append(_escape(finished.region))
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _clip(" · ".join(parts), CONTEXT_TEXT_MAX)}],
    }


def _link(url: str, label: str) -> str:
    """A mrkdwn link: Slack's three control characters escaped in the URL (a console URL's
    query has ``&``), the label plain text."""
    return f"<{_escape(url)}|{_escape(label)}>"


def _report_links(report: EventReportLocation) -> str:
    """The report and its HTML rendering as links to their S3 console pages; the ``s3://``
    URI beside each, as code, for the CLI."""
    if report.console_url is None:
        text = f"*Report:* {_code(report.uri)}"
        if report.html_uri:
            text += f"\n*Readable:* {_code(report.html_uri)}"
        return text
    text = f"*Report:* {_link(report.console_url, 'JSON report in the S3 console')}"
    if report.html_console_url:
        text += (
            f"\n*Readable report:* {_link(report.html_console_url, 'HTML page in the S3 console')}"
        )
    text += f"\n{_code(report.uri)}"
    return text


def render(finished: DrillFinished) -> tuple[str, list[dict[str, Any]]]:
    """The message: (fallback text, Block Kit blocks)."""
    verdict = finished.verdict or "UNKNOWN"
    icon = VERDICT_ICONS.get(verdict, UNKNOWN_ICON)
    header = _clip(f"{icon} Restore drill {verdict}: {finished.source_db}", HEADER_TEXT_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
    ]
    if finished.reason:
        blocks.append(_section(f"*Why:* {_escape(finished.reason)}"))
    if finished.partly_verified:
        blocks.append(_section(f":warning: {_escape(finished.partly_verified)}"))
    blocks.append(_facts(finished))
    shown = finished.failed_checks[:CHECK_SECTIONS_MAX]
    blocks += [_check_section(check) for check in shown]
    unlisted = finished.failed_total - len(shown)
    if unlisted > 0:
        blocks.append(_section(f"… and {unlisted} more failed checks: see the report"))
    blocks.append(_section(_report_links(finished.report)))
    blocks.append(_context(finished))
    # 6 + CHECK_SECTIONS_MAX blocks at most, well within MAX_BLOCKS
    return _fallback(finished), blocks[:MAX_BLOCKS]


def announce(finished: DrillFinished, chat: ChatNotifier) -> str:
    text, blocks = render(finished)
    chat.post(text, blocks)
    return text
