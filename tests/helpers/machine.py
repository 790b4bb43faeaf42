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
import os
import shutil
from collections.abc import Callable

# need -> (does this machine have it?, what provides it)
NEEDS: dict[str, tuple[Callable[[], bool], str]] = {
    "sshd": (
        lambda: bool(shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")),
        "Debian's openssh-server (make system-deps installs it)",
    ),
    "postgres": (
        lambda: bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        "Debian's postgresql (make system-deps installs it)",
    ),
    "chromium": (
        lambda: bool(shutil.which("chromium")),
        "Debian's chromium (make system-deps installs it)",
    ),
    "ray": (
        lambda: bool(shutil.which("ray")),
        "the ray extra: pip install -e '.[ray]' (make test-slow installs it)",
    ),
    "qemu": (
        lambda: bool(shutil.which("qemu-aarch64-static") and shutil.which("debootstrap")),
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
