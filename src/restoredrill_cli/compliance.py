"""The compliance summary behind ``restoredrill report --since DATE [--format html|md|json]``.

For every opted-in database (and every database that still has drill reports): the drills run
in the window, counts per verdict, pass rate, the last drill and the last passing drill, the
RTO and RPO of each drill for the trend charts, and coverage against the policy's
``max_hours_between_drills``. Databases are keyed by region and DB instance identifier, so the
stacks of several regions (writing to one central bucket) never merge two databases of the
same name.

Pure: the caller fetches the reports (S3) and the opted-in databases (RDS DescribeDBInstances,
in every region) and passes them in with ``now``; nothing here reads a clock, a file or the
environment, except Jinja's loading of the HTML template from this package.

The last drill and the last passing drill are taken from every report passed in, including
those created before ``since`` (they are flagged ``before_window``), so that a database whose
last pass is older than the window still shows it; the caller should therefore pass at least
the newest reports from before the window too. Counts, pass rates and trends cover the window
only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Final, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from restoredrill.domain.report.text import duration_text, usd_text
from restoredrill.ports.policy import coverage_hours

__all__ = [
    "ComplianceSummary",
    "Coverage",
    "DatabaseSummary",
    "DrillRef",
    "FailedCheck",
    "MonthCost",
    "OptedInDatabase",
    "Totals",
    "TrendPoint",
    "UnreadableReport",
    "VerdictCounts",
    "build_summary",
    "render_summary",
    "sparkline",
]

SUMMARY_KIND: Final = "restoredrill.compliance-summary"
DEFAULT_MAX_HOURS_BETWEEN_DRILLS = 36.0
UNKNOWN_REGION = "unknown-region"
# The markdown sparkline shows the newest drills only: a table cell of 90 bars is unreadable.
SPARKLINE_MAX_POINTS = 24
SPARK_BARS = "▁▂▃▄▅▆▇█"
# At most this many validation errors are named per unreadable report; the first is the fix.
UNREADABLE_ERRORS_SHOWN = 3

Verdict = Literal["PASSED", "FAILED", "ERROR", "TIMED_OUT"]
Coverage = Literal["covered", "overdue", "never_drilled", "not_opted_in"]
LimitSource = Literal["report policy", "database", "default"]

COVERAGE_LABELS: dict[str, str] = {
    "covered": "covered",
    "overdue": "overdue",
    "never_drilled": "never drilled",
    "not_opted_in": "not opted in",
}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")

# ---------------------------------------------------------------------------------------------
# the input: opted-in databases
# ---------------------------------------------------------------------------------------------


class OptedInDatabase(BaseModel):
    """A database carrying the opt-in tag, as RDS DescribeDBInstances lists it in one region.

    ``max_hours_between_drills`` comes from the drill policy. When it is not given, the
    ``default_max_hours_between_drills`` of :func:`build_summary` applies (the field's own
    default, 36, is only what a model built on its own shows)."""

    region: str
    account_id: str | None = None
    db_instance_identifier: str
    engine_version: str | None = None
    max_hours_between_drills: float = Field(
        default=DEFAULT_MAX_HOURS_BETWEEN_DRILLS, gt=0, allow_inf_nan=False
    )


# ---------------------------------------------------------------------------------------------
# the output: the summary
# ---------------------------------------------------------------------------------------------


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DrillRef(_Output):
    """One drill, as the summary points at it (its report holds the evidence)."""

    run_id: str | None
    created_at: datetime
    finished_at: datetime
    verdict: Verdict
    reason: str | None
    trigger: str | None
    bucket: str | None
    report_key: str | None
    # Created before the window: shown because it is still the last (passing) drill.
    before_window: bool
    # A point-in-time drill (report 1.6 on): restored from backups and logs, not a snapshot.
    point_in_time: bool = False


class FailedCheck(_Output):
    name: str
    status: str | None
    message: str | None


class TrendPoint(_Output):
    """One drill's measured RTO or RPO, in seconds."""

    finished_at: datetime
    seconds: float
    verdict: Verdict
    run_id: str | None


class VerdictCounts(_Output):
    passed: int = 0
    failed: int = 0
    error: int = 0
    timed_out: int = 0


class Verification(_Output):
    """What the last drill in rounds with ``coverage: rotate`` says of the database's block
    ranges: the share verified within the window of ``max_days_full_coverage``, and the oldest
    verification of any range. ``stale``: not every range verified within that window."""

    cumulative_pct: float
    window_days: float
    oldest_verification: datetime | None
    never_verified: int
    stale: bool


class DatabaseSummary(_Output):
    region: str | None
    db_instance_identifier: str
    account_id: str | None
    engine_version: str | None
    opted_in: bool
    # covered: the last drill finished within max_hours_between_drills of now; overdue: it is
    # older; never_drilled: opted in without a readable report; not_opted_in: reports of a
    # database that is no longer opted in (informational).
    coverage: Coverage
    # The last drill, whenever it ran, did not pass.
    failing: bool
    max_hours_between_drills: float
    max_hours_from: LimitSource
    last_drill_age_seconds: float | None
    drills: int
    verdicts: VerdictCounts
    pass_rate: float | None
    last_drill: DrillRef | None
    last_drill_failed_checks: list[FailedCheck]
    last_passing: DrillRef | None
    rto_trend: list[TrendPoint]
    rpo_trend: list[TrendPoint]
    # The estimated cost of the drills in the window whose reports carry one (schema 1.4 on);
    # None when none does.
    estimated_cost_usd: float | None
    drills_costed: int
    cost_by_month: dict[str, float]
    # Drills that verify part of the database each time (coverage: rotate); None otherwise.
    verification: Verification | None = None

    @property
    def key(self) -> str:
        """``<region>/<db>``: how the HTML rows and the text name the database."""
        return f"{self.region or UNKNOWN_REGION}/{self.db_instance_identifier}"


class MonthCost(_Output):
    """The estimated cost of every database's drills created in one calendar month (UTC) of the
    window."""

    month: str
    usd: float
    drills_costed: int


class UnreadableReport(_Output):
    """A report left out of the summary, and why: counted, so that a gap is never silent."""

    index: int
    key: str | None
    reason: str


class Totals(_Output):
    databases: int
    opted_in: int
    covered: int
    overdue: int
    never_drilled: int
    not_opted_in: int
    failing: int
    drills: int
    passed: int
    pass_rate: float | None
    regions: list[str]
    unreadable: int
    # The same run passed in twice (one central bucket listed through two regions' stacks).
    duplicates_ignored: int
    estimated_cost_usd: float
    drills_costed: int


class ComplianceSummary(_Output):
    kind: Literal["restoredrill.compliance-summary"] = SUMMARY_KIND
    since: datetime
    now: datetime
    generated_at: datetime
    default_max_hours_between_drills: float
    totals: Totals
    databases: list[DatabaseSummary]
    cost_by_month: list[MonthCost]
    unreadable_reports: list[UnreadableReport]


# ---------------------------------------------------------------------------------------------
# reading drill reports (schema 1.1 and later: only the fields used here, unknown ones ignored)
# ---------------------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not an ISO 8601 timestamp") from None
    # Comparing a naive time with the window would raise, and guessing its zone would move it.
    if parsed.utcoffset() is None:
        raise ValueError("has no UTC offset")
    return parsed


_Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
_Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Hours = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Read(BaseModel):
    # Strict: a number written as a string or a boolean is a broken report, not a value to guess.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Run(_Read):
    run_id: str | None = None
    trigger: str | None = None
    created_at: _Timestamp
    finished_at: _Timestamp


class _Source(_Read):
    db_instance_identifier: Annotated[str, Field(min_length=1)]
    region: str | None = None
    account_id: str | None = None
    engine_version: str | None = None


class _Recovery(_Read):
    rto_seconds: _Seconds | None = None
    rpo_seconds: _Seconds | None = None


class _Timings(_Read):
    restore_seconds: _Seconds | None = None


class _FailedCheck(_Read):
    name: str
    status: str | None = None
    message: str | None = None


class _CheckSummary(_Read):
    failed: list[_FailedCheck] = Field(default_factory=list)


class _Coverage(_Read):
    cumulative_pct: float | int
    window_days: float | int
    oldest_verification: _Timestamp | None = None
    never_verified: int = 0


class _CheckEvidence(_Read):
    coverage: _Coverage | None = None


class _Check(_Read):
    name: str
    evidence: _CheckEvidence | None = None


class _Checks(_Read):
    checks: list[_Check] = Field(default_factory=list)

    @property
    def coverage(self) -> _Coverage | None:
        rounds = next((c for c in self.checks if c.name == "check_rounds"), None)
        return rounds.evidence.coverage if rounds and rounds.evidence else None


class _Location(_Read):
    bucket: str | None = None
    key: str | None = None


class _PointInTime(_Read):
    requested_time: _Timestamp | None = None


class _Policy(_Read):
    max_hours_between_drills: _Hours | None = None
    every: _Seconds | None = None


class _Cost(_Read):
    total_usd: _Seconds


class _Report(_Read):
    run: _Run
    verdict: Verdict
    reason: str | None = None
    source: _Source
    recovery: _Recovery | None = None
    # Version 1.0 reports have no `recovery`; their restore time is the RTO.
    timings: _Timings | None = None
    check_summary: _CheckSummary | None = None
    location: _Location | None = None
    policy: _Policy | None = None
    # Version 1.4 on: the drill's estimated cost.
    cost: _Cost | None = None
    checks: _Checks | None = None
    # Version 1.6 on: a point-in-time drill's requested time.
    point_in_time: _PointInTime | None = None

    @property
    def rto_seconds(self) -> float | None:
        if self.recovery is not None:
            return self.recovery.rto_seconds
        return self.timings.restore_seconds if self.timings is not None else None

    @property
    def rpo_seconds(self) -> float | None:
        return self.recovery.rpo_seconds if self.recovery is not None else None

    @property
    def key(self) -> str | None:
        return self.location.key if self.location is not None else None

    @property
    def region(self) -> str | None:
        """The source's region, or (reports whose snapshot ARN named none) the region in the
        report key ``reports/<region>/<db>/...``."""
        if self.source.region:
            return self.source.region
        parts = (self.key or "").split("/")
        if (
            len(parts) > 3
            and parts[0] == "reports"
            and _REGION.match(parts[1])
            and parts[2] == self.source.db_instance_identifier
        ):
            return parts[1]
        return None

    def order(self) -> tuple[datetime, datetime, str]:
        return (self.run.finished_at, self.run.created_at, self.run.run_id or "")


def _read_report(index: int, document: Any) -> _Report | UnreadableReport:
    if not isinstance(document, dict):
        return UnreadableReport(
            index=index, key=None, reason=f"not a JSON object but {type(document).__name__}"
        )
    location = document.get("location")
    key = location.get("key") if isinstance(location, dict) else None
    key = key if isinstance(key, str) else None
    try:
        return _Report.model_validate(document)
    except ValidationError as error:
        return UnreadableReport(index=index, key=key, reason=_why(error))


def _why(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or '(document)'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    ]
    shown = "; ".join(problems[:UNREADABLE_ERRORS_SHOWN])
    more = len(problems) - UNREADABLE_ERRORS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


# ---------------------------------------------------------------------------------------------
# building the summary
# ---------------------------------------------------------------------------------------------

_DbKey = tuple[str | None, str]
_COUNT_FIELDS: dict[str, str] = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "TIMED_OUT": "timed_out",
}


def build_summary(
    reports: Iterable[dict[str, Any]],
    databases: Iterable[OptedInDatabase],
    *,
    since: datetime,
    now: datetime,
    default_max_hours_between_drills: float = DEFAULT_MAX_HOURS_BETWEEN_DRILLS,
) -> ComplianceSummary:
    """The compliance summary of ``reports`` (drill report documents, any schema version from
    1.1) for ``databases`` (the opted-in ones, from every region) over ``since`` → ``now``.

    The interval a database must be drilled within is, in order: ``max_hours_between_drills``
    in the policy of its last drill's report, the one given on its :class:`OptedInDatabase`,
    ``default_max_hours_between_drills``. Reports that cannot be read are listed in
    ``unreadable_reports`` and otherwise left out; the same run passed twice counts once."""
    if since.utcoffset() is None or now.utcoffset() is None:
        raise ValueError("since and now need a UTC offset (naive times are ambiguous)")
    if since >= now:
        raise ValueError(f"since ({since.isoformat()}) must be before now ({now.isoformat()})")
    if not default_max_hours_between_drills > 0:
        raise ValueError("default_max_hours_between_drills must be positive")

    readable, unreadable, duplicates = _each_run_once(reports)
    drills: dict[_DbKey, list[_Report]] = {}
    for report in readable:
        drills.setdefault((report.region, report.source.db_instance_identifier), []).append(report)
    opted: dict[_DbKey, OptedInDatabase] = {}
    for database in databases:
        opted.setdefault((database.region, database.db_instance_identifier), database)

    summaries = [
        _database_summary(
            sorted(drills.get(key, []), key=_Report.order),
            opted.get(key),
            key,
            since=since,
            now=now,
            default_max_hours=default_max_hours_between_drills,
        )
        for key in sorted({*drills, *opted}, key=lambda key: (key[0] or "", key[1]))
    ]
    return ComplianceSummary(
        since=since,
        now=now,
        generated_at=now,
        default_max_hours_between_drills=default_max_hours_between_drills,
        totals=_totals(summaries, unreadable=len(unreadable), duplicates=duplicates),
        databases=summaries,
        cost_by_month=_cost_by_month(readable, since),
        unreadable_reports=unreadable,
    )


def _cost_by_month(reports: Sequence[_Report], since: datetime) -> list[MonthCost]:
    months: dict[str, tuple[float, int]] = {}
    for report in reports:
        if report.cost is None or report.run.created_at < since:
            continue
        month = _month(report.run.created_at)
        usd, drills = months.get(month, (0.0, 0))
        months[month] = (usd + report.cost.total_usd, drills + 1)
    return [
        MonthCost(month=month, usd=_usd(usd), drills_costed=drills)
        for month, (usd, drills) in sorted(months.items())
    ]


def _each_run_once(
    reports: Iterable[dict[str, Any]],
) -> tuple[list[_Report], list[UnreadableReport], int]:
    """The readable reports, one per run (of a run passed twice, the later one), then those
    without a run id or key; the unreadable ones; and how many duplicates were left out."""
    unreadable: list[UnreadableReport] = []
    runs: dict[tuple[str | None, str, str], _Report] = {}
    anonymous: list[_Report] = []
    duplicates = 0
    for index, document in enumerate(reports):
        read = _read_report(index, document)
        if isinstance(read, UnreadableReport):
            unreadable.append(read)
            continue
        identity = read.run.run_id or read.key
        if identity is None:
            anonymous.append(read)
            continue
        run_key = (read.region, read.source.db_instance_identifier, identity)
        kept = runs.get(run_key)
        if kept is not None:
            duplicates += 1
            if read.order() <= kept.order():
                continue
        runs[run_key] = read
    return [*runs.values(), *anonymous], unreadable, duplicates


def _database_summary(
    drills: Sequence[_Report],
    opted: OptedInDatabase | None,
    key: _DbKey,
    *,
    since: datetime,
    now: datetime,
    default_max_hours: float,
) -> DatabaseSummary:
    in_window = [drill for drill in drills if drill.run.created_at >= since]
    last = drills[-1] if drills else None
    last_passing = next((drill for drill in reversed(drills) if drill.verdict == "PASSED"), None)

    limit, limit_from = _coverage_limit(last, opted, default_max_hours)

    # A drill that finished after `now` (clock skew between machines) is simply fresh.
    age = max((now - last.run.finished_at).total_seconds(), 0.0) if last is not None else None
    coverage: Coverage
    if age is None:
        coverage = "never_drilled"
    elif opted is None:
        coverage = "not_opted_in"
    elif age <= limit * 3600:
        coverage = "covered"
    else:
        coverage = "overdue"

    counts = dict.fromkeys(_COUNT_FIELDS.values(), 0)
    for drill in in_window:
        counts[_COUNT_FIELDS[drill.verdict]] += 1
    failing = last is not None and last.verdict != "PASSED"
    costed = [drill for drill in in_window if drill.cost is not None]
    costs: dict[str, float] = {}
    for drill in costed:
        assert drill.cost is not None
        month = _month(drill.run.created_at)
        costs[month] = costs.get(month, 0.0) + drill.cost.total_usd
    # RDS says what the database is now; the last report what it was when last drilled.
    return DatabaseSummary(
        region=key[0],
        db_instance_identifier=key[1],
        account_id=(opted.account_id if opted else None)
        or (last.source.account_id if last else None),
        engine_version=(opted.engine_version if opted else None)
        or (last.source.engine_version if last else None),
        opted_in=opted is not None,
        coverage=coverage,
        failing=failing,
        max_hours_between_drills=limit,
        max_hours_from=limit_from,
        last_drill_age_seconds=age,
        drills=len(in_window),
        verdicts=VerdictCounts(**counts),
        pass_rate=counts["passed"] / len(in_window) if in_window else None,
        last_drill=_ref(last, since) if last is not None else None,
        last_drill_failed_checks=(
            [FailedCheck(**check.model_dump()) for check in last.check_summary.failed]
            if failing and last is not None and last.check_summary is not None
            else []
        ),
        last_passing=_ref(last_passing, since) if last_passing is not None else None,
        rto_trend=_trend(in_window, lambda drill: drill.rto_seconds),
        rpo_trend=_trend(in_window, lambda drill: drill.rpo_seconds),
        estimated_cost_usd=_usd(sum(costs.values())) if costed else None,
        drills_costed=len(costed),
        cost_by_month={month: _usd(usd) for month, usd in sorted(costs.items())},
        verification=_verification(last, now),
    )


def _verification(last: _Report | None, now: datetime) -> Verification | None:
    coverage = last.checks.coverage if last is not None and last.checks is not None else None
    if coverage is None:
        return None
    oldest = coverage.oldest_verification
    too_old = oldest is None or now - oldest > timedelta(days=coverage.window_days)
    return Verification(
        cumulative_pct=float(coverage.cumulative_pct),
        window_days=float(coverage.window_days),
        oldest_verification=oldest,
        never_verified=coverage.never_verified,
        stale=coverage.cumulative_pct < 100 or too_old,
    )


def _coverage_limit(
    last: _Report | None, opted: OptedInDatabase | None, default_max_hours: float
) -> tuple[float, LimitSource]:
    """How many hours the database may go undrilled, and where that came from: the policy of its
    last report (``every`` plus slack, when larger than ``max_hours_between_drills``), the
    opted-in database's, or the default."""
    policy = last.policy if last is not None else None
    if policy is not None and (
        policy.max_hours_between_drills is not None or policy.every is not None
    ):
        hours = policy.max_hours_between_drills or default_max_hours
        return coverage_hours(hours, policy.every), "report policy"
    if opted is not None and "max_hours_between_drills" in opted.model_fields_set:
        return opted.max_hours_between_drills, "database"
    return default_max_hours, "default"


def _month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def _usd(amount: float) -> float:
    return round(amount, 6)


def _ref(drill: _Report, since: datetime) -> DrillRef:
    return DrillRef(
        run_id=drill.run.run_id,
        created_at=drill.run.created_at,
        finished_at=drill.run.finished_at,
        verdict=drill.verdict,
        reason=drill.reason,
        trigger=drill.run.trigger,
        bucket=drill.location.bucket if drill.location is not None else None,
        report_key=drill.key,
        before_window=drill.run.created_at < since,
        point_in_time=drill.point_in_time is not None,
    )


def _trend(
    drills: Sequence[_Report], measure: Callable[[_Report], float | None]
) -> list[TrendPoint]:
    points = []
    for drill in drills:
        seconds = measure(drill)
        if seconds is not None:
            points.append(
                TrendPoint(
                    finished_at=drill.run.finished_at,
                    seconds=seconds,
                    verdict=drill.verdict,
                    run_id=drill.run.run_id,
                )
            )
    return points


def _totals(summaries: Sequence[DatabaseSummary], *, unreadable: int, duplicates: int) -> Totals:
    drills = sum(summary.drills for summary in summaries)
    passed = sum(summary.verdicts.passed for summary in summaries)

    def count(coverage: Coverage) -> int:
        return sum(1 for summary in summaries if summary.coverage == coverage)

    return Totals(
        databases=len(summaries),
        opted_in=sum(1 for summary in summaries if summary.opted_in),
        covered=count("covered"),
        overdue=count("overdue"),
        never_drilled=count("never_drilled"),
        not_opted_in=count("not_opted_in"),
        failing=sum(1 for summary in summaries if summary.failing),
        drills=drills,
        passed=passed,
        pass_rate=passed / drills if drills else None,
        regions=sorted({summary.region for summary in summaries if summary.region}),
        unreadable=unreadable,
        duplicates_ignored=duplicates,
        estimated_cost_usd=_usd(sum(summary.estimated_cost_usd or 0.0 for summary in summaries)),
        drills_costed=sum(summary.drills_costed for summary in summaries),
    )


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


def render_summary(summary: ComplianceSummary, fmt: Literal["html", "md", "json"]) -> str:
    """The summary as a self-contained HTML page, GitHub-flavoured markdown, or JSON (the model,
    keys in the models' field order, indent 2: ``ComplianceSummary.model_validate_json`` reads
    it back)."""
    if fmt == "json":
        return summary.model_dump_json(indent=2) + "\n"
    if fmt == "md":
        return _markdown(summary)
    if fmt == "html":
        return _html(summary)
    raise ValueError(f"unknown format {fmt!r}: html, md or json")


def sparkline(values: Sequence[float]) -> str:
    """``▁▂▃▄▅▆▇█``, one bar per value, scaled between the smallest and the largest; a flat
    series is a flat line of middle bars."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARK_BARS[3] * len(values)
    top = len(SPARK_BARS) - 1
    return "".join(SPARK_BARS[round((value - low) / (high - low) * top)] for value in values)


def _when(moment: datetime | None) -> str:
    """A time for people, in UTC: ``2026-11-27 03:12 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _percent(rate: float | None) -> str:
    return f"{rate * 100:.1f}%" if rate is not None else "-"


def _hours_text(hours: float) -> str:
    return duration_text(hours * 3600)


def _latest(points: Sequence[TrendPoint]) -> str:
    return duration_text(points[-1].seconds) if points else "-"


# ------------------------------------------------------------------------------ markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


def _md_escape(text: object) -> str:
    """Text from reports and RDS made inert in markdown: one line, and every character that
    could start markup, end a table cell or open an HTML tag backslash-escaped."""
    flat = " ".join(str(text).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _md_drill(drill: DrillRef | None, *, verdict: bool) -> str:
    if drill is None:
        return "-"
    text = _when(drill.finished_at) + (f" {drill.verdict}" if verdict else "")
    text += " (point-in-time)" if drill.point_in_time else ""
    return text + (" (before the window)" if drill.before_window else "")


def _md_trend(points: Sequence[TrendPoint]) -> str:
    if not points:
        return "-"
    shown = points[-SPARKLINE_MAX_POINTS:]
    return f"{_latest(points)} {sparkline([point.seconds for point in shown])}"


def _md_coverage(db: DatabaseSummary) -> str:
    label = COVERAGE_LABELS[db.coverage]
    if db.failing:
        label += ", failing"
    return label


def _md_verification(db: DatabaseSummary) -> str:
    v = db.verification
    assert v is not None
    oldest = _when(v.oldest_verification) if v.oldest_verification else "never"
    flag = "**not fully verified within the window**" if v.stale else "fully verified"
    return (
        f"- {_md_name(db)}: {flag}: {v.cumulative_pct:g}% of the bytes within "
        f"{v.window_days:g} days, oldest range verified {oldest}"
        + (f", {v.never_verified} range(s) never verified" if v.never_verified else "")
    )


def _md_name(db: DatabaseSummary) -> str:
    return f"{_md_escape(db.region or UNKNOWN_REGION)} / {_md_escape(db.db_instance_identifier)}"


def _markdown(summary: ComplianceSummary) -> str:
    totals = summary.totals
    lines = [
        "# restoredrill compliance summary",
        "",
        f"Window: {_when(summary.since)} → {_when(summary.now)} (generated "
        f"{_when(summary.generated_at)}). Regions: "
        + (", ".join(_md_escape(region) for region in totals.regions) or "none")
        + ".",
        "",
        "## Totals",
        "",
        "| | |",
        "|---|---:|",
        f"| databases opted in | {totals.opted_in} |",
        f"| covered | {totals.covered} |",
        f"| overdue | {totals.overdue} |",
        f"| never drilled | {totals.never_drilled} |",
        f"| failing (last drill not PASSED) | {totals.failing} |",
        f"| not opted in (reports only) | {totals.not_opted_in} |",
        f"| drills in the window | {totals.drills} |",
        f"| passed | {totals.passed} |",
        f"| pass rate | {_percent(totals.pass_rate)} |",
        f"| unreadable reports | {totals.unreadable} |",
        "| estimated cost of the drills (list prices) | "
        f"{_cost_text(totals.estimated_cost_usd, totals.drills_costed)} |",
        "",
        "## Databases",
        "",
        f"Trends: the newest {SPARKLINE_MAX_POINTS} drills of the window, oldest first. "
        "A last drill or last passing drill marked *before the window* is older than the "
        "window's start and not counted in it.",
        "",
        "| region | database | coverage | drills | pass rate | last drill | last passing "
        "| RTO (latest, trend) | RPO (latest, trend) | est. cost |",
        "|---|---|---|---:|---:|---|---|---|---|---:|",
    ]
    for db in summary.databases:
        counts = db.verdicts
        split = [
            f"{count} {label}"
            for count, label in (
                (counts.passed, "passed"),
                (counts.failed, "failed"),
                (counts.error, "error"),
                (counts.timed_out, "timed out"),
            )
            if count
        ]
        drills = f"{db.drills}" + (f" ({', '.join(split)})" if split else "")
        cells = [
            _md_escape(db.region or UNKNOWN_REGION),
            _md_escape(db.db_instance_identifier),
            _md_coverage(db),
            drills,
            _percent(db.pass_rate),
            _md_drill(db.last_drill, verdict=True),
            _md_drill(db.last_passing, verdict=False),
            _md_trend(db.rto_trend),
            _md_trend(db.rpo_trend),
            _cost_text(db.estimated_cost_usd, db.drills_costed),
        ]
        lines.append("| " + " | ".join(cells) + " |")

    never = [db for db in summary.databases if db.coverage == "never_drilled"]
    overdue = [db for db in summary.databases if db.coverage == "overdue"]
    failing = [db for db in summary.databases if db.failing]
    lines += _md_cost_by_month(summary)
    lines += ["", "## Never drilled", ""]
    lines += [
        f"- {_md_name(db)}: opted in, no drill report found (limit "
        f"{_hours_text(db.max_hours_between_drills)})"
        for db in never
    ] or ["None."]
    lines += ["", "## Overdue", ""]
    lines += [_md_overdue(db) for db in overdue] or ["None."]
    lines += ["", "## Failing", ""]
    lines += [_md_failing(db) for db in failing] or ["None."]
    rotating = [db for db in summary.databases if db.verification is not None]
    if rotating:
        lines += ["", "## Block ranges verified (coverage: rotate)", ""]
        lines += [_md_verification(db) for db in rotating]
    if summary.unreadable_reports:
        lines += ["", "## Unreadable reports", ""]
        lines += [
            f"- {_md_escape(item.key or f'report #{item.index}')}: {_md_escape(item.reason)}"
            for item in summary.unreadable_reports
        ]
    return "\n".join(lines) + "\n"


def _cost_text(usd: float | None, drills: int) -> str:
    if usd is None or not drills:
        return "-"
    return f"≈ {usd_text(usd)} ({drills} drill{'s' if drills != 1 else ''})"


def _md_cost_by_month(summary: ComplianceSummary) -> list[str]:
    lines = [
        "",
        "## Estimated cost by month",
        "",
        "At on-demand list prices (each report's `cost`; reports before schema 1.4 carry none): "
        "an estimate, not the bill.",
        "",
    ]
    if not summary.cost_by_month:
        return [*lines, "No drill in the window carries a cost estimate."]
    lines += ["| month | drills | estimated cost |", "|---|---:|---:|"]
    lines += [
        f"| {month.month} | {month.drills_costed} | ≈ {usd_text(month.usd)} |"
        for month in summary.cost_by_month
    ]
    return lines


def _md_overdue(db: DatabaseSummary) -> str:
    last = db.last_drill
    if last is None:  # not reached: overdue means drilled
        return f"- {_md_name(db)}: overdue"
    return (
        f"- {_md_name(db)}: last drill {duration_text(db.last_drill_age_seconds)} ago "
        f"({_when(last.finished_at)}, {last.verdict}), limit "
        f"{_hours_text(db.max_hours_between_drills)} (from the {db.max_hours_from}); report "
        f"{_md_escape(last.report_key or '-')}"
    )


def _md_failing(db: DatabaseSummary) -> str:
    last = db.last_drill
    if last is None:  # not reached: failing means drilled
        return f"- {_md_name(db)}: failing"
    text = f"- {_md_name(db)}: last drill {last.verdict} at {_when(last.finished_at)}"
    if last.reason:
        text += f": {_md_escape(last.reason)}"
    if db.last_drill_failed_checks:
        text += "; checks: " + ", ".join(
            _md_escape(f"{check.name} ({check.status})") for check in db.last_drill_failed_checks
        )
    passing = db.last_passing
    text += (
        f"; last passing {_md_drill(passing, verdict=False)}"
        if passing
        else "; no passing drill on record"
    )
    return text + f"; report {_md_escape(last.report_key or '-')}"


# ------------------------------------------------------------------------------ HTML

CHART_WIDTH = 220
CHART_HEIGHT = 56
CHART_PAD = 5
# Room above the highest point for the label naming the top of the scale.
CHART_PAD_TOP = 14


@dataclass(frozen=True, slots=True)
class _ChartPoint:
    x: str
    y: str
    verdict: str
    label: str


@dataclass(frozen=True, slots=True)
class _Chart:
    """An SVG trend chart's geometry: time across the window, seconds up from zero (so a small
    wobble is not drawn as a cliff)."""

    points: tuple[_ChartPoint, ...]
    line: str
    top: str
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def _chart(points: Sequence[TrendPoint], since: datetime, now: datetime) -> _Chart:
    if not points:
        return _Chart(points=(), line="", top="")
    span = (now - since).total_seconds()
    top = max(point.seconds for point in points) or 1.0
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - CHART_PAD - CHART_PAD_TOP
    drawn = []
    for point in points:
        along = min(max((point.finished_at - since).total_seconds() / span, 0.0), 1.0)
        x = CHART_PAD + along * inner_w
        y = CHART_HEIGHT - CHART_PAD - point.seconds / top * inner_h
        drawn.append(
            _ChartPoint(
                x=f"{x:.1f}",
                y=f"{y:.1f}",
                verdict=point.verdict,
                label=f"{_when(point.finished_at)}: {duration_text(point.seconds)} "
                f"({point.verdict})",
            )
        )
    return _Chart(
        points=tuple(drawn),
        line=" ".join(f"{point.x},{point.y}" for point in drawn),
        top=duration_text(top),
    )


@dataclass(frozen=True, slots=True)
class _Row:
    db: DatabaseSummary
    rto: _Chart
    rpo: _Chart


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("restoredrill_cli", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=_when,
        duration=duration_text,
        percent=_percent,
        hours=_hours_text,
        latest=_latest,
        usd=usd_text,
    )
    environment.globals["coverage_labels"] = COVERAGE_LABELS
    environment.globals["unknown_region"] = UNKNOWN_REGION
    return environment


def _html(summary: ComplianceSummary) -> str:
    rows = [
        _Row(
            db=db,
            rto=_chart(db.rto_trend, summary.since, summary.now),
            rpo=_chart(db.rpo_trend, summary.since, summary.now),
        )
        for db in summary.databases
    ]
    template = _environment().get_template("compliance.html.j2")
    return template.render(
        summary=summary,
        totals=summary.totals,
        rows=rows,
        never=[db for db in summary.databases if db.coverage == "never_drilled"],
        overdue=[db for db in summary.databases if db.coverage == "overdue"],
        failing=[db for db in summary.databases if db.failing],
    )
