"""`restoredrill run`, `status` and `history`: the operator's view of a deployed stack (or of the
local cloud of `restoredrill local`).

    restoredrill run DB [--snapshot ID] [--wait]   publish Drill Requested (and follow the drill);
                                                   --point-in-time: to its latest restorable time
    restoredrill status                            active drills and the recently finished ones
    restoredrill history DB [--limit N]            one database's drills, newest first

Tables and live progress go through rich when stdout is a terminal, plain aligned text otherwise
(or with --plain); --json prints one JSON document for scripts. Exit status of `run --wait`: 0
when the drill PASSED, 1 for any other verdict, 2 when it could not be requested or the wait
timed out (as for every stack problem).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from restoredrill.domain.report.document import PHASE_NAMES
from restoredrill.domain.report.location import report_key
from restoredrill.domain.report.text import duration_text
from restoredrill.ports.messages import failed_checks
from restoredrill.ports.records import RunRecord, RunState, Verdict
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from restoredrill_cli.resolve import resolve_target, resolve_targets
from restoredrill_cli.stack import StackClient
from restoredrill_cli.target import CliError, Target

EXIT_PASSED = 0
EXIT_NOT_PASSED = 1
EXIT_COULD_NOT = 2
# StartDrill runs within seconds of the request; when no run record appears in this long, it
# refused the request (its log says why) or never got the event.
START_GRACE_SECONDS = 300.0
FAILED_CHECKS_SHOWN = 3
VERDICT_STYLES = {
    Verdict.PASSED.value: "bold green",
    Verdict.FAILED.value: "bold red",
    Verdict.ERROR.value: "bold red",
    Verdict.TIMED_OUT.value: "bold yellow",
}

ClientFactory = Callable[[Target], StackClient]


# ---------------------------------------------------------------------------- the commands


def _uses_rich(args: argparse.Namespace, out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return not (args.json or args.plain) and bool(isatty and isatty())


def run_command(
    args: argparse.Namespace,
    out: TextIO | None = None,
    *,
    client_factory: ClientFactory = StackClient,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    out = out or sys.stdout
    target = resolve_target(args)
    client = client_factory(target)
    point_in_time = bool(args.point_in_time)
    problem = client.drill_problem(args.db, args.snapshot, point_in_time=point_in_time)
    if problem is not None:
        raise CliError(f"cannot drill {args.db}: {problem}")
    requested_by = args.requested_by or client.caller()
    run_id = client.request_drill(args.db, args.snapshot, requested_by, point_in_time=point_in_time)
    if not args.wait:
        if args.json:
            _print_json(out, {"stack": target.name, "run_id": run_id, "db": args.db})
        else:
            print(run_id, file=out, flush=True)
            print(
                f"Drill Requested published on {target.bus_name} ({target.stack_name}, "
                f"{target.region}); follow it: restoredrill status",
                file=sys.stderr,
                flush=True,
            )
        return EXIT_PASSED

    display = _Display(out, rich=_uses_rich(args, out), quiet=args.json)
    display.line(f"drill {run_id}: {args.db} on {target.stack_name} ({target.region})")
    run, problem = _follow(client, run_id, args, display, clock=clock, sleep=sleep)
    if problem is not None or run is None:
        if args.json:
            summary = run_summary(run, target) if run is not None else {"run_id": run_id}
            _print_json(out, {**summary, "stack": target.name, "error": problem})
        print(f"restoredrill: error: {problem}", file=sys.stderr, flush=True)
        return EXIT_COULD_NOT
    if args.json:
        _print_json(out, run_summary(run, target))
    else:
        display.line("")
        verdict_style = VERDICT_STYLES.get(run.verdict.value if run.verdict else "")
        for line in outcome_lines(run, target):
            display.line(line, style=verdict_style if line.startswith("verdict:") else None)
    return EXIT_PASSED if run.verdict is Verdict.PASSED else EXIT_NOT_PASSED


def _follow(
    client: StackClient,
    run_id: str,
    args: argparse.Namespace,
    display: _Display,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[RunRecord | None, str | None]:
    """Read the run until it is finished, showing its progress: (the run, None), or (the run
    as last read, why the wait ended without a verdict)."""
    progress = ProgressLog()
    started = clock()
    run: RunRecord | None = None
    with display.waiting() as update:
        while True:
            found = client.run(run_id)
            if found is not None:
                run = found
                for line in progress.lines(run):
                    display.line(line)
                if run.is_finished:
                    return run, None
            waited = clock() - started
            if run is None and waited >= min(START_GRACE_SECONDS, args.timeout):
                return None, (
                    f"no drill {run_id} after {duration_text(waited)}: StartDrill refused the "
                    "request or did not get it (see its log)"
                )
            if run is not None and waited >= args.timeout:
                return run, (
                    f"gave up waiting after {duration_text(waited)}: drill {run_id} is still "
                    f"{run.state.value} (it carries on; see restoredrill status)"
                )
            shown = run.state.value if run else "requested, waiting for StartDrill"
            update(f"{shown}  {duration_text(waited)}")
            sleep(args.poll_interval)


def status_command(
    args: argparse.Namespace,
    out: TextIO | None = None,
    *,
    client_factory: ClientFactory = StackClient,
) -> int:
    out = out or sys.stdout
    targets = resolve_targets(args)
    active: list[tuple[Target, RunRecord]] = []
    recent: list[tuple[Target, RunRecord]] = []
    for target in targets:
        client = client_factory(target)
        active += [(target, run) for run in client.active_runs()]
        recent += [(target, run) for run in client.recent_runs(args.limit)]
    recent = sorted(recent, key=lambda pair: pair[1].created_at, reverse=True)[: args.limit]
    if args.json:
        _print_json(
            out,
            {
                "active": [run_summary(run, target) for target, run in active],
                "recent": [run_summary(run, target) for target, run in recent],
            },
        )
        return EXIT_PASSED
    now = datetime.now(UTC)
    show_stack = len(targets) > 1
    tables = status_tables(
        [(t.name, run) for t, run in active],
        [(t.name, run) for t, run in recent],
        now=now,
        show_stack=show_stack,
    )
    emit_tables(tables, out, rich=_uses_rich(args, out))
    return EXIT_PASSED


def history_command(
    args: argparse.Namespace,
    out: TextIO | None = None,
    *,
    client_factory: ClientFactory = StackClient,
) -> int:
    out = out or sys.stdout
    targets = resolve_targets(args)
    found: list[tuple[Target, RunRecord]] = []
    for target in targets:
        found += [(target, run) for run in client_factory(target).runs_of(args.db, args.limit)]
    found = sorted(found, key=lambda pair: pair[1].created_at, reverse=True)[: args.limit]
    if args.json:
        _print_json(
            out, {"db": args.db, "runs": [run_summary(run, target) for target, run in found]}
        )
        return EXIT_PASSED
    table = history_table(args.db, [(t.name, run) for t, run in found], show_stack=len(targets) > 1)
    emit_tables([table], out, rich=_uses_rich(args, out))
    return EXIT_PASSED


def _print_json(out: TextIO, document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, sort_keys=True), file=out, flush=True)


class _Display:
    """Progress lines for `run --wait`: rich's spinner on a terminal, plain lines otherwise,
    nothing at all with --json (stdout is the JSON document's)."""

    def __init__(self, out: TextIO, *, rich: bool, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.console = Console(file=out, highlight=False) if rich else None

    def line(self, text: str, *, style: str | None = None) -> None:
        if self.quiet:
            return
        if self.console is not None:
            # soft_wrap: a long line (the report's URI) is left whole for the terminal to wrap
            self.console.print(Text(text, style=style or ""), soft_wrap=True)
        else:
            print(text, file=self.out, flush=True)

    def waiting(self) -> AbstractContextManager[Callable[[str], None]]:
        """A context giving ``update(text)``: rich's spinner line, or nothing."""
        if self.console is None or self.quiet:
            return nullcontext(lambda text: None)
        return _spinner(self.console)


@contextmanager
def _spinner(console: Console) -> Iterator[Callable[[str], None]]:
    with console.status("requested") as status:
        yield lambda text: status.update(Text(text))


# ---------------------------------------------------------------------------- pure rendering


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def total_seconds(run: RunRecord) -> float | None:
    """From the request to the end of the drill (None while it runs)."""
    return _seconds(run.created_at, run.finished_at) if run.finished_at else None


def report_key_of(run: RunRecord) -> str | None:
    """Where the run's report is: recorded on the run, else where the drill writes it once
    finished (reports are written before the run is FINISHED)."""
    if run.report_key:
        return run.report_key
    return report_key(run) if run.is_finished else None


def failed_check_names(run: RunRecord) -> list[str]:
    return [str(check["name"]) for check in failed_checks(run.checks)]


def _failed_text(run: RunRecord) -> str:
    names = failed_check_names(run)
    if not names:
        return "-"
    shown = ", ".join(names[:FAILED_CHECKS_SHOWN])
    more = len(names) - FAILED_CHECKS_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def _deadline_text(run: RunRecord, now: datetime) -> str:
    left = _seconds(now, run.deadline)
    return f"in {duration_text(left)}" if left >= 0 else f"passed {duration_text(-left)} ago"


@dataclass(frozen=True)
class TableView:
    """A table as data: rendered as plain text or as a rich Table."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def status_tables(
    active: Sequence[tuple[str, RunRecord]],
    recent: Sequence[tuple[str, RunRecord]],
    *,
    now: datetime,
    show_stack: bool = False,
) -> list[TableView]:
    """The `status` tables: drills under way, then the recently finished ones."""
    lead: tuple[str, ...] = ("stack",) if show_stack else ()

    def stack(name: str) -> tuple[str, ...]:
        return (name,) if show_stack else ()

    active_rows = tuple(
        (
            *stack(name),
            run.run_id,
            run.source_db,
            run.state.value,
            duration_text(_seconds(run.created_at, now)),
            _deadline_text(run, now),
        )
        for name, run in active
    )
    recent_rows = tuple(
        (
            *stack(name),
            run.run_id,
            run.source_db,
            run.verdict.value if run.verdict else "-",
            duration_text(run.restore_seconds),
            _when(run.finished_at),
        )
        for name, run in recent
    )
    return [
        TableView(
            title=f"Active drills ({len(active_rows)})",
            headers=(*lead, "run id", "database", "state", "age", "deadline"),
            rows=active_rows,
        ),
        TableView(
            title=f"Recently finished ({len(recent_rows)})",
            headers=(*lead, "run id", "database", "verdict", "restore (RTO)", "finished"),
            rows=recent_rows,
        ),
    ]


def history_table(
    db: str, runs: Sequence[tuple[str, RunRecord]], *, show_stack: bool = False
) -> TableView:
    """The `history` table: one database's drills, in the order given (newest first)."""
    lead: tuple[str, ...] = ("stack",) if show_stack else ()
    rows = tuple(
        (
            *((name,) if show_stack else ()),
            _when(run.created_at),
            run.run_id,
            run.verdict.value if run.verdict else f"({run.state.value})",
            duration_text(run.restore_seconds),
            duration_text(total_seconds(run)),
            _failed_text(run),
            report_key_of(run) or "-",
        )
        for name, run in runs
    )
    return TableView(
        title=f"Drills of {db} ({len(rows)})",
        headers=(
            *lead,
            "created",
            "run id",
            "verdict",
            "restore (RTO)",
            "total",
            "failed checks",
            "report",
        ),
        rows=rows,
    )


def render_plain(tables: Sequence[TableView]) -> str:
    """Aligned columns, no escapes: for pipes, files and logs."""
    blocks = []
    for table in tables:
        if not table.rows:
            blocks.append(f"{table.title}: none")
            continue
        widths = [
            max(len(cell) for cell in column)
            for column in zip(table.headers, *table.rows, strict=True)
        ]
        lines = [table.title]
        for cells in (table.headers, *table.rows):
            padded = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            lines.append(padded.rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def render_rich(tables: Sequence[TableView]) -> RenderableType:
    """rich Tables (verdicts coloured) for a terminal."""
    parts: list[RenderableType] = []
    for table in tables:
        if not table.rows:
            parts.append(Text(f"{table.title}: none", style="dim"))
            continue
        shown = Table(title=table.title, title_justify="left", box=box.SIMPLE_HEAD)
        for header in table.headers:
            shown.add_column(header, no_wrap=header in ("run id", "created", "finished"))
        for row in table.rows:
            shown.add_row(*(Text(cell, style=VERDICT_STYLES.get(cell, "")) for cell in row))
        parts.append(shown)
    return Group(*parts)


def emit_tables(tables: Sequence[TableView], out: TextIO, *, rich: bool) -> None:
    if rich:
        Console(file=out, highlight=False).print(render_rich(tables))
    else:
        out.write(render_plain(tables))
        out.flush()


class ProgressLog:
    """The lines `run --wait` prints as a drill moves: each state reached, with the time since
    the request, and each phase's duration once it ended. Fed every version read (versions may
    be skipped between polls: the run's phases say what happened in between)."""

    def __init__(self) -> None:
        self._started: set[RunState] = set()
        self._ended: set[RunState] = set()

    def lines(self, run: RunRecord) -> list[str]:
        lines: list[str] = []
        for state, phase in sorted(run.phases.items(), key=lambda item: item[1].started_at):
            if state not in self._started:
                self._started.add(state)
                elapsed = duration_text(_seconds(run.created_at, phase.started_at))
                note = f"  ({run.reason})" if run.reason and state is RunState.TEARING_DOWN else ""
                lines.append(f"  +{elapsed:>7}  {state.value}{note}")
            took = phase.duration_seconds
            if state in PHASE_NAMES and took is not None and state not in self._ended:
                self._ended.add(state)
                lines.append(f"            {PHASE_NAMES[state]} took {duration_text(took)}")
        return lines


def outcome_lines(run: RunRecord, target: Target) -> list[str]:
    """The end of `run --wait`: verdict, reason, timings, failed checks, the report."""
    lines = [f"verdict: {run.verdict.value if run.verdict else run.state.value}"]
    if run.reason:
        lines.append(f"reason:  {run.reason}")
    lines.append(
        f"restore (RTO): {duration_text(run.restore_seconds)}   "
        f"total: {duration_text(total_seconds(run))}"
    )
    failed = failed_checks(run.checks)
    if failed:
        lines.append(f"failed checks ({len(failed)}):")
        lines += [
            f"  - {check['name']} {check['status']}: {check.get('message') or ''}".rstrip()
            for check in failed
        ]
    key = report_key_of(run)
    lines.append(f"report:  {target.report_uri(key) if key else '-'}")
    return lines


def run_summary(run: RunRecord, target: Target) -> dict[str, Any]:
    """A run as JSON, for --json."""
    key = report_key_of(run)
    return {
        "stack": target.name,
        "stack_name": target.stack_name,
        "region": target.region,
        "run_id": run.run_id,
        "source_db": run.source_db,
        "snapshot_id": run.snapshot.snapshot_id,
        "state": run.state.value,
        "verdict": run.verdict.value if run.verdict else None,
        "reason": run.reason,
        "trigger": run.trigger,
        "requested_by": run.requested_by,
        "created_at": run.created_at.isoformat(),
        "deadline": run.deadline.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "restore_seconds": run.restore_seconds,
        "total_seconds": total_seconds(run),
        "phase_seconds": {
            PHASE_NAMES[state]: phase.duration_seconds
            for state, phase in run.phases.items()
            if state in PHASE_NAMES
        },
        "failed_checks": failed_checks(run.checks),
        "report_key": key,
        "report_uri": target.report_uri(key) if key else None,
    }
