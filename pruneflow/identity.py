"""Identity: when two pieces of work are the same, written once.

- :func:`digest`: the one hash of a description (a job key, a baseline key);
- :func:`file_digest`, :func:`folder_digest`, :func:`code_digest`: the content of a file, of a
  folder (a SavedModel), of source code;
- :func:`named_files`: the content of every file a config section names (a weights file given as
  ``backbone.weights=<path>``): a schema lists such keys in ``FILE_KEYS``, so editing the file in
  place changes the key, where its path alone would not;
- :func:`baseline_spec`, :func:`baseline_key`: what a trained baseline depends on (its config
  sections, the seed, the data, the files they name, the code that builds and trains it);
- :func:`without_targets`, :func:`plain_numbers`: config values made comparable.

Light: no TensorFlow, nothing of pruneflow above it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pruneflow import __version__

# The config sections a trained baseline depends on (with the seed, the data and the code).
BASELINE_SECTIONS = ("dataset", "backbone", "train")
# The packages whose code decides what a baseline is: the data it sees, the model it builds, how
# it trains. Editing any of their files trains baselines anew (a new model source included).
BASELINE_CODE = ("pruneflow.steps.data", "pruneflow.steps.model", "pruneflow.steps.train")


def digest(spec: Any, length: int = 16) -> str:
    """A stable hash of a JSON-able description (keys sorted; -0.0 as 0.0)."""
    payload = json.dumps(plain_numbers(spec), sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:length]


def file_digest(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def code_digest(files: Iterable[tuple[str, Path]], length: int) -> str:
    """A hash of pruneflow's version and of source files, each by its name and its bytes."""
    h = hashlib.sha256(__version__.encode())
    for name, path in files:
        h.update(name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:length]


def sources(root: Path, suffixes: tuple[str, ...] | None = (".py",)) -> list[tuple[str, Path]]:
    """The source files under ``root`` (``__pycache__`` left out), named relative to it, sorted;
    ``suffixes=None``: every file."""
    found = []
    files = (p for p in root.rglob("*") if p.is_file())
    for path in sorted(p for p in files if suffixes is None or p.suffix in suffixes):
        where = path.relative_to(root).parts
        if "__pycache__" not in where:
            found.append(("/".join(where), path))
    return found


@functools.cache
def baseline_code() -> str:
    """A hash of the code that decides what a baseline is (:data:`BASELINE_CODE`)."""
    import importlib.util

    files = []
    for package in BASELINE_CODE:
        spec = importlib.util.find_spec(package)
        root = Path(spec.origin).parent
        files += [(f"{package}/{name}", path) for name, path in sources(root)]
    return code_digest(files, 16)


def tree_digest(root: str | os.PathLike) -> str:
    """The sha256 of a folder's files (a SavedModel of a user's): each by its relative name and
    bytes. A link is hashed by where it points, never followed (a user's folder may link out
    of itself, to a pipe, or back into itself)."""
    h = hashlib.sha256()
    entries = []
    for folder, dirs, files in os.walk(root):  # does not descend into linked folders
        base = Path(folder)
        entries += [base / d for d in dirs if (base / d).is_symlink()]
        entries += [base / f for f in files]
    for path in sorted(entries):
        name = path.relative_to(root).as_posix()
        if "__pycache__" in name.split("/"):
            continue
        if path.is_symlink():
            h.update(f"{name}\0link:{os.readlink(path)}\0".encode())
        elif path.is_file():
            h.update(f"{name}\0{file_digest(path)}\0".encode())
    return h.hexdigest()


def named_files(section: Any) -> dict[str, str]:
    """``{key: sha256}`` of each file (or folder: :func:`tree_digest`) that ``section`` (a
    config section's dataclass) names by a key of its schema's ``FILE_KEYS``; a value that is
    no file (``imagenet``, null) adds nothing, so a config naming no file keys as before."""
    found = {}
    for key in getattr(section, "FILE_KEYS", ()):
        value = getattr(section, key, None)
        if isinstance(value, str) and os.path.isfile(value):  # the path as the step reads it
            found[key] = file_digest(value)
        elif isinstance(value, str) and os.path.isdir(value):
            found[key] = tree_digest(value)
    return found


def by_content(spec: dict[str, Any], config: Any) -> dict[str, Any]:
    """``spec`` (sections of ``config`` as plain dicts) with each file a section names
    (:func:`named_files`) given by its content, ``sha256:<hex>``, in place of its path: the
    file edited in place is other work, and the same bytes elsewhere the same."""
    for section, values in spec.items():
        for key, sha in named_files(getattr(config, section, None)).items():
            values[key] = f"sha256:{sha}"
    return spec


def baseline_spec(config: Any, data_fingerprint: str) -> dict:
    """What the baseline of ``config`` (a :class:`pruneflow.config.Config`) depends on: its
    :data:`BASELINE_SECTIONS`, the seed, the data as loaded, the dataset's files (a folder, a
    tfds data_dir) and the content of any file the sections name. The code is added by
    :func:`baseline_key`."""
    settings = config.as_dict()
    spec = by_content(without_targets({k: settings[k] for k in BASELINE_SECTIONS}), config)
    spec["seed"] = config.seed
    spec["data"] = data_fingerprint
    files = config.dataset.content()  # the training images too (the walk that loaded them)
    if files:
        spec["files"] = files
    return plain_numbers(spec)


def baseline_key(spec: dict) -> str:
    """The key of a baseline cache entry: ``spec`` (:func:`baseline_spec`) and the code."""
    return digest({**spec, "code": baseline_code()}, 24)


def without_targets(node: Any) -> Any:
    """``node`` (plain dicts) without its ``_target_`` keys: where the code lives is not what
    it computes, so keys made from a config survive a move of the code."""
    if isinstance(node, dict):
        return {k: without_targets(v) for k, v in node.items() if k != "_target_"}
    return node


def plain_numbers(node: Any) -> Any:
    """``node`` (plain dicts and lists) with every -0.0 as 0.0, so that equal values key alike
    (``prune.sparsity=-0.0`` is the work of 0.0). An int and an equal float are left apart: where
    a schema says float, OmegaConf has made the value a float already (``prune.sparsity=0`` is
    0.0); where it takes any type (``delegate.options``), the code that reads them sees two."""
    if isinstance(node, dict):
        return {k: plain_numbers(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(plain_numbers(v) for v in node)
    if isinstance(node, float) and node == 0.0:
        return 0.0
    return node
