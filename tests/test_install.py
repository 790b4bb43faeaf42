"""The package as users install it: a wheel (configs inside), in a fresh venv, run by its
console script from a folder outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile

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


def test_the_wheel_carries_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.glob("conf/**/*.yaml"):
        assert f"pruneflow/conf/{path.relative_to(ROOT / 'conf')}" in names, path
    assert "pruneflow/conf/__init__.py" in names
    assert not any(n.startswith(("tests/", "helpers/")) for n in names)  # test code stays out


def test_a_wheel_in_a_fresh_venv_runs_from_any_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # The venv sees this environment's packages (TensorFlow etc.) but installs pruneflow itself
    # from the wheel, with nothing from the checkout.
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py = env_dir / "bin" / "python"
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
