"""`make fleet` in small: a Region's fleet of tiny databases, snapshotted in one window, with a
cap and an instance quota that each allow only two drills at once."""

from __future__ import annotations

import io

import pytest

from drillharness.fleet import build_parser, print_table, run_region

pytestmark = pytest.mark.e2e


def test_a_small_fleet_drains_within_the_cap_and_the_quota_without_a_quota_error() -> None:
    # Given six databases in eu-west-1 snapshotted within 2 s, at most 2 drills at once, and a
    # quota of 40 instances with 35 used by production and 3 kept free (room for 2 drills)
    fleet = ["--databases", "6", "--cap", "2", "--production", "35", "--reserve", "3"]
    args = build_parser().parse_args([*fleet, "--window-seconds", "2", "--pool", "2"])
    # When the Region's fleet runs
    result = run_region(args, "eu-west-1", log=io.StringIO())
    # Then every database was drilled and passed, never more than 2 at once
    assert result["drilled"] == 6 and result["verdicts"] == {"PASSED": 6}
    assert result["max_admitted"] <= 2 and result["restored_peak"] <= 2
    assert result["max_admitted"] == 2  # the queue was real: two ran together
    # And no restore was refused for quota, none failed, every promise held
    assert result["quota_errors"] == 0 and result["failed"] == 0
    assert result["violations"] == []
    # And every database was served, in the order its snapshot arrived (none had passed yet)
    assert sorted(result["served_order"]) == sorted(result["arrival_order"])
    assert result["never_admitted"] == []
    # And the table names the Region and its figures
    out = io.StringIO()
    print_table([result], args, out)
    assert "eu-west-1           6        6       6    2 (cap 2)" in out.getvalue()
