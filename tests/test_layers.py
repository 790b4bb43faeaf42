"""The house's floors, read from the code's own imports (every ``import`` the interpreter can
reach, inside functions too; annotations under ``TYPE_CHECKING`` are not imports at run time):
the steps, the devices and per-run tracking never reach up to the study or the command line,
the job never imports the command line, ``errors.py`` stands on nothing of pruneflow, and no two
modules import each other in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

import pruneflow

PACKAGE = Path(pruneflow.__file__).parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at_top)`` for each pruneflow module ``path`` imports; ``at_top``: on loading
    (not inside a function). Imports under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for n in ast.walk(node)}
    top = {id(n) for n in tree.body} | {
        id(n) for stmt in tree.body if isinstance(stmt, ast.Try) for n in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pruneflow.x import y`: y is a module of x, or a name x defines
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "pruneflow":
                found.append((name, id(node) in top))
    return found


def _graph() -> dict[str, list[tuple[str, bool]]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = []
        for target, at_top in _imports(path):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]  # a name inside a module: the module
            if target in modules and target != name:
                targets.append((target, at_top))
        graph[name] = targets
    return graph


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_floors_point_down():
    low = ("pruneflow.steps", "pruneflow.devices", "pruneflow.tracking")
    high = ("pruneflow.study", "pruneflow.cli")
    wrong = []
    for module, targets in _graph().items():
        for target, _ in targets:
            if _under(module, *low) and _under(target, *high):
                wrong.append(f"{module} -> {target}")
            if not _under(module, "pruneflow.cli", "pruneflow.__main__"):
                if _under(target, "pruneflow.cli"):
                    wrong.append(f"{module} -> {target} (only the command line imports cli)")
            if _under(module, "pruneflow.steps", "pruneflow.devices") and _under(
                target, "pruneflow.pipeline", "pruneflow.config"
            ):
                wrong.append(f"{module} -> {target} (a step is given its section, not the job)")
            if module == "pruneflow.errors" and target != "pruneflow":
                wrong.append(f"{module} -> {target} (errors.py is the ground floor)")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_two_modules_import_each_other_in_a_loop():
    """Imports made on loading (a function's own imports run later, once all are loaded)."""
    graph = {m: [t for t, at_top in ts if at_top] for m, ts in _graph().items()}
    loops, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                loops.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not loops, "\n".join(loops)
