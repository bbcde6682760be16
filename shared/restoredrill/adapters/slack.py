"""Slack through slack_sdk's incoming-webhook client. The webhook URL is a secret: it is never
logged and never put in an exception.

Retries are slack_sdk's retry handlers: a connection error once, HTTP 500/503 once, and HTTP 429
twice, each after the ``Retry-After`` Slack sent (slack_sdk's RateLimitErrorRetryHandler, bounded
here: a wait longer than ``rate_limit_max_wait_seconds`` is not waited for inside a 30-second
Lambda, the delivery fails and EventBridge retries the event minutes later instead).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

# slack_sdk logs the full webhook URL (a secret) when it retries: its logger says nothing.
_SILENT = logging.getLogger("restoredrill.slack_sdk")
_SILENT.disabled = True
_SILENT.propagate = False

RATE_LIMIT_RETRIES = 2
RATE_LIMIT_MAX_WAIT_SECONDS = 10.0
RATE_LIMIT_DEFAULT_WAIT_SECONDS = 1.0  # when a 429 carries no usable Retry-After
RATE_LIMIT_JITTER_SECONDS = 0.25


class SlackDeliveryError(Exception):
    """Slack did not take the message; the event is retried, then kept in the dead-letter queue."""


def retry_after_seconds(headers: Mapping[str, str | list[str]] | None) -> float | None:
    """The ``Retry-After`` among response headers in seconds (delta-seconds form), None when
    absent or not a number (Slack sends whole seconds)."""
    for name, values in (headers or {}).items():
        if name.lower() != "retry-after":
            continue
        raw = values[0] if isinstance(values, list) and values else values
        try:
            seconds = float(str(raw).strip())
        except ValueError:
            return None
        return seconds if seconds >= 0 else None
    return None


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, waiting exactly what ``Retry-After`` says (plus a little jitter),
    but never longer than ``max_wait_seconds``: a longer wait is left to the caller's retries."""

    def __init__(
        self,
        max_retry_count: int = RATE_LIMIT_RETRIES,
        *,
        max_wait_seconds: float = RATE_LIMIT_MAX_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    def _wait_for(self, response: HttpResponse | None) -> float:
        wait = retry_after_seconds(response.headers if response is not None else None)
        return RATE_LIMIT_DEFAULT_WAIT_SECONDS if wait is None else wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is not None
            and response.status_code == 429
            and self._wait_for(response) <= self.max_wait_seconds
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        jitter = random.uniform(0, RATE_LIMIT_JITTER_SECONDS)  # noqa: S311 - not a secret
        self._sleep(min(self._wait_for(response) + jitter, self.max_wait_seconds))
        state.increment_current_attempt()


class SlackWebhookNotifier:
    def __init__(
        self,
        webhook_url: str,
        *,
        timeout_seconds: int = 10,
        rate_limit_max_wait_seconds: float = RATE_LIMIT_MAX_WAIT_SECONDS,
    ) -> None:
        self._client = WebhookClient(
            webhook_url,
            timeout=timeout_seconds,
            logger=_SILENT,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                BoundedRateLimitRetryHandler(
                    RATE_LIMIT_RETRIES, max_wait_seconds=rate_limit_max_wait_seconds
                ),
                ServerErrorRetryHandler(max_retry_count=1),
            ],
        )

    def post(self, text: str, blocks: list[dict[str, Any]]) -> None:
        failure: str | None = None
        try:
            response = self._client.send(text=text, blocks=blocks)
        except Exception as error:  # the client's errors may quote the URL: name the type only
            failure = f"Slack unreachable: {type(error).__name__}"
        # Raised outside the handler, so the client's error is not even the exception's context.
        if failure is not None:
            raise SlackDeliveryError(failure)
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers)
            after = f" (Retry-After: {wait:g} s)" if wait is not None else ""
            raise SlackDeliveryError(f"Slack rate-limited the message{after}")
        if response.status_code != 200:
            raise SlackDeliveryError(f"Slack answered HTTP {response.status_code}")
