"""The code keeps the shape the README's design section draws: imports run down the layers, never in circles.

Every module under exporter/ is parsed with `ast`, so every import counts: at the top, inside functions
(deferred), under `if TYPE_CHECKING:`. Three rules:

- no import cycles between modules. Importing `a.b.c` also runs the `__init__` of `a.b` and `a`, so
  those count as imported too, except by modules inside that package (their package is already running);
- no import runs up the layer map below, plugins do not import each other, and the demo stands aside;
- no private name (`_x`) is imported from another module: what others need is public.

A new module that fits none of LAYERS fails the test until it is given its place.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "exporter"

# Module (or package) -> layer, as in the README. A package covers its submodules; the longest match wins.
LAYERS = {
    "exporter.cli": 6,
    "exporter.__main__": 6,
    "exporter.web": 5,
    "exporter.app": 4,
    "exporter.registry": 3,
    "exporter.collectors.host": 2,
    "exporter.probes": 2,
    "exporter.kpis": 2,
    "exporter.access_logs": 2,
    "exporter.bundle": 2,
    "exporter.dashboards": 2,
    "exporter.incidents": 2,
    "exporter.reports": 2,
    "exporter.status": 2,
    "exporter.collectors.base": 1,
    "exporter.scrape": 1,
    "exporter.config": 0,
    "exporter.workers": 0,
    "exporter.scrape_timeout": 0,
    "exporter.exposition": 0,
    "exporter.logs": 0,
    "exporter.textformat": 0,
    "exporter.jobs": 0,
    "exporter.generated": 0,
}
# Package faces: an `__init__` with a docstring (and the version), layered as themselves only.
FACES = {"exporter": 0, "exporter.collectors": 1}
LAYER_NAMES = {
    6: "L6 entry",
    5: "L5 web",
    4: "L4 app",
    3: "L3 registry",
    2: "L2 plugin",
    1: "L1 framework",
    0: "L0 foundation",
}
# Layer-2 plugins: none imports another; the registry (L3) is where they meet.
PLUGINS = ("exporter.collectors.host", "exporter.probes", "exporter.kpis", "exporter.access_logs", "exporter.incidents")
# The demo shop stands aside: it uses the KPI packs' schema and the foundation, and nothing uses it.
DEMO = "exporter.demo"
DEMO_MAY_IMPORT = ("exporter.kpis.packs",)


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    target: str  # the Pulse module imported (a package's __init__ when a name comes from it)
    file: str  # the importer's path, from the repository root
    line: int
    names: tuple[str, ...]  # the names taken from `target` (`from target import a, b`); empty for `import`

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file (relative to `root`), for every module of the package."""
    files = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        relative = path.relative_to(root)
        parts = relative.with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = relative
    return files


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imports_of(module: str, file: Path, source: str, modules: Iterable[str]) -> list[Import]:
    """Every import of a Pulse module in `source`, wherever it stands in the file."""
    known, where = set(modules), str(file)
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, where, node.lineno, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, one level up per extra dot
                anchor = module.split(".") if file.name == "__init__.py" else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [alias.name for alias in node.names if f"{base}.{alias.name}" in known]
            names = tuple(alias.name for alias in node.names if alias.name not in submodules)
            if names:
                found.append(Import(module, base, where, node.lineno, names))
            found.extend(Import(module, f"{base}.{name}", where, node.lineno, ()) for name in submodules)
    return [i for i in found if within(i.target, PACKAGE)]


def all_imports(root: Path = ROOT) -> list[Import]:
    files = module_files(root)
    return [
        imp
        for module, path in files.items()
        for imp in imports_of(module, path, (root / path).read_text(encoding="utf-8"), files)
    ]


# ----------------------------------------------------------------------------------------------- cycles


def import_graph(imports: Iterable[Import]) -> dict[str, dict[str, Import]]:
    """importer -> {module it makes Python run: the Import responsible}. Parent packages included, since
    importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer lives inside them."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        parts = imp.target.split(".")
        for end in range(1, len(parts) + 1):
            target = ".".join(parts[:end])
            if target != imp.importer and (target == imp.target or not within(imp.importer, target)):
                graph.setdefault(imp.importer, {}).setdefault(target, imp)
    return graph


def cycles(graph: Mapping[str, Mapping[str, Import]]) -> list[list[tuple[str, Import]]]:
    """One shortest cycle through each module that is on one, each cycle once: [(module run, import)]."""
    found: list[list[tuple[str, Import]]] = []
    seen: set[frozenset[str]] = set()
    for start in sorted(graph):
        path = _shortest_path_back(graph, start)
        if path is not None and frozenset(module for module, _ in path) not in seen:
            seen.add(frozenset(module for module, _ in path))
            found.append(path)
    return found


def _shortest_path_back(graph: Mapping[str, Mapping[str, Import]], start: str) -> list[tuple[str, Import]] | None:
    came_from: dict[str, tuple[str, Import]] = {}  # module -> (the module that imports it, how)
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target, imp in sorted(graph.get(module, {}).items()):
            if target == start:
                path = [(target, imp)]
                while module != start:
                    previous, how = came_from[module]
                    path.insert(0, (module, how))
                    module = previous
                return path
            if target not in came_from and target != start:
                came_from[target] = (module, imp)
                queue.append(target)
    return None


def cycle_violations(imports: Iterable[Import]) -> list[str]:
    def step(module: str, imp: Import) -> str:
        how = imp.where if module == imp.target else f"package of {imp.target}, {imp.where}"
        return f"{module} ({how})"

    return [
        "import cycle: " + " -> ".join([path[-1][0], *(step(module, imp) for module, imp in path)])
        for path in cycles(import_graph(imports))
    ]


# ----------------------------------------------------------------------------------------------- layers


def layer_of(module: str) -> int | None:
    if module in FACES:
        return FACES[module]
    matches = [prefix for prefix in LAYERS if within(module, prefix)]
    return LAYERS[max(matches, key=len)] if matches else None


def plugin_of(module: str) -> str | None:
    return next((p for p in PLUGINS if within(module, p)), None)


def layer_violation(imp: Import) -> str | None:
    """Why `imp` breaks the layer map, or None."""
    source, target = imp.importer, imp.target
    if within(source, DEMO):
        if within(target, DEMO) or any(within(target, allowed) for allowed in DEMO_MAY_IMPORT):
            return None
        if layer_of(target) == 0:
            return None
        return f"the demo stands aside: it may import {', '.join(DEMO_MAY_IMPORT)} and L0 only, not {target}"
    if within(target, DEMO):
        return f"nothing in the exporter may depend on the demo ({target})"
    low, high = layer_of(source), layer_of(target)
    if low is None or high is None:
        return None  # reported once per module by unmapped_modules()
    if high > low:
        return f"upward import: {source} ({LAYER_NAMES[low]}) imports {target} ({LAYER_NAMES[high]})"
    mine, theirs = plugin_of(source), plugin_of(target)
    if mine and theirs and mine != theirs:
        return f"plugins do not import each other: {source} ({mine}) imports {target} ({theirs})"
    return None


def unmapped_modules(modules: Iterable[str]) -> list[str]:
    return [
        f"{module}: not in the layer map; give it its place in LAYERS (tests/test_architecture.py) and the README"
        for module in modules
        if not within(module, DEMO) and layer_of(module) is None
    ]


def layering_violations(imports: Iterable[Import], modules: Iterable[str]) -> list[str]:
    problems = unmapped_modules(modules)
    for imp in imports:
        why = layer_violation(imp)
        if why is not None:
            problems.append(f"{imp.where}: {why}")
    return problems


# ---------------------------------------------------------------------------------------- private names


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_violations(imports: Iterable[Import]) -> list[str]:
    problems = []
    for imp in imports:
        hidden = [n for n in imp.names if is_private(n)]
        hidden += [part for part in imp.target.split(".") if is_private(part)]
        if hidden and imp.target != imp.importer:
            problems.append(
                f"{imp.where}: imports private {', '.join(hidden)} from {imp.target}; "
                "make it public where it is, or move it to the module that needs it"
            )
    return problems


# ------------------------------------------------------------------------------------------------ tests


def report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n  " + "\n  ".join(problems)


def test_no_import_cycles() -> None:
    problems = cycle_violations(all_imports())
    assert not problems, report("import cycles between modules of exporter/", problems)


def test_imports_run_down_the_layers() -> None:
    problems = layering_violations(all_imports(), module_files())
    assert not problems, report("imports against the layer map", problems)


def test_no_private_name_is_imported_from_another_module() -> None:
    problems = private_violations(all_imports())
    assert not problems, report("private names imported from another module", problems)


def test_the_checks_see_deferred_and_type_checking_imports(tmp_path: Path) -> None:
    """The rules above on a made-up package: imports inside functions and under TYPE_CHECKING count."""
    sources = {
        "exporter/__init__.py": "",
        "exporter/scrape.py": "def later():\n    from exporter.app import Exporter\n",
        "exporter/app.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from exporter.scrape import _x\n",
        "exporter/probes/__init__.py": "from exporter.probes import tcp\n",
        "exporter/probes/tcp.py": "import exporter.kpis.sql\n",
        "exporter/kpis/__init__.py": "",
        "exporter/kpis/sql.py": "",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    imports = all_imports(tmp_path)

    assert cycle_violations(imports) == [
        "import cycle: exporter.app -> exporter.scrape (exporter/app.py:3) -> exporter.app (exporter/scrape.py:2)"
    ]
    assert layering_violations(imports, module_files(tmp_path)) == [
        "exporter/probes/tcp.py:1: plugins do not import each other: exporter.probes.tcp (exporter.probes) "
        "imports exporter.kpis.sql (exporter.kpis)",
        "exporter/scrape.py:2: upward import: exporter.scrape (L1 framework) imports exporter.app (L4 app)",
    ]
    assert private_violations(imports) == [
        "exporter/app.py:3: imports private _x from exporter.scrape; "
        "make it public where it is, or move it to the module that needs it"
    ]


def test_a_config_without_sql_sources_never_loads_sqlalchemy() -> None:
    # SQLAlchemy adds about 12 MiB of memory; an exporter of host metrics, probes and logs does without.
    # matplotlib (the `render` extra, for pictures of the dashboards) is never loaded by the exporter.
    script = (
        "import sys, exporter.cli\n"
        "from exporter.registry import build_collectors, load_config\n"
        "build_collectors(load_config(None))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'cryptography', 'matplotlib'}))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]", loaded.stderr
