"""The Lambda layer's folders are its layers, and every import points down: a module that reaches
up (the domain importing an adapter, a port importing the domain) fails here, naming the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "restoredrill"
FUNCTIONS = PACKAGE.parents[1] / "functions"

# Which layers each layer may import (besides itself). Adapters may use the domain's types.
ALLOWED: dict[str, frozenset[str]] = {
    "ports": frozenset(),
    "checksuite": frozenset({"ports"}),
    "domain": frozenset({"ports", "checksuite"}),
    "adapters": frozenset({"ports", "domain"}),
    "composition": frozenset({"ports", "domain", "adapters"}),
}
# Only the adapters (and the composition root that builds them) talk to AWS.
AWS_SDKS = ("boto3", "botocore")


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def test_every_module_of_the_layer_is_in_one_of_its_layers() -> None:
    # Given every module of shared/restoredrill
    # When it is placed by its first folder
    # Then each is in a known layer: nothing is left loose beside them
    loose = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if path.parent == PACKAGE and path.name != "__init__.py"
    ]
    assert loose == []
    assert {path.relative_to(PACKAGE).parts[0] for path in _modules()} - {"__init__.py"} == set(
        ALLOWED
    )


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    # Given the modules of one layer
    modules = [path for path in _modules() if path.relative_to(PACKAGE).parts[0] == layer]
    assert modules
    # When their imports of restoredrill are read
    upward = [
        f"{path.relative_to(PACKAGE)} imports {imported}"
        for path in modules
        for imported in _imports(path)
        if imported.startswith("restoredrill.")
        and _layer_of(imported) != layer
        and _layer_of(imported) not in ALLOWED[layer]
    ]
    # Then none reaches a layer above it
    assert upward == []


def test_only_adapters_and_the_composition_root_import_the_aws_sdk() -> None:
    # Given the modules outside adapters/ and composition/
    inner = [
        path
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] not in ("adapters", "composition")
    ]
    # When their imports are read
    sdk_users = [
        f"{path.relative_to(PACKAGE)} imports {imported}"
        for path in inner
        for imported in _imports(path)
        if imported.split(".")[0] in AWS_SDKS
    ]
    # Then none imports boto3 or botocore
    assert sdk_users == []


def test_handlers_reach_adapters_only_through_the_composition_root() -> None:
    # Given every handler
    handlers = sorted(FUNCTIONS.glob("*/app.py"))
    assert handlers
    # When its imports are read
    direct = [
        f"{path.relative_to(FUNCTIONS)} imports {imported}"
        for path in handlers
        for imported in _imports(path)
        if imported.startswith("restoredrill.adapters") or imported.split(".")[0] in AWS_SDKS
    ]
    # Then none builds an adapter or a client itself
    assert direct == []
