"""Issue #26's figure: how long each failure takes to be reported, as a user meets it.

Each case runs the installed `pruneflow` console script in a fresh folder (the tests' tiny
budget, `+debug=tiny`), ROUNDS times, and records the wall time from start to exit, the exit
status, whether standard error holds one `pruneflow: error:` line (or the case's own line) and
no traceback. The store cases (a server killed mid-sweep, a full disk, a corrupt store) need
what the tests need: `mlflow`, root for the tmpfs. Writes bench/results/failures.json and prints
a Markdown table for BENCHMARKS.md.

    python bench/failures.py [ROUNDS] [CASE ...]
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.cli import TINY, clean_env, outputs_to, pruneflow_command  # noqa: E402

HERE = Path(__file__).resolve().parent


def _run(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 900):
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*pruneflow_command(), *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0, proc


def _tiny(work: Path) -> list[str]:
    return [*TINY, *outputs_to(work)]


def case_seed(work: Path):
    return _run(["seed=-1", *_tiny(work)], work)


def case_sweep_seed(work: Path):
    return _run(["-m", "seed=1,-1", *_tiny(work)], work)


def case_clusters(work: Path):
    return _run(["cluster.clusters=2", *_tiny(work)], work)


def case_learning_rate(work: Path):
    return _run(["train.learning_rate=inf", *_tiny(work)], work)


def case_env(work: Path):
    return _run(["prune.sparsity=${oc.env:PRUNEFLOW_NO_SUCH_VARIABLE}", *_tiny(work)], work)


def case_non_ascii(work: Path):
    return _run(["tracking.experiment=café", *_tiny(work)], work)


def case_unknown_command(work: Path):
    return _run(["reprot"], work)


def case_no_variants(work: Path):
    return _run(["stage.variants=[]", *_tiny(work)], work)


def case_link_loop(work: Path):
    data = work / "data"
    for c in ("c0", "c1"):
        (data / c).mkdir(parents=True)
        from PIL import Image

        for i in range(10):
            Image.new("RGB", (16, 16), (i * 20, 0, 0)).save(data / c / f"{i}.png")
    (data / "loopcls").symlink_to(".")
    (data / "c0" / "up").symlink_to("..")
    return _run(["dataset=folder", f"dataset.root={data}", *_tiny(work)], work)


def case_lock_link(work: Path):
    shared = work / "tmp"
    shared.mkdir()
    (work / "secret").write_text("private")
    (shared / "pruneflow-timing.lock").symlink_to(work / "secret")
    return _run(_tiny(work), work, env={**clean_env(), "TMPDIR": str(shared)})


def case_closed_port(work: Path):
    from helpers.sshd import free_port

    return _run([f"tracking.uri=http://127.0.0.1:{free_port()}", *_tiny(work)], work)


def _corrupt_store(work: Path) -> None:
    (work / "mlruns").mkdir()
    (work / "mlruns" / "mlflow.db").write_bytes(os.urandom(64 * 1024))


def case_corrupt_store_run(work: Path):
    _corrupt_store(work)
    return _run(["train.epochs=1"], work)


def case_corrupt_store_report(work: Path):
    _corrupt_store(work)
    return _run(["report", "--all"], work)


def case_corrupt_store_ui(work: Path):
    from helpers.sshd import free_port

    _corrupt_store(work)
    return _run(["ui", "--port", str(free_port())], work, timeout=120)


def case_full_disk(work: Path):
    if os.geteuid() != 0:
        raise RuntimeError("needs root (a tmpfs)")
    small = work / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(small)], check=True)
    try:  # 3 MiB left: the store is made, a run's files are not (as the test does)
        subprocess.run(["fallocate", "-l", "27M", str(small / "filler")], check=True)
        return _run(["-m", "prune.sparsity=0.5,0.7", *TINY], small)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def case_server_killed(work: Path):
    """A real `mlflow server` killed while job 1 of a 3-job sweep trains; the figure is the
    time from the kill to the sweep's exit."""
    from helpers.servers import MlflowServer

    with MlflowServer(work / "server") as server:
        proc = subprocess.Popen(
            [
                *pruneflow_command(),
                "-m",
                "prune.sparsity=0.5,0.7,0.9",
                f"tracking.uri={server.uri}",
                *TINY,
                f"hydra.sweep.dir={work / 'multirun'}",
                f"paths.cache_dir={work / 'cache'}",
            ],
            cwd=work,
            env=clean_env(),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not list((work / "multirun").glob("1/*.log")):
            time.sleep(0.5)
        time.sleep(2)
        os.killpg(server.proc.pid, signal.SIGKILL)  # the server dies, all its workers
        t0 = time.perf_counter()
        try:
            _, err = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
        wall = time.perf_counter() - t0
    return wall, subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


CASES: dict[str, Callable] = {
    "seed=-1": case_seed,
    "-m seed=1,-1": case_sweep_seed,
    "cluster.clusters=2 (pruned)": case_clusters,
    "train.learning_rate=inf": case_learning_rate,
    "${oc.env:MISSING}": case_env,
    "non-ASCII unquoted value": case_non_ascii,
    "pruneflow reprot": case_unknown_command,
    "stage.variants=[]": case_no_variants,
    "symlink loops in dataset.root": case_link_loop,
    "timing lock planted as a link": case_lock_link,
    "tracking server on a closed port": case_closed_port,
    "corrupt store: a run": case_corrupt_store_run,
    "corrupt store: report": case_corrupt_store_report,
    "corrupt store: ui": case_corrupt_store_ui,
    "full disk (30 MB tmpfs), a sweep": case_full_disk,
    "mlflow server killed mid-sweep (from the kill)": case_server_killed,
}


def _one_line(stderr: str) -> bool:
    """One error line (``pruneflow: error:``, ``pruneflow report: error:``) and no traceback;
    a sweep may add the line of the parent run it could not end."""
    said = [line for line in stderr.splitlines() if line.startswith("pruneflow")]
    errors = [line for line in said if re.match(r"pruneflow( \w+)?: error: ", line)]
    return len(errors) == 1 and len(said) <= 2 and "Traceback" not in stderr


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv and argv[0].isdigit() else 3
    wanted = [a for a in argv[1:]] or list(CASES)
    rows = []
    for name in wanted:
        walls, statuses, lines, last = [], set(), set(), ""
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="pruneflow-fail.") as tmp:
                wall, proc = CASES[name](Path(tmp))
            walls.append(wall)
            statuses.add(proc.returncode)
            lines.add(_one_line(proc.stderr))
            err = [ln for ln in proc.stderr.splitlines() if " error: " in ln]
            last = err[-1] if err else proc.stderr.strip().splitlines()[-1:]
        rows.append(
            {
                "case": name,
                "min_s": min(walls),
                "median_s": statistics.median(walls),
                "max_s": max(walls),
                "exit": sorted(statuses),
                "one_line": lines == {True},
                "message": last if isinstance(last, str) else " ".join(last),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = HERE / "results" / "failures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print("\n| failure | reported in (min / median / max s) | exit | one line |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['min_s']:.1f} / {r['median_s']:.1f} / {r['max_s']:.1f} "
            f"| {','.join(map(str, r['exit']))} | {'yes' if r['one_line'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
