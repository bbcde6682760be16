"""The messages between the functions: one model each, read back by the same model, and the
checker's round trip bounded to what the Lambda async destination record (delivered to an SQS
queue of SQS's default 262,144-byte MaximumMessageSize) can carry, whatever the database's size.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from restoredrill.domain import checker_side as checker_module
from restoredrill.domain.checker_side import parse_checker_request, run_checker
from restoredrill.ports.inbound_events import parse_checker_record
from restoredrill.ports.messages import (
    CHECK_RESULT_LIMIT,
    CHECK_RUN_REQUEST_LIMIT,
    CHECKER_ANSWER_LIMIT,
    DESTINATION_RECORD_LIMIT,
    CheckerAnswer,
    CheckerRequest,
    CheckerTarget,
    CheckRunRequest,
    CheckStatus,
    CheckSuiteResult,
    SuiteVerdict,
    json_size,
)
from restoredrill.ports.payload_transport import PAYLOAD_ENCODING
from restoredrill.ports.records import RunRecord, Verdict

from tests.unit.check_suites import realistic_baseline, realistic_suite

DATA = Path(__file__).resolve().parent / "data"
EVENTS = Path(__file__).resolve().parents[2] / "events"
RUN_ID = "3f9a2c71d0b84e5fa613"


def run_request(**fields: Any) -> CheckRunRequest:
    return CheckRunRequest(
        run_id=RUN_ID,
        password_parameter=f"/restoredrill/production/runs/{RUN_ID}",
        target=CheckerTarget(
            host="restoredrill-3f9a2c71d0b84e5fa613.c9akciq32.eu-central-1.rds.amazonaws.com",
            port=5432,
            user="postgres",
        ),
        policy={"level": 3},
        **fields,
    )


def destination_record(request: dict[str, Any], answer: dict[str, Any]) -> str:
    """The SQS body the checker-results queue gets: the sample record in events/ (as Lambda
    shapes it) around this request and answer, serialised as the runtime serialises."""
    sample = json.loads((EVENTS / "advance/checker-result.json").read_text())
    record = json.loads(sample["Records"][0]["body"])
    record["requestPayload"], record["responsePayload"] = request, answer
    return json.dumps(record)


def left_out(result: CheckSuiteResult) -> list[str]:
    notes = [check for check in result.checks if check.name == "result_size"]
    return list(notes[0].evidence["omitted"]) if notes else []


# ------------------------------------------------------------------------------ the round trip


@pytest.mark.parametrize(
    ("tables", "rows_lost"), [(3_000, False), (3_000, True), (10_000, False), (10_000, True)]
)
def test_a_suite_over_thousands_of_tables_comes_back_within_the_destination_record(
    tables: int, rows_lost: bool
) -> None:
    # Given the last passing drill's baseline and this drill's result, for a database of
    # thousands of tables (JSON of several megabytes each)
    result = realistic_suite(tables, rows_lost=rows_lost)
    assert json_size(result.model_dump(mode="json")) > 2 * DESTINATION_RECORD_LIMIT
    # When advance sends the request and the checker answers, each within its share
    request = run_request(baseline=realistic_baseline(tables)).to_payload()
    answer = CheckerAnswer(run_id=RUN_ID, result=result).model_dump(mode="json")
    body = destination_record(request, answer)
    # Then the record that carries both back fits the queue's message size
    assert json_size(request) <= CHECK_RUN_REQUEST_LIMIT
    assert json_size(answer) <= CHECKER_ANSWER_LIMIT
    assert len(body.encode("utf-8")) <= DESTINATION_RECORD_LIMIT
    # And advance reads it back with the verdict the checker reached and every failed check
    outcome = parse_checker_record(body)
    assert outcome.succeeded and outcome.result is not None
    assert outcome.verdict is (Verdict.FAILED if rows_lost else Verdict.PASSED)
    assert [c.display_name for c in outcome.result.failed()] == (
        ["row_counts[app]"] if rows_lost else []
    )
    # And what was left out is said among the checks, as a warning (the verdict unchanged)
    (note,) = [check for check in outcome.result.checks if check.name == "result_size"]
    assert note.status is CheckStatus.WARN and outcome.result.baseline is None
    assert "the baseline (the next drill has none to compare with)" in note.evidence["omitted"]
    assert str(CHECK_RESULT_LIMIT) in note.message
    # And the request says its baseline was left out, and why
    assert request["baseline"] is None and "bytes compressed" in request["baseline_omitted"]


def test_a_result_that_fits_travels_whole_and_compressed() -> None:
    # Given the result of a database of 1,000 tables (about 1 MB of JSON)
    result = realistic_suite(1_000)
    # When the checker answers
    answer = CheckerAnswer(run_id=RUN_ID, result=result).model_dump(mode="json")
    # Then it travels compressed, within its share, and reads back unchanged: nothing left out
    assert answer["result"]["encoding"] == PAYLOAD_ENCODING
    assert json_size(answer) <= CHECKER_ANSWER_LIMIT
    assert CheckerAnswer.model_validate(answer).result == result
    assert left_out(result) == []


def test_a_passed_result_keeps_its_baseline_for_the_next_drill_before_passed_evidence() -> None:
    # Given a passed result over 500 tables with one passed check whose evidence is large and
    # does not compress (200,000 random hex digits)
    result = realistic_suite(500)
    noise = random.Random(1)
    digests = [noise.randbytes(25_000).hex() for _ in range(4)]
    noisy = result.checks[4].model_copy(update={"evidence": {"digests": digests}})
    result = result.model_copy(update={"checks": [*result.checks[:4], noisy, *result.checks[5:]]})
    # When it must fit its share
    back = CheckerAnswer.model_validate(
        CheckerAnswer(run_id=RUN_ID, result=result).model_dump(mode="json")
    ).result
    # Then the passed checks' evidence goes and the baseline the next drill needs stays
    assert left_out(back) == ["the evidence of passed checks"]
    assert back.baseline == result.baseline
    assert back.checks[4].name == noisy.name and back.checks[4].evidence == {}


def test_a_failed_result_gives_up_its_baseline_before_any_evidence() -> None:
    # Given a failed result whose row counts name every one of 2,000 tables as a problem
    result = realistic_suite(2_000, rows_lost=True)
    # When it must fit its share
    back = CheckerAnswer.model_validate(
        CheckerAnswer(run_id=RUN_ID, result=result).model_dump(mode="json")
    ).result
    # Then the baseline goes (only a passed drill's is ever used) and the evidence stays whole
    assert left_out(back) == ["the baseline (the next drill has none to compare with)"]
    (row_counts,) = [check for check in back.checks if check.name == "row_counts"]
    assert len(row_counts.evidence["problems"]) == 2_000


def test_when_even_the_evidence_does_not_fit_each_list_keeps_its_first_items_and_a_count() -> None:
    # Given a failed result naming 6,000 tables as problems
    result = realistic_suite(6_000, rows_lost=True)
    # When it must fit its share
    back = CheckerAnswer.model_validate(
        CheckerAnswer(run_id=RUN_ID, result=result).model_dump(mode="json")
    ).result
    # Then the failed check keeps its first problems and says how many it lost
    (row_counts,) = [check for check in back.checks if check.name == "row_counts"]
    assert row_counts.status is CheckStatus.FAIL and back.verdict is SuiteVerdict.FAILED
    assert len(row_counts.evidence["problems"]) == 20
    assert row_counts.evidence["problems_left_out"] == 5_980
    assert left_out(back)[-1] == "all but the first 20 items of each evidence list"


def test_a_baseline_too_large_for_the_request_reaches_the_checker_as_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a last passing baseline of 10,000 tables (about 480 KB even compressed)
    request = run_request(baseline=realistic_baseline(10_000))
    # When advance sends the request
    payload = request.to_payload()
    # Then the baseline is left out, and the request says so
    assert payload["baseline"] is None and json_size(payload) <= CHECK_RUN_REQUEST_LIMIT
    # And the check runner hands the note to the checker with the password
    sent = CheckerRequest.for_run(CheckRunRequest.model_validate(payload), "pw-123456789")
    checker_request = parse_checker_request(sent.to_payload())
    assert checker_request.baseline_omitted == payload["baseline_omitted"]
    # And the checker reports it as a warning check, whatever the suite found
    monkeypatch.setattr(
        checker_module, "run_check_suite", lambda *args, **kwargs: realistic_suite(10)
    )
    answer = CheckerAnswer.model_validate(run_checker(checker_request))
    (note,) = [check for check in answer.result.checks if check.name == "baseline"]
    assert note.status is CheckStatus.WARN and note.message == payload["baseline_omitted"]
    assert answer.result.verdict is SuiteVerdict.PASSED
    assert answer.result.summary["warn"] == 1


def test_a_baseline_that_fits_reaches_the_checker_as_it_was() -> None:
    # Given the last passing baseline of a database of 500 tables
    baseline = realistic_baseline(500)
    # When it travels advance -> check runner -> checker
    payload = run_request(baseline=baseline).to_payload()
    sent = CheckerRequest.for_run(CheckRunRequest.model_validate(payload), "pw-123456789")
    # Then the checker reads the same baseline, and no note
    received = parse_checker_request(sent.to_payload())
    assert received.baseline == baseline and received.baseline_omitted is None


# ------------------------------------------------------------------------------ stored records


@pytest.mark.parametrize("name", ["run-record-plain-checks.json", "run-record-packed-checks.json"])
def test_a_run_record_written_by_the_previous_version_still_reads_and_writes_back_alike(
    name: str,
) -> None:
    # Given a run record as the previous version stored it (checks a loose dict: plain, or
    # gzip+base64 when large), from tests/unit/data
    stored = (DATA / name).read_text()
    # When it is read
    run = RunRecord.model_validate_json(stored)
    # Then its checks are the checker's model
    assert isinstance(run.checks, CheckSuiteResult)
    assert run.checks.verdict is SuiteVerdict.PASSED and run.checks.checks[0].name == "connect"
    # And written back, its checks keep the form they were stored in
    before, after = json.loads(stored)["checks"], json.loads(run.model_dump_json())["checks"]
    assert after.get("encoding") == before.get("encoding")
    if "encoding" not in before:
        assert after == before | {"checks": after["checks"]}
        assert [c["name"] for c in after["checks"]] == [c["name"] for c in before["checks"]]
    else:
        assert CheckSuiteResult.from_payload(after) == CheckSuiteResult.from_payload(before)


def test_a_record_whose_packed_checks_are_corrupt_is_refused_clearly() -> None:
    # Given a stored record whose packed checks were damaged
    document = json.loads((DATA / "run-record-packed-checks.json").read_text())
    document["checks"]["data"] = "not base64 at all!"
    # Then reading it names the field, not a decoding crash
    with pytest.raises(ValueError, match="checks"):
        RunRecord.model_validate(document)
