"""Which code made a run: the git commit of a checkout, and a hash of the installed package
(what resume compares)."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from pruneflow.identity import code_digest, sources


def git_commit(path: str | os.PathLike) -> str | None:
    """The commit of the git checkout holding ``path`` (``+dirty`` if modified), or None."""
    try:
        cwd = str(Path(path).resolve().parent)
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def code_version() -> str:
    """What made a run, as a hash of the pruneflow package's code and packaged configs (every
    ``.py`` and ``.yaml`` file under it) and its version: a job is resumed only from a run of the
    same code (``pruneflow.code``), whether installed from a wheel or run from a checkout."""
    import pruneflow
    import pruneflow.conf  # conf/ of a checkout, or inside an installed package

    files = []
    for package in (pruneflow, pruneflow.conf):
        root = Path(package.__file__).resolve().parent
        for name, path in sources(root, (".py", ".yaml")):
            if package is pruneflow.conf or not name.startswith("conf/"):  # conf: hashed once
                files.append((name, path))
    return code_digest(files, 12)
