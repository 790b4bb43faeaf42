"""The README's quick start and `make`'s choice of python, as a user meets them: in a venv,
outside one, with Debian's own /usr/bin/python3 (which refuses pip outside a venv, PEP 668) and
on a stock Debian 12 without python3-venv.

The clones are of the checkout's HEAD: what a fresh clone has (uncommitted changes are not in it).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers.cli import ROOT, clean_env, read_runs

DEBIAN_PYTHON = "/usr/bin/python3"
# A root shell's PATH on Debian 12: python3 there is Debian's.
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What would steer make or python from the environment these tests run in (a `make test` that
# runs them passes its own flags and command-line variables down in MAKEFLAGS).
STEERING = {"VIRTUAL_ENV", "PYTHON", "BASE_PYTHON", "SWEEP", "PYTHONPATH", "PYTHONHOME"}

needs_debian_python = pytest.mark.skipif(
    not os.path.exists(DEBIAN_PYTHON), reason="needs Debian's /usr/bin/python3"
)


def user_env(path: str = DEBIAN_PATH, **extra: str) -> dict[str, str]:
    """A user's environment: this one (pip's settings included) without make's or a venv's
    variables, PATH as given."""
    env = {
        k: v
        for k, v in clean_env().items()
        if k not in STEERING and not k.startswith(("MAKE", "MFLAGS", "PYTEST_"))
    }
    return {**env, "PATH": path, **extra}


def activated(venv_dir: Path, **extra: str) -> dict[str, str]:
    """The environment after `. VENV/bin/activate`."""
    return user_env(f"{venv_dir}/bin:{DEBIAN_PATH}", VIRTUAL_ENV=str(venv_dir), **extra)


def make(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120):
    return subprocess.run(
        ["make", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def make_python(env: dict[str, str], *args: str) -> str:
    """The python `make` picks in this checkout (print-python runs nothing else)."""
    proc = make(["-s", "print-python", *args], ROOT, env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def clone_head(dest: Path) -> Path:
    """A fresh clone of the checkout at its HEAD."""
    if not (ROOT / ".git").exists():
        pytest.skip("the checkout is not a git repository")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", head], check=True)
    return dest


def quick_start() -> list[str]:
    """The README's quick-start commands, in order: every bash block of that section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_the_quick_start_is_two_one_line_commands_run_and_test():
    commands = quick_start()
    assert len(commands) == 2 and not any("\n" in c for c in commands), commands
    assert commands[1] == "make test"
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("\nmake test")  # CI runs the same


def test_make_uses_the_active_venv_else_its_own(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir)  # no pip: only its python is asked
    # an activated venv
    assert make_python(activated(env_dir)) == f"{env_dir}/bin/python"
    # a venv's python3 first on PATH, not activated
    assert make_python(user_env(f"{env_dir}/bin:{DEBIAN_PATH}")) == f"{env_dir}/bin/python3"
    # outside any venv: the checkout's .venv (made from python3 by the targets that need it),
    # whether python3 is Debian's or another one (this interpreter's base, e.g. pyenv's)
    if os.path.exists(DEBIAN_PYTHON):
        assert make_python(user_env()) == ".venv/bin/python"
    base = tmp_path / "bin"
    base.mkdir()
    (base / "python3").symlink_to(os.path.realpath(sys.executable))
    assert make_python(user_env(f"{base}:{DEBIAN_PATH}")) == ".venv/bin/python"
    # named on the command line
    assert make_python(activated(env_dir), "PYTHON=/opt/py/bin/python") == "/opt/py/bin/python"


@needs_debian_python
def test_make_venv_makes_the_checkouts_venv_from_debians_python3(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    proc = make(["venv"], tmp_path, user_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"make: creating the venv .venv with {DEBIAN_PYTHON} 3." in proc.stdout
    cfg = (tmp_path / ".venv" / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", cfg, re.M), cfg
    pip = subprocess.run(
        [tmp_path / ".venv" / "bin" / "python", "-m", "pip", "--version"],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0 and str(tmp_path / ".venv") in pip.stdout, pip.stderr
    again = make(["venv"], tmp_path, user_env())  # made once
    assert again.returncode == 0 and "creating the venv" not in again.stdout


@pytest.mark.slow
@needs_debian_python
def test_the_readme_quick_start_with_debians_python3_then_make_test_in_its_venv(tmp_path):
    run, test = quick_start()
    clone = clone_head(tmp_path / "pruneflow")
    env = user_env()
    try:
        # What the README's first command was, `pip install -e . && ...`, meets on Debian.
        old = subprocess.run(
            ["python3", "-m", "pip", "install", "-e", "."],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
        assert old.returncode != 0
        if "No module named pip" not in old.stderr:  # Debian's python3-pip is installed
            assert "externally-managed-environment" in old.stderr, old.stderr

        proc = subprocess.run(
            ["bash", "-c", run], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"make: creating the venv .venv with {DEBIAN_PYTHON} 3." in proc.stdout
        assert f"make: the pruneflow command is {clone}/.venv/bin/pruneflow" in proc.stdout
        _, runs = read_runs(clone)
        assert sorted(r.data.params["prune.sparsity"] for r in runs) == ["0.25", "0.5", "0.9"]
        assert all(r.info.status == "FINISHED" for r in runs)
        assert (
            subprocess.run(
                ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True
            ).stdout
            == ""
        )  # everything it wrote is git-ignored

        # The test command in that venv, activated, on the install tests only (a wheel in a
        # fresh venv: the point that failed in a venv).
        env = activated(clone / ".venv", PYTEST_ADDOPTS="tests/test_install.py")
        proc = subprocess.run(
            ["bash", "-c", test], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"{clone}/.venv/bin/python -m pytest" in proc.stdout
        assert re.search(r"\b2 passed\b", proc.stdout), proc.stdout[-2000:]
    finally:
        shutil.rmtree(clone / ".venv", ignore_errors=True)  # 2.6 GB


def debian_mirror() -> str:
    """$DEBIAN_MIRROR, else the first Debian archive of this machine's apt sources."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for line in Path(path).read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        for line in Path(path).read_text().splitlines() if os.path.exists(path) else []:
            words = line.split()
            if words[:1] == ["deb"] and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    pytest.fail("no Debian archive in /etc/apt/sources.list*: set DEBIAN_MIRROR")


@pytest.mark.slow
def test_make_installs_python3_venv_on_a_stock_debian_12(tmp_path):
    """A minimal Debian 12 root (python3 and make, as debootstrap installs them: no
    python3-venv), `make venv` in a clone inside it, run by chroot."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root")
    assert shutil.which("debootstrap"), "apt-get install debootstrap (make test-slow does)"
    root = tmp_path / "debian"
    try:
        boot = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,make", "bookworm"]
            + [str(root), debian_mirror()],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert boot.returncode == 0, boot.stdout[-3000:] + boot.stderr[-3000:]
        clone_head(root / "root" / "pruneflow")

        def inside(command: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["chroot", str(root), "/usr/bin/env", "-i", f"PATH={DEBIAN_PATH}"]
                + ["HOME=/root", "/bin/sh", "-c", f"cd /root/pruneflow && {command}"],
                capture_output=True,
                text=True,
                timeout=600,
            )

        # the stock python3 cannot make a venv
        bare = inside("python3 -m venv /tmp/venv")
        assert bare.returncode != 0 and "python3-venv" in bare.stdout + bare.stderr, bare
        made = inside("make venv")
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
        assert "installing python3-venv with apt-get" in made.stdout
        assert f"make: creating the venv .venv with {DEBIAN_PYTHON} 3.11" in made.stdout
        assert inside(".venv/bin/python -m pip --version").returncode == 0
        assert inside("make -s print-python").stdout.strip() == ".venv/bin/python"
    finally:
        shutil.rmtree(root, ignore_errors=True)
