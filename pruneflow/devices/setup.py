"""``pruneflow device setup``: a venv on an SSH device with the runner's packages (numpy,
Pillow, LiteRT), installed with the device's own pip and package index or from wheels shipped
from here (an offline device)."""

from __future__ import annotations

import shlex
from pathlib import Path

from pruneflow.devices.readiness import PIP_NAMES
from pruneflow.devices.ssh import SSHDevice, remote_path
from pruneflow.errors import require


def setup(dev: SSHDevice, wheels: Path | None = None, log=print) -> dict:
    """Make ``device.venv`` on the device (with its system packages visible: a Pi's apt
    numpy, Pillow or TensorFlow count) and install the runner's packages into it with the
    device's own pip and package index, or from the ``wheels`` folder shipped from here
    (an offline device). Returns the venv python's probe."""
    q = shlex.quote
    require(bool(dev.venv), "venv", dev.venv, "a folder on the device for the venv")
    venv = remote_path(dev.venv.rstrip("/"))
    base = " ".join(q(p) for p in shlex.split(dev.python))
    if not dev._venv_python("setup"):
        log(f"device {dev.name}: creating the venv {dev.venv} with {base}")
        has_venv = dev.conn.run(
            f"{base} -c 'import ensurepip, venv'", hide=True, warn=True, in_stream=False
        )
        if not has_venv.ok:
            raise dev._fail(
                "setup",
                f"{base} on the device cannot make a venv ({has_venv.stderr.strip()[-300:]}): "
                "`sudo apt install python3-venv` there",
            )
        result = dev.conn.run(
            f"mkdir -p {venv} && {base} -m venv --system-site-packages {venv}",
            hide=True,
            warn=True,
            in_stream=False,
        )
        if not result.ok:
            raise dev._fail(
                "setup",
                f"cannot create the venv at {dev.venv} "
                f"({(result.stderr or result.stdout).strip()[-500:]}); "
                "choose a folder you can write with device.venv=PATH",
            )
    packages = " ".join(q(p) for p in PIP_NAMES.values())
    source = ""
    if wheels is not None:
        files = sorted(Path(wheels).glob("*.whl"))
        if not files:
            raise dev._fail("setup", f"no .whl files in {wheels}")
        remote = dev._run("setup", "mktemp -d -t pruneflow-wheels.XXXXXX").stdout.strip()
        log(f"device {dev.name}: shipping {len(files)} wheels from {wheels}")
        for f in files:
            dev.conn.put(str(f), f"{remote}/{f.name}")
        source = f"--no-index --find-links {q(remote)} "
    log(f"device {dev.name}: installing {packages} into {dev.venv}")
    result = dev.conn.run(
        f"{venv}/bin/python -m pip install --disable-pip-version-check -q {source}{packages}",
        hide=True,
        warn=True,
        in_stream=False,
        timeout=dev.timeout_s,
    )
    if wheels is not None:
        dev.conn.run(f"rm -rf {q(remote)}", hide=True, warn=True, in_stream=False)
    if not result.ok:
        where = f"the wheels in {wheels}" if wheels else "the device's package index"
        raise dev._fail(
            "setup",
            f"pip could not install {packages} from {where}: "
            f"{(result.stderr or result.stdout).strip()[-800:]}",
        )
    dev._python = f"{venv}/bin/python"
    return dev.probe({})
