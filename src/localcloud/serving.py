"""A loopback HTTP server run on a thread of its own, started and stopped with its owner."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], name: str, host: str = "127.0.0.1"
    ) -> None:
        super().__init__((host, 0), handler)
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]!s}:{self.server_port}"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()
