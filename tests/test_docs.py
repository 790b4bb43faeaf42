"""What a newcomer reads: `make help` lists every target of the Makefile."""

from __future__ import annotations

import re
import subprocess

from helpers.cli import ROOT


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_help_lists_every_target_with_what_it_does_and_a_bare_make_is_help():
    targets = re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M)
    proc = _make("help")
    assert proc.returncode == 0, proc.stderr
    listed = dict(re.findall(r"^  make (\S+) +(\S.*)$", proc.stdout, re.M))
    assert sorted(listed) == sorted(targets), "a target without a `## ` description"
    assert listed["run"].startswith("the quick start")
    # a bare `make` starts nothing (it ran the quick start's sweep): it is the list
    assert _make().stdout == proc.stdout
