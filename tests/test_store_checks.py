"""The store and the folders are checked before any work (issue #15): an unreachable tracking
server, a read-only tracking.dir or paths.cache_dir, a cache_dir that is a file each fail in one
line naming the URI or the key, before training and before any MLflow run; a new sqlite store
survives two processes creating it together."""

from __future__ import annotations

import socket
import subprocess

import pytest

from helpers.cli import TINY, outputs_to, pruneflow_command, read_runs, run_cli, started_together
from helpers.servers import MlflowServer
from helpers.sshd import free_port
from pruneflow.tracking.runs import prepare_store
from pruneflow.tracking.store import TrackingError, check_server

# a check that waits for minutes would still pass a test without a limit: a generous one
LIMIT_S = 180


def console(args: list[str], cwd) -> subprocess.CompletedProcess:
    return run_cli(args, cwd=cwd, timeout=LIMIT_S, command=pruneflow_command())


def only_line(result: subprocess.CompletedProcess) -> str:
    """The one line on standard error (and no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def dead_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_a_run_on_an_unreachable_server_fails_in_one_line(tmp_path):
    uri = dead_uri()
    result = console([f"tracking.uri={uri}", *TINY, *outputs_to(tmp_path)], tmp_path)
    assert result.returncode == 1, result.stderr
    assert only_line(result) == (
        f"pruneflow: error: the MLflow tracking server {uri} does not answer "
        "(Connection refused): start it, or set tracking.uri"
    )
    assert not (tmp_path / "outputs" / "models").exists()  # nothing was trained


def test_a_sweep_on_an_unreachable_server_fails_before_job_0(tmp_path):
    uri = dead_uri()
    result = console(
        ["-m", "prune.sparsity=0.5,0.6", f"tracking.uri={uri}", *TINY, *outputs_to(tmp_path)],
        tmp_path,
    )
    assert result.returncode == 1, result.stderr
    line = only_line(result)
    assert line.startswith("pruneflow: error: the MLflow tracking server ") and uri in line
    assert not list(tmp_path.glob("multirun/*"))  # no job folder


@pytest.mark.parametrize("command", ["report", "ui"])
def test_report_and_ui_on_an_unreachable_server_fail_in_one_line(tmp_path, command):
    uri = dead_uri()
    result = console([command, "--tracking-uri", uri], tmp_path)
    assert result.returncode == 1, result.stderr
    assert only_line(result) == (
        f"pruneflow {command}: error: the MLflow tracking server {uri} does not answer "
        "(Connection refused): start it, or pass --tracking-uri"
    )


def test_a_server_that_accepts_but_never_answers_is_named_after_the_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(TrackingError) as err:
            check_server(uri, timeout=0.5)
    assert str(err.value) == (
        f"the MLflow tracking server {uri} does not answer (no answer within 0.5 s): start it, "
        "or set tracking.uri"
    )


def test_a_server_that_is_up_passes_the_check_and_serves_runs(tmp_path):
    with MlflowServer(tmp_path / "server") as server:
        check_server(server.uri)
        assert prepare_store(server.uri, "exp", tmp_path / "unused")


# slow: test_sweeps.py's two sweeps started in one second share one new store and both finish
@pytest.mark.slow
def test_two_runs_started_together_on_an_empty_folder_both_finish(tmp_path):
    for attempt in range(2):
        cwd = tmp_path / f"try{attempt}"
        cwd.mkdir()
        argvs = [
            [
                *TINY,
                f"tracking.dir={cwd / 'mlruns'}",
                f"paths.cache_dir={cwd / f'cache{n}'}",  # each its own: only the store races
                "tracking.resume=false",  # both run (one config: the second would wait)
                f"hydra.run.dir={cwd / f'run{n}'}",
            ]
            for n in range(2)
        ]
        done = started_together(argvs, cwd, tmp_path / f"logs{attempt}")
        for p in done:
            assert p.returncode == 0, p.stderr[-3000:]
        _, runs = read_runs(cwd)
        assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]


def test_a_cache_dir_that_is_a_file_fails_in_one_line_naming_the_key(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("")
    result = console([*TINY, *outputs_to(tmp_path)], tmp_path)  # paths.cache_dir=<tmp>/cache
    assert result.returncode == 2, result.stderr
    assert only_line(result) == (
        f"pruneflow: error: paths.cache_dir={cache} is not a writable folder (it is a file)"
    )
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run, no store


def test_a_sweep_with_a_cache_dir_inside_a_file_fails_before_job_0(tmp_path):
    (tmp_path / "cache").write_text("")
    result = console(
        ["-m", "prune.sparsity=0.5,0.6", *TINY, *outputs_to(tmp_path), "paths.cache_dir=cache/x"],
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert only_line(result) == (
        "pruneflow: error: paths.cache_dir=cache/x is not a writable folder (cache is a file)"
    )
    assert not list(tmp_path.glob("multirun/*"))


@pytest.fixture
def read_only(tmp_path):
    """A real read-only file system mounted at ``tmp_path/ro``."""
    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.needs("root")
@pytest.mark.parametrize("key", ["tracking.dir", "paths.cache_dir"])
@pytest.mark.parametrize("inside", [False, True], ids=["the-mount", "a-new-folder-in-it"])
def test_a_read_only_folder_fails_in_one_line_naming_the_key(tmp_path, read_only, key, inside):
    folder = read_only / "sub" if inside else read_only
    result = console([*TINY, *outputs_to(tmp_path), f"{key}={folder}"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert only_line(result) == (
        f"pruneflow: error: {key}={folder} is not a writable folder (Read-only file system)"
    )
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run, no store
    assert not (tmp_path / "outputs" / "models").exists()
