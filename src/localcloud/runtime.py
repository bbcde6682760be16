"""Run Lambda handlers locally in a small pool of warm worker processes per function
(:mod:`localcloud.worker`). A timeout kills the worker, as a worker's death ends the invocation:
both, like every function error, come back in the :class:`InvokeResult`; nothing raises.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.provision import (
    LOCAL_ACCESS_KEY_ID,
    LOCAL_SECRET_ACCESS_KEY,
    FunctionSpec,
)

__all__ = ["FUNCTION_ERROR", "InvokeResult", "Runtime", "RuntimeClosedError"]

log = logging.getLogger(__name__)

FUNCTION_ERROR = "Unhandled"  # X-Amz-Function-Error of the Python runtime for any error

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's own process group (it is a session leader) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        log.warning("worker %s did not exit after SIGKILL", process.pid)
    with _LIVE_LOCK:
        _LIVE.discard(process)


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for process in leftovers:
        _kill(process)


class RuntimeClosedError(Exception):
    """The runtime was closed while an invocation waited for a worker."""


@dataclass
class InvokeResult:
    request_id: str
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function failed
    error_type: str | None = None
    duration_ms: float = 0.0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


class _WorkerDiedError(Exception):
    pass


class _TimedOutError(Exception):
    pass


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.process = process
        self.channel = channel
        self._buffer = b""
        self.init_ms: float | None = None

    def read_message(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TimedOutError
            ready, _, _ = select.select([self.channel], [], [], min(remaining, 0.5))
            if not ready:
                continue
            try:
                chunk = self.channel.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                raise _WorkerDiedError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.sendall(json.dumps(message).encode() + b"\n")
        except OSError as error:
            raise _WorkerDiedError from error

    def exit_description(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "Runtime exited without providing a reason"
        if code < 0:
            try:
                name = signal.Signals(-code).name.removeprefix("SIG").lower()
            except ValueError:
                name = str(-code)
            return f"Runtime exited with error: signal: {name}"
        return f"Runtime exited with error: exit status {code}"

    def kill(self) -> None:
        _kill(self.process)
        self.channel.close()


class _Pool:
    def __init__(self, runtime: Runtime, spec: FunctionSpec, size: int) -> None:
        self.runtime = runtime
        self.spec = spec
        self.size = size
        self.idle: list[_Worker] = []
        self.busy: set[_Worker] = set()
        self.count = 0
        self.cond = threading.Condition()

    def acquire(self) -> _Worker | None:
        """An idle worker, or None when the caller must start one (a slot is reserved)."""
        with self.cond:
            while True:
                if self.runtime.closed:
                    raise RuntimeClosedError(self.spec.logical_id)
                if self.idle:
                    worker = self.idle.pop()
                    self.busy.add(worker)
                    return worker
                if self.count < self.size:
                    self.count += 1
                    return None
                self.cond.wait(0.5)

    def started(self, worker: _Worker) -> None:
        with self.cond:
            self.busy.add(worker)

    def release(self, worker: _Worker | None, *, healthy: bool) -> None:
        with self.cond:
            if worker is not None:
                self.busy.discard(worker)
            if healthy and worker is not None and not self.runtime.closed:
                self.idle.append(worker)
            else:
                self.count -= 1
                if worker is not None:
                    worker.kill()
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            workers = [*self.idle, *self.busy]
            self.idle.clear()
            self.cond.notify_all()
        for worker in workers:
            worker.kill()


class Runtime:
    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        *,
        logs_dir: Path,
        extra_env: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        pool_size: int = 2,
        init_timeout: float = 30.0,
        python: str | None = None,
        tmp_dir: Path | None = None,
        crash_after: Callable[[str, Any], bool] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = Path(tmp_dir) if tmp_dir is not None else self.logs_dir.parent / "tmp"
        self.extra_env = dict(extra_env or {})
        self.region = region
        self.pool_size = pool_size
        self.init_timeout = init_timeout
        self.python = python or sys.executable
        self.crash_after = crash_after
        self.closed = False
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._started_pids: list[int] = []

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def started_pids(self) -> list[int]:
        """The process id of every worker this runtime ever started (to prove none outlives it)."""
        with self._lock:
            return list(self._started_pids)

    def log_path(self, spec: FunctionSpec) -> Path:
        return self.logs_dir / f"{spec.logical_id}.log"

    def invoke(
        self,
        function: FunctionSpec | str,
        payload: bytes | str,
        *,
        request_id: str | None = None,
        invoked_function_arn: str | None = None,
        client_context: str | None = None,
        tail: bool = False,
    ) -> InvokeResult:
        """Run one invocation synchronously; function errors come back in the result."""
        spec = self._spec(function)
        request_id = request_id or str(uuid.uuid4())
        text = payload.decode() if isinstance(payload, bytes) else payload
        with self._lock:
            self._in_flight += 1
        log_path = self.log_path(spec)
        offset = log_path.stat().st_size if tail and log_path.exists() else 0
        started = time.monotonic()
        try:
            result = self._invoke(spec, text, request_id, invoked_function_arn, client_context)
        finally:
            with self._lock:
                self._in_flight -= 1
        result.duration_ms = (time.monotonic() - started) * 1000
        if tail and log_path.exists():
            with log_path.open("rb") as handle:
                handle.seek(offset)
                result.log_tail = handle.read()[-4096:].decode(errors="replace")
        return result

    def close(self) -> None:
        """End every worker; invocations in progress return an error."""
        self.closed = True
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()

    def _spec(self, function: FunctionSpec | str) -> FunctionSpec:
        if isinstance(function, FunctionSpec):
            return function
        if function not in self.functions:
            raise KeyError(f"no function {function!r}")
        return self.functions[function]

    def _pool(self, spec: FunctionSpec) -> _Pool:
        with self._lock:
            pool = self._pools.get(spec.logical_id)
            if pool is None:
                size = self.pool_size
                if spec.reserved_concurrency is not None:
                    size = max(1, min(size, spec.reserved_concurrency))
                pool = self._pools[spec.logical_id] = _Pool(self, spec, size)
            return pool

    def _error_result(self, request_id: str, error_type: str, message: str) -> InvokeResult:
        return _failure(request_id, {"errorMessage": message, "errorType": error_type})

    def _append_log(self, spec: FunctionSpec, text: str) -> None:
        with self.log_path(spec).open("a") as handle:
            handle.write(text + "\n")

    def _invoke(
        self,
        spec: FunctionSpec,
        text: str,
        request_id: str,
        invoked_arn: str | None,
        client_context: str | None,
    ) -> InvokeResult:
        pool = self._pool(spec)
        worker = self._ready_worker(pool, spec, request_id)
        if isinstance(worker, InvokeResult):
            return worker
        request = {
            "request_id": request_id,
            "payload": text,
            "deadline_ms": int(time.time() * 1000) + spec.timeout * 1000,
            "invoked_function_arn": invoked_arn or spec.arn,
            "client_context": client_context,
            "trace_id": _trace_id(),
        }
        message = self._exchange(pool, worker, spec, request)
        if isinstance(message, InvokeResult):
            return message
        if message.get("ok") and self._should_crash(spec, text):
            # Fault: the handler did its work, then its environment died before answering.
            pool.release(worker, healthy=False)
            description = "Runtime exited with error: signal: killed (fault injected)"
            return self._exit_error(spec, request_id, description)
        pool.release(worker, healthy=True)
        if message.get("ok"):
            raw = str(message.get("payload", ""))
            body = base64.b64decode(raw) if message.get("binary") else raw.encode()
            return InvokeResult(request_id=request_id, payload=body)
        return _failure(request_id, dict(message.get("error") or {}))

    def _ready_worker(
        self, pool: _Pool, spec: FunctionSpec, request_id: str
    ) -> _Worker | InvokeResult:
        """An idle worker, or a new one started; the error result when there can be none."""
        try:
            worker = pool.acquire()
        except RuntimeClosedError:
            return self._error_result(request_id, "Runtime.Closed", "the local runtime is closed")
        if worker is not None:
            return worker
        try:
            worker, init_error = self._start_worker(spec)
        except BaseException:
            pool.release(None, healthy=False)
            raise
        if init_error is not None:
            pool.release(worker, healthy=False)
            return _failure(request_id, {**init_error, "requestId": request_id})
        pool.started(worker)
        return worker

    def _exchange(
        self, pool: _Pool, worker: _Worker, spec: FunctionSpec, request: dict[str, Any]
    ) -> dict[str, Any] | InvokeResult:
        """The worker's answer to ``request``, or the error result of its timeout or death."""
        request_id = request["request_id"]
        deadline = time.monotonic() + spec.timeout
        try:
            worker.send(request)
            while True:
                message = worker.read_message(deadline)
                if message.get("request_id") == request_id:
                    return message
        except _TimedOutError:
            pool.release(worker, healthy=False)
            message_text = f"Task timed out after {spec.timeout:.2f} seconds"
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self._append_log(spec, f"{stamp} {request_id} {message_text}")
            return self._error_result(
                request_id, "Sandbox.Timedout", f"RequestId: {request_id} Error: {message_text}"
            )
        except _WorkerDiedError:
            description = worker.exit_description()
            pool.release(worker, healthy=False)
            if self.closed:
                return self._error_result(request_id, "Runtime.Closed", "the local runtime closed")
            return self._exit_error(spec, request_id, description)

    def _exit_error(self, spec: FunctionSpec, request_id: str, description: str) -> InvokeResult:
        self._append_log(spec, f"RequestId: {request_id} Error: {description}")
        return self._error_result(
            request_id, "Runtime.ExitError", f"RequestId: {request_id} Error: {description}"
        )

    def _should_crash(self, spec: FunctionSpec, text: str) -> bool:
        if self.crash_after is None:
            return False
        try:
            event = json.loads(text)
        except ValueError:
            event = text
        return bool(self.crash_after(spec.logical_id, event))

    def _environment(self, spec: FunctionSpec, log_stream: str) -> dict[str, str]:
        tmp = self.tmp_dir / spec.logical_id
        tmp.mkdir(parents=True, exist_ok=True)
        code_path = [str(spec.code_dir), *(str(d) for d in spec.layer_dirs)]
        own_root = str(Path(__file__).resolve().parent.parent)
        env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join([*code_path, own_root]),
            "_LOCALCLOUD_CODE_PATH": os.pathsep.join(code_path),
            # Nothing from the caller's ~/.aws may leak in.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # No X-Ray daemon locally: Powertools' Tracer stays off (as under `sam local`).
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        for name in ("LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "COVERAGE_PROCESS_START"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(spec.environment)
        env.update(
            {
                "_HANDLER": spec.handler,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
            }
        )
        env.update(self.extra_env)
        return env

    def _start_worker(self, spec: FunctionSpec) -> tuple[_Worker, dict[str, Any] | None]:
        parent, child = socket.socketpair()
        stamp = datetime.now(UTC).strftime("%Y/%m/%d")
        log_stream = f"{stamp}/[$LATEST]{uuid.uuid4().hex}"
        log_path = self.log_path(spec)
        try:
            with log_path.open("ab") as log_file:
                process = subprocess.Popen(
                    [self.python, "-m", "localcloud.worker", str(child.fileno())],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    pass_fds=(child.fileno(),),
                    env=self._environment(spec, log_stream),
                    cwd=str(spec.code_dir) if spec.code_dir.is_dir() else None,
                    start_new_session=True,
                )
        finally:
            child.close()
        with _LIVE_LOCK:
            _LIVE.add(process)
        with self._lock:
            self._started_pids.append(process.pid)
        worker = _Worker(process, parent)
        try:
            message = worker.read_message(time.monotonic() + self.init_timeout)
        except _TimedOutError:
            return worker, {
                "errorType": "Runtime.InitTimeout",
                "errorMessage": f"init did not finish within {self.init_timeout:.0f} s",
            }
        except _WorkerDiedError:
            return worker, {
                "errorType": "Runtime.ExitError",
                "errorMessage": worker.exit_description(),
            }
        if message.get("type") == "init_error":
            return worker, dict(message.get("error") or {})
        worker.init_ms = message.get("init_ms")
        return worker, None


def _failure(request_id: str, error: dict[str, Any]) -> InvokeResult:
    payload = json.dumps(error).encode()
    error_type = str(error.get("errorType"))
    return InvokeResult(request_id, payload, function_error=FUNCTION_ERROR, error_type=error_type)


def _trace_id() -> str:
    epoch = f"{int(time.time()):08x}"
    return f"Root=1-{epoch}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
