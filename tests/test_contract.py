"""The results contract (pruneflow/results.py) is the one place a metric, tag or artifact name
is written: every other module of the package imports the name. A name written again as a
literal drifts the day the contract changes it (the run logs one name, the report reads
another), so this test reads the package's source (``ast``) and fails on each one, saying
where and which constant to import instead."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pruneflow
from pruneflow import results

PACKAGE = Path(pruneflow.__file__).parent

# Modules (or folders) that may write a name of the contract as a literal, and why.
EXEMPT = {
    "results.py": "the contract itself",
    "devices/runner.py": "runs alone on a device, without pruneflow: it cannot import the "
    "contract, and its JSON keys (load_ms, threads_used, cooldown_s, runtime ...) are its own "
    "format, which steps/benchmark/record.py turns into the contract's names",
    "devices/keras_timing.py": "the runner's Keras timing, shipped beside it: its format too",
}

# Contract names that are also ordinary words, written as literals with their other meaning.
ORDINARY = {
    "accuracy": "Keras's metric name and history key; a column title of the job log's table",
    "baseline": "the baseline's folder in the cache and in the baselines experiment; a title",
    "backbone": "a config group (cfg.backbone), as are dataset, delegate and device",
    "dataset": "a config group",
    "delegate": "a config group",
    "device": "a config group (device=local), a LoggedModel param, the runner's result key",
    "host": "the SSH device's config key (device.host); timed_on's value for this machine",
    "model": "a LoggedModel param and a column of compare and `pruneflow report --register`",
    "channels": "a config key (prune.channels), a LoggedModel param and compare's column",
    "sparsity": "a config key (prune.sparsity), a LoggedModel param and compare's column",
    "models": "compare's folder of the models it downloads",
    "prune": "a config section (prune.*) and the step's name",
    "benchmark": "a config section (benchmark.*) and the step's name",
    "report": "the `pruneflow report` command",
    "keras": "the variant's name and a config value (benchmark.keras); MLflow's model type",
    "energy.source": "the config key device.energy.source, named in its own check's message",
}

# Upper-case constants of results.py that hold words, not names: the stages (a name is
# time/<stage>_s) and statistics (a name is latency_<statistic>_ms ...).
NOT_NAMES = {"STAGES", "STEADY_STATS", "SPLIT_STATS"}


def _own_constants() -> set[str]:
    """The upper-case names results.py assigns itself (not those it imports)."""
    tree = ast.parse(Path(results.__file__).read_text())
    own = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        for t in targets:
            for n in t.elts if isinstance(t, ast.Tuple) else [t]:
                if isinstance(n, ast.Name) and n.id.isupper():
                    own.add(n.id)
    return own - NOT_NAMES


def contract() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """({name: its constant}, {(prefix, suffix): what makes it}): every metric, tag and artifact
    name of the contract, and the fixed parts of every name it makes from a variable part
    (``cooldown/`` of ``cooldown/<variant>``; ``temp_``, ``_c`` of ``temp_<when>_c``)."""
    strings, collections = {}, {}  # a name's own constant first (PARAMS_TOTAL), then a tuple's
    for attr in sorted(_own_constants()):
        value = getattr(results, attr)
        if isinstance(value, str):
            strings[value] = f"results.{attr}"
        elif isinstance(value, dict):
            collections.update({v: f"results.{attr}[{k!r}]" for k, v in value.items()})
        else:
            collections.update({v: f"results.{attr}" for v in value if isinstance(v, str)})
    names = {**collections, **strings}
    made = {tuple(n.split("{}")): f"{where} ({n})" for n, where in names.items() if "{}" in n}
    names = {n: where for n, where in names.items() if "{}" not in n}
    for attr, fn in vars(results).items():
        if inspect.isfunction(fn) and fn.__module__ == results.__name__:
            if (
                len(inspect.signature(fn).parameters) == 1
                and fn.__annotations__.get("return") == "str"
            ):
                made[tuple(fn("\0").split("\0"))] = f"results.{attr}()"
    return names, made


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of ``tree`` (prose may mention a name)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def literals(source: str, names: dict, made: dict, allowed: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each contract name ``source`` writes as a literal:

    - a string that is a name (``"device.kind"``), or a name made by hand
      (``"cooldown/tflite_fp32"``);
    - an f-string that makes a name by hand: ``f"cooldown/{variant}"``,
      ``f"latency_{s}_ms"``, ``f"{variant}/accuracy"``;
    - a file name of the contract inside a longer string (``"traceback in .../pruneflow.log"``).
    """
    tree = ast.parse(source)
    skip = _docstrings(tree)
    files = [n for n in names if re.fullmatch(r"[\w.-]+\.[a-z]+", n) and n not in allowed]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            shape = [p.value if isinstance(p, ast.Constant) else None for p in parts]
            for (prefix, suffix), what in made.items():
                if shape in ([prefix, None, suffix], [prefix, None] if not suffix else None):
                    found.append((node.lineno, f"f-string {prefix}{{...}}{suffix}: use {what}"))
            for p in shape:
                if p and p.startswith("/") and p[1:] in set(names) - set(files):
                    found.append((node.lineno, f"f-string {{...}}{p}: use results.metric()"))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            s = node.value
            if s in names and s not in allowed:
                found.append((node.lineno, f"{s!r}: use {names[s]}"))
                continue
            for (prefix, suffix), what in made.items():
                middle = s[len(prefix) : len(s) - len(suffix)]
                if prefix.endswith("/") and s.startswith(prefix) and s.endswith(suffix):
                    if middle and re.fullmatch(r"[\w.-]+", middle):
                        found.append((node.lineno, f"{s!r}: use {what}"))
            for f in files:
                if s != f and re.search(rf"(?<![\w.]){re.escape(f)}(?![\w])", s):
                    found.append((node.lineno, f"{f!r} in {s!r}: use {names[f]}"))
    return found


def test_no_module_writes_a_name_of_the_contract_as_a_literal():
    names, made = contract()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if any(rel.startswith(e) for e in EXEMPT):
            continue
        allowed = set(ORDINARY)
        for line, what in literals(path.read_text(), names, made, allowed):
            offenders.append(f"pruneflow/{rel}:{line}: {what}")
    assert not offenders, "\n".join(offenders)


def test_the_allowlists_name_only_words_of_the_contract():
    """An allowance for a word the contract no longer has is stale: delete it."""
    names, _ = contract()
    assert not set(ORDINARY) - set(names)
    assert all((PACKAGE / e).exists() for e in EXEMPT)


def test_the_check_finds_each_way_a_name_escapes():
    """The check itself, on a module written the ways a name escapes the contract (and the
    ways that are fine: the constant, a config key that shares a tag's prefix, prose)."""
    names, made = contract()
    source = '''
"""A docstring may say runner.json."""
import results
tags = {"device.kind": "local", "runtime": "litert"}
tags[f"cooldown/{variant}"] = note
m[f"{variant}/accuracy"] = 1.0
m[f"latency_{s}_ms"] = 2.0
t = tags["kernels/tflite_int8"]
open(folder / "latency.csv")
print(f"traceback in {out}/pruneflow.log")
tags[results.cooldown_tag(variant)] = note
print(f"device.{field}={value}")
history["accuracy"]
'''
    found = sorted(
        (line, what.split(":")[0]) for line, what in literals(source, names, made, set(ORDINARY))
    )
    assert found == [
        (4, "'device.kind'"),
        (4, "'runtime'"),
        (5, "f-string cooldown/{...}"),
        (6, "f-string {...}/accuracy"),
        (7, "f-string latency_{...}_ms"),
        (8, "'kernels/tflite_int8'"),
        (9, "'latency.csv'"),
        (10, "'pruneflow.log' in '/pruneflow.log'"),
    ], found
