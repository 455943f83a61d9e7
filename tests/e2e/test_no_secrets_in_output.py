"""No key, connection string or token the emulator issued appears in any log, answer or output."""

import json
import logging
import subprocess
import sys

import pytest


@pytest.fixture
def every_log_line():
    """Capture everything every logger writes, at DEBUG, SDKs included."""
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))
            lines.append(json.dumps({k: str(v) for k, v in record.__dict__.items()}))

    handler = Collect(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(previous)


def test_no_issued_secret_appears_anywhere(world, subprocess_env, every_log_line):
    host = world.host()
    outputs = []
    world.admin.configure(propagationFailures=1)
    world.admin.add_fault({"service": "vault", "operation": "setSecret", "status": 500, "count": 3})
    host.run_timer("scheduled_rotation")
    host.process_queues()
    response = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, "force": True}))
    outputs.append(response.get_body().decode())
    host.process_queues()
    outputs.append(host.call_http("targets", "GET", "/api/targets").get_body().decode())
    for args in (["rotate", "--force", "--json"], ["status", "--json"], ["status"], ["rotate", "--dry-run"]):
        done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", *args], env=subprocess_env,
                              capture_output=True, text=True, timeout=120)
        outputs += [done.stdout, done.stderr]
    text = "\n".join(outputs + every_log_line)
    issued = world.admin.issued()
    values = [v for kind in ("keys", "tokens", "secretValues") for v in issued[kind]]
    assert len(issued["keys"]) >= 4 and issued["tokens"]
    assert world.regenerations()["primary"] == 1  # the forced rotation ran
    leaked = [value[:6] + "..." for value in values if value and value in text]
    assert leaked == []
