"""Drill policy: defaults, durations, expectations, merging and located errors."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from restoredrill.ports.policy import (
    DrillPolicy,
    PolicyError,
    load_policy_file,
    parse_duration,
    parse_policy_text,
)
from restoredrill.ports.policy import Expectation as _Expectation

REPO = Path(__file__).resolve().parents[2]


def expectation(text: str) -> _Expectation:
    from restoredrill.ports.policy import parse_expectation

    return _Expectation.model_validate(parse_expectation(text))


def test_an_unconfigured_database_gets_levels_0_to_3_with_sane_thresholds() -> None:
    # Given no configuration at all
    # When the default policy is built
    policy = DrillPolicy()
    # Then every level runs, drops beyond a few percent fail, and the budget fits a Lambda
    assert policy.level == 3
    assert 0 < policy.row_counts.max_drop_pct <= 10
    assert 0 < policy.time_budget < 900
    assert 0 < policy.statement_timeout <= policy.time_budget
    assert policy.schema_drift.on_missing == "fail"
    assert policy.wants_database("app") and not policy.wants_database("rdsadmin")
    assert policy.content_fingerprint.enabled is False
    assert policy.amcheck.heapallindexed is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("26h", 93600),
        ("1h30m", 5400),
        ("7d", 604800),
        ("500ms", 0.5),
        ("26 hours", 93600),
        (120, 120),
        ("45", 45),
    ],
)
def test_durations_read_as_seconds(text: str | int, seconds: float) -> None:
    # Given a duration as a person writes it / When parsed / Then it is that many seconds
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["26 x", "h", "-5", "0", "1h 2", True, None, "1.5.2h"])
def test_nonsense_durations_are_rejected(text: object) -> None:
    # Given something that is not a positive duration / When parsed / Then it is refused
    with pytest.raises(ValueError):  # noqa: PT011
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [
        (">= 1000", 1000, True),
        (">= 1000", 999, False),
        ("== 0", 0, True),
        ("== 0", Decimal("0.0"), True),
        ("== 0", 3, False),
        ("!= 0", 3, True),
        ("< 2.5", 2.4, True),
        ("between 1 and 10", 10, True),
        ("between 1 and 10", 11, False),
        ("is null", None, True),
        ("is not null", None, False),
        ("is true", True, True),
        ("is true", False, False),
        ("== 'ok'", "ok", True),
        ("== 'ok'", "ko", False),
        (">= 1000", None, False),
        (">= 1000", "not a number", False),
        ("> 0", True, False),
    ],
)
def test_expectations_hold_exactly_when_they_should(text: str, value: object, holds: bool) -> None:
    # Given an expectation and the value a query returned
    # When checked
    result, explanation = expectation(text).check(value)
    # Then it holds exactly when the comparison is true, and says why
    assert result is holds
    assert explanation


@pytest.mark.parametrize(
    "text", [">== 3", "between 10 and 1", "about 5", "> 'x'", "", "==", "between a and b"]
)
def test_malformed_expectations_are_rejected(text: str) -> None:
    # Given a malformed expectation / When validated / Then it is refused
    with pytest.raises(ValueError):  # noqa: PT011
        expectation(text)


def test_a_database_entry_is_merged_over_the_defaults() -> None:
    # Given defaults and an entry overriding part of a nested mapping
    document = parse_policy_text(
        textwrap.dedent(
            """
            version: 1
            defaults:
              level: 2
              time_budget: 5m
              row_counts: {max_drop_pct: 2, min_growth_rows: 10}
            databases:
              orders-prod:
                row_counts: {max_drop_pct: 20}
            """
        )
    )
    # When the entry's policy is asked for
    orders = document.for_database("orders-prod")
    # Then overridden keys change, the rest comes from the defaults
    assert orders.row_counts.max_drop_pct == 20
    assert orders.row_counts.min_growth_rows == 10
    assert orders.level == 2 and orders.time_budget == 300
    # And a database without an entry gets the defaults
    assert document.for_database("other").row_counts.max_drop_pct == 2


def test_errors_name_the_file_line_and_field_path(tmp_path: Path) -> None:
    # Given a policy with three mistakes on known lines
    path = tmp_path / "policy.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            defaults:
              level: 7
            databases:
              orders-prod:
                freshness:
                  - table: orders
                    column: created_at
                    max_age: 26 parsecs
                assertions:
                  - name: customers
                    sql: SELECT 1
                    expect: about 1000
                tyop: 3
            """
        )
    )
    # When it is loaded
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    # Then each problem is reported with file, line and field path
    messages = [str(issue) for issue in caught.value.issues]
    assert f"{path}:3: defaults.level: Input should be less than or equal to 3" in messages
    assert any(
        m.startswith(f"{path}:9: databases.orders-prod.freshness[0].max_age: invalid duration")
        for m in messages
    )
    assert any(
        m.startswith(f"{path}:13: databases.orders-prod.assertions[0].expect: invalid expectation")
        for m in messages
    )
    assert any(
        m.startswith(f"{path}:14: databases.orders-prod.tyop: Extra inputs") for m in messages
    )
    # And the defaults' error is not repeated for every database entry
    assert sum("level" in m for m in messages) == 1


def test_yaml_syntax_errors_are_located() -> None:
    # Given text that is not YAML / When parsed / Then the error carries the line
    with pytest.raises(PolicyError) as caught:
        parse_policy_text("defaults:\n  level: [3\n", source="p.yaml")
    assert caught.value.issues[0].source == "p.yaml"
    assert caught.value.issues[0].line is not None


def test_duplicate_assertion_names_are_refused() -> None:
    # Given two assertions with the same name / When parsed / Then it is an error
    text = """
    defaults:
      assertions:
        - {name: a, sql: SELECT 1, expect: "== 1"}
        - {name: a, sql: SELECT 2, expect: "== 2"}
    """
    with pytest.raises(PolicyError, match="unique"):
        parse_policy_text(textwrap.dedent(text))


def test_table_names_are_taken_literally_not_parsed() -> None:
    # Given a freshness rule on a table whose name has a dot and a quote
    document = parse_policy_text(
        'defaults:\n  freshness:\n    - {table: "a.b\\"c", column: ts, max_age: 1h}\n'
    )
    rule = document.defaults.freshness[0]
    # Then the schema defaults to public and the table name is kept whole
    assert rule.schema_name == "public"
    assert rule.table == 'a.b"c'
    assert rule.matches("anydb", "public", 'a.b"c')
    assert not rule.matches("anydb", "a", 'b"c')


def test_content_fingerprint_accepts_a_plain_boolean() -> None:
    # Given the shorthand `content_fingerprint: true` / Then it enables fingerprints
    assert DrillPolicy.model_validate({"content_fingerprint": True}).content_fingerprint.enabled


def test_the_shipped_example_policy_is_valid() -> None:
    # Given the example shipped in policies/ / When loaded / Then it validates and means something
    document = load_policy_file(REPO / "policies" / "example.yaml")
    orders = document.for_database("orders-prod")
    assert orders.freshness[0].max_age == 26 * 3600
    assert orders.assertions[0].expect.op == ">="
    assert orders.content_fingerprint.enabled
    assert orders.pitr is not None and (orders.pitr.every, orders.pitr.max_rpo) == (86400, 900)
    assert document.for_database("analytics-replica-source").level == 1


def test_the_policy_round_trips_through_json() -> None:
    # Given a policy with an assertion and a freshness rule
    policy = parse_policy_text(
        "defaults:\n  assertions: [{name: a, sql: SELECT 1, expect: 'between 1 and 2'}]\n"
        "  freshness: [{schema: s, table: t, column: c, max_age: 2h}]\n"
    ).defaults
    # When dumped to JSON and validated again (as a Lambda payload would carry it)
    again = DrillPolicy.model_validate_json(policy.model_dump_json(by_alias=True))
    # Then it is the same policy
    assert again == policy
    assert again.assertions[0].expect.check(2)[0] is True
