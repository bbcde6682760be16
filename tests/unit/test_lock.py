"""The lock, pyproject.toml and the Lambda layer's requirements agree, and the layer ships an SDK
that knows every parameter the adapters send."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.version import Version
from restoredrill.adapters.aws import BOTOCORE_FLOOR

from scripts.export_layer_requirements import (
    LAYER_REQUIREMENTS,
    LOCK,
    PYPROJECT,
    canonical,
    layer_requirements,
    lock_entries,
)


def pins(text: str) -> dict[str, set[Version]]:
    """Every pinned version of each package (a package may be pinned per Python version)."""
    pinned: dict[str, set[Version]] = {}
    for entry in lock_entries(text):
        version = entry.lines[0].split("==", 1)[1].split(";")[0].strip(" \\")
        pinned.setdefault(entry.name, set()).add(Version(version))
    return pinned


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    listed = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        listed.extend(extra)
    # An extra may name another extra of the project itself (dev includes restoredrill[local]):
    # that is no package of the lock.
    requirements = [Requirement(text) for text in listed]
    return [r for r in requirements if canonical(r.name) != canonical(project["name"])]


def test_the_layers_requirements_are_exported_from_the_lock() -> None:
    # The committed file is exactly what `make lock` would write from the committed lock
    assert LAYER_REQUIREMENTS.read_text() == layer_requirements(
        LOCK.read_text(), PYPROJECT.read_text()
    ), "shared/requirements.txt differs from requirements.lock: run `make lock`"


def test_every_requirement_of_pyproject_is_pinned_in_the_lock_within_its_range() -> None:
    pinned = pins(LOCK.read_text())
    stale = [
        str(requirement)
        for requirement in pyproject_requirements()
        if not any(
            requirement.specifier.contains(version, prereleases=True)
            for version in pinned.get(canonical(requirement.name), set())
        )
    ]
    assert stale == [], f"requirements.lock does not satisfy {stale}: run `make lock`"


def test_the_layer_pins_and_hashes_every_package_it_installs() -> None:
    # pip installs a file with hashes in hash-checking mode: every line must be pinned and hashed
    entries = lock_entries(LAYER_REQUIREMENTS.read_text())
    assert entries
    for entry in entries:
        assert "==" in entry.lines[0], entry.name
        assert any("--hash=sha256:" in line for line in entry.lines[1:]), entry.name


def test_the_layer_ships_an_sdk_that_knows_every_parameter_the_adapters_send() -> None:
    # Lambda's bundled SDK varies by runtime and Region: the layer brings its own, at least the
    # first botocore whose RDS model has BackupRetentionPeriod on the restore
    floor = Version(BOTOCORE_FLOOR)
    layer = pins(LAYER_REQUIREMENTS.read_text())
    assert {"boto3", "botocore"} <= set(layer)
    assert all(version >= floor for version in layer["botocore"] | layer["boto3"])
    # And pyproject.toml asks no less of any installation
    floors = {
        canonical(requirement.name): requirement.specifier
        for requirement in pyproject_requirements()
        if canonical(requirement.name) in ("boto3", "botocore")
    }
    assert set(floors) == {"boto3", "botocore"}
    for name, specifier in floors.items():
        assert not specifier.contains(Version("1.42.45")), f"{name} admits a botocore too old"
        assert specifier.contains(floor), name
