"""`make demo`: the product end to end on this machine, with no Azure subscription.

Starts Azurite and the local Azure emulator, creates a Cosmos DB account like the original Azure China
script (GlobalDocumentDB, two regions), then follows the README's onboarding: a dry run refuses to guess
which key applications use, `adopt` publishes the key they use today, and then the real function app runs:
the timer enqueues, the worker takes the message from Azurite's queue and refuses to regenerate the key an
old application still signs with (the in-use guard, reading the data-plane logs), the application moves to
the published secret and the next run rotates, an HTTP request asks for another rotation and its status is
read back, and the operator CLI prints the targets. Events print as they happen. Everything started here
is stopped at the end.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cosmos_key_rotation.settings import DEFAULT_SCHEDULE  # noqa: E402
from local_azure import Emulator  # noqa: E402
from local_azure.azurite import Azurite  # noqa: E402

SUBSCRIPTION = "8a6e3f0c-1d2b-4c5e-9f70-a1b2c3d4e5f6"
RESOURCE_GROUP = "rg-docdb-demo"
ACCOUNT = "docdb-demo"
# The in-use guard looks this far back here (24 h in Azure), so that the demo sees a key fall out of use.
GUARD_WINDOW_SECONDS = 8.0
LEGACY_APP = "legacy-billing/1.0"


class Seen(logging.Handler):
    """Remembers the (event, errorCode) of every event, so the demo can check what happened."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None):
            self.events.append((record.event, getattr(record, "errorCode", None)))  # type: ignore[attr-defined]


class EventLines(logging.Formatter):
    """One short line per event: time, event name, message, and the properties worth a glance."""

    SHOWN = ("keyKind", "secretVersion", "durationMs", "outcome", "errorCode", "attempt", "forced")

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        event = getattr(record, "event", None)
        if event is None:
            return f"  {stamp}  {record.levelname:<18} {record.getMessage()}"
        props = " ".join(f"{k}={getattr(record, k)}" for k in self.SHOWN if hasattr(record, k))
        # An event's message starts with its name: print the name once, in its column.
        message = record.getMessage().removeprefix(event).strip()
        return f"  {stamp}  {event:<18} {message}   [{props}]"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cosmos-rotation-demo-") as state_dir:
        azurite = Azurite(ROOT)
        emulator = Emulator(Path(state_dir))
        step("starting Azurite (storage) and the local Azure emulator (identity, Resource Manager, "
             "Key Vault, Cosmos DB data plane)")
        azurite.start()
        emulator.start()
        try:
            return run(emulator, azurite)
        finally:
            step("stopping Azurite and the emulator")
            emulator.stop()
            azurite.stop()


def run(emulator: Emulator, azurite: Azurite) -> int:
    account = emulator.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP,
                                            name=ACCOUNT, locations=["chinaeast2", "chinanorth2"])
    # Slower than the tests, closer to Azure: a 2 s regeneration polled every second, and a new key
    # that the data plane refuses a few times while it "propagates".
    emulator.admin.configure(regenerationSeconds=2.0, pollRetryAfterMs=1000, propagationFailures=5)
    print(f"  account {account['id']}\n  data plane {account['documentEndpoint']}")
    env = {
        "IDENTITY_ENDPOINT": emulator.identity_endpoint,
        "IDENTITY_HEADER": emulator.identity_header,
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file),
        "AZURE_CLOUD": "AzureChinaCloud",
        "ARM_ENDPOINT": emulator.arm_url,
        "COSMOS_SUBSCRIPTION_ID": SUBSCRIPTION,
        "COSMOS_RESOURCE_GROUP": RESOURCE_GROUP,
        "COSMOS_ACCOUNT_NAME": ACCOUNT,
        "KEY_VAULT_URI": emulator.vault_url,
        "READONLY_SECRET_NAME": f"cosmos-{ACCOUNT}-readonly-connection-string",
        "AzureWebJobsStorage": azurite.connection_string,
        "VERIFY_TIMEOUT_SECONDS": "60",
        # The in-use guard: who used a key, from the account's data-plane logs in the emulator's workspace.
        "LOGS_ENDPOINT": emulator.logs_url,
        "KEY_USAGE_WORKSPACE_ID": emulator.workspace_id,
        "IN_USE_WINDOW_HOURS": str(GUARD_WINDOW_SECONDS / 3600),
    }
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "ROTATION_TARGETS"):
        os.environ.pop(name, None)
    os.environ.update(env)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(EventLines())
    logging.getLogger().addHandler(handler)
    seen = Seen()
    logging.getLogger().addHandler(seen)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("local_azure").setLevel(logging.WARNING)  # the emulator's request log

    import function_app
    from local_azure.functions_host import FunctionsHost

    host = FunctionsHost(function_app.app, azurite.connection_string, ROOT / "host.json", visibility_timeout=1)

    cli = [sys.executable, "-m", "cosmos_key_rotation"]
    step("python -m cosmos_key_rotation rotate --dry-run   (a new vault: which key do applications use?)")
    show(subprocess.run([*cli, "rotate", "--dry-run"], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                        timeout=120))
    step("python -m cosmos_key_rotation adopt --key-kind primary   (publish the key applications use today; "
         "nothing is regenerated)")
    show(subprocess.run([*cli, "adopt", "--key-kind", "primary"], cwd=ROOT, env=cli_env(), capture_output=True,
                        text=True, timeout=120))

    step(f"an old application ({LEGACY_APP}) still signs with the secondary key, copied into its config long ago")
    application_reads(emulator, account["documentEndpoint"], "secondary", LEGACY_APP)

    schedule = os.environ.get("ROTATION_SCHEDULE") or DEFAULT_SCHEDULE
    step(f"timer fires (ROTATION_SCHEDULE '{schedule}', UTC): one request per target goes on the queue")
    host.run_timer("scheduled_rotation")
    step("worker: the in-use guard asks the workspace who used the secondary key lately, and refuses, naming "
         "the client; nothing is regenerated")
    host.process_queues(timeout=120)

    step(f"the application moves to the published secret (the primary); {GUARD_WINDOW_SECONDS:g} s later "
         "(24 h in Azure) nothing has used the secondary within the window")
    time.sleep(GUARD_WINDOW_SECONDS)
    application_reads(emulator, account["documentEndpoint"], "primary", LEGACY_APP)
    step("timer fires again: the worker rotates the secondary key, which nothing uses (regeneration takes 2 s "
         "here; the new key is refused once while it 'propagates')")
    host.run_timer("scheduled_rotation")
    host.process_queues(timeout=120)

    step("POST /api/rotations {\"target\": \"docdb-demo\"} inside the cooldown: refused with 429")
    refused = host.call_http("request_rotation", "POST", "/api/rotations", body=json.dumps({"target": ACCOUNT}))
    print(f"  {refused.status_code} Retry-After={refused.headers.get('Retry-After')} {refused.get_body().decode()}")

    application_reads(emulator, account["documentEndpoint"], "primary", LEGACY_APP)
    step("POST /api/rotations with force: answered 202 at once, the rotation runs on the queue; the application "
         "has not re-read the secret yet, so the guard names it, and force rotates anyway")
    accepted = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": ACCOUNT, "force": True}))
    body = json.loads(accepted.get_body())
    print(f"  {accepted.status_code} Location: {accepted.headers['Location']}\n  {json.dumps(body)}")
    host.process_queues(timeout=120)

    step(f"GET /api/rotations/{body['id']}")
    status = host.call_http("rotation_status", "GET", f"/api/rotations/{body['id']}", route_params={"id": body["id"]})
    print(f"  {status.status_code} {json.dumps(json.loads(status.get_body()), indent=2)}".replace("\n", "\n  "))

    logging.getLogger().removeHandler(handler)
    logging.getLogger().removeHandler(seen)
    step("python -m cosmos_key_rotation status   (the operator's view: live key, last rotation, key ages)")
    done = subprocess.run([*cli, "status"], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    show(done)
    guarded = ("RotationFailed", "KeyStillInUse") in seen.events
    ok = json.loads(status.get_body()).get("status") == "succeeded" and done.returncode == 0 and guarded
    step("demo " + ("finished: every step succeeded" if ok else "FAILED"))
    return 0 if ok else 1


def application_reads(emulator: Emulator, endpoint: str, kind: str, agent: str) -> None:
    """An application reading the account with one of its keys (the real Cosmos SDK); the emulator's data plane
    logs each request with the key that signed it, as Cosmos DB's diagnostic setting does."""
    from azure.cosmos import CosmosClient

    with CosmosClient(endpoint, credential=emulator.account_keys(ACCOUNT)[kind], user_agent_suffix=agent) as client:
        for _ in range(3):
            list(client.list_databases())
    print(f"  {agent} read the account 3 times with the {kind} key")


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def show(done: subprocess.CompletedProcess[str]) -> None:
    """A CLI run: its answer, then the exit code; its JSON-lines events on stderr are left out here."""
    print("  " + done.stdout.replace("\n", "\n  ").rstrip())
    print(f"  (exit code {done.returncode})")
    if done.returncode == 2:
        print(done.stderr, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
