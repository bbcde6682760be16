"""Writes shared/requirements.txt, the Lambda layer's requirements, from requirements.lock.

The layer gets the packages of pyproject.toml's [project].dependencies, but the operator CLI's
own, and everything they need: each line exactly as the lock pins and hashes it, so `sam build`
installs into the layer what the tests ran against. `make lock` compiles the lock and runs this;
tests/unit/test_lock.py fails when the committed file is not what this writes.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
LAYER_REQUIREMENTS = ROOT / "shared" / "requirements.txt"
# Dependencies of the operator CLI alone: the Lambda functions never import them.
CLI_ONLY = frozenset({"rich"})
HEADER = """\
# The Lambda layer's dependencies, which `sam build` installs into it: exported from
# requirements.lock by `make lock` (scripts/export_layer_requirements.py). Do not edit by hand.
"""
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class LockEntry:
    name: str
    lines: list[str]
    required_by: set[str] = field(default_factory=set)


def lock_entries(text: str) -> list[LockEntry]:
    """The lock's requirements in order, each with its pin and hash lines and the packages
    that need it (its `# via` annotation)."""
    entries: list[LockEntry] = []
    in_via = False
    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            entries.append(LockEntry(canonical(match.group(1)), [line]))
            in_via = False
        elif not entries:
            continue
        elif line.lstrip().startswith("--hash"):
            entries[-1].lines.append(line)
        elif line.strip().startswith("# via"):
            rest = line.strip().removeprefix("# via").strip()
            if rest:
                entries[-1].required_by.add(canonical(rest.split()[0]))
            in_via = not rest
        elif in_via and line.strip().startswith("#   "):
            entries[-1].required_by.add(canonical(line.strip().removeprefix("#").split()[0]))
    return entries


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise SystemExit(f"not a requirement: {requirement!r}")
    return canonical(match.group(1))


def layer_roots(pyproject_text: str) -> set[str]:
    dependencies = tomllib.loads(pyproject_text)["project"]["dependencies"]
    return {requirement_name(requirement) for requirement in dependencies} - CLI_ONLY


def layer_requirements(lock_text: str, pyproject_text: str) -> str:
    entries = lock_entries(lock_text)
    roots = layer_roots(pyproject_text)
    missing = roots - {entry.name for entry in entries}
    if missing:
        raise SystemExit(f"requirements.lock lacks {sorted(missing)}: run `make lock`")
    wanted = set(roots)
    grown = True
    while grown:
        before = len(wanted)
        wanted |= {entry.name for entry in entries if entry.required_by & wanted}
        grown = len(wanted) > before
    body = "\n".join("\n".join(entry.lines) for entry in entries if entry.name in wanted)
    return f"{HEADER}{body}\n"


def main() -> int:
    exported = layer_requirements(LOCK.read_text(), PYPROJECT.read_text())
    LAYER_REQUIREMENTS.write_text(exported)
    print(f"{LAYER_REQUIREMENTS.relative_to(ROOT)}: {exported.count('==')} pinned packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
