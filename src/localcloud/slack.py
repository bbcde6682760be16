"""A Slack incoming-webhook receiver on loopback that records what it got and answers like Slack
(``ok``, ``invalid_payload``, ``no_text``, ``no_service``), with knobs to fail or hang the next
requests. An unanswered request is not a message: the fault matrix assumes Slack did not post
what the client gave up on, so the sender must retry.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from localcloud.serving import LoopbackServer

__all__ = ["SlackReceiver"]

WEBHOOK_PATH = "/services/T000/B000/XXXX"


@dataclass
class _Fault:
    status: int | None = None
    body: str = ""
    retry_after: int | None = None
    hang_seconds: float = 0.0
    match: str | None = None  # only requests whose raw body contains this

    def applies_to(self, record: dict[str, Any]) -> bool:
        return self.match is None or self.match in record["raw"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SlackReceiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        receiver = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = _parse(raw, self.headers.get("Content-Type", ""))
        record = {
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body,
            "raw": raw.decode(errors="replace"),
            "received_at": time.time(),
        }
        fault = receiver._receive(record)
        if fault is not None:
            if fault.hang_seconds:
                time.sleep(fault.hang_seconds)
                if fault.status is None:
                    # Never answered: the client has given up; drop the connection.
                    self.close_connection = True
                    return
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                self._answer(fault.status, fault.body or _reason(fault.status), headers)
                return
        self._answer(*_slack_answer(self.path, body))


def _slack_answer(path: str, body: dict[str, Any] | None) -> tuple[int, str]:
    if not path.startswith("/services/"):
        return 404, "no_service"
    if body is None:
        return 400, "invalid_payload"
    if not (body.get("text") or body.get("blocks") or body.get("attachments")):
        return 400, "no_text"
    return 200, "ok"


def _parse(raw: bytes, content_type: str) -> dict[str, Any] | None:
    text = raw.decode(errors="replace")
    if content_type.startswith("application/x-www-form-urlencoded"):
        payload = parse_qs(text).get("payload")
        if not payload:
            return None
        text = payload[0]
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _reason(status: int) -> str:
    return {429: "rate_limited", 500: "internal_error", 503: "service_unavailable"}.get(
        status, "error"
    )


class SlackReceiver(LoopbackServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(_Handler, "localcloud-slack", host)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._faults: deque[_Fault] = deque()

    def __enter__(self) -> SlackReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{super().url}{WEBHOOK_PATH}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every POST: ``{path, headers, body (parsed JSON or None), raw, received_at}``."""
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The POSTs Slack would have posted: a webhook path, a JSON body, and no fault."""
        with self._lock:
            return [dict(r) for r in self._requests if r.get("accepted")]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.05)
        return self.messages

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        retry_after: int | None = None,
        body: str = "",
        match: str | None = None,
    ) -> None:
        """The next ``count`` requests (whose body contains ``match``, if given) answer ``status``
        (e.g. 429 with ``Retry-After``)."""
        with self._lock:
            self._faults.extend(
                _Fault(status=status, retry_after=retry_after, body=body, match=match)
                for _ in range(count)
            )

    def hang_next(self, count: int = 1, *, seconds: float = 30.0, match: str | None = None) -> None:
        """The next ``count`` requests (whose body contains ``match``, if given) get no answer for
        ``seconds``, then the connection is closed unanswered; they are not messages."""
        with self._lock:
            self._faults.extend(_Fault(hang_seconds=seconds, match=match) for _ in range(count))

    def _receive(self, record: dict[str, Any]) -> _Fault | None:
        """Record a request and take the fault (if any) that applies to it, atomically."""
        with self._lock:
            fault = next((f for f in self._faults if f.applies_to(record)), None)
            if fault is not None:
                self._faults.remove(fault)
                record["fault"] = {"status": fault.status, "hang_seconds": fault.hang_seconds}
            status, _ = _slack_answer(record["path"], record["body"])
            record["accepted"] = fault is None and status == 200
            self._requests.append(record)
        return fault
