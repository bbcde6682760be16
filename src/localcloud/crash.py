"""Crash a Lambda worker right after one AWS call succeeded, before the handler can record it.

When ``LOCALCLOUD_CRASH_DIR`` is set, :func:`install` hooks every botocore client the worker
creates: after a 2xx answer to an operation below, an *arm file* ``<service>.<Operation>.<run
id>`` in that directory is renamed to ``.fired`` and the worker dies with ``os._exit(1)``. The
rename is atomic, so however many workers make the call, exactly one crashes, once; the fired
file holds the request id of the invocation it killed (:func:`killed_requests`), so that a
failure record of that invocation is known for what it is. Production code knows nothing of this.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CRASH_DIR_ENV",
    "OPERATIONS",
    "CrashPoint",
    "arm",
    "fired",
    "install",
    "killed_requests",
    "run_id_of",
    "set_request",
]

CRASH_DIR_ENV = "LOCALCLOUD_CRASH_DIR"
FIRED_SUFFIX = ".fired"
_INSTANCE_PREFIX = "restoredrill-"
_CLUSTER_INSTANCE_SUFFIX = "-writer"  # an Aurora drill's instance (restoredrill.ports.records)
_PARAMS_KEY = "localcloud_crash_params"
# The invocation the worker is running (a worker runs one at a time), set by the worker.
_current_request = ""


@dataclass(frozen=True)
class CrashPoint:
    service: str  # botocore's hyphenized service id, as in "after-call.<service>.<Operation>"
    operation: str

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


# The side effects of a drill, by the fault names' suffix.
OPERATIONS: dict[str, CrashPoint] = {
    "restore": CrashPoint("rds", "RestoreDBInstanceFromDBSnapshot"),
    "password-reset": CrashPoint("rds", "ModifyDBInstance"),
    "checker-invoke": CrashPoint("lambda", "Invoke"),
    "report-write": CrashPoint("s3", "PutObject"),
    "delete": CrashPoint("rds", "DeleteDBInstance"),
    # Aurora drills
    "cluster-restore": CrashPoint("rds", "RestoreDBClusterFromSnapshot"),
    "create-instance": CrashPoint("rds", "CreateDBInstance"),
    "cluster-password-reset": CrashPoint("rds", "ModifyDBCluster"),
    "cluster-delete": CrashPoint("rds", "DeleteDBCluster"),
}
_POINTS = {(p.service, p.operation): p for p in OPERATIONS.values()}


def run_id_of(service: str, operation: str, params: Mapping[str, Any]) -> str | None:
    """The drill run a call is about, from its parameters (None: not a drill side effect)."""
    if service == "rds":
        if operation.startswith("Modify") and not params.get("MasterUserPassword"):
            return None
        identifier = str(
            params.get("DBInstanceIdentifier") or params.get("DBClusterIdentifier") or ""
        )
        if not identifier.startswith(_INSTANCE_PREFIX):
            return None
        return identifier[len(_INSTANCE_PREFIX) :].removesuffix(_CLUSTER_INSTANCE_SUFFIX)
    if service == "lambda":
        if params.get("InvocationType") != "Event":
            return None  # the drill's own effect is the asynchronous invoke
        payload = params.get("Payload")
        try:
            body = json.loads(payload.decode() if isinstance(payload, bytes) else str(payload))
        except (ValueError, AttributeError, UnicodeDecodeError):
            return None
        return str(body["run_id"]) if isinstance(body, dict) and "run_id" in body else None
    if service == "s3":
        key = str(params.get("Key") or "")
        if key.startswith("reports/") and key.endswith(".json"):
            return key.rsplit("/", 1)[-1].removesuffix(".json")
    return None


def arm(directory: Path, point: CrashPoint, run_id: str) -> Path:
    """Make the next successful ``point`` call about ``run_id`` crash its worker (once)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{point.name}.{run_id}"
    path.touch()
    return path


def fired(directory: Path) -> list[tuple[str, str]]:
    """(``service.Operation``, run id) of every armed crash that happened."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"*{FIRED_SUFFIX}"):
        stem = path.name.removesuffix(FIRED_SUFFIX)
        name, _, run_id = stem.rpartition(".")
        found.append((name, run_id))
    return sorted(found)


def set_request(request_id: str) -> None:
    """The worker starts invocation ``request_id``: a crash now kills that one."""
    global _current_request
    _current_request = request_id


def killed_requests(directory: Path) -> set[str]:
    """The request ids of the invocations an armed crash killed."""
    if not directory.is_dir():
        return set()
    return {path.read_text() for path in directory.glob(f"*{FIRED_SUFFIX}")} - {""}


def _after_call(directory: Path, point: CrashPoint) -> Any:
    def after_call(http_response: Any, context: dict[str, Any], **_: Any) -> None:
        if http_response is None or not 200 <= int(http_response.status_code) < 300:
            return
        run_id = run_id_of(point.service, point.operation, context.get(_PARAMS_KEY) or {})
        if run_id is None:
            return
        armed = directory / f"{point.name}.{run_id}"
        fired_path = armed.with_name(armed.name + FIRED_SUFFIX)
        try:
            os.rename(armed, fired_path)
        except FileNotFoundError:
            return  # not armed, or another worker already crashed on it
        fired_path.write_text(_current_request)
        sys.stdout.write(f"[FAULT] {point.name} succeeded for run {run_id}; the worker dies now\n")
        sys.stdout.flush()
        os._exit(1)

    return after_call


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS_KEY] = dict(params)


def install(directory: Path) -> None:
    import botocore.session

    original = botocore.session.Session.create_client
    if getattr(original, "_localcloud_crash", False):
        return

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        service = client.meta.service_model.service_id.hyphenize()
        for (point_service, operation), point in _POINTS.items():
            if point_service != service:
                continue
            events = client.meta.events
            events.register(f"before-parameter-build.{service}.{operation}", _keep_params)
            events.register(f"after-call.{service}.{operation}", _after_call(directory, point))
        return client

    create_client._localcloud_crash = True  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def install_from_environ(environ: Mapping[str, str] = os.environ) -> bool:
    directory = environ.get(CRASH_DIR_ENV)
    if not directory:
        return False
    install(Path(directory))
    return True
