"""Device stage: run the self-contained device runner where the config says, fetch its result.

``device=local`` runs ``device_runner.py`` in a subprocess on this machine, the same file and
command line that a remote device runs, so local and remote numbers come from one code path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).with_name("device_runner.py")


class DeviceError(RuntimeError):
    """A device step failed; the message names the device and the step."""


def run_local(
    models: list[Path],
    images_dir: Path,
    out_json: Path,
    delegate: dict,
    *,
    python: str | None = None,
    timeout_s: float = 600.0,
) -> dict:
    """Time ``models`` on this machine; returns the runner's JSON document.

    Writes the runner's result to ``out_json``.
    """
    cmd = [
        python or sys.executable,
        str(RUNNER),
        "--images",
        str(images_dir),
        "--out",
        str(out_json),
        "--delegate",
        json.dumps(delegate),
        *map(str, models),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise DeviceError(f"device local: runner timed out after {timeout_s} s") from exc
    except OSError as exc:
        raise DeviceError(f"device local: cannot start the runner with {cmd[0]!r}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise DeviceError(f"device local: runner exited {proc.returncode}:\n{tail}")
    return json.loads(Path(out_json).read_text())
