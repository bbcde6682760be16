"""Drill policy: what to check for each database and how strictly.

A policy file (YAML) has defaults and per-database overrides, keyed by the RDS DB instance
identifier of the source database; a per-database entry is merged over the defaults (mappings
merge key by key, lists and scalars replace)::

    version: 1
    defaults:
      level: 3
      time_budget: 10m
    databases:
      orders-prod:
        level: 2
        freshness:
          - {schema: public, table: orders, column: created_at, max_age: 26h}
        assertions:
          - {name: customers exist, sql: "SELECT count(*) FROM customers", expect: ">= 1000"}

``DrillPolicy()`` alone (an un-configured database) checks levels 0-3 with sane thresholds.
Errors name the file, the line and the field path: ``policy.yaml:12: databases.orders-prod.
freshness[0].max_age: ...``.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AmcheckPolicy",
    "Assertion",
    "ContentFingerprintPolicy",
    "DrillPolicy",
    "DrillWindow",
    "Expectation",
    "FreshnessRule",
    "PointInTimePolicy",
    "PolicyDocument",
    "PolicyError",
    "PolicyIssue",
    "PriceOverrides",
    "RowCountPolicy",
    "SchemaPolicy",
    "TableRef",
    "TableRowCountRule",
    "load_policy_file",
    "parse_duration",
    "parse_expectation",
    "parse_policy_text",
    "parse_window",
]

if TYPE_CHECKING:
    import yaml

# ---------------------------------------------------------------------------------------------
# durations
# ---------------------------------------------------------------------------------------------

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_ALIASES = {
    **dict.fromkeys(("sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("day", "days"), "d"),
    **dict.fromkeys(("week", "weeks"), "w"),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string such as ``90s``, ``15m``, ``26h``, ``1h30m``,
    ``7d``."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '26h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            units = [_UNIT_ALIASES.get(unit, unit) for _, unit in parts]
            if (
                not parts
                or "".join(n + u for n, u in parts) != text
                or any(unit not in _DURATION_UNITS for unit in units)
            ):
                raise ValueError(
                    f"invalid duration {value!r}: use seconds or e.g. '90s', '15m', '26h', "
                    "'1h30m', '7d'"
                )
            seconds = sum(
                float(number) * _DURATION_UNITS[unit]
                for (number, _), unit in zip(parts, units, strict=True)
            )
    else:
        raise ValueError("a duration must be a number of seconds or a string like '26h'")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]

# ---------------------------------------------------------------------------------------------
# assertion expectations
# ---------------------------------------------------------------------------------------------

_OPS = {"==": "==", "=": "==", "!=": "!=", "<>": "!=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
_OP_RE = re.compile(r"^\s*(==|!=|<>|>=|<=|=|>|<)\s*(.+?)\s*$", re.DOTALL)
_BETWEEN_RE = re.compile(r"^\s*between\s+(.+?)\s+and\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_IS_RE = re.compile(r"^\s*is\s+(not\s+null|null|true|false)\s*$", re.IGNORECASE)

Scalar = Decimal | str | bool | None


def _parse_scalar(text: str) -> Scalar:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(
            f"{text!r} is not a number, a quoted string, true, false or null"
        ) from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return number


class Expectation(BaseModel):
    """What an assertion's single value must satisfy: ``>= 1000``, ``== 0``, ``!= 'x'``,
    ``between 1 and 10``, ``is null``, ``is not null``, ``is true``, ``is false``."""

    model_config = ConfigDict(frozen=True)

    text: str
    op: Literal["==", "!=", ">", ">=", "<", "<=", "between", "is null", "is not null"]
    values: list[Decimal | str | bool | None] = Field(default_factory=list)

    def check(self, actual: Any) -> tuple[bool, str]:
        """(holds?, explanation)."""
        if self.op == "is null":
            return actual is None, f"value is {_show(actual)}"
        if self.op == "is not null":
            return actual is not None, f"value is {_show(actual)}"
        if actual is None:
            return False, f"value is NULL, expected {self.text}"
        converted = [_coerce(actual, expected) for expected in self.values]
        if any(value is _MISMATCH for value in converted):
            return False, f"value {_show(actual)} cannot be compared with {self.text}"
        if self.op == "between":
            low, high = self.values
            holds = bool(low <= converted[0] <= high)
        else:
            expected, value = self.values[0], converted[0]
            if self.op in ("==", "!="):
                holds = (value == expected) == (self.op == "==")
            elif isinstance(expected, bool | None) or isinstance(value, bool):
                return False, f"value {_show(actual)} cannot be ordered against {self.text}"
            else:
                holds = {
                    ">": value > expected,
                    ">=": value >= expected,
                    "<": value < expected,
                    "<=": value <= expected,
                }[self.op]
        verb = "satisfies" if holds else "does not satisfy"
        return holds, f"value {_show(actual)} {verb} {self.text}"


_MISMATCH = object()


def _coerce(actual: Any, expected: Any) -> Any:
    """``actual`` (from the database) in the type of ``expected`` (from the policy)."""
    if isinstance(expected, bool):
        return actual if isinstance(actual, bool) else _MISMATCH
    if isinstance(expected, Decimal):
        if isinstance(actual, bool):
            return _MISMATCH
        if isinstance(actual, int | float | Decimal):
            return Decimal(str(actual))
        if isinstance(actual, str):
            try:
                return Decimal(actual)
            except InvalidOperation:
                return _MISMATCH
        return _MISMATCH
    if isinstance(expected, str):
        if isinstance(actual, datetime):
            return actual.isoformat()
        return str(actual)
    return actual


def _show(value: Any) -> str:
    if value is None:
        return "NULL"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_expectation(value: Any) -> Any:
    """An :class:`Expectation` from its text (left alone when it already is one / a dict)."""
    if isinstance(value, Expectation):
        return value
    value = _expectation_text(value)
    text = " ".join(value.split())
    if match := _IS_RE.match(text):
        return _is_expectation(text, match.group(1).lower())
    if match := _BETWEEN_RE.match(text):
        return _between_expectation(text, match.group(1), match.group(2))
    if match := _OP_RE.match(text):
        return _operator_expectation(text, _OPS[match.group(1)], match.group(2))
    raise ValueError(
        f"invalid expectation {value!r}: use e.g. '>= 1000', '== 0', '!= 0', "
        "'between 1 and 10', 'is null', 'is not null', 'is true'"
    )


def _expectation_text(value: Any) -> str:
    """The text of an expectation: as written, from a dumped one, or ``== n`` for a number."""
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        value = value["text"]  # re-parse: the text is the truth (JSON round trips lose types)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"== {value}"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            "expect must be a string such as '>= 1000', '== 0', 'between 1 and 10', 'is null'"
        )
    return value


def _is_expectation(text: str, word: str) -> dict[str, Any]:
    if word in ("true", "false"):
        return {"text": text, "op": "==", "values": [word == "true"]}
    return {"text": text, "op": "is null" if word == "null" else "is not null", "values": []}


def _between_expectation(text: str, low_text: str, high_text: str) -> dict[str, Any]:
    low, high = _parse_scalar(low_text), _parse_scalar(high_text)
    if not isinstance(low, Decimal) or not isinstance(high, Decimal):
        raise ValueError("between needs two numbers: 'between 1 and 10'")
    if low > high:
        raise ValueError(f"between {low} and {high}: the lower bound is above the upper one")
    return {"text": text, "op": "between", "values": [low, high]}


def _operator_expectation(text: str, op: str, operand_text: str) -> dict[str, Any]:
    operand = _parse_scalar(operand_text)
    if op not in ("==", "!=") and not isinstance(operand, Decimal):
        raise ValueError(f"{op} needs a number: '{op} 1000'")
    return {"text": text, "op": op, "values": [operand]}


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TableRef(_Strict):
    """A table, named exactly (no parsing of dots or quotes): ``schema`` defaults to ``public``;
    ``database`` is the PostgreSQL database inside the instance (default: wherever it exists)."""

    schema_name: str = Field(default="public", alias="schema", min_length=1)
    table: str = Field(min_length=1)
    database: str | None = None

    def matches(self, database: str, schema: str, table: str) -> bool:
        return (
            self.schema_name == schema
            and self.table == table
            and (self.database is None or self.database == database)
        )


class TableRowCountRule(TableRef):
    """Row count thresholds for one table (``ignore: true`` to not compare it at all)."""

    max_drop_pct: float | None = Field(default=None, ge=0, le=100)
    max_drop_rows: int | None = Field(default=None, ge=0)
    max_growth_pct: float | None = Field(default=None, ge=0)
    ignore: bool = False


class RowCountPolicy(_Strict):
    """Exact row counts against the baseline. A drop fails when it is larger than both
    ``max_drop_pct`` of the baseline and ``max_drop_rows``; growth warns when it is larger than
    ``max_growth_pct`` and than ``min_growth_rows`` (``max_growth_pct: null`` never warns)."""

    max_drop_pct: float = Field(default=5.0, ge=0, le=100)
    max_drop_rows: int = Field(default=0, ge=0)
    max_growth_pct: float | None = Field(default=200.0, ge=0)
    min_growth_rows: int = Field(default=1000, ge=0)
    tables: list[TableRowCountRule] = Field(default_factory=list)

    def rule_for(self, database: str, schema: str, table: str) -> TableRowCountRule | None:
        for rule in self.tables:
            if rule.matches(database, schema, table):
                return rule
        return None


class SchemaPolicy(_Strict):
    """How schema drift against the baseline counts: missing tables/columns/indexes/constraints,
    added ones, changed types or definitions."""

    on_missing: Literal["fail", "warn"] = "fail"
    on_added: Literal["pass", "warn"] = "pass"
    on_changed: Literal["pass", "warn", "fail"] = "warn"
    on_missing_role: Literal["fail", "warn", "pass"] = "fail"


class FreshnessRule(TableRef):
    """The newest value of ``column`` (timestamp, timestamptz or date; timestamps without time
    zone are read as UTC) must be at most ``max_age`` older than the snapshot time."""

    column: str = Field(min_length=1)
    max_age: Duration
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.schema_name}.{self.table}.{self.column}"


class Assertion(_Strict):
    """A query returning one value, and what that value must satisfy. It runs in a read-only
    transaction with the statement timeout, in ``database`` (default: the database of the
    connection target)."""

    name: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    expect: Annotated[Expectation, BeforeValidator(parse_expectation)]
    database: str | None = None

    @field_validator("sql")
    @classmethod
    def _one_statement(cls, value: str) -> str:
        stripped = value.strip().rstrip(";").strip()
        if not stripped:
            raise ValueError("sql is empty")
        return stripped


class ContentFingerprintPolicy(_Strict):
    """Per-table ``count(*), sum(hash_record_extended(row, 0))`` computed on the server and stored
    in the baseline. Tables in ``must_match`` (data that should never change) fail when their
    fingerprint differs from the baseline's; other differences are only reported."""

    enabled: bool = False
    must_match: list[TableRef] = Field(default_factory=list)


def _fingerprint_shorthand(value: Any) -> Any:
    return {"enabled": value} if isinstance(value, bool) else value


class AmcheckPolicy(_Strict):
    """Level 3: ``verify_heapam`` on every table (and TOAST table), ``bt_index_check`` on every
    btree index, like ``pg_amcheck``. ``heapallindexed`` also checks that every heap tuple is in
    its indexes (several times slower)."""

    heapallindexed: bool = False
    check_toast: bool = True
    include_system_catalogs: bool = True


class RoundsPolicy(_Strict):
    """Levels 2 and 3 of a database larger than one checker invocation can read: a stored plan
    of block-range tasks, run over as many checker invocations as it takes, in rounds of
    ``parallelism`` invocations, each started by the drill's own choreography. The policy's
    ``time_budget`` bounds the whole plan, the drill's deadline the drill."""

    enabled: bool = False
    # About a minute of reading per task on a lazily loaded RDS volume.
    task_mib: int = Field(default=1024, ge=1, le=1 << 20)
    # Bounds one invocation's request (the tasks travel in it) and what a killed invocation
    # costs: each of its unfinished tasks uses one of its two attempts.
    tasks_per_invocation: int = Field(default=500, ge=1, le=5000)
    max_rounds: int = Field(default=200, ge=1, le=10000)
    # With coverage: rotate, the bytes one drill verifies at most (none: until the rounds, the
    # time budget or the deadline end it).
    budget_mib: int | None = Field(default=None, ge=1)


# ---------------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------------

_WINDOW = re.compile(r"^\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*$")
# What a day's snapshot time may drift from the day before (RDS takes automated backups anywhere
# in the instance's backup window, at least 30 minutes long): a database is due again after this
# share of `every` short of it, so that `every: 24h` never skips a snapshot taken minutes earlier
# in the day than yesterday's.
EVERY_DRIFT_ALLOWANCE = 0.1
# The compliance summary's slack past `every` before a database is overdue: the same 12 hours the
# 36-hour default gives a daily snapshot.
COVERAGE_SLACK_HOURS = 12.0


class DrillWindow(BaseModel):
    """The UTC hours in which automated drills may start, ``HH:MM-HH:MM`` (RDS's own format for
    backup windows); a window whose end is before its start wraps midnight (``22:00-02:00``)."""

    model_config = ConfigDict(frozen=True)

    start: time
    end: time

    @property
    def text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (converted to UTC) is in the window: start included, end not."""
        utc = moment.astimezone(UTC).time()
        if self.start < self.end:
            return self.start <= utc < self.end
        return utc >= self.start or utc < self.end


def parse_window(value: Any) -> DrillWindow:
    """A :class:`DrillWindow` from ``HH:MM-HH:MM`` in UTC."""
    if isinstance(value, DrillWindow):
        return value
    match = _WINDOW.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"invalid window {value!r}: use UTC hours as HH:MM-HH:MM, e.g. '01:00-05:00' "
            "(or '22:00-02:00' across midnight)"
        )
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
        raise ValueError(f"invalid window {value!r}: hours are 00-23 and minutes 00-59")
    start, end = time(start_h, start_m), time(end_h % 24, end_m)
    if start == end:
        raise ValueError(
            f"invalid window {value!r}: start and end are the same; leave `window` out to "
            "allow drills at any hour"
        )
    return DrillWindow(start=start, end=end)


Window = Annotated[
    DrillWindow, BeforeValidator(parse_window), PlainSerializer(lambda window: window.text)
]

# ---------------------------------------------------------------------------------------------
# point-in-time restore drills
# ---------------------------------------------------------------------------------------------

_PITR_EVERY = re.compile(r"^\s*every\s+(\S.*?)\s*$", re.IGNORECASE)


def _pitr_shorthand(value: Any) -> Any:
    """``pitr: every 24h`` is ``pitr: {every: 24h}``; ``pitr: on demand`` allows point-in-time
    drills when asked, with none scheduled."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() in ("on demand", "on-demand"):
        return {}
    match = _PITR_EVERY.match(value)
    if match is None:
        raise ValueError(
            f"invalid pitr {value!r}: use 'every 24h', 'on demand' or {{every: 24h, max_rpo: 15m}}"
        )
    return {"every": match.group(1)}


class PointInTimePolicy(_Strict):
    """Point-in-time restore drills: the database restored to its latest restorable time
    (RestoreDBInstanceToPointInTime), proving that the transaction logs replay; the RPO is the
    gap between the requested time and the newest row the freshness rules find. ``every``
    schedules one drill per UTC window of that length (the sweeper starts it); ``max_rpo`` fails
    a drill whose measured RPO is larger."""

    every: Duration | None = Field(default=None, ge=3600, le=366 * 86400)
    max_rpo: Duration | None = None


# ---------------------------------------------------------------------------------------------
# cost: prices that replace the shipped list prices
# ---------------------------------------------------------------------------------------------

_Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ServerlessV2Capacity(_Strict):
    """Aurora only: the cluster's instance is an Aurora Serverless v2 one (db.serverless) with
    this capacity range, when the snapshot's engine version offers it. ACUs in steps of 0.5."""

    min_acu: float = Field(ge=0, le=256, multiple_of=0.5)
    max_acu: float = Field(ge=1, le=256, multiple_of=0.5)

    @model_validator(mode="after")
    def _ordered(self) -> ServerlessV2Capacity:
        if self.min_acu > self.max_acu:
            raise ValueError("min_acu must not be above max_acu")
        return self


class PriceOverrides(_Strict):
    """Prices (USD) that replace the shipped on-demand list prices in a drill's cost estimate:
    your region's, or what you actually pay. Unset ones keep the shipped price."""

    instance_hourly: dict[Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")], _Price] = (
        Field(default_factory=dict)
    )
    storage_gib_month: dict[Annotated[str, Field(pattern=r"^[a-z0-9-]+$")], _Price] = Field(
        default_factory=dict
    )
    lambda_gb_second: _Price | None = None
    lambda_requests_per_million: _Price | None = None
    source: str | None = Field(
        default=None,
        min_length=1,
        description="Where these prices come from (shown in the report beside the estimate).",
    )

    @property
    def is_empty(self) -> bool:
        return not (
            self.instance_hourly
            or self.storage_gib_month
            or self.lambda_gb_second is not None
            or self.lambda_requests_per_million is not None
        )


class DrillPolicy(_Strict):
    """Everything a drill of one database needs to know. Durations are seconds or strings such as
    ``10m``."""

    level: int = Field(default=3, ge=0, le=3)
    include_databases: list[str] | None = None  # default: every non-template database
    exclude_databases: list[str] = Field(default_factory=lambda: ["rdsadmin"])
    schema_drift: SchemaPolicy = Field(default_factory=SchemaPolicy)
    row_counts: RowCountPolicy = Field(default_factory=RowCountPolicy)
    freshness: list[FreshnessRule] = Field(default_factory=list)
    assertions: list[Assertion] = Field(default_factory=list)
    content_fingerprint: Annotated[
        ContentFingerprintPolicy, BeforeValidator(_fingerprint_shorthand)
    ] = Field(default_factory=ContentFingerprintPolicy)
    amcheck: AmcheckPolicy = Field(default_factory=AmcheckPolicy)
    rounds: RoundsPolicy = Field(default_factory=RoundsPolicy)
    # With rounds: ``full`` verifies every range in every drill; ``rotate`` lets a drill verify
    # part of the database (its budget), the ranges verified longest ago first, so that
    # consecutive drills cover it all. Reports flag a database whose ranges were not all
    # verified within ``max_days_full_coverage``.
    coverage: Literal["full", "rotate"] = "full"
    max_days_full_coverage: float = Field(default=7.0, gt=0, le=366)
    time_budget: Duration = 600.0
    statement_timeout: Duration = 300.0
    parallelism: int | None = Field(default=None, ge=1, le=64)
    instance_class: str | None = Field(default=None, pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    serverless_v2: ServerlessV2Capacity | None = None  # Aurora cluster drills only
    # Coverage in the compliance summary: a database whose last drill finished longer ago than
    # this is called out as overdue. Daily snapshots plus slack for the backup window moving.
    max_hours_between_drills: float = Field(default=36.0, gt=0, le=24 * 366)
    # Automated drills only: drill a new snapshot when the last drill of this database started at
    # least this long ago, and only start them within these UTC hours. On-demand drills (Drill
    # Requested, `restoredrill run`) bypass both.
    every: Duration | None = Field(default=None, le=366 * 86400)
    window: Window | None = None
    prices: PriceOverrides = Field(default_factory=PriceOverrides)
    # Point-in-time restore drills (DB instances): ``every 24h`` or ``{every, max_rpo}``.
    pitr: Annotated[PointInTimePolicy | None, BeforeValidator(_pitr_shorthand)] = None

    @model_validator(mode="after")
    def _unique_names(self) -> DrillPolicy:
        names = [assertion.name for assertion in self.assertions]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"assertion names must be unique: {', '.join(duplicates)}")
        if self.coverage == "rotate" and not (self.rounds.enabled and self.rounds.budget_mib):
            raise ValueError(
                "coverage: rotate needs rounds with a budget: "
                "rounds: {enabled: true, budget_mib: N}"
            )
        if self.rounds.enabled and self.content_fingerprint.enabled:
            raise ValueError(
                "rounds and content_fingerprint cannot be combined: a content fingerprint reads "
                "each table in one statement, which rounds exist to avoid"
            )
        return self

    @model_validator(mode="after")
    def _pitr_measurable(self) -> DrillPolicy:
        if self.pitr is not None and not self.freshness:
            raise ValueError(
                "pitr needs at least one freshness rule: a point-in-time drill measures its RPO "
                "as the age of the newest row the freshness rules find"
            )
        return self

    @property
    def in_rounds(self) -> bool:
        """Levels 2 and 3 run as a plan over several checker invocations."""
        return self.rounds.enabled and self.level >= 2

    @property
    def coverage_hours(self) -> float:
        """How long after its last drill the compliance summary calls this database overdue: a
        database drilled weekly by policy is not overdue after two days."""
        return coverage_hours(self.max_hours_between_drills, self.every)

    def wants_database(self, name: str) -> bool:
        if name in self.exclude_databases:
            return False
        return self.include_databases is None or name in self.include_databases


def coverage_hours(max_hours_between_drills: float, every_seconds: float | None) -> float:
    """The larger of ``max_hours_between_drills`` and ``every`` plus the slack a daily snapshot
    has (:data:`COVERAGE_SLACK_HOURS`)."""
    if every_seconds is None:
        return max_hours_between_drills
    return max(max_hours_between_drills, every_seconds / 3600 + COVERAGE_SLACK_HOURS)


# ---------------------------------------------------------------------------------------------
# the document, loading and errors
# ---------------------------------------------------------------------------------------------


class PolicyIssue(BaseModel):
    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(ValueError):
    """An invalid policy; ``issues`` lists every problem with its file, line and field path."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class PolicyDocument(_Strict):
    version: Literal[1] = 1
    defaults: DrillPolicy = Field(default_factory=DrillPolicy)
    databases: dict[str, DrillPolicy] = Field(default_factory=dict)

    def for_database(self, db_id: str) -> DrillPolicy:
        """The policy of the source DB instance ``db_id`` (the defaults when it has none)."""
        return self.databases.get(db_id, self.defaults)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(override)


def _path_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _node_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_policy_text(text: str, source: str = "<policy>") -> PolicyDocument:
    """Parse and validate a policy document (YAML or JSON text); raise :class:`PolicyError`."""
    root, data = _load_yaml(text, source)
    reader = _PolicyReader(source, root)
    raw_defaults = data.get("defaults") or {}
    raw_databases = data.get("databases") or {}
    top = {key: value for key, value in data.items() if key not in ("defaults", "databases")}
    try:
        PolicyDocument.model_validate(top)
    except ValidationError as exc:
        reader.collect(exc, ())
    defaults: DrillPolicy | None = None
    if not isinstance(raw_defaults, dict):
        reader.not_a_mapping(("defaults",), "must be a mapping")
        raw_defaults = {}
    else:
        defaults = reader.defaults(raw_defaults)
    if not isinstance(raw_databases, dict):
        reader.not_a_mapping(
            ("databases",), "must be a mapping of DB instance identifier to policy"
        )
        raw_databases = {}
    databases = reader.databases(raw_databases, raw_defaults, own_only=defaults is None)
    if reader.issues:
        raise PolicyError(reader.issues)
    return PolicyDocument(defaults=defaults or DrillPolicy(), databases=databases)


def _load_yaml(text: str, source: str) -> tuple[yaml.Node | None, dict[Any, Any]]:
    """The document's YAML tree (for line numbers) and its data, a mapping."""
    # PyYAML is imported only when a policy file is read: `restoredrill check` without --policy
    # and the checker function (its policy comes in its request) never read one, and the import
    # is ~15 ms of their start-up.
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise PolicyError(
            [PolicyIssue(source=source, line=line, path="", message=problem)]
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(
            [PolicyIssue(source=source, line=None, path="", message=str(exc))]
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            [PolicyIssue(source=source, line=1, path="", message="a policy must be a mapping")]
        )
    return root, data


class _PolicyReader:
    """Validates the parts of one policy document, collecting every issue with its line."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.root = root
        self.issues: list[PolicyIssue] = []

    def collect(
        self,
        exc: ValidationError,
        prefix: tuple[int | str, ...],
        *fallbacks: tuple[int | str, ...],
        only_own: bool = False,
    ) -> None:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if only_own and not _reaches(self.root, prefix + loc):
                continue  # inherited from the defaults, whose errors are reported once
            self.issues.append(
                PolicyIssue(
                    source=self.source,
                    line=self._line(loc, (prefix, *fallbacks)),
                    path=_path_text(prefix + loc),
                    message=_message(error),
                )
            )

    def _line(
        self, loc: tuple[int | str, ...], bases: tuple[tuple[int | str, ...], ...]
    ) -> int | None:
        line = None
        for base in bases:
            line = _node_line(self.root, base + loc)
            if line is not None and _reaches(self.root, base + loc):
                break
        return line

    def not_a_mapping(self, loc: tuple[int | str, ...], message: str) -> None:
        self.issues.append(
            PolicyIssue(
                source=self.source,
                line=_node_line(self.root, loc),
                path=_path_text(loc),
                message=message,
            )
        )

    def defaults(self, raw_defaults: dict[Any, Any]) -> DrillPolicy | None:
        try:
            return DrillPolicy.model_validate(raw_defaults)
        except ValidationError as exc:
            self.collect(exc, ("defaults",))
            return None

    def databases(
        self, raw_databases: dict[Any, Any], raw_defaults: dict[Any, Any], *, own_only: bool
    ) -> dict[str, DrillPolicy]:
        """Each database's policy, the defaults merged under it. ``own_only``: report only the
        errors located in the database's own entry (the defaults' are reported already)."""
        databases: dict[str, DrillPolicy] = {}
        for db_id, raw in raw_databases.items():
            prefix: tuple[int | str, ...] = ("databases", str(db_id))
            if raw is None:
                raw = {}
            if not isinstance(raw, dict):
                self.not_a_mapping(prefix, "must be a mapping")
                continue
            try:
                databases[str(db_id)] = DrillPolicy.model_validate(_merge(raw_defaults, raw))
            except ValidationError as exc:
                self.collect(exc, prefix, ("defaults",), only_own=own_only)
        return databases


def _reaches(node: yaml.Node | None, loc: tuple[int | str, ...]) -> bool:
    """True if every step of ``loc`` exists in the YAML tree (so the error is located there)."""
    import yaml

    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    node = value_node
                    break
            else:
                return False
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return False
            node = node.value[part]
        else:
            # a leaf reached before the end of loc (e.g. a scalar where a mapping was expected)
            return True
    return True


def load_policy_file(path: str | Path) -> PolicyDocument:
    """Read and validate a policy file; raise :class:`PolicyError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(
            [PolicyIssue(source=str(path), line=None, path="", message=f"cannot read: {exc}")]
        ) from None
    return parse_policy_text(text, source=str(path))
