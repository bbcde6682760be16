"""`restoredrill local`: the local cloud, kept running for the operator commands.

It starts the same local cloud as `restoredrill demo` (moto, the real handlers, a real
PostgreSQL per restored instance), creates the opted-in source database clinic-db with a clinic's
data and takes one automated snapshot of it without delivering the snapshot's event (so no drill
starts by itself), then writes the state file the operator commands read with `--local` and
waits. In another terminal:

    restoredrill run clinic-db --local --wait

Ctrl-C or SIGTERM stops everything and removes the state file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, TextIO

from restoredrill.domain.drill import run_id_for
from restoredrill.ports.inbound_events import (
    InvalidEvent,
    is_drill_requested,
    parse_drill_requested,
)

from localcloud.cloud import NO_FAULT, LocalCloud
from restoredrill_cli.defaults import LOCAL_SOURCE_DB
from restoredrill_cli.target import (
    DEFAULT_STATE_FILE,
    CliError,
    process_alive,
    write_state_file,
)


def local_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    path: Path = args.state_file
    _refuse_a_second_cloud(path)

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say("restoredrill local: the local cloud on this machine (moto + real PostgreSQL)")
    previous = _stop_on_sigterm()
    try:
        with LocalCloud(fault=args.fault, patients=args.patients) as cloud:
            assert cloud.rds is not None
            source = cloud.create_source_database(LOCAL_SOURCE_DB)
            rows = sum(source.row_counts.values())
            say(
                f"source database {LOCAL_SOURCE_DB}: PostgreSQL on 127.0.0.1:{source.server.port}, "
                f"{rows} rows, opted in"
            )
            # Its event is not delivered: drills here start when `run` requests one.
            event = cloud.rds.create_automated_snapshot(LOCAL_SOURCE_DB)
            say(f"automated snapshot {event['detail']['SourceIdentifier']} taken")
            if cloud.fault is not NO_FAULT:
                _arm_requested_drills(cloud)
                say(f"fault for every requested drill: {cloud.fault.summary}")
            write_state_file(path, cloud.target_description())
            try:
                local = "--local" if path == DEFAULT_STATE_FILE else f"--local {path}"
                say(f"ready; state file {path}. In another terminal:")
                say(f"    restoredrill run {LOCAL_SOURCE_DB} {local} --wait")
                say(f"    restoredrill status {local}")
                say(f"    restoredrill history {LOCAL_SOURCE_DB} {local}")
                say("Ctrl-C (or SIGTERM) stops it.")
                while True:
                    time.sleep(1)
            finally:
                _remove_state_file(path)
                say("stopping the local cloud")
    except KeyboardInterrupt:
        pass  # the way to stop it: everything was stopped on the way out
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    say("local cloud stopped")
    return 0


def _refuse_a_second_cloud(path: Path) -> None:
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return  # no state file, or one nobody can use: it is replaced
    if isinstance(pid, int) and process_alive(pid):
        raise CliError(f"a local cloud is already running (process {pid}, state file {path})")


def _stop_on_sigterm() -> Any:
    """SIGTERM stops the cloud the way Ctrl-C does (a KeyboardInterrupt in the main thread), so
    that every server and worker is stopped and the state file removed."""

    def interrupt(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers; its caller handles signals
    return signal.signal(signal.SIGTERM, interrupt)


def _remove_state_file(path: Path) -> None:
    """Only a state file that still describes this process's cloud."""
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if pid is None or pid == os.getpid():
        path.unlink(missing_ok=True)


def _arm_requested_drills(cloud: LocalCloud) -> None:
    """Arm the cloud's fault for every drill a Drill Requested starts.

    LocalCloud arms a fault for the drills of the snapshots it takes; a requested drill's run id
    comes from the request, so it is armed here, as each request is put on the bus: the local
    cloud consults its event fault knobs synchronously before delivering the event to StartDrill,
    so the fault is armed before the drill exists.
    """
    assert cloud.aws is not None
    knobs = cloud.aws.event_faults
    drop_before = knobs.drop

    def drop(envelope: dict[str, Any]) -> bool:
        if envelope.get("source") == "restoredrill" and is_drill_requested(envelope):
            try:
                request = parse_drill_requested(envelope)
            except InvalidEvent:
                pass  # StartDrill rejects it: no drill to arm
            else:
                cloud.arm(run_id_for(request.idempotency_key), cloud.fault)
        return bool(drop_before is not None and drop_before(envelope))

    knobs.drop = drop
