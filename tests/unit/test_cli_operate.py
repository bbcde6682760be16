"""`restoredrill run`, `status` and `history` against a fake stack: what they print (plain and
rich), the live progress of `run --wait`, and their exit statuses. No sockets."""

from __future__ import annotations

import argparse
import functools
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from restoredrill.ports.messages import CheckSuiteResult
from restoredrill.ports.records import PhaseTiming, RunRecord, RunState, SnapshotInfo, Verdict
from rich.console import Console

from restoredrill_cli.main import build_parser
from restoredrill_cli.operate import (
    ProgressLog,
    history_command,
    history_table,
    render_plain,
    render_rich,
    run_command,
    status_command,
    status_tables,
)
from restoredrill_cli.target import guarded, write_state_file
from tests.unit.check_suites import check, suite_of

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
RUN_ID = "0123456789abcdef0123"
OTHER_ID = "fedcba9876543210fedc"
BUCKET = "reports-bucket"
ANSI = "\x1b["


def a_run(
    run_id: str = RUN_ID,
    *,
    reached: list[tuple[RunState, float]],
    verdict: Verdict | None = None,
    reason: str | None = None,
    checks: CheckSuiteResult | None = None,
    created: datetime = T0,
    db: str = "clinic-db",
    version: int | None = None,
) -> RunRecord:
    """A run that reached each state at the given second after its request."""
    phases: dict[RunState, PhaseTiming] = {}
    for index, (state, at) in enumerate(reached):
        started = created + timedelta(seconds=at)
        if state is RunState.FINISHED:
            ended: datetime | None = started
        elif index + 1 < len(reached):
            ended = created + timedelta(seconds=reached[index + 1][1])
        else:
            ended = None
        phases[state] = PhaseTiming(started_at=started, ended_at=ended)
    state = reached[-1][0]
    return RunRecord(
        run_id=run_id,
        version=len(reached) if version is None else version,
        state=state,
        source_db=db,
        snapshot=SnapshotInfo(
            snapshot_id="rds:clinic-db-2026-11-27-03-00",
            snapshot_arn="arn:aws:rds:us-east-1:123456789012:snapshot:rds:clinic-db-2026-11-27-03-00",
            master_username="clinic_admin",
            region="us-east-1",
            account_id="123456789012",
        ),
        instance_id=f"restoredrill-{run_id}",
        instance_class="db.t4g.micro",
        trigger="Drill Requested",
        created_at=created,
        deadline=created + timedelta(hours=4),
        phases=phases,
        verdict=verdict,
        reason=reason,
        checks=checks,
        finished_at=phases[state].started_at if state is RunState.FINISHED else None,
    )


PASSED_PATH = [
    (RunState.REQUESTED, 0.0),
    (RunState.RESTORING, 0.5),
    (RunState.SECURING, 8.6),
    (RunState.CHECKING, 12.0),
    (RunState.TEARING_DOWN, 20.0),
    (RunState.REPORTING, 24.0),
    (RunState.FINISHED, 25.0),
]


def failed_checks_result(count: int) -> CheckSuiteResult:
    return suite_of(
        "FAILED",
        check("connect", "pass"),
        *(
            check(
                "row_counts",
                "fail",
                database="clinic",
                object=f"clinic.table_{n}",
                message=f"{n} rows lost",
            )
            for n in range(count)
        ),
    )


# ---------------------------------------------------------------------------- rendering


def test_status_in_plain_text_is_aligned_and_has_no_escapes() -> None:
    # Given a drill restoring for 90 s and one that passed with an 8.1 s restore
    now = T0 + timedelta(seconds=90)
    active = a_run(reached=[(RunState.REQUESTED, 0), (RunState.RESTORING, 0.5)])
    done = a_run(OTHER_ID, reached=PASSED_PATH, verdict=Verdict.PASSED, created=T0 - timedelta(1))
    # When the status tables are rendered as plain text
    text = render_plain(status_tables([("local", active)], [("local", done)], now=now))
    # Then each drill's row says what an operator asks, under its column
    lines = text.splitlines()
    assert lines[0] == "Active drills (1)"
    header, row = lines[1], lines[2]
    assert row.split() == [RUN_ID, "clinic-db", "RESTORING", "1m30s", "in", "3h58m"]
    assert header.index("state") == row.index("RESTORING")
    assert header.index("deadline") == row.index("in 3h58m")
    finished = lines[lines.index("Recently finished (1)") + 2]
    assert finished.split() == [OTHER_ID, "clinic-db", "PASSED", "8.1s", "2026-11-26", "03:00:25Z"]
    assert ANSI not in text


def test_status_on_a_terminal_is_a_rich_table_with_coloured_verdicts() -> None:
    now = T0 + timedelta(seconds=90)
    done = a_run(OTHER_ID, reached=PASSED_PATH, verdict=Verdict.PASSED)
    failed = a_run(RUN_ID, reached=PASSED_PATH, verdict=Verdict.FAILED, reason="a check failed")
    tables = status_tables([], [("local", done), ("local", failed)], now=now)
    screen = io.StringIO()
    Console(file=screen, force_terminal=True, width=160).print(render_rich(tables))
    shown = screen.getvalue()
    assert "\x1b[1;32mPASSED" in shown
    assert "\x1b[1;31mFAILED" in shown
    assert OTHER_ID in shown and RUN_ID in shown
    assert "Active drills (0): none" in shown


def test_no_drills_render_as_none_rather_than_empty_tables() -> None:
    text = render_plain(status_tables([], [], now=T0))
    assert text == "Active drills (0): none\n\nRecently finished (0): none\n"


def test_several_stacks_get_a_stack_column() -> None:
    run = a_run(reached=[(RunState.REQUESTED, 0)])
    (active, _) = status_tables([("prod", run), ("prod-dr", run)], [], now=T0, show_stack=True)
    assert active.headers[0] == "stack"
    assert [row[0] for row in active.rows] == ["prod", "prod-dr"]


def test_history_shows_timings_failed_checks_and_the_report_key() -> None:
    # Given a drill that failed five row counts, and one still checking
    failed = a_run(
        reached=PASSED_PATH,
        verdict=Verdict.FAILED,
        reason="5 checks failed",
        checks=failed_checks_result(5),
    )
    checking = a_run(
        OTHER_ID,
        reached=PASSED_PATH[:4],
        created=T0 + timedelta(days=1),
    )
    # When the history table is built
    table = history_table("clinic-db", [("local", checking), ("local", failed)])
    # Then the finished one has its restore time, total, the first failed checks and its report
    running, done = (dict(zip(table.headers, row, strict=True)) for row in table.rows)
    assert done["verdict"] == "FAILED"
    assert (done["restore (RTO)"], done["total"]) == ("8.1s", "25.0s")
    assert done["failed checks"] == (
        "row_counts[clinic/clinic.table_0], row_counts[clinic/clinic.table_1], "
        "row_counts[clinic/clinic.table_2] (+2 more)"
    )
    assert done["report"] == f"reports/us-east-1/clinic-db/2026/11/27/{RUN_ID}.json"
    # And the running one shows its state and no total or report yet
    assert (running["verdict"], running["total"], running["report"]) == ("(CHECKING)", "-", "-")
    assert table.title == "Drills of clinic-db (2)"


def test_progress_prints_every_state_once_even_those_between_two_reads() -> None:
    # Given the run read while requested, then only once it was already checking
    progress = ProgressLog()
    first = progress.lines(a_run(reached=PASSED_PATH[:1]))
    second = progress.lines(a_run(reached=PASSED_PATH[:4]))
    again = progress.lines(a_run(reached=PASSED_PATH[:4]))
    # Then each state reached appears once, in order, with the time since the request, and each
    # phase's duration once it ended
    assert first == ["  +   0.0s  REQUESTED"]
    assert second == [
        "            request took 0.5s",
        "  +   0.5s  RESTORING",
        "            restore took 8.1s",
        "  +   8.6s  SECURING",
        "            secure took 3.4s",
        "  +  12.0s  CHECKING",
    ]
    assert again == []


# ---------------------------------------------------------------------------- run


class FakeStack:
    """The StackClient's surface: the run is read as the given versions, one per read."""

    def __init__(self, versions: list[RunRecord | None], problem: str | None = None) -> None:
        self.versions = versions
        self.problem = problem
        self.requests: list[tuple[str, str | None, str | None]] = []
        self.point_in_time_requests: list[bool] = []
        self.problems_asked: list[bool] = []
        self.reads = 0

    def drill_problem(
        self, db: str, snapshot_id: str | None = None, *, point_in_time: bool = False
    ) -> str | None:
        self.problems_asked.append(point_in_time)
        return self.problem

    def caller(self) -> str:
        return "arn:aws:iam::123456789012:user/ops"

    def request_drill(
        self,
        db: str,
        snapshot_id: str | None,
        requested_by: str | None,
        *,
        point_in_time: bool = False,
    ) -> str:
        self.requests.append((db, snapshot_id, requested_by))
        self.point_in_time_requests.append(point_in_time)
        return RUN_ID

    def run(self, run_id: str) -> RunRecord | None:
        assert run_id == RUN_ID
        found = self.versions[min(self.reads, len(self.versions) - 1)]
        self.reads += 1
        return found

    def active_runs(self) -> list[RunRecord]:
        return [v for v in self.versions if v is not None and not v.is_finished]

    def recent_runs(self, limit: int) -> list[RunRecord]:
        return [v for v in self.versions if v is not None and v.is_finished][:limit]

    def runs_of(self, db: str, limit: int) -> list[RunRecord]:
        return [v for v in self.versions if v is not None and v.source_db == db][:limit]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    path = tmp_path / "local.json"
    write_state_file(
        path,
        {
            "stack_name": "restoredrill-local",
            "region": "us-east-1",
            "endpoint_url": "http://127.0.0.1:1",
            "outputs": {
                "DrillBusName": "drills",
                "RunTableName": "runs",
                "ReportBucketName": BUCKET,
            },
        },
    )
    return path


def run_cli(
    state_file: Path, stack: FakeStack, *argv: str, out: io.StringIO | None = None
) -> tuple[int, str]:
    args = build_parser().parse_args([*argv[:2], "--local", str(state_file), *argv[2:]])
    screen = out if out is not None else io.StringIO()
    clock = Clock()
    commands: dict[str, Callable[..., int]] = {
        "run": functools.partial(run_command, clock=clock, sleep=clock.sleep),
        "status": status_command,
        "history": history_command,
    }
    command = commands[args.command]
    code = guarded(lambda parsed: command(parsed, screen, client_factory=lambda target: stack))(
        args
    )
    return code, screen.getvalue()


def finished_versions(verdict: Verdict, **kwargs: Any) -> list[RunRecord | None]:
    return [
        None,
        a_run(reached=PASSED_PATH[:2]),
        a_run(reached=PASSED_PATH[:4]),
        a_run(reached=PASSED_PATH, verdict=verdict, **kwargs),
    ]


def test_run_wait_follows_a_passing_drill_to_its_report_and_exits_0(state_file: Path) -> None:
    # Given a drill that StartDrill creates, then restores, checks and passes
    stack = FakeStack(finished_versions(Verdict.PASSED))
    # When `run clinic-db --wait` follows it
    code, out = run_cli(state_file, stack, "run", "clinic-db", "--wait")
    # Then it asked for the database's latest snapshot as the caller, showed every state, and
    # ended with the verdict and where the report is
    assert code == 0
    assert stack.requests == [("clinic-db", None, "arn:aws:iam::123456789012:user/ops")]
    lines = out.splitlines()
    assert lines[0] == f"drill {RUN_ID}: clinic-db on restoredrill-local (us-east-1)"
    states = [line.split()[2] for line in lines if line.startswith("  +")]
    assert states == [state.value for state, _ in PASSED_PATH]
    assert "verdict: PASSED" in lines
    assert "restore (RTO): 8.1s   total: 25.0s" in lines
    assert f"report:  s3://{BUCKET}/reports/us-east-1/clinic-db/2026/11/27/{RUN_ID}.json" in lines
    assert ANSI not in out


def test_run_wait_exits_1_with_the_reason_and_the_failed_checks(state_file: Path) -> None:
    stack = FakeStack(
        finished_versions(Verdict.FAILED, reason="2 checks failed", checks=failed_checks_result(2))
    )
    code, out = run_cli(state_file, stack, "run", "clinic-db", "--wait")
    assert code == 1
    assert "verdict: FAILED" in out
    assert "reason:  2 checks failed" in out
    assert "failed checks (2):\n  - row_counts[clinic/clinic.table_0] fail: 0 rows lost\n" in out


def test_run_wait_exits_2_when_no_drill_starts(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request StartDrill never turns into a run
    stack = FakeStack([None])
    # When `run --wait` waits for it
    code, _ = run_cli(state_file, stack, "run", "clinic-db", "--wait", "--poll-interval", "10")
    # Then it gives up after the start grace, not the whole timeout, and says where to look
    assert code == 2
    err = capsys.readouterr().err
    assert f"no drill {RUN_ID} after 5m00s" in err
    assert "StartDrill" in err
    assert stack.reads == 31


def test_run_wait_exits_2_when_the_drill_outlasts_the_timeout(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = FakeStack([a_run(reached=PASSED_PATH[:2])])
    code, _ = run_cli(state_file, stack, "run", "clinic-db", "--wait", "--timeout", "60")
    assert code == 2
    assert "gave up waiting after 60.0s: drill" in capsys.readouterr().err


def test_run_refuses_a_database_startdrill_would_refuse(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = FakeStack([None], problem="clinic-db is not opted in (tag restoredrill:drill=enabled)")
    code, out = run_cli(state_file, stack, "run", "clinic-db", "--wait")
    assert (code, out) == (2, "")
    assert stack.requests == []
    assert capsys.readouterr().err == (
        "restoredrill: error: cannot drill clinic-db: clinic-db is not opted in "
        "(tag restoredrill:drill=enabled)\n"
    )


def test_run_without_wait_prints_only_the_run_id_on_stdout(state_file: Path) -> None:
    stack = FakeStack([None])
    code, out = run_cli(
        state_file,
        stack,
        "run",
        "clinic-db",
        "--snapshot",
        "rds:clinic-db-x",
        "--requested-by",
        "me",
    )
    assert (code, out) == (0, f"{RUN_ID}\n")
    assert stack.requests == [("clinic-db", "rds:clinic-db-x", "me")]
    assert stack.point_in_time_requests == [False]
    assert stack.reads == 0


def test_run_point_in_time_asks_for_a_point_in_time_drill_and_checks_it_first(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When `run clinic-db --point-in-time` is asked for
    stack = FakeStack([None])
    code, out = run_cli(state_file, stack, "run", "clinic-db", "--point-in-time")
    # Then StartDrill's point-in-time rules were asked first, and the request is one
    assert (code, out) == (0, f"{RUN_ID}\n")
    assert stack.problems_asked == [True] and stack.point_in_time_requests == [True]
    assert stack.requests == [("clinic-db", None, "arn:aws:iam::123456789012:user/ops")]
    # And a refusal (no restorable time) sends nothing
    refused = FakeStack([None], problem="clinic-db has no LatestRestorableTime")
    code, out = run_cli(state_file, refused, "run", "clinic-db", "--point-in-time")
    assert (code, out, refused.requests) == (2, "", [])
    assert (
        "cannot drill clinic-db: clinic-db has no LatestRestorableTime" in capsys.readouterr().err
    )
    # And a snapshot and a point in time together are refused by the parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "clinic-db", "--point-in-time", "--snapshot", "s"])


def test_run_wait_json_is_one_document_for_scripts(state_file: Path) -> None:
    stack = FakeStack(finished_versions(Verdict.PASSED))
    code, out = run_cli(state_file, stack, "run", "clinic-db", "--wait", "--json")
    summary = json.loads(out)
    assert code == 0
    assert (summary["run_id"], summary["verdict"], summary["state"]) == (
        RUN_ID,
        "PASSED",
        "FINISHED",
    )
    assert summary["phase_seconds"]["restore"] == pytest.approx(8.1)
    assert summary["report_uri"].startswith(f"s3://{BUCKET}/reports/us-east-1/clinic-db/")


def test_run_wait_on_a_terminal_uses_rich_and_plain_turns_it_off(state_file: Path) -> None:
    rich_out, plain_out = Terminal(), Terminal()
    run_cli(
        state_file,
        FakeStack(finished_versions(Verdict.PASSED)),
        "run",
        "clinic-db",
        "--wait",
        out=rich_out,
    )
    run_cli(
        state_file,
        FakeStack(finished_versions(Verdict.PASSED)),
        "run",
        "clinic-db",
        "--wait",
        "--plain",
        out=plain_out,
    )
    assert ANSI in rich_out.getvalue()
    assert "verdict: PASSED" in rich_out.getvalue()
    # a long line stays whole (the terminal wraps it), so the URI can be copied
    assert f"report:  s3://{BUCKET}/reports/us-east-1/clinic-db/" in rich_out.getvalue()
    assert ANSI not in plain_out.getvalue()
    assert "verdict: PASSED" in plain_out.getvalue()


# ---------------------------------------------------------------------------- status, history


def test_status_lists_active_and_recent_drills_from_the_stack(state_file: Path) -> None:
    active = a_run(OTHER_ID, reached=PASSED_PATH[:3])
    done = a_run(reached=PASSED_PATH, verdict=Verdict.TIMED_OUT)
    code, out = run_cli(state_file, FakeStack([active, done]), "status")
    assert code == 0
    assert "Active drills (1)" in out and OTHER_ID in out and "SECURING" in out
    assert "Recently finished (1)" in out and "TIMED_OUT" in out


def test_history_json_lists_the_databases_runs(state_file: Path) -> None:
    done = a_run(reached=PASSED_PATH, verdict=Verdict.PASSED)
    other_db = a_run(OTHER_ID, reached=PASSED_PATH, verdict=Verdict.PASSED, db="orders-db")
    code, out = run_cli(state_file, FakeStack([done, other_db]), "history", "clinic-db", "--json")
    document = json.loads(out)
    assert code == 0
    assert document["db"] == "clinic-db"
    assert [run["run_id"] for run in document["runs"]] == [RUN_ID]
    assert document["runs"][0]["restore_seconds"] == pytest.approx(8.1)


def test_options_that_make_no_sense_are_refused_by_the_parser() -> None:
    parser = build_parser()
    for argv in (["run", "db", "--timeout", "0"], ["status", "--json", "--plain"]):
        with pytest.raises(SystemExit) as raised:
            parser.parse_args(argv)
        assert raised.value.code == 2
    assert isinstance(parser.parse_args(["history", "db"]), argparse.Namespace)


def test_run_wait_json_still_prints_a_document_when_the_wait_ends_without_a_verdict(
    state_file: Path,
) -> None:
    stack = FakeStack([a_run(reached=PASSED_PATH[:3])])
    code, out = run_cli(
        state_file, stack, "run", "clinic-db", "--wait", "--json", "--timeout", "30"
    )
    document = json.loads(out)
    assert code == 2
    assert (document["run_id"], document["state"], document["verdict"]) == (
        RUN_ID,
        "SECURING",
        None,
    )
    assert document["error"].startswith("gave up waiting after 30.0s")
