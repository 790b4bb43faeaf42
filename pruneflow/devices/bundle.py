"""What an SSH device is sent: one tar of the runner (and its power sampler beside it), the
models and the images, and the sha256 of every file in it, checked on the device before the
runner runs."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from pruneflow.devices.base import BESIDE, RUNNER, RUNNER_NAME


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundle(models: list[Path], images_dir: Path) -> dict[str, bytes]:
    """Files to ship: a tar of runner, models and images, and its sha256 list."""
    buf = io.BytesIO()
    sums = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entries = [(RUNNER, RUNNER_NAME), *((f, f.name) for f in BESIDE)]  # and what it loads
        entries += [(m, f"models/{m.name}") for m in models]
        entries += [
            (p, f"images/{p.relative_to(images_dir)}")
            for p in sorted(Path(images_dir).rglob("*"))
            if p.is_file()
        ]
        for path, arcname in entries:
            tar.add(path, arcname=arcname)
            sums.append(f"{sha256(path)}  {arcname}")
    return {"bundle.tar": buf.getvalue(), "SHA256SUMS": ("\n".join(sums) + "\n").encode()}
