"""The import graph of the project's own modules (shared/, src/, functions/): no cycles, and the
layers' dependencies point one way.

The graph is read from the source with :mod:`ast`, not by importing: every ``import`` statement
counts, wherever it is written.

- An import inside a function counts. Deferring an import keeps a module from being loaded until
  it is needed (the CLI's commands do this to start fast), but the dependency is the same: a
  cycle whose one edge is deferred is still a cycle, only one that fails later, at run time.
- An import under ``if TYPE_CHECKING:`` counts too. It names a type another module defines, so
  this module depends on that one's design as surely as on its code; mypy follows it (and checks
  a cycle's modules together), and hiding one edge of a cycle behind TYPE_CHECKING is the usual
  way to make a cycle run, not a way out of having one.
- ``import a.b.c`` depends on ``a.b.c``; ``from a.b import c`` depends on ``a.b.c`` when that is
  a module, and on ``a.b`` otherwise. A submodule is not taken to depend on its parent package
  merely because Python runs the package's ``__init__`` first: a package that re-exports its
  submodules would otherwise be in a cycle with every one of them that imports a sibling.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Where the project's module names start: shared/restoredrill/x.py is restoredrill.x (the Lambda
# layer), src/localcloud/x.py is localcloud.x, functions/advance/app.py is functions.advance.app
# (as mypy names it; each handler is `app` on Lambda).
SOURCE_ROOTS = (
    (PROJECT_ROOT / "shared", PROJECT_ROOT / "shared"),
    (PROJECT_ROOT / "src", PROJECT_ROOT / "src"),
    (PROJECT_ROOT / "functions", PROJECT_ROOT),
)

# The modules that build adapters and hand them to the domain: the Lambda handlers' composition
# root, and the operator CLI's one module that talks to AWS. Update here when they are renamed.
COMPOSITION_ROOTS = frozenset({"restoredrill.composition.wiring", "restoredrill_cli.stack"})
ADAPTERS = "restoredrill.adapters"
# The CLI's modules that may use the local cloud: `demo` and `local`, and `demo --help`, which
# lists the local cloud's faults. The operator commands never need the [local] extra.
CLI_MODULES_USING_THE_LOCAL_CLOUD = frozenset(
    {"restoredrill_cli.commands", "restoredrill_cli.demo", "restoredrill_cli.local_cmd"}
)
# Packages a package must never import, whatever the module. From the bottom up: the domain (the
# Lambda layer, restoredrill) knows nothing of what runs it; the handlers (functions) and the
# local cloud, which runs them as Lambda would, know only the domain; the CLI may use the local
# cloud (demo, local); the harness (soak, screenshots, the invariants) sits on top of the CLI and
# the local cloud, and nothing but the tests uses it.
FORBIDDEN = {
    "restoredrill": ("functions", "localcloud", "restoredrill_cli", "drillharness"),
    "functions": ("localcloud", "restoredrill_cli", "drillharness"),
    "localcloud": ("functions", "restoredrill_cli", "drillharness"),
    "restoredrill_cli": ("functions", "drillharness"),
}


@dataclass(frozen=True)
class Edge:
    """One import statement from one project module of another."""

    importer: str
    imported: str
    path: Path
    line: int
    how: str  # "module level", "inside a function" or "under TYPE_CHECKING"

    def __str__(self) -> str:
        where = (
            self.path.relative_to(PROJECT_ROOT)
            if self.path.is_relative_to(PROJECT_ROOT)
            else self.path
        )
        return f"{self.importer} -> {self.imported} ({where}:{self.line}, {self.how})"


@dataclass
class ImportGraph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def successors(self, module: str) -> set[str]:
        return {edge.imported for edge in self.edges if edge.importer == module}

    def importers_of(self, package: str) -> list[Edge]:
        return [edge for edge in self.edges if in_package(edge.imported, package)]


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# ------------------------------------------------------------------------ reading the graph


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(roots: Iterable[tuple[Path, Path]]) -> dict[str, Path]:
    modules = {}
    for directory, base in roots:
        for path in sorted(directory.rglob("*.py")):
            modules[module_name(path, base)] = path
    return modules


def is_type_checking_block(node: ast.If) -> bool:
    test = node.test
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
    return name == "TYPE_CHECKING"


def import_statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement of a module, with where it runs."""

    def visit(
        nodes: Iterable[ast.AST], how: str
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, how
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(ast.iter_child_nodes(node), "inside a function")
            elif isinstance(node, ast.If) and is_type_checking_block(node):
                yield from visit(node.body, "under TYPE_CHECKING")
                yield from visit(node.orelse, how)
            else:
                yield from visit(ast.iter_child_nodes(node), how)

    yield from visit([tree], "module level")


def absolute_base(statement: ast.ImportFrom, importer: str, path: Path) -> str:
    """The module a ``from ... import`` reads from, relative imports resolved."""
    if not statement.level:
        return statement.module or ""
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    package = package[: len(package) - statement.level + 1]
    return ".".join([*package, *([statement.module] if statement.module else [])])


def project_module(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` is, or lies in (``a.b.C`` -> ``a.b``); None if not ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_names(statement: ast.Import | ast.ImportFrom, importer: str, path: Path) -> list[str]:
    """What one statement imports: ``from a import b`` names ``a.b``, a module or not."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    base = absolute_base(statement, importer, path)
    return [f"{base}.{alias.name}" if alias.name != "*" else base for alias in statement.names]


def read_graph(roots: Iterable[tuple[Path, Path]]) -> ImportGraph:
    graph = ImportGraph(modules=find_modules(roots))
    for importer, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for statement, how in import_statements(tree):
            for name in imported_names(statement, importer, path):
                imported = project_module(name, graph.modules)
                if imported is not None:
                    graph.edges.append(Edge(importer, imported, path, statement.lineno, how))
    # `from a import b, c` names a twice when b and c are not modules: one statement, one edge.
    graph.edges = list(dict.fromkeys(graph.edges))
    return graph


# ------------------------------------------------------------------------------- the cycles


def strongly_connected(graph: ImportGraph) -> list[list[str]]:
    """Tarjan's strongly connected components of the graph, each sorted."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        for successor in sorted(graph.successors(module)):
            if successor not in index:
                connect(successor)
                lowlink[module] = min(lowlink[module], lowlink[successor])
            elif successor in stack:
                lowlink[module] = min(lowlink[module], index[successor])
        if lowlink[module] == index[module]:
            component: list[str] = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            components.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            connect(module)
    return components


def cycles(graph: ImportGraph) -> list[list[Edge]]:
    """Each cycle (a component of more than one module, or a module importing itself), as the
    import statements between its modules."""
    found = []
    for component in strongly_connected(graph):
        members = set(component)
        inside = [e for e in graph.edges if e.importer in members and e.imported in members]
        if len(component) > 1 or inside:
            found.append(inside)
    return found


def between_packages(graph: ImportGraph) -> ImportGraph:
    """The graph of the top-level packages (restoredrill, localcloud, ...; the handlers are
    one, functions): an edge for each import from one package into another."""

    def top(module: str) -> str:
        return module.split(".", 1)[0]

    return ImportGraph(
        modules={top(module): path for module, path in graph.modules.items()},
        edges=[
            Edge(top(e.importer), top(e.imported), e.path, e.line, e.how)
            for e in graph.edges
            if top(e.importer) != top(e.imported)
        ],
    )


def describe(found: list[list[Edge]]) -> str:
    return "\n\n".join(
        "cycle of "
        + ", ".join(sorted({e.importer for e in edges}))
        + ":\n  "
        + "\n  ".join(map(str, edges))
        for edges in found
    )


# ------------------------------------------------------------------------------- the rules


def forbidden_imports(graph: ImportGraph) -> list[Edge]:
    return [
        edge
        for edge in graph.edges
        for importer, packages in FORBIDDEN.items()
        if in_package(edge.importer, importer)
        and any(in_package(edge.imported, package) for package in packages)
    ]


def adapter_imports_outside_composition(graph: ImportGraph) -> list[Edge]:
    return [
        edge
        for edge in graph.importers_of(ADAPTERS)
        if edge.importer not in COMPOSITION_ROOTS and not in_package(edge.importer, ADAPTERS)
    ]


def local_cloud_imports_of_operator_commands(graph: ImportGraph) -> list[Edge]:
    return [
        edge
        for edge in graph.importers_of("localcloud")
        if in_package(edge.importer, "restoredrill_cli")
        and edge.importer not in CLI_MODULES_USING_THE_LOCAL_CLOUD
    ]


@pytest.fixture(scope="module")
def project() -> ImportGraph:
    return read_graph(SOURCE_ROOTS)


def test_no_project_module_imports_a_module_that_imports_it_back(project: ImportGraph) -> None:
    # Given every module of shared/, src/ and functions/
    # When the import graph is searched for cycles
    found = cycles(project)
    # Then there is none
    assert found == [], "import cycles:\n\n" + describe(found)


def test_no_package_imports_a_package_that_imports_it_back(project: ImportGraph) -> None:
    # Given the top-level packages (the domain, the local cloud, the CLI, the harness, handlers)
    # When the imports between them are searched for cycles
    found = cycles(between_packages(project))
    # Then there is none: each package's dependencies point one way
    assert found == [], "package cycles:\n\n" + describe(found)


def test_layers_never_import_the_layers_above_them(project: ImportGraph) -> None:
    # Given the import graph
    # When the imports each package must never make are looked for
    found = forbidden_imports(project)
    # Then none is made
    assert found == [], "\n".join(map(str, found))


def test_only_the_composition_roots_import_the_adapters(project: ImportGraph) -> None:
    # Given the composition roots, which must still exist under the names this test knows
    assert sorted(COMPOSITION_ROOTS - set(project.modules)) == []
    # When the adapters' importers outside the adapters are listed
    found = adapter_imports_outside_composition(project)
    # Then they are the composition roots only
    assert found == [], "\n".join(map(str, found))


def test_only_demo_and_local_bring_the_local_cloud_into_the_cli(project: ImportGraph) -> None:
    # Given the import graph
    # When the CLI's imports of the local cloud are listed
    found = local_cloud_imports_of_operator_commands(project)
    # Then they belong to demo and local only
    assert found == [], "\n".join(map(str, found))


# ------------------------------------------------------------- the graph reader, on small trees


def write_tree(root: Path, files: dict[str, str]) -> ImportGraph:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return read_graph([(root, root)])


def test_a_cycle_closed_by_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    # Given two modules, one importing the other at the top, the other importing it back late
    graph = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/stack.py": "from pkg.target import Target\n",
            "pkg/target.py": "class Target: ...\ndef resolve():\n    from pkg import stack\n",
        },
    )
    # When the cycles are searched for
    found = cycles(graph)
    # Then the two modules form one, its deferred edge named as such
    assert [sorted(str(edge) for edge in edges) for edges in found] == [
        [
            f"pkg.stack -> pkg.target ({tmp_path / 'pkg/stack.py'}:1, module level)",
            f"pkg.target -> pkg.stack ({tmp_path / 'pkg/target.py'}:3, inside a function)",
        ]
    ]


def test_a_cycle_hidden_under_type_checking_is_found(tmp_path: Path) -> None:
    # Given a module whose only import of its importer is for type checking, relative at that
    graph = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/cloud.py": "from pkg import checks\n",
            "pkg/checks.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .cloud import Cloud\n",
        },
    )
    # When the cycles are searched for
    found = cycles(graph)
    # Then the cycle is found, and its hidden edge says where it hides
    assert [[edge.how for edge in edges] for edges in found] == [
        ["under TYPE_CHECKING", "module level"]
    ]


def test_a_module_importing_itself_is_a_cycle(tmp_path: Path) -> None:
    # Given a package whose __init__ imports a name from itself
    graph = write_tree(tmp_path, {"pkg/__init__.py": "from pkg import VERSION\nVERSION = 1\n"})
    # When the cycles are searched for
    found = cycles(graph)
    # Then it is one
    assert [[edge.importer + " -> " + edge.imported for edge in edges] for edges in found] == [
        ["pkg -> pkg"]
    ]


def test_a_chain_of_imports_without_a_way_back_is_no_cycle(tmp_path: Path) -> None:
    # Given a package re-exporting its submodule, which imports a sibling, which imports nothing
    graph = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.runner import run\n",
            "pkg/runner.py": "from pkg.sql import quote\nimport json\ndef run(): ...\n",
            "pkg/sql.py": "def quote(): ...\n",
        },
    )
    # When the cycles are searched for
    found = cycles(graph)
    # Then there is none, and the graph holds exactly the project's own edges
    assert found == []
    assert sorted((e.importer, e.imported) for e in graph.edges) == [
        ("pkg", "pkg.runner"),
        ("pkg.runner", "pkg.sql"),
    ]


def test_two_packages_importing_each_other_are_a_cycle_without_a_module_cycle(
    tmp_path: Path,
) -> None:
    # Given the local cloud's invariants using the CLI, and the CLI's demo using the local cloud
    graph = write_tree(
        tmp_path,
        {
            "localcloud/__init__.py": "",
            "localcloud/cloud.py": "",
            "localcloud/invariants.py": "from restoredrill_cli.evidence import chain_of\n",
            "restoredrill_cli/__init__.py": "",
            "restoredrill_cli/evidence.py": "def chain_of(): ...\n",
            "restoredrill_cli/demo.py": "from localcloud.cloud import LocalCloud\n",
        },
    )
    # When the cycles are searched for, between modules and between packages
    module_cycles = cycles(graph)
    package_cycles = cycles(between_packages(graph))
    # Then no module comes back to itself, but the two packages do
    assert module_cycles == []
    assert [sorted({(e.importer, e.imported) for e in edges}) for edges in package_cycles] == [
        [("localcloud", "restoredrill_cli"), ("restoredrill_cli", "localcloud")]
    ]


def test_the_rules_name_each_import_that_breaks_them(tmp_path: Path) -> None:
    # Given a domain module importing the CLI, and an operator command importing an adapter and,
    # late, the local cloud
    graph = write_tree(
        tmp_path,
        {
            "restoredrill/__init__.py": "",
            "restoredrill/report.py": "import restoredrill_cli.target\n",
            "restoredrill/adapters/__init__.py": "",
            "restoredrill/adapters/aws.py": "",
            "restoredrill_cli/__init__.py": "",
            "restoredrill_cli/target.py": "",
            "restoredrill_cli/operate.py": "from restoredrill.adapters import aws\n"
            "def run():\n    from localcloud.cloud import LocalCloud\n",
            "localcloud/__init__.py": "",
            "localcloud/cloud.py": "",
        },
    )
    # When the rules are checked
    forbidden = forbidden_imports(graph)
    adapters = adapter_imports_outside_composition(graph)
    local_cloud = local_cloud_imports_of_operator_commands(graph)
    # Then each names the statement that breaks it
    assert [(e.importer, e.imported) for e in forbidden] == [
        ("restoredrill.report", "restoredrill_cli.target")
    ]
    assert [(e.importer, e.imported) for e in adapters] == [
        ("restoredrill_cli.operate", "restoredrill.adapters.aws")
    ]
    assert [(e.importer, e.imported, e.line) for e in local_cloud] == [
        ("restoredrill_cli.operate", "localcloud.cloud", 3)
    ]
