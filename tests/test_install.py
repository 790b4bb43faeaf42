"""The package as users install it: a wheel (configs inside), in a fresh venv, run by its
console script from a folder outside the checkout."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from helpers.cli import ROOT, TINY, clean_env, read_runs
from pruneflow import results


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # A copy of what the package is made of, so that the build neither writes into the
    # checkout nor picks up a stale build/ folder there.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("pruneflow", "conf"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    # The build backend of this environment (setuptools, a test dependency): no download.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("pruneflow-*.whl")
    return path


def fresh_venv_seeing_this_environment(env_dir: Path) -> Path:
    """A new venv that sees the packages of the environment these tests run in (TensorFlow
    etc.: whether that is a venv, a pyenv Python or Debian's), and installs pruneflow itself
    from the wheel. Its python.

    ``system_site_packages`` would not do: it sees the *base* interpreter's packages, not those
    of a venv the tests run in. A ``.pth`` file of path lines puts this environment's
    site-packages after the venv's own; path lines do not run that folder's own ``.pth`` files,
    so an editable install of pruneflow there (a finder from the checkout) stays out."""
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    own = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    outer = site.getsitepackages()
    if site.ENABLE_USER_SITE:
        outer.append(site.getusersitepackages())
    (Path(own) / "outer-environment.pth").write_text("".join(f"{p}\n" for p in outer))
    return py


def test_the_wheel_carries_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.glob("conf/**/*.yaml"):
        assert f"pruneflow/conf/{path.relative_to(ROOT / 'conf')}" in names, path
    assert "pruneflow/conf/__init__.py" in names
    for init in ROOT.glob("pruneflow/**/__init__.py"):  # every package of the code, too
        assert str(init.relative_to(ROOT)) in names, init
    assert not any(n.startswith(("tests/", "helpers/")) for n in names)  # test code stays out


def test_a_wheel_in_a_fresh_venv_runs_from_any_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    py = fresh_venv_seeing_this_environment(env_dir)
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "an empty folder"
    work.mkdir()
    where = subprocess.run(
        [py, "-c", "import pruneflow, pruneflow.conf; print(pruneflow.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(env_dir)), where  # the wheel's copy, not the checkout's
    proc = subprocess.run(
        [env_dir / "bin" / "pruneflow", "prune.sparsity=0.5", *TINY],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # every output under the folder it ran in
    assert {p.name for p in work.iterdir()} == {"outputs", "mlruns", ".pruneflow_cache"}
    _, (run,) = read_runs(work)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for variant in (
        results.KERAS,
        "tflite_fp32",
        "tflite_dynamic",
        "tflite_float16",
        "tflite_int8",
    ):
        for measure in results.VARIANT_MEASURES:
            assert results.metric(variant, measure) in metrics, (variant, measure)
