"""The Slack webhook receiver answers like Slack and records what it got."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from localcloud.slack import SlackReceiver


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def post(url: str, body: bytes, *, timeout: float = 5.0) -> tuple[int, str, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_a_message_is_recorded_and_answered_ok(slack: SlackReceiver) -> None:
    # Given the receiver's webhook URL (loopback, Slack-like path)
    assert slack.url.startswith("http://127.0.0.1:") and "/services/T000/B000/XXXX" in slack.url
    # When a message is posted
    status, text, _ = post(slack.url, json.dumps({"text": "drill PASSED"}).encode())
    # Then Slack's answer comes back and the message is recorded with path, headers and body
    assert (status, text) == (200, "ok")
    [message] = slack.messages
    assert message["body"] == {"text": "drill PASSED"}
    assert message["path"] == "/services/T000/B000/XXXX"
    assert message["headers"]["Content-Type"] == "application/json"


def test_invalid_payloads_are_refused_like_slack(slack: SlackReceiver) -> None:
    assert post(slack.url, b"not json")[:2] == (400, "invalid_payload")
    assert post(slack.url, b'{"username": "x"}')[:2] == (400, "no_text")
    # Refused requests are kept in `requests`, not in `messages`
    assert len(slack.requests) == 2 and slack.messages == []


def test_fault_knobs_answer_a_status_then_recover(slack: SlackReceiver) -> None:
    # Given the next two requests are rate limited
    slack.fail_next(2, status=429, retry_after=3)
    body = json.dumps({"text": "hi"}).encode()
    # Then they get 429 with Retry-After, and the third gets through
    first = post(slack.url, body)
    assert first[0] == 429 and first[2]["Retry-After"] == "3"
    assert post(slack.url, body)[0] == 429
    assert post(slack.url, body)[0] == 200
    assert len(slack.messages) == 1 and len(slack.requests) == 3


def test_a_hang_makes_the_client_time_out(slack: SlackReceiver) -> None:
    # Given the next request hangs for 2 s
    slack.hang_next(1, seconds=2)
    started = time.monotonic()
    # When a client with a 0.5 s timeout posts, Then it times out
    with pytest.raises(TimeoutError):
        post(slack.url, json.dumps({"text": "slow"}).encode(), timeout=0.5)
    assert time.monotonic() - started < 1.5
