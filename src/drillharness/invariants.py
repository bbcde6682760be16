"""The promises every drill keeps, whatever went wrong: checked the same way by the e2e fault
matrix (``tests/e2e``) and by the soak (:mod:`drillharness.soak`).

For one drill run (:func:`check_drill`):
- ``finished``: the run reached FINISHED;
- ``verdict``: with the verdict its fault calls for;
- ``instance deleted``: RDS (moto) no longer lists the restored instance;
- ``no server``: the instance's PostgreSQL server is not running;
- ``secret deleted``: the run's SSM password parameter is gone;
- ``report``: the report is in S3, with that verdict;
- ``one Drill Finished``: exactly one Drill Finished event was published for the run;
- ``one Slack message``: exactly one Slack message names the run (retries deduplicated);
- ``poison in DLQ``: the poison messages sent with the run reached their dead-letter queues.

For the cloud: :func:`check_dead_letters` (dead-letter queues hold the poison and nothing else),
:func:`check_report_chains` (every database's reports form an intact chain whose digests match
the run table, and a publish repeated after a crash wrote the same bytes: no report object has
versions with other bytes), :func:`check_admission_cap` (never more drills running than
MaxConcurrentDrills: neither restored instances at once in the local RDS, nor admitted runs
whose instance was not yet gone, and no drill slot left held) and, after it stopped,
:func:`check_nothing_running` (no Lambda worker, no PostgreSQL left).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from restoredrill.domain.report.location import report_key
from restoredrill.ports.records import RunRecord, RunState, Verdict

from restoredrill_cli.evidence_cmd import chain_of
from restoredrill_cli.stack import StackClient
from restoredrill_cli.target import target_from_description

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

__all__ = [
    "CLOUD_INVARIANTS",
    "DRILL_INVARIANTS",
    "Violation",
    "check_admission_cap",
    "check_dead_letters",
    "check_drill",
    "check_nothing_running",
    "check_report_chains",
    "max_admitted_at_once",
]

DRILL_INVARIANTS = (
    "finished",
    "verdict",
    "instance deleted",
    "no server",
    "secret deleted",
    "report",
    "one Drill Finished",
    "one Slack message",
    "poison in DLQ",
)
CLOUD_INVARIANTS = (
    "only poison in DLQs",
    "reports chained",
    "never more than the cap running",
    "nothing running",
)


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def _wait(condition: object, timeout: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def check_drill(
    cloud: LocalCloud,
    run_id: str,
    expected: Verdict,
    *,
    slack_timeout: float = 30.0,
    dead_letter_timeout: float = 60.0,
) -> list[Violation]:
    """Every promise for one run (waits for the Slack message and the poison to arrive)."""
    assert cloud.aws is not None and cloud.rds is not None
    run = cloud.run(run_id)
    if run is None:
        return [Violation("finished", "the run was never created")]
    return [
        *_outcome_violations(run, expected),
        *_leftover_violations(cloud, run),
        *_report_violations(cloud, run, expected),
        *_announcement_violations(cloud, run, slack_timeout),
        *_poison_violations(cloud, run_id, dead_letter_timeout),
    ]


def _outcome_violations(run: RunRecord, expected: Verdict) -> list[Violation]:
    found = []
    if not run.is_finished:
        found.append(Violation("finished", f"still {run.state.value} ({run.reason})"))
    if run.verdict is not expected:
        verdict = run.verdict.value if run.verdict else None
        found.append(Violation("verdict", f"{verdict}, expected {expected.value} ({run.reason})"))
    return found


def _leftover_violations(cloud: LocalCloud, run: RunRecord) -> list[Violation]:
    """What the drill created and must have deleted: the instance (an Aurora drill's cluster
    too), its server, its password."""
    assert cloud.rds is not None
    found = []
    if cloud.instance_exists(run.instance_id):
        found.append(Violation("instance deleted", f"{run.instance_id} still exists"))
    if run.cluster_id is not None and cloud.cluster_exists(run.cluster_id):
        found.append(Violation("instance deleted", f"the cluster {run.cluster_id} still exists"))
    if cloud.rds.server_running(run.instance_id):
        found.append(Violation("no server", f"the server of {run.instance_id} still runs"))
    if run.password_parameter and cloud.password_parameter_exists(run.password_parameter):
        found.append(Violation("secret deleted", f"{run.password_parameter} still exists"))
    return found


def _report_violations(cloud: LocalCloud, run: RunRecord, expected: Verdict) -> list[Violation]:
    report = cloud.report_or_none(report_key(run))
    if report is None:
        return [Violation("report", f"no report at {report_key(run)}")]
    if report.get("verdict") != expected.value:
        return [Violation("report", f"the report says {report.get('verdict')}")]
    return []


def _announcement_violations(
    cloud: LocalCloud, run: RunRecord, slack_timeout: float
) -> list[Violation]:
    """One Drill Finished event and one Slack message (waited for once the run finished)."""
    found = []
    finished_events = len(cloud.drill_finished_events(run.run_id))
    if finished_events != 1:
        found.append(Violation("one Drill Finished", f"{finished_events} events"))
    if run.is_finished:
        _wait(lambda: cloud.slack_messages_for(run.run_id), slack_timeout)
    messages = len(cloud.slack_messages_for(run.run_id))
    if messages != 1:
        found.append(Violation("one Slack message", f"{messages} messages"))
    return found


def _poison_violations(cloud: LocalCloud, run_id: str, timeout: float) -> list[Violation]:
    """The poison messages sent with the run reached their dead-letter queues."""
    poison = cloud.poison_sent(run_id)
    if not poison:
        return []

    def missing() -> list[tuple[str, str]]:
        letters = cloud.dead_letters()
        return [(queue, body) for queue, body in poison if body not in letters.get(queue, [])]

    _wait(lambda: not missing(), timeout)
    return [Violation("poison in DLQ", f"{body!r} is not in {queue}") for queue, body in missing()]


def check_dead_letters(cloud: LocalCloud) -> list[Violation]:
    """Dead-letter queues hold the poison messages sent, and nothing a drill needed.

    One other dead letter is expected: the failure record of an invocation that an injected
    crash killed, when its function is not retried (the sweeper: its next scheduled sweep is the
    retry, and a failed sweep is meant to reach the queue and its alarm). A crash of a retried
    function is retried and leaves no record, so one of those is still a violation."""
    poison = {body for _, body in cloud.poison_sent()}
    crashed = cloud.crashed_requests()
    return [
        Violation("only poison in DLQs", f"{queue} holds {_dead_letter_text(body)}")
        for queue, bodies in cloud.dead_letters().items()
        for body in bodies
        if body not in poison and not is_unretried_crash(body, crashed)
    ]


def is_unretried_crash(body: str, crashed: set[str]) -> bool:
    """``body`` is the failure record of a single attempt that an injected crash killed."""
    try:
        record = json.loads(body)
        context = record["requestContext"]
        error_type = (record.get("responsePayload") or {}).get("errorType")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return (
        context.get("requestId") in crashed
        and context.get("approximateInvokeCount") == 1
        and error_type == "Runtime.ExitError"
    )


def _dead_letter_text(body: str) -> str:
    """What a dead letter is, for people: a Lambda failure record names the function, the
    condition and the error; anything else is shown by its start."""
    try:
        record = json.loads(body)
        context = record["requestContext"]
        function = str(context["functionArn"]).split(":")[6]
        response = record.get("responsePayload") or {}
        error = f"{response.get('errorType', '')}: {response.get('errorMessage', '')}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return repr(body[:200])
    return f"a failure record of {function} ({context.get('condition')}): {error[:300]}"


def check_nothing_running(cloud: LocalCloud) -> list[Violation]:
    """After :meth:`LocalCloud.stop`: no Lambda worker and no PostgreSQL of it is alive."""
    return [Violation("nothing running", leftover) for leftover in cloud.leftovers()]


def check_report_chains(cloud: LocalCloud) -> list[Violation]:
    """Each database's stored reports verify as a chain, with the run table's digests and the
    bucket's version history. Drills of one database finishing together may fork the chain or
    start a second one (warnings); a rewritten report means a repeated publish wrote other
    bytes, which must never happen."""
    # Verified the way an auditor does, with `restoredrill verify-chain`'s own code.
    stack = StackClient(
        target_from_description(cloud.target_description(), source="the local cloud")
    )
    found = []
    for source_db in sorted({run.source_db for run in cloud.all_runs()}):
        found += [
            Violation("reports chained", f"{finding.kind} {finding.key}: {finding.message}")
            for finding in chain_of(stack, source_db).findings
            if finding.severity == "error" or finding.kind == "rewritten"
        ]
    return found


def _slot_interval(run: RunRecord) -> tuple[float, float] | None:
    """From the run's admission until its instance was gone (it entered REPORTING)."""
    if run.admitted_at is None:
        return None
    reporting = run.phases.get(RunState.REPORTING)
    end = reporting.started_at if reporting is not None else run.finished_at
    return run.admitted_at.timestamp(), (end or run.admitted_at).timestamp()


def max_admitted_at_once(runs: list[RunRecord]) -> int:
    """The most runs that were admitted and still held their instance at the same moment (as
    their records tell it; a requeued run counts from its last admission)."""
    edges: list[tuple[float, int]] = []
    for run in runs:
        interval = _slot_interval(run)
        if interval is not None:
            edges += [(interval[0], 1), (interval[1], -1)]
    at_once = peak = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same instant
        at_once += step
        peak = max(peak, at_once)
    return peak


def check_admission_cap(cloud: LocalCloud, cap: int) -> list[Violation]:
    """Never more than ``cap`` drills running: the local RDS's peak of restored instances alive at
    once, the runs' admission intervals, and, once every drill finished, no slot still held."""
    assert cloud.rds is not None
    found = []
    if cloud.rds.restored_peak > cap:
        found.append(
            Violation(
                "never more than the cap running",
                f"{cloud.rds.restored_peak} restored instances at once, cap {cap}",
            )
        )
    runs = cloud.all_runs()
    admitted = max_admitted_at_once(runs)
    if admitted > cap:
        found.append(
            Violation("never more than the cap running", f"{admitted} admitted at once, cap {cap}")
        )
    if all(run.is_finished for run in runs):
        found += [
            Violation("never more than the cap running", f"slot {lease.slot} still held: {lease}")
            for lease in cloud.slot_leases()
        ]
    return found
