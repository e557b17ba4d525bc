"""The package's own import graph, read from its source: drawn on the page "How the
extension works" and checked by ``tests/test_layout.py`` (no cycles, Sphinx only in
``sphinx/``).

Imports are read with :mod:`ast`, so nothing is imported or run. Every ``import`` and
``from ... import`` counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (they never run). Only imports of the package's own modules become
edges; ``external`` lists what each module takes from outside the package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "sphinxext_qdq"

#: What each folder of the package is for (the page's legend and the README agree).
JOBS = {
    "onnxio": "reading files: checked paths, parsing, tensors, external data, dtypes",
    "analysis": "the analysis: roles, parameters, groups, regions; queries; the cache",
    "integer": "integer arithmetic: requantization, the integer reference, test vectors",
    "render": "text and DOT output; running dot",
    "numerics": "grid statistics, error against the float model (ONNX Runtime), plots",
    "sphinx": "the Sphinx glue: directives, nodes, tables, domain, collector",
    "": "entry points: setup(), the command line, the version",
}


@dataclass
class ModuleImports:
    """One module of the package: its dotted name, file and what it imports."""

    name: str
    path: Path
    internal: set[str] = field(default_factory=set)
    external: set[str] = field(default_factory=set)

    @property
    def folder(self) -> str:
        """The folder below the package holding the module ("" for the package's own)."""
        return "" if self.path.parent.name == PACKAGE else self.path.parent.name


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names imported anywhere in *tree*, ``if TYPE_CHECKING:`` blocks left out."""
    found: list[str] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    base = parts[:keep]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path) -> dict[str, ModuleImports]:
    """Every module under the package folder *root*, with its internal and external imports."""
    modules = {module_name(path, root): ModuleImports(module_name(path, root), path)
               for path in sorted(root.rglob("*.py"))}
    for record in modules.values():
        tree = ast.parse(record.path.read_text(encoding="utf-8"))
        for name in _imports(tree, record.name, record.path.name == "__init__.py"):
            if name.split(".")[0] != PACKAGE:
                record.external.add(name.split(".")[0])
            elif name in modules and name != record.name:
                record.internal.add(name)
            elif name.rsplit(".", 1)[0] in modules and name.rsplit(".", 1)[0] != record.name:
                record.internal.add(name.rsplit(".", 1)[0])  # from module import name
    return modules


def cycles(modules: dict[str, ModuleImports]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(modules[start].internal)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            name, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(modules[child].internal))))
                elif child in on_stack:
                    low[name] = min(low[name], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[name])
            if low[name] == index[name]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == name:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def folder_dot(modules: dict[str, ModuleImports]) -> str:
    """DOT of the package by folder: one box per folder (its job and its modules), an
    arrow from a folder to each folder it imports from, labelled with how many imports."""
    lines = [
        "digraph package {",
        ('  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.4, '
         'ranksep=0.5, bgcolor="transparent"];'),
        ('  node [shape=box, style="rounded,filled", fillcolor="#f5f5f5", color="#90a4ae", '
         'fontname="Helvetica", fontsize=10];'),
        '  edge [color="#607d8b", fontname="Helvetica", fontsize=9, arrowsize=0.7];',
    ]
    by_folder: dict[str, list[str]] = {}
    for record in modules.values():
        by_folder.setdefault(record.folder, []).append(record.path.name)
    for folder, files in sorted(by_folder.items()):
        title = f"{folder or PACKAGE}/"
        label = f"{title}\\n{JOBS.get(folder, '')}\\n\\n{', '.join(sorted(files))}"
        lines.append(f"  {_quoted(folder or 'top')} [label={_quoted(label)}];")
    counts: dict[tuple[str, str], int] = {}
    for record in modules.values():
        for target in record.internal:
            pair = (record.folder, modules[target].folder)
            if pair[0] != pair[1]:
                counts[pair] = counts.get(pair, 0) + 1
    for (tail, head), count in sorted(counts.items()):
        lines.append(f"  {_quoted(tail or 'top')} -> {_quoted(head or 'top')} "
                     f"[label={_quoted(str(count))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def package_root() -> Path:
    return Path(__file__).resolve().parents[2] / PACKAGE


def _first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n")[0].split())


def module_table(modules: dict[str, ModuleImports]) -> list[tuple[str, str, str]]:
    """(folder, module file, first paragraph of its docstring) for every module."""
    rows = []
    for record in sorted(modules.values(), key=lambda r: (r.folder, r.path.name)):
        folder = f"{record.folder}/" if record.folder else f"{PACKAGE}/"
        rows.append((folder, record.path.name, _first_line(record.path)))
    return rows
