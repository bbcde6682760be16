"""What the functions reach from inside their containers, served on the docker bridge address:
Lambda's Invoke API (recorded; the checker answered by the real checker through
`sam local invoke`) and a TCP forwarder to a real PostgreSQL on loopback."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


@dataclass(frozen=True)
class Invocation:
    function_name: str
    invocation_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class SyncAnswer:
    payload: bytes
    function_error: str | None = None


SyncHandler = Callable[[dict[str, Any]], SyncAnswer]


class _LambdaServer(ThreadingHTTPServer):
    daemon_threads = True
    api: LambdaApi


class _LambdaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _LambdaServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        match = _INVOKE_PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._reply(404, b'{"Type":"User","message":"not an Invoke request"}')
            return
        try:
            payload = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._reply(400, b'{"Type":"User","message":"payload is not JSON"}')
            return
        invocation = Invocation(
            function_name=match.group(1),
            invocation_type=self.headers.get("X-Amz-Invocation-Type", "RequestResponse"),
            payload=payload,
        )
        api = self.server.api
        api.record(invocation)
        if invocation.invocation_type == "Event":
            self._reply(202, b"")
            return
        handler = api.sync_handlers.get(invocation.function_name)
        if handler is None:
            message = f"Function not found: {invocation.function_name}"
            body = json.dumps({"Type": "User", "Message": message}).encode()
            self._reply(404, body, {"x-amzn-ErrorType": "ResourceNotFoundException"})
            return
        answer = handler(payload)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if answer.function_error:
            headers["X-Amz-Function-Error"] = answer.function_error
        self._reply(200, answer.payload, headers)


class LambdaApi:
    """Lambda's Invoke API: asynchronous invokes are recorded and accepted (202); synchronous
    ones go to the handler registered for the function name."""

    def __init__(self, host: str) -> None:
        self._server = _LambdaServer((host, 0), _LambdaHandler)
        self._server.api = self
        self._lock = threading.Lock()
        self._invocations: list[Invocation] = []
        self.sync_handlers: dict[str, SyncHandler] = {}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, invocation: Invocation) -> None:
        with self._lock:
            self._invocations.append(invocation)

    def invocations(self, function_name: str | None = None) -> list[Invocation]:
        with self._lock:
            return [
                each
                for each in self._invocations
                if function_name is None or each.function_name == function_name
            ]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sam-local-lambda-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()


class TcpForwarder:
    """Accepts on (host, port) and pipes each connection to (target_host, target_port): the
    containers reach a PostgreSQL that listens on loopback only, TLS end to end."""

    def __init__(self, host: str, port: int, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.5)
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept, name="sam-local-pg", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for each in self._sockets:
                with contextlib.suppress(OSError):
                    each.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
