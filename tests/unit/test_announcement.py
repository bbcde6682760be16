"""The Slack message and the settings: what on-call engineers read, what operators configure;
and the webhook client: retries on 429 as Slack asks, never leaks the webhook URL."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from restoredrill.adapters.slack import (
    BoundedRateLimitRetryHandler,
    retry_after_seconds,
)
from restoredrill.domain.announcement import (
    HEADER_TEXT_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    DrillFinished,
    announce,
    render,
)
from restoredrill.domain.report.evidence import partly_verified
from restoredrill.ports.config import ConfigError, DrillSettings

from tests.unit.test_report_schema import (
    DRILLS,
    SNAPSHOT,
    finished_drill,
    given_an_opted_in_database,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
REPORT_URI = (
    "s3://restoredrill-reportbucket-1x2y3z"
    "/reports/us-east-1/clinic-db/2026/11/27/3f9a2c71d0b84e5fa613.json"
)


def finished(**changes: Any) -> DrillFinished:
    detail = json.loads((EVENTS / "notify/drill-finished.json").read_text())["detail"]
    detail.update(changes)
    return DrillFinished.model_validate(detail)


def announced(drill: str) -> tuple[str, list[dict[str, Any]]]:
    """The message for a drill run through the domain: its Drill Finished detail, rendered."""
    w, _, _ = finished_drill(drill)
    (detail,) = w.events.items
    return render(DrillFinished.model_validate(detail))


def texts_of(block: dict[str, Any]) -> list[str]:
    """Every text a block shows (section text and fields, context elements, header)."""
    found = []
    if "text" in block:
        found.append(block["text"]["text"])
    found += [field["text"] for field in block.get("fields", [])]
    found += [element["text"] for element in block.get("elements", []) if "text" in element]
    return found


def all_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(text for block in blocks for text in texts_of(block))


def assert_within_block_kit_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= HEADER_TEXT_MAX
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= SECTION_TEXT_MAX
            assert len(block.get("fields", [])) <= 10
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10


# ------------------------------------------------------------------------------ passed


# ------------------------------------------------------------------------------ report links

REGION = "eu-central-1"


def links_in(mrkdwn: str) -> dict[str, str]:
    """The ``<url|label>`` links of a mrkdwn text, label -> URL as Slack resolves it."""
    found = re.findall(r"<([^|>]+)\|([^>]+)>", mrkdwn)
    return {label: html.unescape(url) for url, label in found}


def a_drill_in(region: str, drill: str) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """A drill of a snapshot in ``region``, run through the domain: its report and message."""
    w = given_an_opted_in_database()
    info, source = w.rds.snapshots[SNAPSHOT]
    arn = info.snapshot_arn.replace(":us-east-1:", f":{region}:")
    w.rds.snapshots[SNAPSHOT] = (
        info.model_copy(update={"region": region, "snapshot_arn": arn}),
        source,
    )
    drive, _ = DRILLS[drill]
    drive(w)
    ((_, report),) = w.reports.documents.items()
    (detail,) = w.events.items
    text, blocks = render(DrillFinished.model_validate(detail))
    return report, text, blocks


@pytest.mark.parametrize("drill", ["passed with checks", "failed by checks"])
def test_the_report_links_open_the_s3_console_page_of_each_object_in_its_region(
    drill: str,
) -> None:
    # Given a drill of a snapshot in eu-central-1, announced on Slack
    report, text, blocks = a_drill_in(REGION, drill)
    location = report["location"]
    (section,) = [t for b in blocks for t in texts_of(b) if t.startswith("*Report:*")]
    links = links_in(section)
    # Then the report and its HTML page are https links to their S3 console pages
    assert list(links) == ["JSON report in the S3 console", "HTML page in the S3 console"]
    for url, key in zip(links.values(), (location["key"], location["html_key"]), strict=True):
        parsed = urlsplit(url)
        query = parse_qs(parsed.query)
        assert parsed.scheme == "https" and parsed.netloc == f"{REGION}.console.aws.amazon.com"
        assert parsed.path == f"/s3/object/{location['bucket']}"
        assert query == {"region": [REGION], "bucketType": ["general"], "prefix": [key]}
        # And the key is URL-encoded in the link (its slashes too), never raw
        assert "prefix=" + quote(key, safe="") in url and f"prefix={key}" not in url
    # And they are the pages the report and the event name
    assert list(links.values()) == [location["console_url"], location["html_console_url"]]
    # And the s3:// URI stays beside them, as text for the CLI
    assert f"`s3://{location['bucket']}/{location['key']}`" in section
    # And the plain text has the same console pages (with & escaped, as Slack reads mrkdwn)
    assert html.escape(location["console_url"], quote=False) in text
    assert html.escape(location["html_console_url"], quote=False) in text


def test_an_event_from_before_the_console_links_still_names_the_s3_uris() -> None:
    # Given a Drill Finished event published before it carried console pages
    text, blocks = render(finished())
    # Then the message names the report's s3:// URIs as before, and links nowhere
    assert any(REPORT_URI in t for b in blocks for t in texts_of(b))
    assert REPORT_URI in text and "console.aws.amazon.com" not in text


def test_a_passed_drill_reads_in_one_glance() -> None:
    # Given the sample Drill Finished event of a passed drill, with its measured RPO
    # When it is rendered
    text, blocks = render(finished(rpo_seconds=754.0))
    # Then a header says the verdict and the database
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == ":white_check_mark: Restore drill PASSED: clinic-db"
    # And one section gives database, snapshot, RTO and RPO side by side
    facts = blocks[1]["fields"]
    assert [field["text"].split("\n")[0] for field in facts] == [
        "*Database*",
        "*Snapshot*",
        "*Restore time (RTO)*",
        "*Data freshness (RPO)*",
    ]
    assert "rds:clinic-db-2026-11-27-03-10" in facts[1]["text"]
    assert facts[2]["text"].endswith("16m03s") and facts[3]["text"].endswith("12m34s")
    # And the report's location has its own section, the run id is in a context block
    assert any(REPORT_URI in t for b in blocks if b["type"] == "section" for t in texts_of(b))
    assert blocks[-1]["type"] == "context"
    assert "3f9a2c71d0b84e5fa613" in blocks[-1]["elements"][0]["text"]
    # And nothing else: no failed-check sections, no "why"
    assert len(blocks) == 4 and "Why" not in all_text(blocks)
    assert_within_block_kit_limits(blocks)
    # And the fallback text names verdict, database, timings and the report as before
    assert text.startswith(":white_check_mark: Restore drill PASSED: clinic-db from rds:clinic-db-")
    assert "restore 16m03s" in text and "check 14.7s" in text
    assert "Restore time (RTO): 16m03s" in text and "Data freshness (RPO): 12m34s" in text
    assert REPORT_URI in text


def test_without_a_freshness_rule_the_rpo_is_not_shown_at_all() -> None:
    # Given a passed drill whose policy measured no RPO
    text, blocks = render(finished(rpo_seconds=None))
    # Then neither the blocks nor the text pretend there is one
    assert "RPO" not in all_text(blocks) and "RPO" not in text
    assert len(blocks[1]["fields"]) == 3


def test_a_passed_drill_from_the_domain_shows_the_rpo_it_measured() -> None:
    # Given a drill that passed with two freshness rules (754.25 s and 95 s)
    text, blocks = announced("passed with checks")
    # Then the larger age is the RPO shown
    assert "*Data freshness (RPO)*\n12m34s" in [f["text"] for f in blocks[1]["fields"]]
    assert "PASSED" in text and "clinic-db" in text
    assert "reports/us-east-1/clinic-db/2026/11/27/" in text


# ------------------------------------------------------------------------------ failed


def test_a_failed_drill_names_each_failed_check_with_its_evidence_then_the_report() -> None:
    # Given a drill failed by row counts, freshness, an assertion and a corrupt btree index
    # When its Drill Finished event is rendered
    text, blocks = announced("failed by checks")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    # Then the reason comes first
    assert sections[0].startswith("*Why:* failed checks: row_counts[clinic]")
    # And each failed check has a section with its evidence, in brief
    by_check = {s.split("*")[1]: s for s in sections if s.startswith(":x: *")}
    assert list(by_check) == [
        "row_counts[clinic]",
        "freshness[clinic/appointments]",
        "assertion[clinic/at least a million patients]",
        "amcheck_btree[clinic]",
    ]
    # (row counts: the table and the numbers)
    assert '"clinic"."prescriptions": 300 → 200 rows (-100)' in by_check["row_counts[clinic]"]
    # (freshness: the column and the age)
    fresh = by_check["freshness[clinic/appointments]"]
    assert '"clinic"."appointments"."booked_at"' in fresh and "2d07h older" in fresh
    # (assertion: the name, the value and the expectation, escaped for mrkdwn)
    assertion = by_check["assertion[clinic/at least a million patients]"]
    assert "at least a million patients: value 300, expected &gt;= 1000000" in assertion
    # (amcheck: the relation and the server's message)
    btree = by_check["amcheck_btree[clinic]"]
    assert '"clinic"."patients_pkey"' in btree
    assert 'index "patients_pkey" lacks a main relation tuple' in btree
    # And then where the report is, after the checks
    report_at = next(i for i, s in enumerate(sections) if s.startswith("*Report:*"))
    assert report_at == len(sections) - 1
    assert_within_block_kit_limits(blocks)
    # And the fallback text keeps one line per failing check, as subscribers grep for
    assert "- check row_counts[clinic] fail: " in text
    assert "- check assertion[clinic/at least a million patients] fail: " in text
    assert "FAILED" in text and "clinic-db" in text and "reports/us-east-1/clinic-db/" in text


def test_the_fallback_keeps_the_check_line_format() -> None:
    # Given a failed drill event with one failing check, as earlier releases sent it
    text, _ = render(
        finished(
            verdict="FAILED",
            reason="failed checks: row_counts",
            failed_checks=[
                {"name": "row_counts", "status": "fail", "message": "clinic.patients lost 120 rows"}
            ],
        )
    )
    # Then the fallback text reads as it always did
    assert text.startswith(":x: Restore drill FAILED")
    assert "Why: failed checks: row_counts" in text
    assert "- check row_counts fail: clinic.patients lost 120 rows" in text


@pytest.mark.parametrize(
    ("drill", "verdict", "why"),
    [
        ("failed restore, no checks", "FAILED", "restore ended in status incompatible-restore"),
        ("checker error", "ERROR", "the checker failed: Sandbox.Timedout"),
        ("timed out", "TIMED_OUT", "deadline"),
    ],
)
def test_a_drill_without_check_results_says_why_and_shows_no_rto_it_did_not_measure(
    drill: str, verdict: str, why: str
) -> None:
    # Given a drill that ended without check results
    # When it is rendered
    text, blocks = announced(drill)
    # Then the header has the verdict, the reason is said, and no check section is invented
    assert verdict in blocks[0]["text"]["text"]
    assert why in blocks[1]["text"]["text"] and why in text
    assert not any(b["text"]["text"].startswith(":x: *") for b in blocks if "text" in b)
    assert_within_block_kit_limits(blocks)


# ------------------------------------------------------------------------------ Slack's limits


def many_failures(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"amcheck_heap[db{i}]",
            "status": "fail",
            "message": "m" * 5000,
            "evidence_summary": [f"relation_{j}: " + "e" * 400 for j in range(40)],
        }
        for i in range(count)
    ]


def test_however_much_failed_the_message_stays_within_block_kit_limits() -> None:
    # Given an event with 300 failed checks, each with a 5000-character message and 40 long
    # evidence lines, a 10 000-character reason and a very long database name
    event = finished(
        verdict="FAILED",
        reason="failed checks: " + "r" * 10_000,
        source_db="d" * 300,
        failed_checks=many_failures(300),
        failed_checks_total=300,
    )
    # When it is rendered
    text, blocks = render(event)
    # Then no block breaks a Block Kit limit (50 blocks, 3000 per section, 150 per header)
    assert_within_block_kit_limits(blocks)
    # And what does not fit is counted, not silently dropped
    shown = [b for b in blocks if "text" in b and b["text"]["text"].startswith(":x: *")]
    assert len(shown) == 10 and "… and 290 more failed checks" in all_text(blocks)
    assert all("more lines" in b["text"]["text"] for b in shown)
    # And the report is still there, and the fallback still says where it is
    assert REPORT_URI in all_text(blocks) and REPORT_URI in text


def test_checks_left_out_of_a_bounded_event_are_counted() -> None:
    # Given an event that could list only 2 of its 7 failed checks
    text, blocks = render(
        finished(
            verdict="FAILED", reason="r", failed_checks=many_failures(2), failed_checks_total=7
        )
    )
    # Then the message and the fallback say how many more there are
    assert "… and 5 more failed checks" in all_text(blocks)
    assert "… and 5 more failed checks" in text


def test_text_from_the_database_cannot_mention_the_channel_or_forge_links() -> None:
    # Given a failing check whose message (from the server or an assertion name) holds mrkdwn
    event = finished(
        verdict="FAILED",
        reason="failed checks: assertion[app/<!channel>]",
        failed_checks=[
            {
                "name": "assertion[app/<!channel>]",
                "status": "fail",
                "message": "<https://evil.example|click> & <@U123>",
                "evidence_summary": ["<!here> value 1"],
            }
        ],
    )
    # When it is rendered
    text, blocks = render(event)
    # Then no raw angle brackets reach Slack: no @channel, no link, no user mention
    for shown in (text, all_text(blocks[1:])):
        assert "<!channel>" not in shown and "<!here>" not in shown and "<https" not in shown
        assert "<@U123>" not in shown
    assert "&lt;!channel&gt;" in text


def test_announce_posts_exactly_what_it_rendered() -> None:
    posted: list[tuple[str, list[dict[str, Any]]]] = []

    class Chat:
        def post(self, text: str, blocks: list[dict[str, Any]]) -> None:
            posted.append((text, blocks))

    text = announce(finished(verdict="ERROR", reason="the checker failed"), Chat())
    assert posted == [render(finished(verdict="ERROR", reason="the checker failed"))]
    assert text.startswith(":warning:")


def test_bad_configuration_names_every_bad_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        DrillSettings.from_environ({"STACK_NAME": "x", "POLL_DELAY_SECONDS": "5000"})
    message = str(raised.value)
    assert "POLL_DELAY_SECONDS" in message and "RUN_TABLE_NAME" in message


# ------------------------------------------------------------------------------ the webhook
# A tiny webhook on loopback (127.0.0.1 only) that answers from a script, like Slack does.


def test_the_rate_limit_handler_waits_what_retry_after_says_within_its_bound() -> None:
    # Given the handler with a recorded sleep
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.response import HttpResponse
    from slack_sdk.http_retry.state import RetryState

    slept: list[float] = []
    handler = BoundedRateLimitRetryHandler(2, max_wait_seconds=10, sleep=slept.append)
    request = HttpRequest(method="POST", url="http://x", headers={})

    def answer(headers: dict[str, str | list[str]]) -> HttpResponse:
        return HttpResponse(status_code=429, headers=headers)

    # When 429s arrive with Retry-After 7, without it, unreadable, and beyond the bound
    state = RetryState()
    assert handler.can_retry(state=state, request=request, response=answer({"retry-after": ["7"]}))
    handler.prepare_for_next_attempt(
        state=state, request=request, response=answer({"Retry-After": ["7"]})
    )
    missing = answer({})
    assert handler.can_retry(state=RetryState(), request=request, response=missing)
    handler.prepare_for_next_attempt(state=RetryState(), request=request, response=missing)
    too_long = answer({"Retry-After": ["11"]})
    # Then it sleeps 7 s (plus at most 0.25 s jitter), 1 s by default, and refuses 11 s
    assert 7 <= slept[0] <= 7.25 and 1 <= slept[1] <= 1.25
    assert not handler.can_retry(state=RetryState(), request=request, response=too_long)
    assert state.current_attempt == 1
    # And the header is read whatever its case, only as non-negative delta-seconds
    assert retry_after_seconds({"RETRY-AFTER": "3"}) == 3
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after_seconds({"Retry-After": "-4"}) is None


def test_the_message_links_the_readable_page_beside_the_report() -> None:
    # Given a finished drill whose event names the HTML page stored beside the JSON report
    finished_drill_event = finished()
    html_uri = REPORT_URI.removesuffix(".json") + ".html"
    # When the message is rendered
    text, blocks = render(finished_drill_event)
    # Then the page is linked next to the report, in the blocks and in the fallback text
    (report_section,) = [b for b in blocks if b["type"] == "section" and REPORT_URI in str(b)]
    assert html_uri in report_section["text"]["text"]
    assert f"Readable report: {html_uri}" in text


def test_a_partly_verified_drill_says_so_in_slack_and_a_complete_one_does_not() -> None:
    # Given the checks of a drill in rounds that verified 62% of the planned bytes
    suite = {
        "complete": False,
        "checks": [
            {"name": "check_rounds", "status": "warn", "evidence": {"verified_pct": 62.0}},
            {"name": "amcheck_heap", "status": "skipped"},
        ],
    }
    statement = partly_verified(suite)
    assert statement == (
        "Partly verified: 62.0% of the planned bytes verified; "
        "1 check(s) not run or not finished (see the report)"
    )
    # When its Drill Finished is announced
    text, blocks = render(finished(verdict="PASSED", partly_verified=statement))
    # Then the notification text and the message both say it, beside PASSED
    assert statement in text and statement in all_text(blocks)
    # And a drill that verified everything says nothing of the kind
    complete = {"complete": True, "checks": [{"name": "check_rounds", "status": "pass"}]}
    assert partly_verified(complete) is None
    text, blocks = render(finished(verdict="PASSED"))
    assert "Partly verified" not in text + all_text(blocks)
