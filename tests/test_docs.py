"""What a newcomer reads: the reference in docs/reference/, generated from the code and never
stale, and `make help`, which lists every target of the Makefile."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers.cli import ROOT

REFERENCE = ROOT / "docs" / "reference"


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


def test_the_reference_is_what_the_code_generates_run_make_docs_when_this_fails(tmp_path):
    """docs/reference/ is generated from results.py, the schemas and conf/ (scripts/gen_docs.py,
    `make docs`); a name, key, default, check or description changed in the code without
    regenerating, or a name of the contract without a description, fails here."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ["config.md", "results.md"]
    stale = [
        name
        for name in made
        if not (REFERENCE / name).exists()
        or (REFERENCE / name).read_text() != (tmp_path / name).read_text()
    ]
    assert not stale, f"docs/reference/{', '.join(stale)} differ from the code: run make docs"
    assert sorted(p.name for p in REFERENCE.iterdir()) == made, "a page no code generates"


def test_the_reference_names_every_key_and_every_name_of_the_contract():
    """Spot checks that would be wrong if the generator were: a schema default, a check's valid
    values, a description from the field's comment, an option; the variants' measures."""
    config = (REFERENCE / "config.md").read_text()
    row = next(line for line in config.splitlines() if line.startswith("| `prune.sparsity` |"))
    assert "| `0.5` | float | floats in [0, 1) (0 = no pruning) | target fraction" in row
    assert "`+debug=tiny`" in config and "`benchmark.images=5`" in config
    assert "`device=rpi4`" in config and "`host=raspberrypi.local`" in config
    results = (REFERENCE / "results.md").read_text()
    for name in ("`<variant>/latency_<statistic>_ms`", "`latency_p50_ms`", "`timed_on/<variant>`"):
        assert name in results
