"""The operator commands against the local cloud: `run --wait`, `status` and `history` through
`restoredrill_cli.main.main`, and `restoredrill local` in its own process, as an operator uses
it from two terminals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from restoredrill.ports.records import Verdict

from localcloud.cloud import LocalCloud
from restoredrill_cli.main import main
from restoredrill_cli.target import write_state_file

from .conftest import assert_invariants

pytestmark = pytest.mark.e2e

ANSI = "\x1b"
REPORT_LINE = re.compile(r"^report:  s3://(?P<bucket>[^/]+)/(?P<key>\S+)$", re.MULTILINE)


@pytest.fixture
def state_file(cloud: LocalCloud, tmp_path: Path) -> Path:
    """The cloud as `restoredrill local` leaves it: clinic-db opted in, with an automated
    snapshot whose event was not delivered (no drill runs until one is requested)."""
    cloud.create_source_database("clinic-db")
    assert cloud.rds is not None
    cloud.rds.create_automated_snapshot("clinic-db")
    path = tmp_path / "local.json"
    write_state_file(path, cloud.target_description())
    return path


def test_run_wait_passes_and_status_and_history_show_the_drill(
    cloud: LocalCloud, state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = ["--local", str(state_file)]
    # Given no drill yet: a database that does not exist is refused before anything is published
    assert main(["run", "orders-db", *local, "--wait"]) == 2
    refused = capsys.readouterr()
    assert refused.err == (
        "restoredrill: error: cannot drill orders-db: no RDS DB instance orders-db in us-east-1\n"
    )
    assert cloud.all_runs() == []

    # When `run clinic-db --wait` requests a drill and follows it
    code = main(
        ["run", "clinic-db", *local, "--wait", "--poll-interval", "0.3", "--timeout", "180"]
    )
    out = capsys.readouterr().out

    # Then it exits 0 after every state, with PASSED and the report's URI, without escapes
    assert code == 0, out
    run_id = out.splitlines()[0].split()[1].rstrip(":")
    states = [line.split()[2] for line in out.splitlines() if line.startswith("  +")]
    assert states == [
        "QUEUED",
        "REQUESTED",
        "RESTORING",
        "SECURING",
        "CHECKING",
        "TEARING_DOWN",
        "REPORTING",
        "FINISHED",
    ]
    assert "verdict: PASSED" in out.splitlines()
    assert ANSI not in out
    report = REPORT_LINE.search(out)
    assert report is not None, out
    assert report["bucket"] == cloud.target_description()["outputs"]["ReportBucketName"]
    stored = cloud.report(report["key"])
    assert (stored["verdict"], stored["run"]["trigger"]) == ("PASSED", "Drill Requested")
    assert stored["run"]["requested_by"].startswith("arn:aws:")
    run = cloud.run(run_id)
    assert run is not None
    assert_invariants(cloud, run, Verdict.PASSED)

    # And `status` lists it among the recently finished drills, none active
    assert main(["status", *local]) == 0
    status = capsys.readouterr().out
    assert "Active drills (0): none" in status
    finished = next(line for line in status.splitlines() if line.startswith(run_id))
    assert finished.split()[1:3] == ["clinic-db", "PASSED"]
    assert ANSI not in status

    # And `history clinic-db` has it with its report key, in text and in JSON
    assert main(["history", "clinic-db", *local]) == 0
    history = capsys.readouterr().out
    assert run_id in history and report["key"] in history and ANSI not in history
    assert main(["history", "clinic-db", *local, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["run_id"], r["verdict"], r["report_key"]) for r in runs] == [
        (run_id, "PASSED", report["key"])
    ]
    assert runs[0]["restore_seconds"] > 0


@pytest.fixture
def local_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`restoredrill local --fault fail-restore` in its own process, until its state file is
    written (it is written only once the cloud is ready)."""
    state = tmp_path / "state" / "local.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "restoredrill_cli.main",
            "local",
            "--state-file",
            str(state),
            "--patients",
            "300",
            "--fault",
            "fail-restore",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not state.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state.exists(), f"no state file; exit {process.poll()}"
        yield process, state
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_local_in_one_process_and_run_in_another_with_the_fault_armed(
    local_process: tuple[subprocess.Popen[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    process, state = local_process
    # Given `restoredrill local --fault fail-restore` running in its own process
    # When another process requests a drill of clinic-db and waits for it
    code = main(["run", "clinic-db", "--local", str(state), "--wait", "--poll-interval", "0.3"])
    out = capsys.readouterr().out
    # Then the fault reached the requested drill: it FAILED (exit 1) and still has its report
    assert code == 1, out
    assert "verdict: FAILED" in out
    assert REPORT_LINE.search(out) is not None
    # And SIGTERM stops the local cloud cleanly and removes its state file
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert not state.exists()
    assert "local cloud stopped" in output
    assert "Traceback" not in output
