"""The work store of checks in rounds against moto's S3: conditional claims, stored progress."""

import boto3
from restoredrill.adapters.aws import S3CheckWorkStore

from tests.adapters.conftest import REGION

RUN_ID = "0123456789abcdef0123"


def a_store() -> S3CheckWorkStore:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="work")
    return S3CheckWorkStore(s3, "work")


def test_one_trigger_wins_a_round_and_the_claim_names_its_tasks(aws: None) -> None:
    # Given the work store
    store = a_store()
    # When two triggers claim round 4 (attempt 0), and another the next attempt
    first = store.claim(RUN_ID, 4, 0, {"app": ["count:1:0"]})
    second = store.claim(RUN_ID, 4, 0, {"app": ["count:1:128"]})
    next_attempt = store.claim(RUN_ID, 4, 1, {"app": []})
    # Then only the first wins its attempt, and the claim keeps what it took
    assert (first, second, next_attempt) == (True, False, True)
    assert store.claimed(RUN_ID, 4, 0) == {"app": ["count:1:0"]}
    assert store.claimed(RUN_ID, 5, 0) is None


def test_the_work_comes_back_as_stored_and_is_absent_before(aws: None) -> None:
    # Given no work yet
    store = a_store()
    assert store.load(RUN_ID) is None
    # When a large document is saved (gzip on the way), then replaced
    document = {"run_id": RUN_ID, "plans": [{"tasks": [{"id": f"heap:{n}"} for n in range(5000)]}]}
    store.save(RUN_ID, document)
    store.save(RUN_ID, document | {"rounds": 2})
    # Then the last one comes back whole
    assert store.load(RUN_ID) == document | {"rounds": 2}
    stored = boto3.client("s3", region_name=REGION).head_object(
        Bucket="work", Key=f"checks/{RUN_ID}/work.json.gz"
    )
    assert stored["ContentLength"] < 40_000
