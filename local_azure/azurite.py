"""Azurite (the Azure Storage emulator, from npm) started on free ports, in memory, for tests and the demo.

Blob requests reach Azurite through the storage front (``storage_front.py``), which answers as real Blob
Storage does where Azurite is kinder and injects faults; queues and tables go to Azurite directly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .faults import FaultRegistry
from .http import Listener
from .storage_front import StorageFront

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
        # Azurite's own ports; clients reach the blob one through the front, on front_port.
        self.ports = {"blob": _free_port(), "queue": _free_port(), "table": _free_port()}
        self.process: subprocess.Popen[bytes] | None = None
        # The front's fault rules (service "storage"); tests in this process add them with faults.add({...}).
        self.faults = FaultRegistry({"storage"})
        self._front: Listener | None = None
        self._front_service: StorageFront | None = None

    @property
    def front_port(self) -> int:
        """The storage front's port, chosen by the system when it starts (so no other process can take it)."""
        if self._front is None:
            raise RuntimeError("The storage front is not running: call start() first.")
        return self._front.port

    @property
    def connection_string(self) -> str:
        """Blob through the front, queue and table straight to Azurite (after start())."""
        ports = {**self.ports, "blob": self.front_port}
        endpoints = ";".join(
            f"{service.title()}Endpoint=http://127.0.0.1:{port}/{ACCOUNT}" for service, port in ports.items()
        )
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};{endpoints};"

    @property
    def direct_connection_string(self) -> str:
        """Every service straight to Azurite, bypassing the front (to compare with Azurite's own answers)."""
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
        self._front_service = StorageFront("127.0.0.1", self.ports["blob"], self.faults, ACCOUNT, ACCOUNT_KEY)
        try:
            self._front = Listener(self._front_service, "127.0.0.1", 0).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()
            self._front = None
        if self._front_service is not None:
            self._front_service.close()
            self._front_service = None
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
