"""Azurite (the Azure Storage emulator, from npm) started on free ports, in memory, for tests and the demo."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# Azurite's published development account and key: public, documented, and valid only against Azurite.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Azurite:
    def __init__(self, root: str | Path = ".") -> None:
        binary = Path(root) / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            found = shutil.which("azurite")
            if not found:
                raise FileNotFoundError(f"{binary} is missing: run `make test` or `npm ci` first")
            binary = Path(found)
        self.binary = binary
        self.ports = {"blob": _free_port(), "queue": _free_port(), "table": _free_port()}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        endpoints = ";".join(
            f"{service.title()}Endpoint=http://127.0.0.1:{port}/{ACCOUNT}" for service, port in self.ports.items()
        )
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};{endpoints};"

    def start(self, timeout: float = 30.0) -> Azurite:
        command = [
            str(self.binary), "--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--loose",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.ports["blob"]),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.ports["queue"]),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.ports["table"]),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        env={**os.environ, "AZURITE_ACCOUNTS": ""})
        deadline = time.monotonic() + timeout
        for port in self.ports.values():
            while not _listening(port):
                if self.process.poll() is not None:
                    raise RuntimeError(f"azurite exited: {self.process.stderr.read().decode()[-500:]}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"azurite did not listen on {port} within {timeout} s")
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Azurite shuts down at once on SIGINT
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
