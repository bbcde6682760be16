"""The soak's draw: about a third of its drills are Aurora cluster drills, each with an Aurora
fault (or none) on the source cluster; the others instance drills with the instance faults."""

import io

from drillharness.soak import AURORA_PREFIX, Soak, build_parser, fault_of
from localcloud.cloud import AURORA_FAULTS, AURORA_SOURCE, FAULTS, NO_FAULT


def test_a_third_of_the_soaks_drills_are_cluster_drills_with_aurora_faults() -> None:
    # Given the soak of 200 drills with its default mix
    soak = Soak(build_parser().parse_args(["--drills", "200", "--seed", "1"]), io.StringIO())
    clusters = [drill for drill in soak.drills if drill.aurora]
    instances = [drill for drill in soak.drills if not drill.aurora]
    # Then about a third are cluster drills, of the source cluster, with Aurora faults only
    assert 50 <= len(clusters) <= 85
    assert {drill.source for drill in clusters} == {AURORA_SOURCE}
    assert {drill.fault_name for drill in clusters} <= {NO_FAULT.name, *AURORA_FAULTS}
    # And the instance drills draw from the instance matrix only
    assert {drill.fault for drill in instances} <= {NO_FAULT.name, *FAULTS}
    assert AURORA_SOURCE not in {drill.source for drill in instances}
    # And every drawn name stands for the fault its kind defines
    for drill in clusters:
        expected = AURORA_FAULTS.get(drill.fault_name, NO_FAULT)
        assert fault_of(drill.fault) is expected


def test_no_cluster_drills_when_the_share_is_zero() -> None:
    args = build_parser().parse_args(["--drills", "30", "--clusters", "0"])
    assert not any(drill.aurora for drill in Soak(args, io.StringIO()).drills)


def test_faults_limited_to_aurora_ones_make_every_drill_a_cluster_drill() -> None:
    args = build_parser().parse_args(
        ["--drills", "10", "--faults", f"{AURORA_PREFIX}none,{AURORA_PREFIX}fail-instance-create"]
    )
    assert all(drill.aurora for drill in Soak(args, io.StringIO()).drills)
