"""How big the checker's round trip gets for databases of many tables, against the Lambda limits.

For each size: the baseline as JSON and packed, the check runner's request (async invoke, then
inside the destination record), the checker's answer, and the destination record that carries
both to the checker-results queue; and what, if anything, was left out to stay within the
limits. Run from the repository's root: ``.venv/bin/python scripts/measure-checker-payloads.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restoredrill.ports.messages import (
    CHECK_RUN_REQUEST_LIMIT,
    CHECKER_ANSWER_LIMIT,
    DESTINATION_RECORD_LIMIT,
    CheckerAnswer,
    CheckerRequest,
    CheckerTarget,
    CheckRunRequest,
    json_size,
)

from tests.unit.check_suites import realistic_suite

RUN_ID = "3f9a2c71d0b84e5fa613"
SYNC_LIMIT = 6_291_456  # 6 MB, a synchronous invoke's request and its response
ASYNC_LIMIT = 1_048_576  # 1 MB, an asynchronous invoke's payload
ENVELOPE = {
    "version": "1.0",
    "timestamp": "2026-11-27T03:45:03.651Z",
    "requestContext": {
        "requestId": "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
        "functionArn": (
            "arn:aws:lambda:us-east-1:123456789012:function:"
            "restoredrill-production-CheckRunnerFunction-9XyZaBcDeFgH:$LATEST"
        ),
        "condition": "Success",
        "approximateInvokeCount": 1,
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
}


def measure(tables: int, rows_lost: bool) -> dict[str, object]:
    result = realistic_suite(tables, rows_lost=rows_lost)
    assert result.baseline is not None
    request = CheckRunRequest(
        run_id=RUN_ID,
        password_parameter=f"/restoredrill/production/runs/{RUN_ID}",
        target=CheckerTarget(
            host="restoredrill-x.abc.us-east-1.rds.amazonaws.com", port=5432, user="postgres"
        ),
        policy={"level": 3},
        baseline=result.baseline,
    )
    started = time.perf_counter()
    request_payload = request.to_payload()
    answer = CheckerAnswer(run_id=RUN_ID, result=result).model_dump(mode="json")
    seconds = time.perf_counter() - started
    sync_request = CheckerRequest.for_run(
        CheckRunRequest.model_validate(request_payload), "x" * 40
    ).to_payload()
    record = {**ENVELOPE, "requestPayload": request_payload, "responsePayload": answer}
    back = CheckerAnswer.model_validate(answer).result
    notes = [check for check in back.checks if check.name == "result_size"]
    return {
        "tables": tables,
        "rows_lost": rows_lost,
        "baseline_json": json_size(result.baseline.model_dump(mode="json")),
        "result_json": json_size(result.model_dump(mode="json")),
        "request": json_size(request_payload),
        "request_baseline": "omitted" if request_payload["baseline"] is None else "sent",
        "sync_request": json_size(sync_request),
        "answer": json_size(answer),
        "answer_left_out": notes[0].evidence["omitted"] if notes else [],
        "record": json_size(record),
        "pack_seconds": round(seconds, 2),
    }


def main() -> None:
    print(
        json.dumps(
            {
                "destination_record_limit": DESTINATION_RECORD_LIMIT,
                "check_run_request_limit": CHECK_RUN_REQUEST_LIMIT,
                "checker_answer_limit": CHECKER_ANSWER_LIMIT,
                "async_invoke_limit": ASYNC_LIMIT,
                "sync_invoke_limit": SYNC_LIMIT,
            }
        )
    )
    for tables in (100, 500, 1_000, 2_000, 5_000, 10_000, 50_000):
        for rows_lost in (False, True):
            figures = measure(tables, rows_lost)
            assert int(str(figures["record"])) <= DESTINATION_RECORD_LIMIT
            print(json.dumps(figures))


if __name__ == "__main__":
    main()
