"""`make sam-local`: every sample event in events/ through `sam local invoke`, each outcome
checked against the seeded world (its return value and its effect in moto).

Run by scripts/sam_local.sh once the container engine and the Lambda base image are ready:
    .venv/bin/python -m sam_local --bridge 172.17.0.1   (with scripts/ on PYTHONPATH)
Prints one line per event and exits 1 on any mismatch. Everything it starts, it stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restoredrill.ports.records import INSTANCE_PREFIX, RunRecord, RunState, Verdict
from sam_local.invoke import Invoked, SamLocal, invoke_image, template_for_invoke
from sam_local.services import LambdaApi, SyncAnswer, TcpForwarder
from sam_local.world import (
    BACKUP_SNAPSHOT_ID,
    CLUSTER_SNAPSHOT_ID,
    ORPHAN_RUN_ID,
    PARAMETERS,
    REGION,
    RESTORE_TEST_SAMPLE,
    SAMPLE_RUN_HOST,
    SAMPLE_RUN_ID,
    SAMPLE_RUN_PASSWORD,
    SNAPSHOT_ID,
    SOURCE_CLUSTER,
    SOURCE_DB,
    World,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
INVOKE_REPOSITORY_PREFIX = "restoredrill-sam-local-"
POSTGRES_PORT = 5432


class Mismatch(Exception):
    """The outcome differs from what the event must lead to in this world."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


@dataclass(frozen=True)
class Case:
    event: str  # relative to events/
    function: str  # logical id in template.yaml
    check: Callable[[Invoked], str]  # raises Mismatch; returns what it saw


class Cases:
    """What each sample event must do in the seeded world, in the order they are sent: the
    sample drill's life (restored, credentials reset, checks run, result, instance deleted,
    late poll and late failure, announced), around two new drills and a sweep."""

    def __init__(self, world: World, lambda_api: LambdaApi) -> None:
        self.world = world
        self.lambda_api = lambda_api
        self.started: dict[str, str] = {}  # event -> run id it started
        self.started_clusters: list[str] = []  # run ids of the Aurora drills started
        self.point_in_time_run: str | None = None  # the point-in-time drill's run id
        self.finished_version: int | None = None

    def all(self) -> list[Case]:
        return [
            Case("checker/check-restored-instance.json", "CheckerFunction", self.checker),
            Case(
                "start_drill/automated-snapshot-created.json",
                "StartDrillFunction",
                self.snapshot_created,
            ),
            Case("start_drill/drill-requested.json", "StartDrillFunction", self.drill_requested),
            Case(
                "start_drill/backup-job-completed.json",
                "StartDrillFunction",
                self.backup_job_completed,
            ),
            Case(
                "start_drill/copy-job-completed.json",
                "StartDrillFunction",
                self.copy_job_completed,
            ),
            Case(
                "start_drill/drill-requested-point-in-time.json",
                "StartDrillFunction",
                self.point_in_time_requested,
            ),
            Case(
                "start_drill/automated-cluster-snapshot-created.json",
                "StartDrillFunction",
                self.cluster_snapshot_created,
            ),
            Case(
                "advance/rds-restored-from-snapshot.json",
                "AdvanceOnRdsEventFunction",
                self.restored,
            ),
            Case(
                "advance/rds-master-credentials-reset.json",
                "AdvanceOnRdsEventFunction",
                self.credentials_reset,
            ),
            Case("check_runner/run-checks.json", "CheckRunnerFunction", self.run_checks),
            Case(
                "advance/checker-result.json",
                "AdvanceOnCheckerResultFunction",
                self.checker_result,
            ),
            Case(
                "advance/rds-instance-deleted.json",
                "AdvanceOnRdsEventFunction",
                self.instance_deleted,
            ),
            Case("advance/poll.json", "AdvanceOnPollFunction", self.late_poll),
            Case(
                "advance/checker-failure.json",
                "AdvanceOnCheckerResultFunction",
                self.late_failure,
            ),
            Case("advance/poll-malformed.json", "AdvanceOnPollFunction", self.malformed_poll),
            Case("notify/drill-finished.json", "NotifyFunction", self.notify),
            Case(RESTORE_TEST_SAMPLE, "ValidateRestoreFunction", self.restore_test),
            Case("sweeper/scheduled.json", "SweeperFunction", self.sweep),
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _function_name(self, logical_id: str) -> str:
        # CloudFormation names the functions (the template gives them no names of their own).
        assert self.world.stack is not None
        return self.world.stack.physical_id(logical_id)

    def _returned(self, invoked: Invoked) -> dict[str, Any]:
        expect(invoked.exit_code == 0, f"sam local invoke exited {invoked.exit_code}")
        expect(isinstance(invoked.returned, dict), f"returned no object: {invoked.stdout[-300:]}")
        expect(
            "errorType" not in invoked.returned,
            f"the function raised: {invoked.returned.get('errorType')}: "
            f"{invoked.returned.get('errorMessage')}",
        )
        returned: dict[str, Any] = invoked.returned
        return returned

    def _run(self, run_id: str) -> RunRecord:
        run = self.world.run(run_id)
        if run is None:
            raise Mismatch(f"run {run_id} is missing from the run table")
        return run

    def _sample_run(self) -> RunRecord:
        return self._run(SAMPLE_RUN_ID)

    def _started(
        self, invoked: Invoked, event: str, snapshot_id: str = SNAPSHOT_ID
    ) -> tuple[str, RunRecord]:
        returned = self._returned(invoked)
        expect(returned.get("status") == "started", f"expected a started drill, got {returned}")
        run_id = str(returned.get("run_id"))
        run = self._run(run_id)
        expect(run.source_db == SOURCE_DB, f"run {run_id} drills {run.source_db}")
        expect(
            run.snapshot.snapshot_id == snapshot_id,
            f"run {run_id} drills {run.snapshot.snapshot_id}, not {snapshot_id}",
        )
        expect(run.state.value == returned.get("state"), "record and answer disagree on state")
        expect(run.restore_requested_at is not None, f"run {run_id}: no restore requested")
        instance = f"{INSTANCE_PREFIX}{run_id}"
        expect(instance in self.world.instance_ids(), f"restore not requested: no {instance}")
        self.started[event] = run_id
        return run_id, run

    # -- the cases -------------------------------------------------------------------------

    def checker(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        result = returned.get("result") or {}
        expect(returned.get("run_id") == SAMPLE_RUN_ID, f"answered for {returned.get('run_id')}")
        failing = [
            check["name"]
            for check in result.get("checks", [])
            if check["status"] in ("fail", "error")
        ]
        expect(result.get("verdict") == "PASSED", f"verdict {result.get('verdict')}: {failing}")
        expect(
            SAMPLE_RUN_PASSWORD not in invoked.stdout + invoked.stderr,
            "the password appears in the checker's output or logs",
        )
        summary = result.get("summary") or {}
        return (
            f"PASSED against PostgreSQL {result.get('server_version')} "
            f"({summary.get('pass')} checks passed, level {result.get('level')})"
        )

    def snapshot_created(self, invoked: Invoked) -> str:
        run_id, run = self._started(invoked, "snapshot")
        return f"drill {run_id} started ({run.state.value}), restore requested"

    def drill_requested(self, invoked: Invoked) -> str:
        run_id, run = self._started(invoked, "requested")
        expect(run_id != self.started.get("snapshot"), "the request reused the snapshot's run")
        expect(run.requested_by == "alice@example.com", f"requested_by {run.requested_by}")
        return f"drill {run_id} started ({run.state.value}) of the newest automated snapshot"

    def backup_job_completed(self, invoked: Invoked) -> str:
        run_id, run = self._started(invoked, "backup job", BACKUP_SNAPSHOT_ID)
        point = run.recovery_point
        expect(point is not None, f"run {run_id} records no recovery point")
        assert point is not None
        expect(point.vault_name == "clinic-vault", f"vault {point.vault_name}")
        return f"drill {run_id} of recovery point {BACKUP_SNAPSHOT_ID} started, restore requested"

    def copy_job_completed(self, invoked: Invoked) -> str:
        # The sample's copy is in us-west-2: the stack there drills it, this one starts nothing.
        returned = self._returned(invoked)
        expect(returned.get("status") == "rejected", f"expected rejected, got {returned}")
        reason = str(returned.get("reason"))
        expect("is in us-west-2, not in this stack's Region us-east-1" in reason, reason)
        return "copy in us-west-2 declined: the stack in us-west-2 drills it"

    def point_in_time_requested(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned.get("status") == "started", f"expected a started drill, got {returned}")
        run_id = str(returned.get("run_id"))
        run = self._run(run_id)
        expect(run.source_db == SOURCE_DB, f"run {run_id} drills {run.source_db}")
        expect(run.point_in_time is not None, f"run {run_id} is not a point-in-time drill")
        assert run.point_in_time is not None
        expect(run.snapshot.snapshot_type == "point-in-time", f"run {run_id}: {run.snapshot}")
        expect(run.requested_by == "alice@example.com", f"requested_by {run.requested_by}")
        self.point_in_time_run = run_id
        when = f"{run.point_in_time.restore_time:%Y-%m-%d %H:%M:%S} UTC"
        expect(run.restore_requested_at is not None, f"run {run_id}: no restore requested")
        instance = f"{INSTANCE_PREFIX}{run_id}"
        expect(instance in self.world.instance_ids(), f"restore not requested: no {instance}")
        return f"point-in-time drill {run_id} started, restore to {when} requested"

    def cluster_snapshot_created(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned.get("status") == "started", f"expected a started drill, got {returned}")
        run_id = str(returned.get("run_id"))
        run = self._run(run_id)
        expect(run.source_db == SOURCE_CLUSTER, f"run {run_id} drills {run.source_db}")
        expect(
            run.snapshot.snapshot_id == CLUSTER_SNAPSHOT_ID,
            f"run {run_id} drills {run.snapshot.snapshot_id}, not {CLUSTER_SNAPSHOT_ID}",
        )
        cluster = f"{INSTANCE_PREFIX}{run_id}"
        expect(run.cluster_id == cluster, f"run {run_id} is no cluster drill: {run.cluster_id}")
        expect(run.restore_requested_at is not None, f"run {run_id}: no restore requested")
        expect(cluster in self.world.cluster_ids(), f"cluster restore not requested: no {cluster}")
        self.started_clusters.append(run_id)
        return f"Aurora drill {run_id} started ({run.state.value}), cluster restore requested"

    def restored(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(
            returned == {"status": "advanced", "state": "SECURING"},
            f"expected SECURING, got {returned}",
        )
        run = self._sample_run()
        expect(run.state is RunState.SECURING, f"run is {run.state.value}")
        expect(run.credentials_reset_at is not None, "no master password reset recorded")
        return "SECURING: master password reset requested"

    def credentials_reset(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(
            returned == {"status": "advanced", "state": "CHECKING"},
            f"expected CHECKING, got {returned}",
        )
        invoked_runner = [
            each
            for each in self.lambda_api.invocations(self._function_name("CheckRunnerFunction"))
            if each.payload.get("run_id") == SAMPLE_RUN_ID
        ]
        expect(len(invoked_runner) == 1, f"check runner invoked {len(invoked_runner)} times")
        request = invoked_runner[0]
        expect(request.invocation_type == "Event", "the check runner was not invoked async")
        expect("password" not in request.payload["target"], "a password in the async payload")
        expect(
            request.payload.get("password_parameter") == self._sample_run().password_parameter,
            "the payload names another password parameter",
        )
        return "CHECKING: check runner invoked asynchronously, no password in the payload"

    def run_checks(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned.get("run_id") == SAMPLE_RUN_ID, f"answered for {returned.get('run_id')}")
        verdict = (returned.get("result") or {}).get("verdict")
        expect(verdict == "PASSED", f"the checks returned {verdict}")
        calls = self.lambda_api.invocations(self._function_name("CheckerFunction"))
        expect(len(calls) == 1, f"the checker was invoked {len(calls)} times")
        expect(calls[0].invocation_type == "RequestResponse", "the checker was not invoked sync")
        expect(
            calls[0].payload["target"].get("password") == SAMPLE_RUN_PASSWORD,
            "the checker did not get the run's password from SSM",
        )
        expect(SAMPLE_RUN_PASSWORD not in invoked.stdout, "the password is in the runner's answer")
        return "password read from SSM, checker invoked synchronously (sam local invoke): PASSED"

    def checker_result(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned == {"batchItemFailures": []}, f"expected no failures, got {returned}")
        run = self._sample_run()
        expect(run.state is RunState.FINISHED, f"run is {run.state.value}, not FINISHED")
        expect(run.verdict is Verdict.PASSED, f"verdict {run.verdict}")
        instance = f"{INSTANCE_PREFIX}{SAMPLE_RUN_ID}"
        expect(instance not in self.world.instance_ids(), f"{instance} was not deleted")
        parameter = run.password_parameter or ""
        expect(not self.world.password_stored(parameter), f"password {parameter} not deleted")
        keys = self.world.report_keys()
        expect(run.report_key in keys, f"report {run.report_key} not in the bucket: {keys}")
        finished = [
            event
            for event in self.world.drill_finished_events()
            if event.get("detail", {}).get("run_id") == SAMPLE_RUN_ID
        ]
        expect(len(finished) == 1, f"{len(finished)} Drill Finished events on the bus")
        self.finished_version = run.version
        return (
            "FINISHED PASSED: instance deleted, password deleted, report and page in S3, "
            "Drill Finished on the bus"
        )

    def _unchanged(self, what: str) -> str:
        run = self._sample_run()
        expect(run.state is RunState.FINISHED, f"run is {run.state.value}")
        expect(run.verdict is Verdict.PASSED, f"a {what} changed the verdict to {run.verdict}")
        expect(run.version == self.finished_version, f"a {what} wrote the finished run again")
        return f"run stays FINISHED PASSED (version {run.version}): a {what} changes nothing"

    def instance_deleted(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(
            returned == {"status": "advanced", "state": "FINISHED"},
            f"expected FINISHED, got {returned}",
        )
        return self._unchanged("late deletion event")

    def late_poll(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned == {"batchItemFailures": []}, f"expected no failures, got {returned}")
        return self._unchanged("late poll")

    def late_failure(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned == {"batchItemFailures": []}, f"expected no failures, got {returned}")
        return self._unchanged("late checker failure")

    def malformed_poll(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        event = json.loads((PROJECT_ROOT / "events/advance/poll-malformed.json").read_text())
        malformed = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if "run_id" not in record["body"]
        ]
        expect(
            returned == {"batchItemFailures": malformed},
            f"expected {malformed} to fail, got {returned}",
        )
        return f"{len(malformed)} of {len(event['Records'])} messages reported as failed"

    def notify(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(
            returned == {"status": "announced", "run_id": SAMPLE_RUN_ID},
            f"expected announced, got {returned}",
        )
        assert self.world.slack is not None
        messages = self.world.slack.wait_for(1, timeout=5)
        expect(len(messages) == 1, f"{len(messages)} Slack messages")
        expect(SOURCE_DB in json.dumps(messages[0]), "the Slack message does not name clinic-db")
        return "one Slack message posted to the webhook"

    def restore_test(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        expect(returned.get("status") == "not_validated", f"expected not_validated: {returned}")
        reason = str(returned.get("reason"))
        expect("no checking credential in SSM at" in reason, f"another reason: {reason}")
        assert self.world.backup is not None
        calls = self.world.backup.validation_calls
        expect(calls == [], f"PutRestoreValidationResult was called: {calls}")
        restored = json.loads((PROJECT_ROOT / "events" / RESTORE_TEST_SAMPLE).read_text())
        instance = str(restored["detail"]["createdResourceArn"]).rsplit(":", 1)[1]
        expect(instance in self.world.instance_ids(), f"{instance} is gone")
        return "job and instance found, no checking credential: declined, nothing sent"

    def sweep(self, invoked: Invoked) -> str:
        returned = self._returned(invoked)
        orphan = f"{INSTANCE_PREFIX}{ORPHAN_RUN_ID}"
        expect(returned.get("orphans_deleted") == [orphan], f"orphans: {returned}")
        expect(returned.get("runs_timed_out") == 0, f"timed out: {returned}")
        live = len(self.started) + len(self.started_clusters)
        live += 1 if self.point_in_time_run else 0
        expect(returned.get("runs_advanced") == live, f"expected {live} runs advanced: {returned}")
        clusters = self.world.cluster_ids()
        expect(SOURCE_CLUSTER in clusters, "the source cluster was touched")
        for run_id in self.started_clusters:
            expect(f"{INSTANCE_PREFIX}{run_id}" in clusters, f"live run {run_id} lost its cluster")
        instances = self.world.instance_ids()
        expect(orphan not in instances, f"{orphan} still exists")
        expect(SOURCE_DB in instances, "the source database was touched")
        for run_id in self.started.values():
            expect(
                f"{INSTANCE_PREFIX}{run_id}" in instances, f"live run {run_id} lost its instance"
            )
        return f"{live} live runs advanced, orphan {orphan} deleted, clinic-db untouched"


def _containers() -> set[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return set(listed.stdout.split())


def _remove_old_invoke_images(*, keep: str) -> None:
    """Invoke images of earlier layers, and SAM's images derived from them."""
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    old = [
        name
        for name in listed.stdout.split()
        if name.startswith(INVOKE_REPOSITORY_PREFIX) and name.split(":")[0] != keep
    ]
    if old:
        subprocess.run(["docker", "rmi", "--force", *old], capture_output=True, check=False)  # noqa: S603, S607


def _checker_through_sam(sam: SamLocal, work_dir: Path) -> Callable[[dict[str, Any]], SyncAnswer]:
    """The check runner's synchronous invoke of the checker, answered by the real checker."""

    def answer(payload: dict[str, Any]) -> SyncAnswer:
        with tempfile.NamedTemporaryFile(
            "w", suffix=".json", dir=work_dir, delete=False
        ) as request:
            json.dump(payload, request)
        try:
            invoked = sam.invoke("CheckerFunction", Path(request.name))
        finally:
            Path(request.name).unlink()
        if invoked.exit_code != 0 or not isinstance(invoked.returned, dict):
            error = {"errorType": "SamLocalInvokeFailed", "errorMessage": "no answer"}
            return SyncAnswer(json.dumps(error).encode(), function_error="Unhandled")
        unhandled = "errorType" in invoked.returned
        return SyncAnswer(
            json.dumps(invoked.returned).encode(), function_error="Unhandled" if unhandled else None
        )

    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam_local", description=__doc__)
    parser.add_argument("--bridge", required=True, help="the docker bridge's gateway address")
    parser.add_argument("--sam", type=Path, default=PROJECT_ROOT / ".venv-tools/bin/sam")
    parser.add_argument("--build-dir", type=Path, default=PROJECT_ROOT / ".aws-sam/build")
    args = parser.parse_args(argv)
    # moto's server logs every request it serves; the summary is what matters here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    events_dir = PROJECT_ROOT / "events"
    work_dir = PROJECT_ROOT / ".aws-sam/sam-local"
    work_dir.mkdir(parents=True, exist_ok=True)
    for old in work_dir.glob("*.log"):
        old.unlink()
    before = _containers()
    world = World(bridge=args.bridge, project_root=PROJECT_ROOT)
    lambda_api = LambdaApi(args.bridge)
    forwarder: TcpForwarder | None = None
    passed = failures = 0
    started = time.monotonic()
    try:
        world.start()
        lambda_api.start()
        world.seed()
        assert world.postgres is not None
        forwarder = TcpForwarder(args.bridge, POSTGRES_PORT, "127.0.0.1", world.postgres.port)
        forwarder.start()
        env_vars = work_dir / "env.json"
        assert world.stack is not None
        env_vars.write_text(
            json.dumps(
                {
                    logical_id: {
                        **spec.environment,
                        "AWS_ENDPOINT_URL": world.moto_url,
                        "AWS_ENDPOINT_URL_LAMBDA": lambda_api.url,
                    }
                    for logical_id, spec in world.stack.functions.items()
                },
                indent=2,
            )
        )
        template, layers = template_for_invoke(args.build_dir, work_dir / "template.yaml")
        image = invoke_image(BASE_IMAGE, layers, INVOKE_REPOSITORY_PREFIX)
        _remove_old_invoke_images(keep=image.split(":")[0])
        sam = SamLocal(
            sam=args.sam,
            template=template,
            image=image,
            env_vars=env_vars,
            parameters=PARAMETERS,
            region=REGION,
            add_hosts={SAMPLE_RUN_HOST: args.bridge},
            sts_endpoint=world.moto_url,
            log_dir=work_dir,
        )
        checker_name = world.stack.physical_id("CheckerFunction")
        lambda_api.sync_handlers[checker_name] = _checker_through_sam(sam, work_dir)
        cases = Cases(world, lambda_api).all()
        known = {case.event for case in cases}
        samples = sorted(str(p.relative_to(events_dir)) for p in events_dir.rglob("*.json"))
        print(f"sam local invoke: {len(samples)} sample events, world on {world.moto_url}")
        for sample in samples:
            if sample not in known:
                failures += 1
                print(f"FAIL  {sample:46} no expected outcome is defined for this event")
        for case in cases:
            if case.event not in samples:
                failures += 1
                print(f"FAIL  {case.event:46} the sample event is missing from events/")
                continue
            invoked = sam.invoke(case.function, events_dir / case.event)
            try:
                seen = case.check(invoked)
                passed += 1
                print(f"ok    {case.event:46} {invoked.seconds:5.1f}s  {seen}", flush=True)
            except Mismatch as mismatch:
                failures += 1
                print(f"FAIL  {case.event:46} {invoked.seconds:5.1f}s  {mismatch}", flush=True)
                tail = "\n      ".join(invoked.stderr.strip().splitlines()[-8:])
                print(f"      {tail}", flush=True)
    finally:
        if forwarder is not None:
            forwarder.stop()
        lambda_api.stop()
        world.stop()
        leftover = _containers() - before
        if leftover:
            subprocess.run(["docker", "rm", "-f", *sorted(leftover)], capture_output=True)  # noqa: S603, S607
    print(f"sam local invoke: {time.monotonic() - started:.0f}s, logs in {work_dir}")
    print(f"sam-local: {passed} passed, {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
