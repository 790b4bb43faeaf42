"""What a test needs from the machine, in one place: ``@pytest.mark.needs("sshd", "root")``.

Each need says how to tell whether this machine has it and what provides it (``make test``
installs the Debian packages; the ``ray`` extra comes with ``make test-slow``). A test whose
need is missing fails naming the fix where the need is part of the run it belongs to (CI, where
``make test`` installed everything: ``CI`` is set), and is skipped with the same words
elsewhere, so a developer's partial machine still runs the rest. The check runs before the
test's fixtures (tests/conftest.py), so no server is started for a test that cannot run.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

# Where Debian keeps system programs, whatever PATH says: cron, `env -i` and non-login shells
# give a PATH of /usr/bin:/bin, without the sbin folders that hold runuser and sshd.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def system_tool(name: str) -> str | None:
    """The path of the system program ``name``: on PATH, else in Debian's system folders."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SYSTEM_DIRS))


def venv_tool(name: str) -> str | None:
    """The console script ``name`` of this Python's environment (where pip put it; the venv
    that make uses need not be on PATH), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _importable(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:  # a parent package missing
        return False


# need -> (does this machine have it?, what provides it)
NEEDS: dict[str, tuple[Callable[[], bool], str]] = {
    "sshd": (
        lambda: bool(system_tool("sshd")),
        "Debian's openssh-server (make system-deps installs it)",
    ),
    "postgres": (  # as root its server runs as the postgres user, through runuser
        lambda: (
            bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
            and (os.geteuid() != 0 or bool(system_tool("runuser")))
        ),
        "Debian's postgresql and util-linux's runuser (make system-deps installs postgresql)",
    ),
    "chromium": (
        lambda: bool(system_tool("chromium")),
        "Debian's chromium (make system-deps installs it)",
    ),
    "ray": (  # what the launcher imports, not a command on PATH
        lambda: _importable("ray", "hydra_plugins.hydra_ray_launcher") and bool(venv_tool("ray")),
        "the ray extra: pip install -e '.[ray]' (make test-slow installs it)",
    ),
    "qemu": (
        lambda: bool(system_tool("qemu-aarch64-static") and system_tool("debootstrap")),
        "qemu-user-static, binfmt-support and debootstrap (make slow-system-deps installs them)",
    ),
    "root": (lambda: os.geteuid() == 0, "root (mounts; CI runs as root)"),
    "debian_python": (
        lambda: os.path.exists("/usr/bin/python3"),
        "Debian's own /usr/bin/python3 (the python3 package)",
    ),
}


def missing(*needs: str) -> list[str]:
    """The fixes for what this machine lacks of ``needs``."""
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"unknown needs {unknown}: valid are {sorted(NEEDS)}")
    return [f"{n}: {NEEDS[n][1]}" for n in needs if not NEEDS[n][0]()]
