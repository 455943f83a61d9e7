"""Many requests at once, as a fleet's rotations send them: a thread per connection, a listen backlog that takes a
burst of new connections, keep-alive connections released when clients close them."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from local_azure import Emulator

from .conftest import RESOURCE_GROUP, SUBSCRIPTION

API = {"api-version": "2026-03-15"}


def _path(name: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.DocumentDB" \
           f"/databaseAccounts/{name}"


def test_hundreds_of_concurrent_requests(emu: Emulator, arm_token: str) -> None:
    names = [f"docdb-{n:02d}" for n in range(40)]
    for name in names:
        emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, name)
    emu.admin.set_throttling(False)
    auth = {"Authorization": f"Bearer {arm_token}"}
    local = threading.local()

    def call(n: int) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        name = names[n % len(names)]
        if n % 40 == 0:  # meanwhile a regeneration on 15 of the accounts
            name = names[n // 40]
            answer = session.post(f"{emu.arm_url}{_path(name)}/regenerateKey", params=API, json={"keyKind": "primary"},
                                  headers=auth, verify=emu.ca_file, timeout=30)
            return 200 if answer.status_code in (202, 412) else answer.status_code
        return session.get(f"{emu.arm_url}{_path(name)}", params=API, headers=auth, verify=emu.ca_file,
                           timeout=30).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(call, range(600)))

    assert statuses == [200] * 600
    assert emu.admin.metrics()["arm"]["requests"] == 600
    time.sleep(0.3)  # regenerationSeconds is 0.2: every accepted regeneration has completed
    counts = [a["regenerationCounts"]["primary"] for a in emu.admin.state()["accounts"]]
    assert sum(counts) == 15 and set(counts) <= {0, 1}


def test_a_burst_of_new_connections_is_accepted_at_once(emu: Emulator) -> None:
    """With socketserver's default backlog of 5, part of such a burst waits for a SYN retransmission (1 s, then
    3 s): here every connection is established without one."""
    port = int(emu.arm_url.rsplit(":", 1)[1])
    start = threading.Barrier(200)
    times: list[float] = []
    sockets: list[socket.socket] = []
    lock = threading.Lock()

    def connect() -> None:
        start.wait()
        began = time.monotonic()
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        with lock:
            times.append(time.monotonic() - began)
            sockets.append(conn)

    threads = [threading.Thread(target=connect) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for conn in sockets:
        conn.close()

    assert len(times) == 200
    assert max(times) < 0.9


def test_keep_alive_connections_are_released_when_clients_close(emu: Emulator, arm_token: str) -> None:
    emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, "docdb-a")
    auth = {"Authorization": f"Bearer {arm_token}"}
    sessions = [requests.Session() for _ in range(50)]
    for session in sessions:
        assert session.get(f"{emu.arm_url}{_path('docdb-a')}", params=API, headers=auth, verify=emu.ca_file,
                           timeout=10).status_code == 200
    held = emu.admin.metrics()["connections"]["arm"]

    for session in sessions:
        session.close()
    deadline = time.monotonic() + 5
    while emu.connections()["arm"]["open"] > 0 and time.monotonic() < deadline:
        time.sleep(0.02)

    assert held["open"] >= 50 and held["peak"] >= 50  # (+ the admin client's own connection)
    assert emu.connections()["arm"]["open"] == 0
    assert emu.connections()["dataplane"] == {"listeners": 1, "open": 0, "peak": 0}


def test_stopping_many_listeners_is_quick(emu: Emulator) -> None:
    for n in range(60):
        emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, f"docdb-{n:02d}")
    started = time.monotonic()

    emu.reset()

    assert time.monotonic() - started < 2
    assert "dataplane" not in emu.connections()  # every account's listener is gone
