"""The tests' own view of the machine (tests/helpers/machine.py): what a test needs is found
the way the code that uses it finds it, whatever PATH a cron job or `env -i` gives (issue #26,
items 17 and 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.machine import system_tool

HELPERS = Path(__file__).resolve().parent


def _in_bare_path(code: str) -> str:
    """``code`` run by this Python with the PATH of cron or ``env -i``: /usr/bin:/bin."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(HELPERS)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_system_programs_are_found_outside_path():
    found = _in_bare_path("from helpers.machine import system_tool; print(system_tool('runuser'))")
    if os.path.exists("/usr/sbin/runuser"):
        assert found == "/usr/sbin/runuser"
    assert system_tool("no-such-program-pruneflow") is None


def test_a_need_is_the_same_with_a_bare_path():
    """sshd and runuser live in /usr/sbin: a bare PATH must not make them look missing."""
    code = "from helpers.machine import missing; print(sorted(missing('sshd', 'postgres')))"
    env_full = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(HELPERS)},
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    assert _in_bare_path(code) == env_full
