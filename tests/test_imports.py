"""Import arrows point one way (docs/DESIGN.md §1), read from the source with `ast` (nothing is imported).

Every .py file of titans_ts, genomics and cli is parsed; each import that names a project module is
resolved to that module (relative imports too, and `from pkg import name` to `pkg.name` when that is a
submodule, else to `pkg` itself: a name taken from the package's __init__). Then:
1. no import cycle among the project's modules. Only imports that run when a module is imported count:
   those inside a function (the accepted way to defer one) and those under `if TYPE_CHECKING:` (never
   run) do not. The parent packages Python imports on the way (`import a.b.c` runs a and a.b first) are
   not counted either: Python has them half-initialised already, which is never a cycle's failure.
2. no module takes a name from the __init__ of a package it is inside (`from titans_ts import
   __version__` in titans_ts/checkpointing.py): the __init__ is the package's front door, for users; it
   imports the package's modules, so a module importing it back makes a cycle waiting to happen.
3. the direction rules, counting every import, deferred and type-only ones too (a dependency is one
   wherever it is written): titans_ts.memory imports nothing else of the project; titans_ts.memory.ops
   nothing but torch, triton, the standard library and itself; genomics never titans_ts.data nor
   titans_ts.forecasting; titans_ts never genomics; nothing in titans_ts or genomics imports cli.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("titans_ts", "genomics", "cli")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    line: int
    target: str | None  # the project module it resolves to; None for anything outside the project
    top: str  # the first name of the imported module (torch, numpy, titans_ts, ...)
    from_init: tuple[str, ...]  # names taken from the __init__ of `target` (a package), not submodules
    deferred: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`

    @property
    def at(self) -> str:
        return f"{self.source}:{self.line}"


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every .py file below the packages (a package is its __init__.py)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def resolve(dotted: str) -> str | None:  # the longest prefix that is a project module
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in modules:
                return ".".join(parts[:end])
        return None

    def record(node, deferred: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                found.append(Import(name, node.lineno, target, alias.name.split(".")[0], (), deferred, type_only))
            return
        if node.level:  # relative: level 1 is this module's package
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            dotted = ".".join([*base, *([node.module] if node.module else [])])
        else:
            dotted = node.module
        top = dotted.split(".")[0]
        taken_from_init = []
        for alias in node.names:
            submodule = f"{dotted}.{alias.name}"
            if submodule in modules:
                found.append(Import(name, node.lineno, submodule, top, (), deferred, type_only))
            else:
                taken_from_init.append(alias.name)
        if taken_from_init:
            target = resolve(dotted)
            from_init = tuple(taken_from_init) if target == dotted and _is_package(modules, target) else ()
            found.append(Import(name, node.lineno, target, top, from_init, deferred, type_only))

    def visit(node, deferred: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                record(child, deferred, type_only)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]), deferred, True)
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), deferred, type_only)
            else:
                visit(child, deferred, type_only)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False, False)
    return found


def _is_package(modules: dict[str, Path], name: str | None) -> bool:
    return name is not None and modules[name].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def all_imports(root: Path = ROOT, packages=PACKAGES) -> list[Import]:
    modules = project_modules(root, packages)
    return [found for name, path in modules.items() for found in imports_of(name, path, modules)]


def import_cycles(imports: list[Import]) -> list[list[Import]]:
    """One cycle (as the imports that make it) per strongly connected group of modules, at import time."""
    graph: dict[str, dict[str, Import]] = {}
    for found in imports:
        if found.target and found.target != found.source and not (found.deferred or found.type_only):
            graph.setdefault(found.source, {}).setdefault(found.target, found)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for group in groups:  # the shortest way from the group's first module back to itself, inside the group
        start, members = group[0], set(group)
        paths = {start: []}
        frontier = [start]
        while frontier and start not in {t for n in frontier for t in graph.get(n, {})}:
            nxt = []
            for node in frontier:
                for target, found in graph.get(node, {}).items():
                    if target in members and target not in paths:
                        paths[target] = [*paths[node], found]
                        nxt.append(target)
            frontier = nxt
        last = next(n for n in frontier if start in graph.get(n, {}))
        cycles.append([*paths[last], graph[last][start]])
    return cycles


def _inside(module: str | None, package: str) -> bool:
    return module is not None and (module == package or module.startswith(package + "."))


def direction_violations(imports: list[Import]) -> list[str]:
    allowed_in_ops = {"torch", "triton", *sys.stdlib_module_names}
    problems = []
    for found in imports:
        src, target = found.source, found.target
        if _inside(src, "titans_ts.memory") and target and not _inside(target, "titans_ts.memory"):
            problems.append(f"{found.at} imports {target}: titans_ts.memory imports nothing else of the project")
        if _inside(src, "titans_ts.memory.ops"):
            if target and not _inside(target, "titans_ts.memory.ops"):
                problems.append(f"{found.at} imports {target}: memory/ops imports nothing of the project but itself")
            if not target and found.top not in allowed_in_ops:
                problems.append(f"{found.at} imports {found.top}: memory/ops imports nothing but torch and triton")
        if _inside(src, "genomics") and (_inside(target, "titans_ts.data") or _inside(target, "titans_ts.forecasting")):
            problems.append(f"{found.at} imports {target}: genomics never imports titans_ts.data or .forecasting")
        if _inside(src, "titans_ts") and _inside(target, "genomics"):
            problems.append(f"{found.at} imports {target}: the shared core and forecasting never import genomics")
        if (_inside(src, "titans_ts") or _inside(src, "genomics")) and _inside(target, "cli"):
            problems.append(f"{found.at} imports {target}: the library never imports the CLI")
    return problems


def own_init_imports(imports: list[Import]) -> list[str]:
    return [
        f"{found.at} takes {', '.join(found.from_init)} from {found.target}/__init__.py, the package it is in: "
        "import it from the module that defines it"
        for found in imports
        if found.from_init and found.source.startswith(found.target + ".")
    ]


@pytest.fixture(scope="module")
def project_imports() -> list[Import]:
    return all_imports()


def test_the_walk_sees_every_package_and_their_imports(project_imports):
    modules = project_modules(ROOT)
    for name in ("titans_ts", "titans_ts.memory.ops", "titans_ts.data.loading", "genomics.data.files", "cli.ts"):
        assert name in modules
    sources = {found.source for found in project_imports}
    assert {"titans_ts.memory.module", "genomics.data.files", "cli.ts"} <= sources
    assert any(f.source == "genomics.data.files" and f.target == "titans_ts.errors" for f in project_imports)


def test_no_import_cycles(project_imports):
    cycles = import_cycles(project_imports)
    described = [" -> ".join([f"{f.source} (line {f.line})" for f in cycle] + [cycle[0].source]) for cycle in cycles]
    assert not described, "import cycles (defer one import into the function that needs it, or move the shared "
    "piece to a module both import):\n" + "\n".join(described)


def test_no_module_imports_the_init_of_its_own_package(project_imports):
    problems = own_init_imports(project_imports)
    assert not problems, "\n".join(problems)


def test_imports_follow_the_design_direction(project_imports):
    problems = direction_violations(project_imports)
    assert not problems, "\n".join(problems)


# --- the checker itself, on a made-up project ----------------------------------------------------------


def _project(root: Path, files: dict[str, str]) -> list[Import]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return all_imports(root, ("pkg",))


def test_the_checker_resolves_relative_and_submodule_imports_and_skips_deferred_ones(tmp_path):
    imports = _project(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import f\n",
            "pkg/a.py": "from . import b\nfrom .sub import thing\nimport numpy\n\ndef f():\n    from pkg import c\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n",
            "pkg/c.py": "",
            "pkg/sub/__init__.py": "from ..b import *\nthing = 1\n",
        },
    )
    edges = {(f.source, f.target, f.from_init, f.deferred, f.type_only) for f in imports if f.target}
    assert ("pkg.a", "pkg.b", (), False, False) in edges  # from . import b: a submodule
    assert ("pkg.a", "pkg.sub", ("thing",), False, False) in edges  # a name from pkg/sub/__init__.py
    assert ("pkg.a", "pkg.c", (), True, False) in edges  # inside a function
    assert ("pkg.b", "pkg.a", (), False, True) in edges  # under TYPE_CHECKING
    assert ("pkg.sub", "pkg.b", ("*",), False, False) not in edges  # pkg.b is a module, not a package
    assert ("pkg.sub", "pkg.b", (), False, False) in edges
    assert not import_cycles(imports)  # b -> a is type-only
    assert own_init_imports(imports) == []  # pkg.sub is not inside pkg.sub; the deferred `from pkg import c`
    # takes a submodule


def test_the_checker_finds_cycles_and_own_init_imports(tmp_path):
    imports = _project(
        tmp_path,
        {
            "pkg/__init__.py": "VERSION = 1\n",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "from pkg.c import x\n",
            "pkg/c.py": "from .a import y\n\ndef later():\n    from pkg import VERSION\n",
        },
    )
    (cycle,) = import_cycles(imports)
    assert [f.source for f in cycle] == ["pkg.a", "pkg.b", "pkg.c"]
    assert own_init_imports(imports) == [
        "pkg.c:4 takes VERSION from pkg/__init__.py, the package it is in: import it from the module that defines it"
    ]


def test_predicting_and_help_import_no_lightning_and_help_no_torch(tmp_path):
    """Lightning's import was seconds of every titans-ts / titans-dna predict and evaluate, torch's of --help."""
    import subprocess

    import numpy as np
    import pandas as pd

    from genomics.classifier import DNAClassifier
    from titans_ts import TitansForecaster

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 2)), columns=["a", "b"])
    TitansForecaster(horizon=6, lookback=12, dim=8, layers=1, heads=2, epochs=1, progress=False).fit(frame).save(
        tmp_path / "forecaster"
    )
    sequences = ["ACGTACGTAC" * 5, "GGCCGGCCAA" * 5] * 5
    classifier = DNAClassifier(pretrained=False, dim=8, layers=1, heads=2, epochs=1, progress=False)
    classifier.set_params(precision="32-true").fit(sequences, [0, 1] * 5).save(tmp_path / "classifier")
    frame.to_csv(tmp_path / "series.csv", index=False)
    pd.DataFrame({"seq": sequences, "label": [0, 1] * 5}).to_csv(tmp_path / "labelled.csv", index=False)
    root = Path(__file__).resolve().parents[1]
    script = (
        "import sys, cli.ts, cli.dna; assert 'torch' not in sys.modules, 'help imports torch';"
        "from titans_ts.forecasting import saved; import genomics.saved as dna;"
        f"saved.predict_csv({str(tmp_path / 'forecaster')!r}, {str(tmp_path / 'series.csv')!r});"
        f"saved.evaluate_saved({str(tmp_path / 'forecaster')!r}, {str(tmp_path / 'series.csv')!r});"
        f"dna.predict_file({str(tmp_path / 'classifier')!r}, {str(tmp_path / 'labelled.csv')!r});"
        f"dna.evaluate_saved({str(tmp_path / 'classifier')!r}, {str(tmp_path / 'labelled.csv')!r});"
        "print(sorted(k for k in sys.modules if k.startswith('lightning')))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
