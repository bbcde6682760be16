"""`restoredrill demo`: one complete drill on this machine, through the local cloud."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError
from restoredrill.domain.report.document import PHASE_NAMES
from restoredrill.domain.report.location import html_report_key, report_key
from restoredrill.ports.messages import failed_checks
from restoredrill.ports.records import RunRecord, RunState

from localcloud.cloud import AURORA_FAULTS, AURORA_SOURCE, FAULTS, LocalCloud
from localcloud.postgres import running_servers

# After the verdict, how long to keep listening for a second (duplicate) Slack message.
DUPLICATE_GRACE_SECONDS = 3.0


class Timeline:
    """Prints each phase of the run as it happens."""

    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started
        self.last_state: RunState | None = None

    def __call__(self, run: RunRecord) -> None:
        if run.state is self.last_state:
            return
        if self.last_state is not None:
            phase = run.phases.get(self.last_state)
            took = phase.duration_seconds if phase else None
            name = PHASE_NAMES.get(self.last_state, self.last_state.value.lower())
            if took is not None:
                self.out.write(f"           {name} took {took:.2f}s\n")
        elapsed = time.monotonic() - self.started
        note = f"  ({run.reason})" if run.reason and run.state is RunState.TEARING_DOWN else ""
        self.out.write(f"  +{elapsed:6.2f}s  {run.state.value:<13}{note}\n")
        self.out.flush()
        self.last_state = run.state


def _reaction_seconds(cloud: LocalCloud, run: RunRecord) -> float | None:
    """From the instance becoming available (RDS-EVENT-0043's time; an Aurora instance's
    RDS-EVENT-0005) to the drill's next step."""
    assert cloud.aws is not None
    securing = run.phases.get(RunState.SECURING)
    available_events = ("RDS-EVENT-0043", "RDS-EVENT-0008", "RDS-EVENT-0005")
    restored = [
        envelope
        for _, envelope in cloud.aws.delivery.events_log
        if envelope.get("detail", {}).get("EventID") in available_events
        and envelope.get("detail", {}).get("SourceIdentifier") == run.instance_id
    ]
    if securing is None or not restored:
        return None
    # detail.Date has milliseconds; the envelope's time only seconds.
    available_at = datetime.fromisoformat(restored[0]["detail"]["Date"].replace("Z", "+00:00"))
    return round((securing.started_at - available_at).total_seconds(), 3)


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    quiet = args.json

    def say(text: str) -> None:
        if not quiet:
            print(text, file=out, flush=True)

    aurora = bool(getattr(args, "aurora", False))
    faults = AURORA_FAULTS if aurora else FAULTS
    fault = faults.get(args.fault) if args.fault else None
    what = "Aurora PostgreSQL cluster drill" if aurora else "restore drill"
    say(f"restoredrill demo: one {what} on this machine (moto + real PostgreSQL)")
    if fault:
        say(f"fault injected: {fault.name} - {fault.summary}")
    summary: dict[str, Any] = {
        "fault": args.fault,
        "expected_verdict": fault.verdict.value if fault else "PASSED",
    }
    started = time.monotonic()
    # Only what this demo starts counts (a caller may run servers of its own).
    servers_before = {id(server) for server in running_servers()}
    with LocalCloud(fault=args.fault, aurora=aurora, patients=args.patients) as cloud:
        event = _source_and_snapshot(cloud, aurora, say)
        run_id = cloud.run_id_for_snapshot_event(event)
        say(f"drill {run_id}:")
        timeline = Timeline(out, started) if not quiet else None
        run = cloud.wait_for_run(run_id, timeout=args.timeout, on_change=timeline)
        messages = cloud.wait_for_slack(1) if run and run.is_finished else []
        time.sleep(DUPLICATE_GRACE_SECONDS)
        messages = list(cloud.aws.slack.messages) if cloud.aws else messages
        summary.update(_summarise(cloud, run, run_id, messages))
        summary["saved"] = _save_reports(cloud, run, args.save_dir)
    summary["servers_left_running"] = sum(
        1 for server in running_servers() if id(server) not in servers_before
    )
    summary["processes_left_running"] = cloud.leftovers()
    summary["seconds"] = round(time.monotonic() - started, 2)
    if quiet:
        print(json.dumps(summary, indent=2), file=out)
    else:
        _print_summary(summary, messages, say)
    return 0 if summary.get("verdict") == "PASSED" else 1


def _source_and_snapshot(cloud: LocalCloud, aurora: bool, say: Any) -> dict[str, Any]:
    """The opted-in source (a DB instance, or an Aurora cluster) and its automated snapshot,
    whose event starts the drill; that event."""
    name = AURORA_SOURCE if aurora else "clinic-db"
    source = cloud.create_source_cluster(name) if aurora else cloud.create_source_database(name)
    rows = sum(source.row_counts.values())
    kind = "Aurora PostgreSQL cluster" if aurora else "database"
    say(f"source {kind} {name}: PostgreSQL on 127.0.0.1:{source.server.port}, {rows} rows")
    if aurora:
        event = cloud.take_automated_cluster_snapshot(name)
    else:
        event = cloud.take_automated_snapshot(name)
    snapshot_id = event["detail"]["SourceIdentifier"]
    say(f"automated snapshot {snapshot_id} taken; {event['detail']['EventID']} delivered")
    return event


def _cluster_split(run: RunRecord) -> dict[str, Any]:
    """An Aurora drill's restore time, split: the cluster's restore, then its instance's
    creation (until the instance was seen available)."""
    restoring = run.phases.get(RunState.RESTORING)
    if run.cluster_id is None or restoring is None or run.cluster_available_at is None:
        return {}
    split: dict[str, Any] = {
        "cluster": run.cluster_id,
        "instance": run.instance_id,
        "instance_class": run.instance_class,
        "cluster_restore_seconds": round(
            (run.cluster_available_at - restoring.started_at).total_seconds(), 3
        ),
        "instance_create_seconds": None,
    }
    if restoring.ended_at is not None and RunState.SECURING in run.phases:
        split["instance_create_seconds"] = round(
            (restoring.ended_at - run.cluster_available_at).total_seconds(), 3
        )
    return split


def _resources_gone(cloud: LocalCloud, run: RunRecord) -> bool:
    """The drill's instance is gone, and for an Aurora drill its cluster too."""
    if cloud.instance_exists(run.instance_id):
        return False
    return run.cluster_id is None or not cloud.cluster_exists(run.cluster_id)


def _summarise(
    cloud: LocalCloud, run: RunRecord | None, run_id: str, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    if run is None:
        return {"run_id": run_id, "verdict": None, "final_state": None}
    report = cloud.report(report_key(run)) if run.is_finished else None
    phases = {
        PHASE_NAMES[state]: phase.duration_seconds
        for state, phase in run.phases.items()
        if state in PHASE_NAMES
    }
    location = (report or {}).get("location", {})
    return {
        "run_id": run.run_id,
        "verdict": run.verdict.value if run.verdict else None,
        "reason": run.reason,
        "final_state": run.state.value,
        "phase_seconds": {
            name: round(s, 3) if s is not None else None for name, s in phases.items()
        },
        "restore_seconds": run.restore_seconds,
        **({"aurora": _cluster_split(run)} if run.cluster_id else {}),
        "available_to_next_step_seconds": _reaction_seconds(cloud, run),
        "instance_deleted": _resources_gone(cloud, run),
        "drill_servers_running": cloud.drill_servers_running(),
        "slack_messages": len(messages),
        "drill_finished_events": len(cloud.drill_finished_events()),
        "report": f"s3://{location['bucket']}/{location['key']}" if location else None,
        "failed_checks": [check["name"] for check in failed_checks(run.checks)],
        "slack_text": messages[0]["body"].get("text") if messages else None,
    }


def _save_reports(cloud: LocalCloud, run: RunRecord | None, save_dir: Path) -> list[str]:
    """Copies of the run's JSON report and HTML page, as stored, to open after the demo."""
    if run is None or not run.is_finished or cloud.aws is None:
        return []
    s3 = cloud.aws.client("s3")
    bucket = cloud.aws.output("ReportBucketName")
    key = report_key(run)
    saved = []
    save_dir.mkdir(parents=True, exist_ok=True)
    for stored in (key, html_report_key(key)):
        try:
            body = s3.get_object(Bucket=bucket, Key=stored)["Body"].read()
        except ClientError:
            continue
        path = save_dir / stored.rsplit("/", 1)[-1]
        path.write_bytes(body)
        saved.append(str(path))
    return saved


def _print_summary(summary: dict[str, Any], messages: list[dict[str, Any]], say: Any) -> None:
    say("")
    say(
        f"verdict: {summary.get('verdict')}"
        + (f"  ({summary['reason']})" if summary.get("reason") else "")
    )
    say(f"report:  {summary.get('report')}")
    for path in summary.get("saved", []):
        say(f"  saved: {path}")
    say(f"restored instance deleted: {summary.get('instance_deleted')}")
    reaction = summary.get("available_to_next_step_seconds")
    shown = "n/a (the instance never became available)" if reaction is None else f"{reaction}s"
    say(f"time from 'instance available' to the drill's next step: {shown}")
    say(f"Slack messages received: {summary.get('slack_messages')}")
    if messages:
        say("--- Slack, as received " + "-" * 40)
        say(messages[0]["body"].get("text", ""))
        say("-" * 63)
    nothing_left = summary.get("servers_left_running") == 0 and not summary.get(
        "processes_left_running"
    )
    say(f"nothing left running: {nothing_left}")
