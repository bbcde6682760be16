"""The drill report for people: one self-contained HTML page, stored beside the JSON report.

A pure function of the JSON report (and of the SHA-256 of its stored bytes), so a repeated
publish writes the same page. The page holds no script and fetches nothing: its styles are
inline, the phase timeline is inline SVG, and its Content-Security-Policy forbids anything else,
so it can be opened straight from S3 or an auditor's disk. Its only links (navigation, not
loads) are the S3 console's pages of the report and of itself, as the report names them. Names
that come from the restored databases (check objects, messages, evidence) are escaped by the
template engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from restoredrill.domain.report.evidence import evidence_summary, partly_verified
from restoredrill.domain.report.model import DrillReport
from restoredrill.domain.report.text import display_name, duration_text, usd_text

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE_NAME = "drill-report.html.j2"

# Failures first: what a reader must act on comes before what merely passed. A status the
# report schema does not know sorts right after the errors, where it cannot be overlooked.
STATUS_ORDER = {"fail": 0, "error": 1, "warn": 3, "skipped": 4, "pass": 5}
UNKNOWN_STATUS_RANK = 2
VERDICT_CLASSES = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "TIMED_OUT": "timed-out",
}

# The timeline's geometry, in SVG user units (the chart scales to the page's width).
CHART_WIDTH = 1000
CHART_LABEL_WIDTH = 200
CHART_RIGHT_MARGIN = 40
CHART_ROW_HEIGHT = 30
CHART_BAR_HEIGHT = 18
CHART_AXIS_HEIGHT = 30
CHART_TICKS = 4
# A phase of (almost) no duration still gets a bar a reader can see.
CHART_MIN_BAR_WIDTH = 3.0


@dataclass(frozen=True)
class PhaseBar:
    name: str
    duration: str
    started_at: str
    ended_at: str | None
    x: float
    y: float
    width: float
    label_y: float


@dataclass(frozen=True)
class AxisTick:
    x: float
    label: str
    anchor: str


@dataclass(frozen=True)
class PhaseChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    axis_y: float
    bar_height: int
    bars: list[PhaseBar]
    ticks: list[AxisTick]
    total: str


@dataclass(frozen=True)
class CheckRow:
    name: str
    level: Any
    status: str
    message: str
    duration: str
    summary: list[str]
    evidence_json: str


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["moment"] = moment_text
    environment.filters["seconds"] = duration_text
    return environment


@cache
def _template() -> Template:
    return _environment().get_template(TEMPLATE_NAME)


def render_report_html(
    document: dict[str, Any] | DrillReport, *, report_sha256: str | None = None
) -> str:
    """The HTML page of a drill report built by
    :func:`restoredrill.domain.report.document.build_report`, read through its model
    (:class:`~restoredrill.domain.report.model.DrillReport`): a document that is not a report of
    the current version is refused, not half-rendered.

    ``report_sha256`` is the SHA-256 of the JSON report's stored bytes: shown so that an auditor
    can compare it with the object's.
    """
    model = document if isinstance(document, DrillReport) else DrillReport.model_validate(document)
    report = model.model_dump(mode="json")
    verdict = report.get("verdict")
    suite = report.get("checks")
    recovery = report["recovery"]
    return _template().render(
        report=report,
        verdict=verdict or "UNKNOWN",
        verdict_class=VERDICT_CLASSES.get(str(verdict), "unknown"),
        headline=_headline(report),
        chart=phase_chart(report["timings"]["phases"]),
        total=duration_text(report["timings"].get("total_seconds")),
        rto=duration_text(recovery.get("rto_seconds")),
        rpo=duration_text(recovery.get("rpo_seconds")),
        rows=checks_in_reading_order(suite),
        suite=suite,
        suite_duration=_milliseconds_text(suite.get("duration_ms")) if suite else "-",
        status_counts=_status_counts(report.get("check_summary")),
        policy_json=_pretty_json(report.get("policy")),
        chain=report.get("chain"),
        report_sha256=report_sha256,
        location=report["location"],
        cost=_cost_texts(report["cost"]),
    )


def _cost_texts(cost: dict[str, Any]) -> dict[str, str]:
    """The estimate's total and lines in dollars, a line without a price as ``no price``."""
    return {
        "total": usd_text(cost["total_usd"]),
        **{
            line: usd_text(cost[line]["usd"])
            for line in ("instance", "storage", "lambda_invocations")
        },
    }


def _headline(report: dict[str, Any]) -> str:
    """The reason the verdict is not PASSED; for a PASSED drill, how it passed."""
    if report.get("reason"):
        return str(report["reason"])
    if report.get("verdict") != "PASSED":
        return "No reason was recorded."
    summary = report.get("check_summary") or {}
    total = summary.get("total", 0)
    passed = (summary.get("by_status") or {}).get("pass", 0)
    rto = duration_text(report["recovery"].get("rto_seconds"))
    partial = partly_verified(report.get("checks"))
    if passed == total and not partial:
        return f"Restored in {rto}; all {total} checks passed."
    text = f"Restored in {rto}; {passed} of {total} checks passed and none failed."
    return f"{text} {partial}." if partial else text


def _status_counts(summary: dict[str, Any] | None) -> list[tuple[str, int]]:
    by_status = (summary or {}).get("by_status") or {}
    return sorted(
        ((str(status), int(count)) for status, count in by_status.items()),
        key=lambda item: STATUS_ORDER.get(item[0], UNKNOWN_STATUS_RANK),
    )


def checks_in_reading_order(suite: dict[str, Any] | None) -> list[CheckRow]:
    """Every check of the suite, failures first (fail, error, warn, skipped, pass); checks of the
    same status keep the order the checker ran them in."""
    checks = [check for check in (suite or {}).get("checks", []) if isinstance(check, dict)]
    checks.sort(key=lambda check: STATUS_ORDER.get(str(check.get("status")), UNKNOWN_STATUS_RANK))
    return [
        CheckRow(
            name=display_name(check),
            level=check.get("level"),
            status=str(check.get("status")),
            message=str(check.get("message") or ""),
            duration=_milliseconds_text(check.get("duration_ms")),
            summary=evidence_summary(check),
            evidence_json=_pretty_json(check.get("evidence")),
        )
        for check in checks
    ]


def phase_chart(phases: list[dict[str, Any]]) -> PhaseChart:
    """One bar per phase on a common time axis that starts when the first phase started. A phase
    that never ended is drawn up to the last moment the report knows of."""
    starts = [_instant(phase["started_at"]) for phase in phases]
    ends = [_instant(phase["ended_at"]) if phase.get("ended_at") else None for phase in phases]
    known = [moment for moment in starts + ends if moment is not None]
    origin = min(known, default=None)
    last = max(known, default=None)
    span = (last - origin).total_seconds() if origin and last else 0.0
    plot_left = CHART_LABEL_WIDTH
    plot_right = CHART_WIDTH - CHART_RIGHT_MARGIN
    plot_width = plot_right - plot_left

    def x_of(moment: datetime | None) -> float:
        if origin is None or moment is None or span <= 0:
            return float(plot_left)
        return plot_left + (moment - origin).total_seconds() / span * plot_width

    bars = []
    for row, (phase, start, end) in enumerate(zip(phases, starts, ends, strict=True)):
        begin_x = x_of(start)
        width = max(x_of(end or last) - begin_x, CHART_MIN_BAR_WIDTH)
        begin_x = min(begin_x, plot_right - width)
        duration = duration_text(phase.get("seconds")) if end else "did not end"
        bars.append(
            PhaseBar(
                name=str(phase["phase"]),
                duration=duration,
                started_at=str(phase["started_at"]),
                ended_at=phase.get("ended_at"),
                x=round(begin_x, 2),
                y=row * CHART_ROW_HEIGHT + (CHART_ROW_HEIGHT - CHART_BAR_HEIGHT) / 2,
                width=round(width, 2),
                label_y=row * CHART_ROW_HEIGHT + CHART_ROW_HEIGHT / 2,
            )
        )
    axis_y = len(phases) * CHART_ROW_HEIGHT + 4
    ticks = [
        AxisTick(
            x=round(plot_left + plot_width * step / CHART_TICKS, 2),
            label=duration_text(span * step / CHART_TICKS),
            anchor="start" if step == 0 else "end" if step == CHART_TICKS else "middle",
        )
        for step in range(CHART_TICKS + 1)
    ]
    return PhaseChart(
        width=CHART_WIDTH,
        height=int(axis_y + CHART_AXIS_HEIGHT),
        plot_left=plot_left,
        plot_right=plot_right,
        axis_y=axis_y,
        bar_height=CHART_BAR_HEIGHT,
        bars=bars,
        ticks=ticks,
        total=duration_text(span),
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def moment_text(value: Any) -> str:
    """A report timestamp for people, to the second: ``2026-11-27 03:12:20 UTC``; ``-`` when
    there is none. The JSON report keeps the exact instant."""
    if value is None:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ", timespec="seconds")


def _milliseconds_text(milliseconds: Any) -> str:
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int | float):
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return duration_text(milliseconds / 1000)


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
