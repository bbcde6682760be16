"""Connections to the database under test (pg8000), their session settings, and errors made safe
to report (no password, ever)."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError

from restoredrill.checksuite.results import ConnectionTarget

__all__ = [
    "APPLICATION_NAME",
    "CheckConnection",
    "ServerError",
    "classify_error",
    "connect",
    "redact",
]

APPLICATION_NAME = "restoredrill-check"
# How much longer than the statement timeout a socket read may wait before we give up on the
# server (a dead network, a hung server): the server cancels its own statements first.
SOCKET_GRACE_S = 30.0

# SQLSTATEs that mean "the data cannot be read back as it was written": a check that meets one
# has found a problem with the backup, not with the drill. XX001 data_corrupted (e.g. a page
# checksum failure), XX002 index_corrupted (amcheck), class 58 (I/O: a relation file missing or
# unreadable).
CORRUPTION_SQLSTATES = frozenset({"XX001", "XX002", "58030", "58P01", "58P02"})
QUERY_CANCELED = "57014"
UNDEFINED_FUNCTION = "42883"

_DSN_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every secret (and any ``scheme://user:password@`` password) replaced."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return _DSN_PASSWORD.sub(r"\1***@", text)


@dataclass(frozen=True)
class ServerError:
    """What a failed statement or connection attempt said, fit for a report."""

    sqlstate: str | None
    message: str
    detail: str | None = None
    connection_lost: bool = False

    @property
    def corruption(self) -> bool:
        return self.sqlstate in CORRUPTION_SQLSTATES

    @property
    def canceled(self) -> bool:
        return self.sqlstate == QUERY_CANCELED

    def as_evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {"sqlstate": self.sqlstate, "server_message": self.message}
        if self.detail:
            evidence["detail"] = self.detail
        return evidence

    def __str__(self) -> str:
        code = f" [{self.sqlstate}]" if self.sqlstate else ""
        return f"{self.message}{code}"


def classify_error(exc: BaseException, *secrets: str | None) -> ServerError:
    """A redacted :class:`ServerError` from whatever pg8000 (or the network) raised."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        fields: dict[str, str] = exc.args[0]
        message = redact(fields.get("M", "unknown server error"), *secrets)
        detail = fields.get("D")
        fatal = fields.get("S") in ("FATAL", "PANIC")
        return ServerError(
            sqlstate=fields.get("C"),
            message=message,
            detail=redact(detail, *secrets) if detail else None,
            connection_lost=fatal,
        )
    if isinstance(exc, InterfaceError | OSError | ssl.SSLError | socket.timeout):
        cause = exc.__cause__ or exc.__context__
        text = str(exc) or type(exc).__name__
        if cause is not None and str(cause) and str(cause) not in text:
            text = f"{text}: {cause}"
        return ServerError(sqlstate=None, message=redact(text, *secrets), connection_lost=True)
    text = f"{type(exc).__name__}: {exc}"
    return ServerError(sqlstate=None, message=redact(text, *secrets))


_ssl_contexts: dict[tuple[str, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def _ssl_context(target: ConnectionTarget) -> ssl.SSLContext | bool:
    """The TLS context for ``target.ssl`` (made once: loading a trust store costs milliseconds of
    CPU)."""
    if target.ssl == "disable":
        return False
    key = (target.ssl, target.ca_bundle_pem)
    with _ssl_lock:
        context = _ssl_contexts.get(key)
        if context is None:
            if target.ssl == "verify-full":
                # with cadata, only that bundle is trusted; without, the system's trust store
                context = ssl.create_default_context(cadata=target.ca_bundle_pem or None)
                context.check_hostname = True
                context.verify_mode = ssl.CERT_REQUIRED
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            _ssl_contexts[key] = context
    return context


def _open_socket(target: ConnectionTarget) -> socket.socket:
    """A TCP connection with TCP_NODELAY: without it the TLS handshake's last small write waits
    for a delayed ACK (40 ms per connection on Linux)."""
    sock = socket.create_connection((target.host, target.port), target.connect_timeout_s)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        sock.close()
        raise
    return sock


class CheckConnection:
    """One pg8000 connection with the checker's session settings: ``search_path=pg_catalog``
    (no function or operator of the database under test can shadow a built-in),
    ``TimeZone=UTC``, read-only transactions by default, and a statement timeout that shrinks
    when the time budget runs out."""

    def __init__(self, raw: pg8000.native.Connection, database: str, timeout_ms: int) -> None:
        self.raw = raw
        self.database = database
        self.timeout_ms = timeout_ms

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        rows: list[list[Any]] = self.raw.run(sql, **params)
        return rows

    def scalar(self, sql: str, **params: Any) -> Any:
        rows = self.run(sql, **params)
        return rows[0][0] if rows else None

    def set_timeout(self, timeout_ms: int) -> None:
        """Set ``statement_timeout`` (milliseconds, at least 1) when it differs from the current."""
        timeout_ms = max(1, int(timeout_ms))
        if timeout_ms != self.timeout_ms:
            self.raw.run(f"SET statement_timeout = {timeout_ms:d}")
            self.timeout_ms = timeout_ms
            self._set_socket_timeout(timeout_ms / 1000 + SOCKET_GRACE_S)

    def _set_socket_timeout(self, seconds: float) -> None:
        sock = getattr(self.raw, "_usock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(seconds)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def connect(
    target: ConnectionTarget,
    database: str,
    statement_timeout_s: float,
    settings: dict[str, str] | None = None,
) -> CheckConnection:
    """Open a checker connection to ``database`` of ``target`` (``settings``: more session
    settings). Raises whatever pg8000 raises; pass it to :func:`classify_error` before showing
    it to anybody."""
    timeout_ms = max(1, int(statement_timeout_s * 1000))
    try:
        sock = _open_socket(target)
    except OSError as exc:
        raise InterfaceError(
            f"could not open a TCP connection to {target.host}:{target.port}: {exc}"
        ) from exc
    try:
        raw = pg8000.native.Connection(
            user=target.user,
            password=target.password.get_secret_value(),
            host=target.host,
            port=target.port,
            database=database,
            ssl_context=_ssl_context(target),
            timeout=target.connect_timeout_s,
            sock=sock,
            application_name=APPLICATION_NAME,
            startup_params={
                "search_path": "pg_catalog",
                "TimeZone": "UTC",
                "statement_timeout": str(timeout_ms),
                "default_transaction_read_only": "on",
                "client_min_messages": "error",
                **(settings or {}),
            },
        )
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    connection = CheckConnection(raw, database, timeout_ms)
    connection._set_socket_timeout(statement_timeout_s + SOCKET_GRACE_S)
    return connection
