"""Headless Chromium over the DevTools protocol, for tests and screenshots of the HTML report.

    with HeadlessChromium() as browser:
        browser.load(Path("report.html"))          # or a string of HTML
        browser.evaluate("document.title")
        browser.screenshot(Path("report.png"))
        browser.print_pdf()
        browser.requests()                          # every URL the page asked for

One browser process per instance, in a process group of its own with a throwaway profile
directory; leaving the context ends that group (and only that group) and removes the directory.
The DevTools endpoint listens on loopback, on a port the browser picks and writes to
``DevToolsActivePort`` in the profile. Commands go over one WebSocket to the browser, addressed
to the page's session (``Target.attachToTarget`` with ``flatten``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import websocket

BINARY_NAMES = ("chromium", "chromium-browser")
ENSURE_SCRIPT = "scripts/ensure-chromium.sh"
STARTUP_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
DEFAULT_WIDTH = 1200
DEFAULT_HEIGHT = 900


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or answered a command with an error."""


def chromium_binary() -> str:
    """The Chromium on PATH; a clear error naming the script that installs it when missing."""
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        f"Chromium is not installed (looked for {' or '.join(BINARY_NAMES)} on PATH); "
        f"run `bash {ENSURE_SCRIPT}` (or `make chromium`) to install it"
    )


class HeadlessChromium:
    def __init__(
        self,
        *,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        self.width = width
        self.height = height
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.profile_dir: Path | None = None
        self._socket: websocket.WebSocket | None = None
        self._session_id: str | None = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._requested: list[str] = []
        self._pages = 0

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> HeadlessChromium:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        binary = chromium_binary()
        self.profile_dir = Path(tempfile.mkdtemp(prefix="restoredrill-chromium-"))
        log = (self.profile_dir / "chromium.log").open("wb")
        try:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                    f"--user-data-dir={self.profile_dir / 'profile'}",
                    f"--window-size={self.width},{self.height}",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--mute-audio",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            self._connect(self._wait_for_endpoint())
            self._open_page()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End the browser's process group, wait for it, remove the profile directory."""
        if self._socket is not None:
            with contextlib.suppress(Exception):
                self._socket.close()
            self._socket = None
        if self.process is not None and (self.process.poll() is None or self.processes()):
            self._end_process_group(self.process)
        if self.profile_dir is not None:
            shutil.rmtree(self.profile_dir, ignore_errors=True)
            self.profile_dir = None

    def processes(self) -> list[int]:
        """The processes of this browser's group still alive (empty once it has stopped)."""
        if self.process is None:
            return []
        return _group_members(self.process.pid)

    def _end_process_group(self, process: subprocess.Popen[bytes]) -> None:
        group = process.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            while _group_members(group) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process.poll() is not None and not _group_members(group):
                return

    def _wait_for_endpoint(self) -> str:
        assert self.process is not None and self.profile_dir is not None
        port_file = self.profile_dir / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(
                    f"Chromium exited with status {self.process.returncode} before it listened: "
                    + self._log_tail()
                )
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2 and lines[0].isdigit():
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise BrowserError(
            f"Chromium did not write {port_file.name} within {STARTUP_TIMEOUT_SECONDS:.0f}s: "
            + self._log_tail()
        )

    def _log_tail(self) -> str:
        assert self.profile_dir is not None
        log = self.profile_dir / "chromium.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no output)"

    def _connect(self, url: str) -> None:
        # Chromium refuses DevTools connections whose Origin it does not allow; send none.
        self._socket = websocket.create_connection(url, timeout=self.timeout, suppress_origin=True)

    def _open_page(self) -> None:
        target = self._command("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self._command(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self._session_id = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self._command(f"{domain}.enable")
        self._set_viewport(self.width, self.height)

    # -- the protocol ---------------------------------------------------------------------

    def _command(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        if self._socket is None:
            raise BrowserError("the browser is not running")
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session_id
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") != message["id"]:
                continue
            if "error" in reply:
                raise BrowserError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        assert self._socket is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"no answer to {waiting_for} within {self.timeout:.0f}s")
        self._socket.settimeout(remaining)
        try:
            message: dict[str, Any] = json.loads(self._socket.recv())
        except websocket.WebSocketTimeoutException as error:
            raise BrowserError(f"no answer to {waiting_for} within {self.timeout:.0f}s") from error
        if "method" in message:
            self._on_event(message)
        return message

    def _on_event(self, event: dict[str, Any]) -> None:
        if event["method"] == "Network.requestWillBeSent":
            self._requested.append(event["params"]["request"]["url"])
        self._events.append(event)

    def _wait_for_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[: index + 1]
                    return event
            self._events.clear()
            self._receive(deadline, method)

    def _set_viewport(self, width: int, height: int) -> None:
        self._command(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    # -- what tests use -------------------------------------------------------------------

    def load(self, path_or_html: Path | str) -> str:
        """Open a file (a Path, or a str naming one), or a str of HTML (written to a file in
        the profile directory first); returns the file:// URL once the page's load event fired.
        :meth:`requests` then lists what this page asked for."""
        assert self.profile_dir is not None
        if isinstance(path_or_html, str) and path_or_html.lstrip().startswith("<"):
            self._pages += 1
            path = self.profile_dir / f"page-{self._pages}.html"
            path.write_text(path_or_html, encoding="utf-8")
        else:
            path = Path(path_or_html).resolve()
            if not path.is_file():
                raise BrowserError(f"no such file: {path}")
        url = path.as_uri()
        self._events.clear()
        self._requested.clear()
        navigated = self._command("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise BrowserError(f"could not open {url}: {navigated['errorText']}")
        self._wait_for_event("Page.loadEventFired")
        return url

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited), as JSON gives
        it; a JavaScript exception raises :class:`BrowserError`."""
        result = self._command(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript raised: {text}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the page at the browser's width; the whole page's height when ``full_page``."""
        height = self.height
        if full_page:
            metrics = self._command("Page.getLayoutMetrics")
            height = max(int(metrics["cssContentSize"]["height"] + 0.5), 1)
            self._set_viewport(self.width, height)
        try:
            shot = self._command(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": full_page, "fromSurface": True},
            )
        finally:
            if full_page:
                self._set_viewport(self.width, self.height)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def print_pdf(self) -> bytes:
        """The page printed (print stylesheet, backgrounds kept) as PDF bytes."""
        printed = self._command(
            "Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}
        )
        return base64.b64decode(printed["data"])

    def requests(self) -> list[str]:
        """Every URL the page loaded last asked for, in order (its own file:// URL first)."""
        return list(self._requested)


def _group_members(group: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``group``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses).
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return members
