"""The Slack message for a finished drill, built from the Drill Finished event alone."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from restoredrill.ports import ChatNotifier

VERDICT_ICONS = {"PASSED": ":white_check_mark:", "FAILED": ":x:", "ERROR": ":warning:"}


class PhaseSeconds(BaseModel):
    phase: str
    seconds: float | None = None


class FailedCheck(BaseModel):
    name: str | None = None
    status: str | None = None
    message: str | None = None


class ReportLocation(BaseModel):
    bucket: str
    key: str
    uri: str


class DrillFinished(BaseModel):
    """The detail of a Drill Finished event."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(min_length=1)
    verdict: str | None = None
    reason: str | None = None
    source_db: str
    snapshot_id: str
    phases: list[PhaseSeconds] = Field(default_factory=list)
    restore_seconds: float | None = None
    failed_checks: list[FailedCheck] = Field(default_factory=list)
    report: ReportLocation


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def render(finished: DrillFinished) -> tuple[str, list[dict[str, Any]]]:
    verdict = finished.verdict or "UNKNOWN"
    icon = VERDICT_ICONS.get(verdict, ":hourglass:")
    headline = f"{icon} Restore drill {verdict}: {finished.source_db} from {finished.snapshot_id}"
    lines = [headline]
    if finished.reason:
        lines.append(f"Why: {finished.reason}")
    for check in finished.failed_checks:
        detail = f": {check.message}" if check.message else ""
        lines.append(f"- check {check.name} {check.status}{detail}")
    timings = ", ".join(f"{p.phase} {_duration(p.seconds)}" for p in finished.phases)
    lines.append(f"Phases: {timings}")
    lines.append(f"Restore time (RTO): {_duration(finished.restore_seconds)}")
    lines.append(f"Report: {finished.report.uri}")
    lines.append(f"Run: {finished.run_id}")
    text = "\n".join(lines)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
    ]
    return text, blocks


def announce(finished: DrillFinished, chat: ChatNotifier) -> str:
    text, blocks = render(finished)
    chat.post(text, blocks)
    return text
