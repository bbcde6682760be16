"""Slack through slack_sdk's incoming-webhook client. The webhook URL is a secret: it is never
logged and never put in an exception."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

# slack_sdk logs the full webhook URL (a secret) when it retries: its logger says nothing.
_SILENT = logging.getLogger("restoredrill.slack_sdk")
_SILENT.disabled = True
_SILENT.propagate = False


class SlackDeliveryError(Exception):
    """Slack did not take the message; the event is retried, then kept in the dead-letter queue."""


class SlackWebhookNotifier:
    def __init__(self, webhook_url: str, *, timeout_seconds: int = 10) -> None:
        self._client = WebhookClient(
            webhook_url,
            timeout=timeout_seconds,
            logger=_SILENT,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                RateLimitErrorRetryHandler(max_retry_count=2),
                ServerErrorRetryHandler(max_retry_count=1),
            ],
        )

    def post(self, text: str, blocks: list[dict[str, Any]]) -> None:
        try:
            response = self._client.send(text=text, blocks=blocks)
        except Exception as error:  # the client's errors may quote the URL
            raise SlackDeliveryError(f"Slack unreachable: {type(error).__name__}") from None
        if response.status_code != 200:
            raise SlackDeliveryError(f"Slack answered HTTP {response.status_code}")
