"""Fixtures and the invariant check shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from restoredrill.ports.records import RunRecord, Verdict

from drillharness.invariants import check_dead_letters, check_drill, check_nothing_running
from localcloud.cloud import LocalCloud
from localcloud.postgres import running_servers


@pytest.fixture
def cloud(request: pytest.FixtureRequest) -> Iterator[LocalCloud]:
    """A local cloud for one test; ``indirect`` parametrization names a fault for every drill."""
    fault = getattr(request, "param", None)
    servers_before = set(map(id, running_servers()))
    local = LocalCloud(fault=fault, patients=300)
    local.start()
    try:
        yield local
    finally:
        local.stop()
    # Nothing the drill or the local cloud started outlives it
    assert [s for s in running_servers() if id(s) not in servers_before] == []
    assert check_nothing_running(local) == []


def assert_invariants(cloud: LocalCloud, run: RunRecord, expected_verdict: Verdict) -> None:
    """Every promise a drill keeps whatever went wrong (see drillharness.invariants): finished
    with the expected verdict, instance and server gone, password deleted, report written with
    that verdict, one Drill Finished event, one Slack message, poison (if any) dead-lettered, and
    nothing but poison in the dead-letter queues."""
    violations = check_drill(cloud, run.run_id, expected_verdict) + check_dead_letters(cloud)
    assert [str(v) for v in violations] == []
