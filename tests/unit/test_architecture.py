"""House rules that a check keeps (docs/ARCHITECTURE.md): the import layers, no import cycles (imports under
TYPE_CHECKING and inside functions included), and which modules may import which third-party SDKs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import vecbackup

ROOT = Path(vecbackup.__file__).parent

#: lowest first; a module may import its own layer and the layers below, never one above
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("vecbackup.errors", "vecbackup.schema", "vecbackup.times", "vecbackup.version", "vecbackup.words")),
    ("pure", ("vecbackup.format", "vecbackup.limits", "vecbackup.ops.drill.exact", "vecbackup.retention",
              "vecbackup.urls", "vecbackup.index_types")),
    ("edges", ("vecbackup.stores", "vecbackup.engines", "vecbackup.passphrase")),
    ("ops", ("vecbackup.ops",)),
    ("api", ("vecbackup.api",)),
    ("front ends", ("vecbackup.config", "vecbackup.ui", "vecbackup.metrics", "vecbackup.scheduler",
                    "vecbackup.cli", "vecbackup.__main__", "vecbackup")),
]
#: third-party packages only these modules (and their packages' own submodules) may import
SDKS = {
    "rich": ("vecbackup.ui",),
    "pymilvus": ("vecbackup.engines.milvus",),
    "milvus_lite": ("vecbackup.engines.milvus",),
    "qdrant_client": ("vecbackup.engines.qdrant",),
    "qdrant_edge": ("vecbackup.engines.qdrant.edge",),
    "cryptography": ("vecbackup.format.crypto",),
    "boto3": ("vecbackup.stores.s3",),
    "botocore": ("vecbackup.stores.s3",),
    "azure": ("vecbackup.stores.azure",),
    "prometheus_client": ("vecbackup.metrics",),
    "schedule": ("vecbackup.scheduler.loop",),
    "typer": ("vecbackup.cli",),
    "click": ("vecbackup.cli", "vecbackup.config"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports anywhere in its source (top level, functions, TYPE_CHECKING blocks)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out.add(base)  # `from pkg import mod` runs pkg's __init__ too: counted strictly
            for a in node.names:  # ... and imports the module pkg.mod, where there is one
                if f"{base}.{a.name}" in MODULES:
                    out.add(f"{base}.{a.name}")
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    best, depth = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > depth:
                best, depth = i, len(p)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md"
    return best


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_higher_layer(name: str):
    mine = _layer(name)
    for target in sorted(GRAPH[name]):
        if target.split(".")[0] != "vecbackup" or target == name:
            continue  # third-party (test_third_party_sdks...)
        assert _layer(target) <= mine, (f"{name} ({LAYERS[mine][0]}) imports {target} "
                                        f"({LAYERS[_layer(target)][0]}), a higher layer")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_below_the_front_ends_no_module_imports_the_package_itself(name: str):
    """``from vecbackup import limits`` runs the package's __init__ (the whole API) from inside it: a cycle. Below
    the front ends, ``from vecbackup.limits import ...`` or ``import vecbackup.limits as limits``."""
    if LAYERS[_layer(name)][0] == "front ends":
        return  # the API's users (test_no_import_cycles holds the package's own imports to it)
    assert "vecbackup" not in GRAPH[name], f"{name} imports the vecbackup package; import the module it needs"


def test_no_import_cycles():
    """Tarjan's strongly connected components over the vecbackup import graph (every import counted)."""
    graph = {n: {t for t in deps if t in MODULES and t != n} for n, deps in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_third_party_sdks_stay_in_their_adapter(sdk: str):
    allowed = SDKS[sdk]
    for name, deps in GRAPH.items():
        if any(d == sdk or d.startswith(sdk + ".") for d in deps):
            assert any(name == a or name.startswith(a + ".") for a in allowed), f"{name} imports {sdk}"


def test_the_checks_can_fail():
    """The graph is real: a module known to import another is seen doing so."""
    assert "vecbackup.ops.restore" in GRAPH["vecbackup.api"]
    # `from vecbackup.format import layout` counts the package vecbackup.format (its __init__ runs) and the module
    assert {"vecbackup.format", "vecbackup.format.layout"} <= GRAPH["vecbackup.ops.backup"]
    assert "pymilvus" in GRAPH["vecbackup.engines.milvus.connection"]
    assert _layer("vecbackup.ops.mapping") > _layer("vecbackup.format.qdrant")
    # the front ends' rule sees `from vecbackup.api import X` and `from vecbackup import api` alike
    assert {"vecbackup", "vecbackup.api"} <= GRAPH["vecbackup.cli.backup_cmd"]
    assert "vecbackup.api" in GRAPH["vecbackup.scheduler.jobs"]


#: all a front end (cli/, scheduler/) may import of vecbackup besides its own package: the API, which re-exports the
#: option and result types it needs, and the modules that are no operation (docs/ARCHITECTURE.md, "Front ends")
FRONT_END_IMPORTS = ("vecbackup.api", "vecbackup.ui", "vecbackup.metrics", "vecbackup.config", "vecbackup.errors",
                     "vecbackup.times", "vecbackup.retention", "vecbackup.words", "vecbackup.version")
FRONT_ENDS = {"vecbackup.cli": ("vecbackup.scheduler",),  # `vecbackup schedule` runs the scheduler
              "vecbackup.scheduler": ()}


def _front_end(name: str) -> str | None:
    return next((f for f in FRONT_ENDS if name == f or name.startswith(f + ".")), None)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _front_end(n)))
def test_front_ends_call_only_the_api(name: str):
    """No module of cli/ or scheduler/ imports ops/, engines/, stores/, format/ or any other module below the API
    (TYPE_CHECKING blocks and imports inside functions included): what a front end does goes through vecbackup.api.
    ``from vecbackup import api`` counts the package vecbackup too: its __init__ is the API's re-export (below)."""
    own = _front_end(name)
    assert own is not None
    allowed = (*FRONT_END_IMPORTS, own, *FRONT_ENDS[own])
    bad = sorted(t for t in GRAPH[name] if t.split(".")[0] == "vecbackup" and t != "vecbackup"
                 and not any(t == a or t.startswith(a + ".") for a in allowed))
    assert bad == [], f"{name} imports {', '.join(bad)}: call vecbackup.api (and re-export the types it needs there)"


def test_the_package_is_the_api():
    """``import vecbackup`` is the API: the package's __init__ imports vecbackup.api and what the API's users hold
    besides (errors, the version), so a front end importing ``from vecbackup import api`` reaches nothing else."""
    assert {t for t in GRAPH["vecbackup"] if t.startswith("vecbackup.")} <= {"vecbackup.api", "vecbackup.errors",
                                                                            "vecbackup.version"}


#: parameters of operations that hold an engine or a store: typed as their protocols (engines/base.py,
#: stores/base.py), never Any, so that mypy checks every call the operation makes on them
_ADAPTER_PARAMETERS = {"engine", "source", "target", "sink", "inspector", "store"}


def _untyped_adapters(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
                if arg.arg in _ADAPTER_PARAMETERS and arg.annotation is not None and "Any" in ast.unparse(
                        arg.annotation):
                    out.append(f"{node.name}({arg.arg}: {ast.unparse(arg.annotation)}) line {node.lineno}")
    return out


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("vecbackup.ops")))
def test_operations_type_engines_and_stores_as_their_protocols(name: str):
    assert _untyped_adapters(ast.parse(MODULES[name].read_text())) == []


def test_the_adapter_check_can_fail():
    assert _untyped_adapters(ast.parse("def run(store: BlobStore, target: Any, source: Any | None = None): ...")) == [
        "run(target: Any) line 1", "run(source: Any | None) line 1"]


def test_architecture_md_lists_every_module():
    """docs/ARCHITECTURE.md's "Every module" names each module of the code, and no other."""
    doc = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text()
    listed = set(re.findall(r"`(vecbackup/[\w/]+\.py)`", doc.split("\n## Every module\n", 1)[1]))
    actual = {p.relative_to(ROOT.parent).as_posix() for p in ROOT.rglob("*.py")}
    assert (sorted(actual - listed), sorted(listed - actual)) == ([], []), "(not listed, listed but gone)"
