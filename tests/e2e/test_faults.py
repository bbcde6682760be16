"""The fault matrix: every fault of localcloud.cloud.FAULTS, each on its own drill, all at once in
one local cloud (so the faults of one drill must not disturb the others either), and for every
one the same promises (`assert_invariants`) plus the evidence that the fault really happened."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain.report.location import report_key
from restoredrill.ports.messages import SuiteVerdict
from restoredrill.ports.records import RunRecord, RunState

from drillharness.invariants import check_dead_letters, check_nothing_running, check_report_chains
from localcloud import crash
from localcloud.cloud import FAULTS, LocalCloud, run_id_of_event
from localcloud.postgres import running_servers
from restoredrill_cli.demo import run_demo
from restoredrill_cli.main import build_parser, main

from .conftest import assert_invariants

pytestmark = pytest.mark.e2e

MATRIX_TIMEOUT_SECONDS = 300


@dataclass
class Matrix:
    cloud: LocalCloud
    run_ids: dict[str, str] = field(default_factory=dict)  # fault name -> run id
    runs: dict[str, RunRecord | None] = field(default_factory=dict)
    # Servers of other suites (the db tests' session server) that were running before
    servers_before: set[int] = field(default_factory=set)

    def run(self, fault: str) -> RunRecord:
        run = self.runs[fault]
        assert run is not None, f"the {fault} drill left no run record"
        return run


@pytest.fixture(scope="module")
def matrix() -> Iterator[Matrix]:
    """One drill per fault, all started together in one cloud, all waited for."""
    servers_before = {id(server) for server in running_servers()}
    cloud = LocalCloud(patients=300, pool_size=4)
    cloud.start()
    found = Matrix(cloud, servers_before=servers_before)
    try:
        cloud.create_source_database("clinic-db")
        for name in FAULTS:
            found.run_ids[name] = cloud.start_drill("clinic-db", name)
        deadline = time.monotonic() + MATRIX_TIMEOUT_SECONDS
        while time.monotonic() < deadline and len(found.runs) < len(found.run_ids):
            for name, run_id in found.run_ids.items():
                run = cloud.run(run_id)
                if run is not None and run.is_finished:
                    found.runs[name] = run
            time.sleep(0.5)
        for name, run_id in found.run_ids.items():
            found.runs.setdefault(name, cloud.run(run_id))
        yield found
    finally:
        cloud.stop()


def events_of(
    cloud: LocalCloud, run: RunRecord, log: list[tuple[str, dict[str, Any]]]
) -> list[str]:
    return [
        envelope["detail"].get("EventID")
        for _, envelope in log
        if envelope.get("detail-type") == "RDS DB Instance Event"
        and run_id_of_event(envelope) == run.run_id
    ]


def log_lines(cloud: LocalCloud, function: str, *needles: str) -> list[str]:
    assert cloud.aws is not None
    return [
        line
        for line in cloud.aws.log_text(function).splitlines()
        if all(needle in line for needle in needles)
    ]


def slack_requests(cloud: LocalCloud, run: RunRecord) -> list[dict[str, Any]]:
    assert cloud.aws is not None
    return [r for r in cloud.aws.slack.requests if run.run_id in r["raw"]]


def crashed(point: str) -> Callable[[LocalCloud, RunRecord], None]:
    def evidence(cloud: LocalCloud, run: RunRecord) -> None:
        # The worker really died right after that call, for this run
        assert (crash.OPERATIONS[point].name, run.run_id) in cloud.crashes_fired()
        # And each crash recorded the invocation it killed (how its failure record is known)
        killed = cloud.crashed_requests()
        assert len(killed) == len(cloud.crashes_fired())
        assert all(f"START RequestId: {request_id}" in _all_logs(cloud) for request_id in killed)

    return evidence


def _all_logs(cloud: LocalCloud) -> str:
    assert cloud.aws is not None
    return "".join(cloud.aws.log_text(name) for name in cloud.aws.stack.functions)


def crashed_after_checker_invoke(cloud: LocalCloud, run: RunRecord) -> None:
    crashed("checker-invoke")(cloud, run)
    # The invoke was never recorded, yet the checks' result was used
    assert run.checker_invoked_at is None
    assert run.checks is not None and run.checks.verdict is SuiteVerdict.PASSED


def lost_events(cloud: LocalCloud, run: RunRecord) -> None:
    assert cloud.aws is not None
    # Every RDS instance event of the run was dropped, none reached a rule
    assert len(events_of(cloud, run, cloud.aws.delivery.dropped_events)) >= 3
    assert events_of(cloud, run, cloud.aws.delivery.delivered_events) == []
    assert not run.credentials_confirmed


def duplicated_events(cloud: LocalCloud, run: RunRecord) -> None:
    # The snapshot event reached StartDrill three times; two found the drill already there
    existing = log_lines(cloud, "StartDrillFunction", "drill already exists", run.run_id)
    assert len(existing) >= 2


def reordered_events(cloud: LocalCloud, run: RunRecord) -> None:
    assert cloud.aws is not None
    emitted = events_of(cloud, run, cloud.aws.delivery.events_log)
    deadline = time.monotonic() + 30
    while len(events_of(cloud, run, cloud.aws.delivery.delivered_events)) < len(emitted):
        assert time.monotonic() < deadline, "held-back events were never delivered"
        time.sleep(0.2)
    delivered = events_of(cloud, run, cloud.aws.delivery.delivered_events)
    # The same events arrived, the restore's after the credentials reset's
    assert sorted(delivered) == sorted(emitted)
    assert emitted.index("RDS-EVENT-0043") < emitted.index("RDS-EVENT-0016")
    assert delivered.index("RDS-EVENT-0043") > delivered.index("RDS-EVENT-0016")


def restore_failed(cloud: LocalCloud, run: RunRecord) -> None:
    assert "incompatible-restore" in (run.reason or "")
    assert cloud.report(report_key(run))["checks"] is None


def restore_stuck(cloud: LocalCloud, run: RunRecord) -> None:
    assert cloud.aws is not None
    # It never got past RESTORING; the deadline ended it
    assert "deadline" in (run.reason or "") and "RESTORING" in (run.reason or "")
    assert RunState.SECURING not in run.phases
    assert "RDS-EVENT-0043" not in events_of(cloud, run, cloud.aws.delivery.events_log)


def checker_hung(cloud: LocalCloud, run: RunRecord) -> None:
    assert cloud.aws is not None
    assert "Sandbox.Timedout" in (run.reason or "")
    assert "Task timed out after 30.00 seconds" in (run.reason or "")
    # The runtime's timeout of the checker failed the check runner, whose failure came back
    # through its OnFailure destination
    failures = [
        record
        for _, record in cloud.aws.delivery.destinations_log
        if record["requestContext"]["condition"] != "Success"
        and record["requestPayload"].get("run_id") == run.run_id
    ]
    assert [f["requestContext"]["functionArn"].split(":")[-2] for f in failures] == [
        cloud.aws.physical_id("CheckRunnerFunction")
    ]
    assert "Sandbox.Timedout" in failures[0]["responsePayload"]["errorMessage"]


def login_refused(cloud: LocalCloud, run: RunRecord) -> None:
    # The report and the Slack message say why: the login was refused
    checks = cloud.report(report_key(run))["checks"]["checks"]
    connect = [c for c in checks if c["name"] == "connect" and c["status"] == "error"]
    assert connect and "password authentication failed" in connect[0]["message"]
    text = cloud.slack_messages_for(run.run_id)[0]["body"]["text"]
    assert "ERROR" in text and "password authentication failed" in text


def slack_failed(status: int | None, failures: int) -> Callable[[LocalCloud, RunRecord], None]:
    def evidence(cloud: LocalCloud, run: RunRecord) -> None:
        requests = slack_requests(cloud, run)
        faulted = [r for r in requests if "fault" in r]
        # The first posts failed (status, or no answer at all), the last one was taken
        assert [r["fault"]["status"] for r in faulted] == [status] * failures
        assert [r["accepted"] for r in requests] == [False] * failures + [True]
        # ... and it took more than one Notify invocation (EventBridge's async retry)
        assert len(log_lines(cloud, "NotifyFunction", "START RequestId")) >= 2

    return evidence


def s3_failed(cloud: LocalCloud, run: RunRecord) -> None:
    failed = [key for key in cloud.s3_faults.failed if run.run_id in key]
    assert failed == [report_key(run)] * 6


def poisoned(cloud: LocalCloud, run: RunRecord) -> None:
    assert {queue for queue, _ in cloud.poison_sent(run.run_id)} == {
        "PollDeadLetterQueue",
        "CheckerResultsDeadLetterQueue",
    }


EVIDENCE: dict[str, Callable[[LocalCloud, RunRecord], None]] = {
    "lose-rds-events": lost_events,
    "duplicate-events": duplicated_events,
    "reorder-events": reordered_events,
    "crash-after-restore": crashed("restore"),
    "crash-after-password-reset": crashed("password-reset"),
    "crash-after-checker-invoke": crashed_after_checker_invoke,
    "crash-after-report-write": crashed("report-write"),
    "crash-after-delete": crashed("delete"),
    "fail-restore": restore_failed,
    "restore-stuck": restore_stuck,
    "checker-hangs": checker_hung,
    "login-refused": login_refused,
    "slack-500": slack_failed(500, 2),
    "slack-429": slack_failed(429, 3),
    "slack-timeout": slack_failed(None, 1),
    "s3-write-fails": s3_failed,
    "poison-messages": poisoned,
}


def test_every_fault_of_the_matrix_is_tested() -> None:
    assert sorted(EVIDENCE) == sorted(FAULTS)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_drill_keeps_every_promise_whatever_the_fault(matrix: Matrix, fault: str) -> None:
    # Given a drill started with this fault armed (alongside one drill per other fault)
    cloud, run = matrix.cloud, matrix.run(fault)
    assert run is not None, "the drill never started"
    # When it ends, Then it ended with the verdict the fault calls for, and kept every promise
    assert_invariants(cloud, run, FAULTS[fault].verdict)
    # And the fault really happened to it
    EVIDENCE[fault](cloud, run)


def test_dead_letter_queues_hold_the_poison_and_nothing_a_drill_needed(matrix: Matrix) -> None:
    # Given every drill of the matrix finished
    # Then the dead-letter queues hold exactly the two poison messages
    assert check_dead_letters(matrix.cloud) == []
    letters = matrix.cloud.dead_letters()
    assert sorted(len(bodies) for bodies in letters.values() if bodies) == [1, 1]


def test_the_reports_of_the_matrix_form_one_intact_chain(matrix: Matrix) -> None:
    # Given seventeen drills of one database, finishing in whatever order their faults allow,
    # some publishing twice after a crash or an S3 outage
    runs = matrix.cloud.all_runs()
    # When their stored reports are verified as a chain, with the run table and every version
    violations = check_report_chains(matrix.cloud)
    # Then every digest holds and every repeated publish wrote the same bytes (forks, from
    # drills finishing together, are allowed)
    assert [str(violation) for violation in violations] == []
    assert sum(1 for run in runs if run.report_sha256) == len(FAULTS)


def test_after_the_matrix_nothing_is_left_running(matrix: Matrix) -> None:
    # Given seventeen drills with faults, crashed and hung workers among them
    cloud = matrix.cloud
    assert cloud.aws is not None
    assert cloud.crashes_fired() and len(cloud.aws.runtime.started_pids) > 7
    # When the local cloud stops
    cloud.stop()
    # Then no Lambda worker and no PostgreSQL of it is alive
    assert check_nothing_running(cloud) == []
    assert [s for s in running_servers() if id(s) not in matrix.servers_before] == []


def test_the_demo_lists_every_fault_with_its_expected_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the restoredrill command
    # When the demo's help is asked for
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    # Then every fault is offered with what it does and the verdict it must end with
    text = " ".join(capsys.readouterr().out.split())
    for fault in FAULTS.values():
        assert f" {fault.name} {fault.summary} " in f"{text} "


def test_the_demo_ends_a_stuck_restore_at_its_deadline_and_exits_nonzero(tmp_path: Path) -> None:
    # Given the demo with a restore that never finishes (a 0.3-minute deadline for this fault)
    demo = ["demo", "--fault", "restore-stuck", "--json", "--patients", "300", "--timeout", "120"]
    args = build_parser().parse_args([*demo, "--save-dir", str(tmp_path)])
    # When it runs
    out = io.StringIO()
    code = run_demo(args, out)
    summary = json.loads(out.getvalue())
    # Then the drill timed out, everything is gone, Slack was told once, and the exit code says
    # the drill did not pass
    assert code == 1
    assert summary["verdict"] == "TIMED_OUT" and summary["final_state"] == "FINISHED"
    assert summary["instance_deleted"] is True and summary["slack_messages"] == 1
    assert summary["drill_finished_events"] == 1 and summary["servers_left_running"] == 0
    assert summary["processes_left_running"] == []
    assert summary["report"].endswith(f"{summary['run_id']}.json")
    # And the report and its page are kept on this machine, as stored
    run_id = summary["run_id"]
    assert summary["saved"] == [str(tmp_path / f"{run_id}.json"), str(tmp_path / f"{run_id}.html")]
    assert json.loads((tmp_path / f"{run_id}.json").read_text())["verdict"] == "TIMED_OUT"
    assert "TIMED_OUT" in (tmp_path / f"{run_id}.html").read_text()
