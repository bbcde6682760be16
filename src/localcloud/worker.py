"""One warm Lambda execution environment: ``python -m localcloud.worker <fd>``, started by
:mod:`localcloud.runtime`. The protocol (JSON lines) runs only on the socket ``<fd>``: stdout and
stderr are the function's log file, so its prints and EMF metrics can never corrupt it.

Protocol
    worker -> parent   {"type": "ready", "init_ms": ...} | {"type": "init_error", "error": {...}}
    parent -> worker   {"request_id", "payload" (JSON text), "deadline_ms", "invoked_function_arn",
                        "client_context" (JSON text or null), "trace_id"}
    worker -> parent   {"request_id", "ok": true, "payload": text, "binary": bool}
                       | {"request_id", "ok": false, "error": {errorMessage, errorType,
                          requestId, stackTrace}}

The handler is called the way the AWS Python runtime calls it (awslambdaric's bootstrap): same
context object, same error shapes, same JSON marshalling (Decimal allowed), a root logging handler
that prefixes the request id.
"""

from __future__ import annotations

import base64
import decimal
import importlib
import json
import logging
import math
import os
import resource
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from localcloud import crash

_CURRENT_REQUEST_ID: str | None = None


class _Fault(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def _current_error(request_id: str = "") -> dict[str, Any]:
    """The AWS runtime's error document for the exception being handled, logged as it logs it."""
    etype, value, tb = sys.exc_info()
    if isinstance(value, _Fault):
        error_type, message, trace = value.error_type, value.message, value.trace
    else:
        frames = traceback.extract_tb(tb)
        # Drop this module's own frames, as the AWS runtime drops bootstrap.py's.
        while frames and frames[0].filename == __file__:
            frames = traceback.StackSummary.from_list(list(frames)[1:])
        error_type = etype.__name__ if etype else "Exception"
        message, trace = str(value), traceback.format_list(frames)
    lines = [f"[ERROR] {error_type}: {message}"]
    if trace:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in trace)
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace,
    }


class LambdaContext:
    """The context object the AWS Python runtime passes (awslambdaric ``LambdaContext``)."""

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        client_context: dict[str, Any] | None = None,
    ) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as in AWS (read from AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = client_context
        self.identity = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _CURRENT_REQUEST_ID or ""
        return True


def _setup_logging() -> None:
    """The AWS runtime's root handler: ``[LEVEL]\\t<time>Z\\t<request id>\\t<message>``."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)


def _isolate_imports() -> None:
    """Handler code sees its CodeUri, its layers and the installed packages: with the project
    installed in editable mode, a function whose template forgot ``Layers`` would still work."""
    own_root = str(Path(__file__).resolve().parent.parent)
    declared = set(filter(None, os.environ.get("_LOCALCLOUD_CODE_PATH", "").split(os.pathsep)))
    sys.path[:] = [p for p in sys.path if p != own_root or p in declared]
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not getattr(finder, "__module__", "").startswith("__editable__")
        and not type(finder).__module__.startswith("__editable__")
    ]


def _get_handler(handler: str) -> Any:
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as error:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {error}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise _Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from None
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {error}",
            trace,
        ) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            return math.nan
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _marshal(result: Any) -> tuple[str, bool]:
    if isinstance(result, bytes | bytearray):
        return base64.b64encode(bytes(result)).decode(), True
    try:
        return json.dumps(result, default=_json_default, ensure_ascii=False), False
    except (TypeError, ValueError) as error:
        raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {error}") from None


def _invoke(handler: Any, request: dict[str, Any], *, init_ms: float | None) -> dict[str, Any]:
    global _CURRENT_REQUEST_ID
    request_id = str(request["request_id"])
    _CURRENT_REQUEST_ID = request_id
    crash.set_request(request_id)
    if request.get("trace_id"):
        os.environ["_X_AMZN_TRACE_ID"] = str(request["trace_id"])
    print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
    started = time.monotonic()
    response: dict[str, Any] = {"request_id": request_id}
    try:
        try:
            event = json.loads(request["payload"])
            client_context = (
                json.loads(request["client_context"]) if request.get("client_context") else None
            )
        except ValueError as unreadable:
            raise _Fault(
                "Runtime.UnmarshalError", f"Unable to unmarshal input: {unreadable}"
            ) from None
        context = LambdaContext(
            request_id,
            int(request["deadline_ms"]),
            str(request["invoked_function_arn"]),
            client_context,
        )
        result = handler(event, context)
        payload, binary = _marshal(result)
        response.update(ok=True, payload=payload, binary=binary)
    except Exception:
        response.update(ok=False, error=_current_error(request_id))
    finally:
        duration = (time.monotonic() - started) * 1000
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        print(f"END RequestId: {request_id}", flush=True)
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration)} ms\t"
            f"Memory Size: {os.environ.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE')} MB\t"
            f"Max Memory Used: {max_rss_mb} MB{init}",
            flush=True,
        )
        _CURRENT_REQUEST_ID = None
    return response


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    channel = socket.socket(fileno=int(argv[1]))
    started = time.monotonic()
    _isolate_imports()
    _setup_logging()
    # Fault injection (crash-after-* faults): only when the local cloud armed a crash directory.
    crash.install_from_environ()
    try:
        handler = _get_handler(os.environ["_HANDLER"])
    except Exception:
        _send(channel, {"type": "init_error", "error": _current_error()})
        return 1
    init_ms: float | None = (time.monotonic() - started) * 1000
    _send(channel, {"type": "ready", "init_ms": init_ms})
    reader = channel.makefile("rb")
    for line in reader:
        if not line.strip():
            continue
        response = _invoke(handler, json.loads(line), init_ms=init_ms)
        init_ms = None
        _send(channel, response)
    return 0


if __name__ == "__main__":
    sys.exit(main())
