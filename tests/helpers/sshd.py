"""A private OpenSSH server on 127.0.0.1 for tests and benchmarks of the SSH device path (not
part of the installed package).

Everything lives in one folder: its own sshd_config, host key, a client key allowed in its
authorized_keys, a known_hosts file naming its host key, and its pid file. Nothing touches the
user's ``~/.ssh`` or the system's sshd. Needs Debian's ``openssh-server`` (``make test``
installs it).
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from pathlib import Path

from helpers.machine import system_tool

SSHD = system_tool("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    """A new passphrase-less ed25519 key pair at ``path`` and ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pruneflow-test", "-f", str(path)],
        check=True,
    )
    return path


class PrivateSSHD:
    """``with PrivateSSHD(folder) as sshd:`` runs sshd on ``sshd.port`` until the block ends.

    ``sshd.device_overrides()`` gives the pruneflow overrides that reach it as ``device=ssh``.
    """

    def __init__(self, folder: str | os.PathLike, port: int | None = None):
        self.dir = Path(folder)
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.proc: subprocess.Popen | None = None

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def __enter__(self) -> PrivateSSHD:
        if not os.path.exists(SSHD):
            raise RuntimeError("sshd not found: install Debian's openssh-server (`make test` does)")
        self.dir.mkdir(parents=True, exist_ok=True)
        keygen(self.host_key)
        keygen(self.client_key)
        (self.dir / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        algo, key = self.host_key.with_suffix(".pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {algo} {key}\n")
        config = self.dir / "sshd_config"
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
        ]
        config.write_text("\n".join(lines) + "\n")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation folder
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("sshd did not start listening within 10 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def device_options(self, **extra) -> dict:
        """Options of an SSH device that reaches this server."""
        return {
            "name": "ssh",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "key_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "venv": None,  # never a venv of this machine's user: tests name their own
            **extra,
        }

    def device_overrides(self, **extra) -> list[str]:
        """The same as command-line overrides: ``device=ssh device.host=...``."""
        return [
            "device=ssh",
            *(
                f"device.{k}={'null' if v is None else v}"
                for k, v in self.device_options(**extra).items()
                if k != "name"
            ),
        ]

    def device_config(self, **extra):
        """The same as the ``device`` section of a composed config (an SSHDeviceConfig)."""
        from pruneflow.devices.config import SSHDeviceConfig

        return SSHDeviceConfig(**self.device_options(**extra))
