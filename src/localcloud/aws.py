"""``LocalAws``: template.yaml "deployed" onto a moto server, with the real handlers running in
local Lambda workers and events delivered the way AWS delivers them. Nothing is written to
``os.environ``: clients get an explicit endpoint and fake credentials, workers their environment.

moto, as checked for this (moto 5.2, server mode):
- SQS ``DelaySeconds`` (per message and per queue) is honoured; ``RedrivePolicy`` is real: a
  message received ``maxReceiveCount`` times moves to the DLQ on the next receive, as in AWS.
- ``EventPattern`` supports prefix (also lists and equals-ignore-case), suffix, anything-but,
  numeric, exists, equals-ignore-case, cidr, wildcard and ``$or``; but an unknown operator
  matches everything (so patterns are validated at provisioning) and it does not look inside
  arrays of objects.
- Bucket policies are enforced, and the local cloud talks HTTP: a DenyInsecureTransport policy
  would deny everything, so AWS::S3::BucketPolicy is recorded, not applied.
- Its state is process-wide (``reset_moto`` wipes it at start) and its werkzeug server logs every
  request on stderr (silenced here).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from localcloud.delivery import Delivery, EventFaults, UndeliveredInvocation
from localcloud.endpoint import LocalEndpoint
from localcloud.provision import DEFAULT_BUS, Stack, local_client, provision
from localcloud.runtime import InvokeResult, Runtime
from localcloud.slack import SlackReceiver

__all__ = ["EventFaults", "InvokeResult", "LocalAws", "UndeliveredInvocation"]

log = logging.getLogger(__name__)

# Served by the local endpoint rather than moto.
_ENDPOINT_SERVICES = frozenset({"lambda", "events"})


class _QuietRequestHandler(MotoRequestHandler):
    """moto's request handler without a line on stderr per request."""

    def log(self, type: str, message: str, *args: Any) -> None:
        logging.getLogger("localcloud.moto").debug(message, *args)


class _QuietMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=_QuietRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class LocalAws:
    account_id = "123456789012"

    def __init__(
        self,
        *,
        template_path: Path,
        region: str = "us-east-1",
        project_root: Path,
        work_dir: Path,
        stack_name: str = "restoredrill-local",
        parameter_overrides: Mapping[str, str] | None = None,
        function_env: Mapping[str, str] | None = None,
        event_faults: EventFaults | None = None,
        visibility_timeout_override: int | None = None,
        schedule_period_seconds: float | None = None,
        async_retry_delay_seconds: float = 1.0,
        pool_size: int = 2,
        crash_after: Callable[[str, Any], bool] | None = None,
        reset_moto: bool = True,
        check_code: bool = True,
        function_timeouts: Mapping[str, int] | None = None,
    ) -> None:
        """
        ``function_env``: extra environment for every function (wins over the template's).
        ``event_faults``: drop / duplicate / reorder events put on any bus (see EventFaults).
        ``visibility_timeout_override``: every queue's VisibilityTimeout, in seconds.
        ``schedule_period_seconds``: the period of every schedule instead of its rate().
        ``async_retry_delay_seconds``: delay before async retry N is N times this (AWS: ~1 min).
        ``pool_size``: warm workers per function (concurrent invocations of one function).
        ``crash_after(function_logical_id, event)``: True makes that invocation's worker die
        right after the handler returned (its side effects done, its result lost).
        ``reset_moto``: moto's state is process-wide; start from a clean slate.
        ``function_timeouts``: seconds by function logical id, below what the template allows
        (the checker's per-invocation limit, to force checks into many rounds).
        """
        self.region = region
        self.template_path = Path(template_path)
        self.project_root = Path(project_root)
        self.work_dir = Path(work_dir)
        self.stack_name = stack_name
        self.parameter_overrides = dict(parameter_overrides or {})
        self.function_env = dict(function_env or {})
        self.event_faults = event_faults or EventFaults()
        self.visibility_timeout_override = visibility_timeout_override
        self.schedule_period_seconds = schedule_period_seconds
        self.async_retry_delay_seconds = async_retry_delay_seconds
        self.pool_size = pool_size
        self.crash_after = crash_after
        self.reset_moto = reset_moto
        self.check_code = check_code
        self.function_timeouts = dict(function_timeouts or {})
        self.logs_dir = self.work_dir / "logs"
        self.slack = SlackReceiver()
        self._moto: _QuietMotoServer | None = None
        self._endpoint: LocalEndpoint | None = None
        self._stack: Stack | None = None
        self._runtime: Runtime | None = None
        self._delivery: Delivery | None = None
        self._started = False
        self._stopped = False
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped LocalAws cannot start again; make a new one")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._moto = _QuietMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        if self.reset_moto:
            reset_url = f"{self.moto_url}/moto-api/reset"  # http://127.0.0.1:<port> only
            request = urllib.request.Request(reset_url, method="POST")  # noqa: S310
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                response.read()
        self.slack.start()
        self._endpoint = LocalEndpoint()
        self._endpoint.start()
        self._stack = provision(
            self.template_path,
            moto_url=self.moto_url,
            stack_name=self.stack_name,
            region=self.region,
            account_id=self.account_id,
            parameter_overrides=self.parameter_overrides,
            visibility_timeout_override=self.visibility_timeout_override,
            project_root=self.project_root,
        )
        for logical_id, seconds in self.function_timeouts.items():
            spec = self._stack.functions[logical_id]
            self._stack.functions[logical_id] = dataclasses.replace(spec, timeout=seconds)
        if self.check_code:
            self._stack.check_code()
        self._runtime = Runtime(
            self._stack.functions,
            logs_dir=self.logs_dir,
            tmp_dir=self.work_dir / "tmp",
            region=self.region,
            pool_size=self.pool_size,
            crash_after=self.crash_after,
            extra_env={
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ENDPOINT_URL_LAMBDA": self.endpoint_url,
                "AWS_ENDPOINT_URL_EVENTBRIDGE": self.endpoint_url,
                **self.function_env,
            },
        )
        self._delivery = Delivery(
            self._stack,
            self._runtime,
            client=self.client,
            faults=self.event_faults,
            async_retry_delay_seconds=self.async_retry_delay_seconds,
            schedule_period_seconds=self.schedule_period_seconds,
        )
        self._endpoint.attach(self._delivery)
        self._delivery.start()
        log.info(
            "local cloud up: moto %s, endpoint %s, %d functions, %d rules, %d queues",
            self.moto_url,
            self.endpoint_url,
            len(self._stack.functions),
            len(self._stack.rules),
            len(self._stack.queues),
        )

    def stop(self) -> None:
        """Stop pollers, timers, workers and servers. Idempotent; never raises for cleanup."""
        if self._stopped:
            return
        self._stopped = True
        steps: list[tuple[str, Callable[[], None]]] = []
        if self._delivery is not None:
            steps.append(("delivery", self._delivery.stop))
        if self._runtime is not None:
            steps.append(("runtime", self._runtime.close))
        if self._endpoint is not None:
            steps.append(("endpoint", self._endpoint.stop))
        steps.append(("slack", self.slack.stop))
        if self._moto is not None:
            steps.append(("moto", self._moto.stop))
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)

    @property
    def moto_url(self) -> str:
        if self._moto is None:
            raise RuntimeError("LocalAws is not started")
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def endpoint_url(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("LocalAws is not started")
        return self._endpoint.url

    def client(self, service: str) -> Any:
        """A boto3 client for the local cloud (Lambda and EventBridge: the local endpoint).

        One per service, made once: building a client loads its service model (milliseconds of
        CPU each time), and botocore clients are safe to share between threads.
        """
        with self._clients_lock:
            found = self._clients.get(service)
            if found is None:
                url = self.endpoint_url if service in _ENDPOINT_SERVICES else self.moto_url
                found = self._clients[service] = local_client(
                    service, endpoint_url=url, region=self.region
                )
            return found

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            raise RuntimeError("LocalAws is not started")
        return self._stack

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("LocalAws is not started")
        return self._runtime

    @property
    def delivery(self) -> Delivery:
        if self._delivery is None:
            raise RuntimeError("LocalAws is not started")
        return self._delivery

    def physical_id(self, logical_id: str) -> str:
        """What CloudFormation's physical id is: queue URL, table/bucket/function name..."""
        return self.stack.physical_id(logical_id)

    def output(self, name: str) -> str:
        if name not in self.stack.outputs:
            raise KeyError(f"no output {name!r}; outputs: {sorted(self.stack.outputs)}")
        return self.stack.outputs[name]

    def emit(self, event: dict[str, Any], bus: str = DEFAULT_BUS) -> str:
        """Put a full event envelope on a bus (as an AWS service would), faults applied."""
        return self.delivery.emit(event, bus)

    def invoke(self, function: str, payload: Any = None) -> InvokeResult:
        spec = self.stack.function(function)
        if spec is None:
            raise KeyError(f"no function {function!r}")
        body = payload if isinstance(payload, str | bytes) else json.dumps(payload or {})
        return self.runtime.invoke(spec, body)

    def log_text(self, logical_id: str) -> str:
        path = self.logs_dir / f"{logical_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""
