"""The shape of the package, checked: the core stays pure, boto stays inside aws/, and
imports form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "smartvault"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _ours(name: str) -> str | None:
    """The SmartVault module ``name`` refers to (a module, or a name inside one)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_the_core_imports_only_the_standard_library_and_itself():
    impure = {
        module: sorted(
            name
            for name in imported
            if not name.startswith("smartvault.core")
            and name.partition(".")[0] not in sys.stdlib_module_names
            and name != "__future__"
        )
        for module, imported in MODULES.items()
        if module.startswith("smartvault.core")
    }
    assert {module: names for module, names in impure.items() if names} == {}


def test_only_the_aws_package_imports_boto():
    boto = {
        module: sorted(n for n in imported if n.partition(".")[0] in ("boto3", "botocore"))
        for module, imported in MODULES.items()
        if not module.startswith("smartvault.aws")
    }
    assert {module: names for module, names in boto.items() if names} == {}


def test_applying_a_plan_reaches_aws_only_through_its_protocols():
    """apply/ steps are tested against fakes as well as moto: they never import aws/."""
    reaching = {
        module: sorted(n for n in imported if n.startswith("smartvault.aws"))
        for module, imported in MODULES.items()
        if module.startswith("smartvault.apply")
    }
    assert {module: names for module, names in reaching.items() if names} == {}


#: The README's architecture table, top to bottom: a unit imports only units above it.
LAYERS = (
    ("errors",),
    ("core",),
    ("settings",),
    ("files",),
    ("formats",),
    ("deadline",),
    ("aws",),
    ("apply",),
    ("deploy",),
    ("engine",),
    ("fleet",),
    ("demo",),
    ("cli", "lambda_app", "logs", "__main__"),
)


def _unit(module: str) -> str:
    """``smartvault.aws.audit.claims`` -> ``aws``; the package itself -> ``""``."""
    return module.split(".")[1] if "." in module else ""


def test_each_layer_imports_only_the_layers_below_it():
    rank = {unit: n for n, layer in enumerate(LAYERS) for unit in layer}
    assert {_unit(m) for m in MODULES} - {""} == set(rank)  # every unit has its row
    upward = sorted(
        f"{module} imports {target}"
        for module, imported in MODULES.items()
        if _unit(module)
        for target in {_ours(name) for name in imported} - {None}
        if _unit(target) and rank[_unit(target)] > rank[_unit(module)]
    )
    assert upward == []


def test_no_module_imports_itself_through_others():
    graph = {
        module: sorted({_ours(name) for name in imported} - {None, module})
        for module, imported in MODULES.items()
    }
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:  # depth first; grey = on ``path``
        for nxt in graph[module]:
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(module)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert cycles == []


def test_the_deployment_template_code_loads_no_boto3():
    """Building the template is pure text; it must not pay boto3's 150 ms and 35 MB."""
    code = (
        "import sys, smartvault.deploy.template; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
