"""Lock files in shared folders (issue #26, item 2): the timing lock is a fixed name in the
temporary folder every user of the machine shares. Planted there as a link, a FIFO or a folder,
it must be refused, never followed, never made writable, never hung on."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import TINY, clean_env, outputs_to, pruneflow_command, read_runs, run_cli
from pruneflow.devices.locks import LOCK_FILE, device_lock_shell, timing_lock
from pruneflow.files import LockFileError, locked


def _secret(folder: Path) -> Path:
    target = folder / "secret"
    target.write_text("private\n")
    target.chmod(0o600)
    return target


def _untouched(target: Path) -> None:
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "private\n"


def test_the_timing_lock_refuses_a_planted_link_and_leaves_its_target_alone(tmp_path):
    target = _secret(tmp_path)
    (tmp_path / LOCK_FILE).symlink_to(target)
    with pytest.raises(LockFileError, match="is a symbolic link"), timing_lock(tmp_path):
        pass
    _untouched(target)
    dangling = tmp_path / "elsewhere"
    (tmp_path / LOCK_FILE).unlink()
    (tmp_path / LOCK_FILE).symlink_to(dangling)
    with pytest.raises(LockFileError, match="is a symbolic link"), timing_lock(tmp_path):
        pass
    assert not dangling.exists()  # a link to nothing makes nothing there either


def test_a_fifo_or_a_folder_as_the_lock_is_refused_at_once(tmp_path):
    """A FIFO opened for reading blocks until a writer comes: the open must not wait."""
    lock = tmp_path / LOCK_FILE
    os.mkfifo(lock)
    code = (
        "import sys; from pruneflow.devices.locks import timing_lock\n"
        "try:\n    with timing_lock(sys.argv[1]): pass\n"
        "except Exception as exc: print(type(exc).__name__, exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert "LockFileError" in proc.stdout and "not a plain file" in proc.stdout, proc
    lock.unlink()
    lock.mkdir()
    with pytest.raises(LockFileError), timing_lock(tmp_path):
        pass


def test_a_new_lock_is_readable_by_others_and_writable_by_nobody_else(tmp_path):
    old = os.umask(0o077)  # a private umask would lock other users out of a 0600 file
    try:
        with timing_lock(tmp_path):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / LOCK_FILE).stat().st_mode) == 0o644


def test_an_existing_lock_of_another_mode_is_used_as_it_is(tmp_path):
    """A lock pruneflow did not create keeps its mode (an older version's 0666 included)."""
    lock = tmp_path / LOCK_FILE
    lock.write_text("")
    lock.chmod(0o600)
    with timing_lock(tmp_path), pytest.raises(BlockingIOError):
        import fcntl

        with open(lock) as other:  # another job: the lock is held
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


@pytest.mark.needs("root")
def test_another_user_takes_a_lock_this_user_made():
    """The lock is read-only for others, and that is enough for them to take it (flock)."""
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # reachable by another user, unlike tmp_path
    try:
        shared.chmod(0o1777)  # a shared temporary folder
        old = os.umask(0o077)
        try:
            with locked(shared / "shared.lock", shared=True):
                pass
        finally:
            os.umask(old)
        flock = [shutil.which("flock") or "/usr/bin/flock", "-n", str(shared / "shared.lock")]
        proc = subprocess.run(
            [*flock, "-c", "echo held"], capture_output=True, text=True, user="nobody", timeout=60
        )
        assert proc.stdout.strip() == "held", proc.stderr
        denied = subprocess.run(  # but cannot write it
            ["sh", "-c", f"echo x >> {shared / 'shared.lock'}"], user="nobody", timeout=60
        )
        assert denied.returncode != 0
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _device_shell(tmp_path: Path, script: str, umask: str = "022"):
    """The device's own shell words (an SSH device runs them in its login shell) in bash here,
    with the device's temporary folder ``tmp_path``."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["bash", "-c", f"umask {umask}; {{ {device_lock_shell(9)}; }} && {script}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_device_shell_refuses_a_planted_link_and_makes_a_readable_lock(tmp_path):
    target = _secret(tmp_path)
    (tmp_path / LOCK_FILE).symlink_to(target)
    proc = _device_shell(tmp_path, "flock 9 && echo held")
    assert proc.returncode == 3 and "held" not in proc.stdout
    assert "is a symbolic link or not a plain file" in proc.stderr
    _untouched(target)
    (tmp_path / LOCK_FILE).unlink()
    proc = _device_shell(tmp_path, "flock 9 && echo held", umask="077")
    assert proc.returncode == 0 and proc.stdout.strip() == "held", proc.stderr
    assert stat.S_IMODE((tmp_path / LOCK_FILE).stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LOCK_FILE, "secret"])


def test_a_run_with_a_planted_lock_link_fails_in_one_line_before_any_run(tmp_path):
    """As a user would meet it: the console script with a shared temporary folder where
    someone planted the lock's name as a link to a private file."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    target = _secret(tmp_path)
    (shared / LOCK_FILE).symlink_to(target)
    env = {**clean_env(), "TMPDIR": str(shared)}
    proc = run_cli(
        [*TINY, *outputs_to(tmp_path)], tmp_path, command=pruneflow_command(), env=env, timeout=300
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    said = [line for line in proc.stderr.splitlines() if line.startswith("pruneflow")]
    assert said == [
        f"pruneflow: error: the lock file {shared / LOCK_FILE} is a symbolic link; pruneflow "
        "follows no link for its lock files (someone else's, or left over): remove it"
    ]
    _untouched(target)
    # refused before any run or work: no run, no baseline, nothing in the store
    assert not (tmp_path / "cache" / "baselines").exists()
    store = tmp_path / "mlruns" / "mlflow.db"
    if store.exists():
        _, runs = read_runs(tmp_path)
        assert runs == []
