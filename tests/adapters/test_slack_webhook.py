"""The Slack adapter against a webhook on loopback: retries on 429, and the URL (a secret) never
in an exception or a log."""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from restoredrill.adapters.slack import (
    SlackDeliveryError,
    SlackWebhookNotifier,
)
from restoredrill.domain.announcement import DrillFinished, render

EVENTS = Path(__file__).resolve().parents[2] / "events"
SECRET_PATH = "/services/T0SECRET/B0SECRET/s3cr3tW3bh00kT0k3n"


def finished(**changes: Any) -> DrillFinished:
    detail = json.loads((EVENTS / "notify/drill-finished.json").read_text())["detail"]
    detail.update(changes)
    return DrillFinished.model_validate(detail)


class Webhook:
    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[dict[str, Any]] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = webhook.script.pop(0) if webhook.script else (200, {})
                webhook.received.append(
                    {"at": time.monotonic(), "body": json.loads(body), "status": status}
                )
                answer = b"ok" if status == 200 else b"rate_limited"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [request for request in self.received if request["status"] == 200]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()
    hook.thread.join(timeout=5)


def assert_the_url_is_nowhere_in(error: BaseException, url: str) -> None:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    told = "".join(traceback.format_exception(error)) + "".join(
        f"{e!s}{e!r}{e.args!r}" for e in chain
    )
    assert url not in told and SECRET_PATH not in told and "s3cr3t" not in told
    assert chain == [error]  # no underlying client error (which may quote it) rides along


def test_a_rate_limited_post_is_retried_after_retry_after_and_delivered_once(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Slack answers the first post 429 with Retry-After: 1, then 200
    webhook.script = [(429, {"Retry-After": "1"}), (200, {})]
    text, blocks = render(finished())
    # When the notifier posts the message
    started = time.monotonic()
    SlackWebhookNotifier(webhook.url, timeout_seconds=5).post(text, blocks)
    # Then it was delivered exactly once, the same message both times
    assert [r["status"] for r in webhook.received] == [429, 200]
    assert len(webhook.delivered) == 1
    assert (
        webhook.received[0]["body"]
        == webhook.received[1]["body"]
        == {
            "text": text,
            "blocks": blocks,
        }
    )
    # And the retry waited what Slack asked (not less), and not much more
    waited = webhook.received[1]["at"] - webhook.received[0]["at"]
    assert 1.0 <= waited < 3.0 and time.monotonic() - started < 5
    # And the webhook URL was logged nowhere
    assert SECRET_PATH not in caplog.text


def test_a_rate_limit_that_never_lifts_fails_after_two_retries_without_the_url(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Slack answers every post 429 (Retry-After: 0)
    webhook.script = [(429, {"Retry-After": "0"})] * 5
    # When the notifier posts
    with pytest.raises(SlackDeliveryError) as raised:
        SlackWebhookNotifier(webhook.url, timeout_seconds=5).post("t", [])
    # Then it tried three times (once and two retries), nothing was delivered, the error says
    # what happened and carries no trace of the URL
    assert [r["status"] for r in webhook.received] == [429, 429, 429]
    assert webhook.delivered == []
    assert "rate-limited" in str(raised.value)
    assert_the_url_is_nowhere_in(raised.value, webhook.url)
    assert SECRET_PATH not in caplog.text


def test_a_retry_after_longer_than_the_function_can_wait_is_left_to_eventbridge(
    webhook: Webhook,
) -> None:
    # Given Slack asks to come back in an hour
    webhook.script = [(429, {"Retry-After": "3600"})]
    # When the notifier posts
    started = time.monotonic()
    with pytest.raises(SlackDeliveryError) as raised:
        SlackWebhookNotifier(webhook.url, timeout_seconds=5).post("t", [])
    # Then it does not sleep through the Lambda's 30 s: one request, a prompt failure that
    # EventBridge will retry, and the wait it was asked for in the message
    assert len(webhook.received) == 1 and time.monotonic() - started < 2
    assert "Retry-After: 3600 s" in str(raised.value)
    assert_the_url_is_nowhere_in(raised.value, webhook.url)


def test_an_unreachable_slack_fails_without_the_url(webhook: Webhook) -> None:
    # Given nothing listens at the webhook's address any more
    url = webhook.url
    webhook.server.shutdown()
    webhook.server.server_close()
    # When the notifier posts
    with pytest.raises(SlackDeliveryError) as raised:
        SlackWebhookNotifier(url, timeout_seconds=2).post("t", [])
    # Then the error names the kind of failure only
    assert str(raised.value).startswith("Slack unreachable: ")
    assert_the_url_is_nowhere_in(raised.value, url)
