"""`make bench`: the product's speed and footprint, measured against the local emulator and Azurite.

Prints figures and ratios; asserts nothing. What it measures:

1. One rotation whose regeneration takes 3 s, with the SDK's default polling interval (30 s) against
   the product's (5 s), and with the service sending Retry-After: 1 (honoured by azure-core).
2. `rotate --all` over 8 targets, one at a time against the default concurrency of 4 and against 8.
3. Cold start: the time and memory to import function_app.py (the host does it at every cold start),
   against importing the SDK packages it defers.
4. The peak memory of a CLI process that rotates one target.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_azure import Emulator  # noqa: E402
from local_azure.azurite import Azurite  # noqa: E402

# The process's own peak resident memory. Not ru_maxrss: Linux carries that across exec from the parent.
PEAK_RSS_KIB = ("int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))")
SUBSCRIPTION = "3c9e1a2b-7d4f-4e6a-8b1c-2d3e4f5a6b7c"
GROUP = "rg-bench"


def environment(emulator: Emulator, azurite: Azurite, account: str) -> dict[str, str]:
    return {
        "IDENTITY_ENDPOINT": emulator.identity_endpoint, "IDENTITY_HEADER": emulator.identity_header,
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file), "ARM_ENDPOINT": emulator.arm_url,
        "COSMOS_SUBSCRIPTION_ID": SUBSCRIPTION, "COSMOS_RESOURCE_GROUP": GROUP, "COSMOS_ACCOUNT_NAME": account,
        "KEY_VAULT_URI": emulator.vault_url, "AzureWebJobsStorage": azurite.connection_string,
        "MIN_ROTATION_INTERVAL_MINUTES": "0", "VERIFY_TIMEOUT_SECONDS": "60",
    }


def use(env: dict[str, str]) -> None:
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "ROTATION_TARGETS"):
        os.environ.pop(name, None)
    os.environ.update(env)
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()


def rotation_seconds(polling_interval: float | None) -> float:
    from cosmos_key_rotation.accounts import Accounts
    from cosmos_key_rotation.rotation import RotationRequest
    from cosmos_key_rotation.runtime import Runtime
    from cosmos_key_rotation.settings import load_settings

    runtime = Runtime(load_settings(os.environ))
    if polling_interval is not None:
        runtime.accounts = Accounts(runtime.clients.cosmos_management, polling_interval=polling_interval)
    rotator = runtime.rotator()
    started = time.perf_counter()
    result = rotator.rotate(RotationRequest.new(os.environ["COSMOS_ACCOUNT_NAME"], "cli"))
    elapsed = time.perf_counter() - started
    if result.outcome != "succeeded":
        raise RuntimeError(f"rotation {result.outcome}: {result.error_code} {result.error_message}")
    return elapsed


def polling(emulator: Emulator, azurite: Azurite) -> None:
    print("\n1. One rotation, regeneration taking 3 s (verification, publication and records included)")
    emulator.admin.configure(regenerationSeconds=3.0, propagationFailures=0, pollRetryAfterMs=0)
    rows = []
    for label, interval, retry_after_ms in (
        ("SDK default polling_interval (30 s), no Retry-After", 30.0, 0),
        ("product polling_interval (5 s), no Retry-After", None, 0),
        ("product, service sends Retry-After: 1 s", None, 1000),
    ):
        emulator.admin.configure(pollRetryAfterMs=retry_after_ms)
        account = f"bench-poll-{len(rows)}"
        emulator.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=GROUP, name=account)
        use(environment(emulator, azurite, account))
        rows.append((label, rotation_seconds(interval)))
    base = rows[0][1]
    for label, seconds in rows:
        print(f"   {label:<55} {seconds:6.2f} s   x{base / seconds:4.1f} faster than the SDK default")


def concurrency(emulator: Emulator, azurite: Azurite, tmp: Path) -> None:
    print("\n2. rotate --all over 8 targets, regeneration taking 1 s each (CLI process, wall time)")
    emulator.admin.configure(regenerationSeconds=1.0, pollRetryAfterMs=1000, propagationFailures=0)
    results = []
    for round_, workers in enumerate((1, 4, 8)):
        names = [f"bench-all-{round_}-{i}" for i in range(8)]
        for name in names:
            emulator.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=GROUP, name=name)
        targets = [{"name": n, "subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "account": n,
                    "keyVaultUri": emulator.vault_url} for n in names]
        env = {**os.environ, **environment(emulator, azurite, ""), "ROTATION_TARGETS": json.dumps(targets),
               "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--all", "--json",
                               "--concurrency", str(workers)], env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        outcomes = [r["outcome"] for r in json.loads(done.stdout)["results"]]
        assert outcomes == ["succeeded"] * 8, done.stderr[-2000:]
        results.append((workers, elapsed))
    for workers, elapsed in results:
        print(f"   --concurrency {workers}   {elapsed:6.2f} s   x{results[0][1] / elapsed:4.1f} vs one at a time")


def cold_start() -> None:
    print("\n3. Cold start: importing function_app.py in a fresh interpreter (median of 5)")
    probe = ("import sys, time; t = time.perf_counter(); import {module}; "
             "print(time.perf_counter() - t, " + PEAK_RSS_KIB + ", "
             "sum(1 for m in sys.modules if m.startswith(('azure.mgmt', 'azure.cosmos', 'azure.keyvault', "
             "'azure.storage', 'azure.data', 'azure.identity'))))")
    eager = ("function_app, azure.mgmt.cosmosdb, azure.cosmos, azure.keyvault.secrets, azure.storage.blob, "
             "azure.storage.queue, azure.data.tables, azure.identity")
    rows = {}
    for label, module in (("function_app (SDKs deferred)", "function_app"), ("function_app + SDKs eagerly", eager)):
        runs = []
        for _ in range(5):
            out = subprocess.run([sys.executable, "-c", probe.format(module=module)], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
            runs.append((float(out[0]), int(out[1]), int(out[2])))
        rows[label] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[0][2])
    base = rows["function_app (SDKs deferred)"]
    for label, (seconds, rss_kib, sdk_modules) in rows.items():
        print(f"   {label:<32} {seconds * 1000:7.0f} ms   peak RSS {rss_kib / 1024:6.1f} MiB   "
              f"SDK modules loaded: {sdk_modules}")
    eager_row = rows["function_app + SDKs eagerly"]
    print(f"   deferring the SDKs: x{eager_row[0] / base[0]:.1f} faster import, "
          f"{(eager_row[1] - base[1]) / 1024:.1f} MiB less memory at start")


def cli_memory(emulator: Emulator, azurite: Azurite) -> None:
    print("\n4. Peak memory of one CLI rotation (python -m cosmos_key_rotation rotate)")
    emulator.admin.configure(regenerationSeconds=0.5, pollRetryAfterMs=200)
    emulator.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=GROUP, name="bench-memory")
    env = {**os.environ, **environment(emulator, azurite, "bench-memory"), "PYTHONPATH": str(ROOT)}
    probe = ("import runpy, sys; sys.argv = ['cosmos_key_rotation', 'rotate', '--json']\n"
             "try:\n    runpy.run_module('cosmos_key_rotation', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\n"
             "print(" + PEAK_RSS_KIB + ", file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    rss_kib = int(done.stderr.strip().splitlines()[-1])
    outcome = json.loads(done.stdout)["results"][0]["outcome"]
    print(f"   peak RSS {rss_kib / 1024:.1f} MiB ({outcome})")


def main() -> int:
    import logging

    logging.disable(logging.CRITICAL)  # figures only
    with tempfile.TemporaryDirectory() as tmp:
        azurite = Azurite(ROOT).start()
        emulator = Emulator(Path(tmp) / "emulator").start()
        try:
            print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
            polling(emulator, azurite)
            concurrency(emulator, azurite, Path(tmp))
            cold_start()
            cli_memory(emulator, azurite)
        finally:
            emulator.stop()
            azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
