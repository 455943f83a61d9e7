"""`make bench`: the product's speed, cost and footprint against the local emulator and Azurite, each
figure beside its target. Prints a table and writes it as JSON (.bench/results.json); asserts nothing.

    python scripts/benchmark.py            # everything (about 15 minutes on 2 CPUs)
    python scripts/benchmark.py --quick    # without the 60 s and 5-minute regenerations and 300 accounts

The emulator throttles as Azure does (Resource Manager: writes 200 + 10/s, reads 250 + 25/s per
subscription; Key Vault: 300 secret writes per 10 s per vault), and counts the requests it answers.
1. One rotation against its regeneration's duration (3 s, 60 s, 5 min), the service naming no Retry-After:
   the rotation's durationMs, Resource Manager requests, status reads.
2. The continuation path: a worker that hands a long regeneration to continuation messages.
3. Fleets of 1, 10, 100 and 300 accounts in one subscription, 3 s regenerations: `rotate --all` (a CLI
   process: wall time, peak memory) and timer -> queue -> workers (one Functions instance, 24 messages at
   once, as host.json allows); requests per rotation; throttling absorbed. Then two CLI processes at once,
   each with its own budgets, sharing the subscription's buckets: the 429s they meet, all absorbed.
4. Cold start: `import function_app` against `import azure.functions`, in fresh processes.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_azure import Emulator  # noqa: E402
from local_azure.azurite import Azurite  # noqa: E402

PEAK_RSS_KIB = "int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
SUBSCRIPTION = "3c9e1a2b-7d4f-4e6a-8b1c-2d3e4f5a6b7c"
GROUP = "rg-bench"
ROWS: list[dict[str, Any]] = []


def row(section: str, what: str, figure: str, target: str = "", met: bool | None = None, **data: Any) -> None:
    mark = "" if met is None else ("met" if met else "MISSED")
    ROWS.append({"section": section, "what": what, "figure": figure, "target": target, "met": met, **data})
    print(f"   {what:<58} {figure:<28} {target:<24} {mark}", flush=True)


def environment(emulator: Emulator, azurite: Azurite, **settings: str) -> dict[str, str]:
    return {
        "IDENTITY_ENDPOINT": emulator.identity_endpoint, "IDENTITY_HEADER": emulator.identity_header,
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file), "ARM_ENDPOINT": emulator.arm_url,
        "AZURE_CLOUD": "AzureCloud", "KEY_VAULT_URI": emulator.vault_url,
        "AzureWebJobsStorage": azurite.connection_string, "MIN_ROTATION_INTERVAL_MINUTES": "0",
        "VERIFY_TIMEOUT_SECONDS": "60", "COSMOS_ACCOUNT_NAME": "", "COSMOS_SUBSCRIPTION_ID": "",
        "COSMOS_RESOURCE_GROUP": "", "ROTATION_TARGETS": "", **settings,
    }


def use(env: dict[str, str]) -> Any:
    """Point this process's product at `env`; return a fresh runtime."""
    from azure.keyvault.secrets._shared import http_challenge_cache

    from cosmos_key_rotation.runtime import get_runtime, reset_runtime

    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        os.environ.pop(name, None)
    os.environ.update(env)
    http_challenge_cache.clear()
    reset_runtime()
    return get_runtime()


def fleet(emulator: Emulator, prefix: str, size: int) -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(size)]
    for name in names:
        emulator.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=GROUP, name=name)
    return names


def targets_setting(emulator: Emulator, names: list[str]) -> str:
    return json.dumps([{"name": n, "subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "account": n,
                        "keyVaultUri": emulator.vault_url, "liveKeyKind": "primary"} for n in names])


def adopt_all(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "adopt", "--all", "--key-kind", "primary",
                           "--json"], env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])


def adopted_fleet(emulator: Emulator, azurite: Azurite, prefix: str, size: int,
                  regeneration_seconds: float = 3.0) -> tuple[list[str], dict[str, str]]:
    """`size` new accounts, adopted (their primary published), each regeneration taking `regeneration_seconds`
    with no Retry-After named and no propagation delay: the names and the settings that target them."""
    names = fleet(emulator, prefix, size)
    env = environment(emulator, azurite, ROTATION_TARGETS=targets_setting(emulator, names))
    adopt_all(env)
    emulator.admin.configure(regenerationSeconds=regeneration_seconds, pollRetryAfterMs=0, propagationFailures=0)
    return names, env


def fresh_budgets(emulator: Emulator) -> None:
    """Full buckets and zeroed counters: each measurement starts as a quiet subscription would."""
    emulator.admin.set_throttling(True)
    emulator.admin.reset_metrics()


def per_rotation(metrics: dict[str, Any], rotations: int) -> dict[str, float]:
    return {service: metrics[service]["requests"] / rotations for service in ("arm", "vault", "dataplane")}


# -- 1. one rotation against its regeneration ------------------------------------------------------------


def one_rotation(emulator: Emulator, azurite: Azurite, seconds: float) -> float:
    from cosmos_key_rotation.rotation import RotationRequest

    (name,), env = adopted_fleet(emulator, azurite, f"bench-one-{int(seconds)}", 1, seconds)
    runtime = use(env)
    fresh_budgets(emulator)
    result = runtime.rotator().rotate(RotationRequest.new(name, "cli"))
    metrics = emulator.admin.reset_metrics()
    assert result.outcome == "succeeded", result
    ratio = result.duration_ms / 1000 / seconds
    status_reads = metrics["arm"]["operations"].get("operationStatus", {}).get("requests", 0)
    arm = metrics["arm"]["requests"]
    limit = 1.3 if seconds <= 5 else 1.1
    row("one rotation", f"regeneration {seconds:g} s: the rotation's durationMs", f"{result.duration_ms / 1000:.2f} s "
        f"(x{ratio:.2f})", f"<= x{limit}" if seconds <= 5 else "", ratio <= limit if seconds <= 5 else None,
        seconds=seconds, duration_ms=result.duration_ms)
    row("one rotation", f"regeneration {seconds:g} s: Resource Manager requests",
        f"{arm} ({status_reads} status reads)",
        "<= 7" if seconds <= 5 else ("<= 40 status reads" if seconds >= 300 else ""),
        arm <= 7 if seconds <= 5 else (status_reads <= 40 if seconds >= 300 else None),
        arm_requests=arm, status_reads=status_reads)
    return result.duration_ms / 1000


# -- 2. the continuation path ----------------------------------------------------------------------------


def continuation(emulator: Emulator, azurite: Azurite, seconds: float, scale: float) -> None:
    import function_app
    from local_azure.functions_host import FunctionsHost

    (name,) = fleet(emulator, f"bench-cont-{int(seconds)}", 1)
    env = environment(emulator, azurite, ROTATION_TARGETS=targets_setting(emulator, [name]))
    adopt_all(env)
    emulator.admin.configure(regenerationSeconds=seconds, pollRetryAfterMs=0)
    runtime = use(env)
    runtime.worker_wait_seconds = 5.0 * scale * 12  # 60 s in Azure, scaled like the delays
    runtime.continuation_delay_scale = scale
    host = FunctionsHost(function_app.app, azurite.connection_string, ROOT / "host.json", visibility_timeout=1)
    fresh_budgets(emulator)
    started = time.perf_counter()
    host.run_timer("scheduled_rotation")
    deliveries = host.process_queues(timeout=seconds * 4 + 120)
    elapsed = time.perf_counter() - started
    metrics = emulator.admin.reset_metrics()
    overhead = elapsed / seconds
    row("continuations", f"regeneration {seconds:g} s handed to continuations (delays x{scale:g})",
        f"{elapsed:.1f} s (x{overhead:.2f}), {deliveries} deliveries", "shown", None, seconds=seconds,
        elapsed=elapsed, deliveries=deliveries, arm_requests=metrics["arm"]["requests"])


# -- 3. fleets -----------------------------------------------------------------------------------------


def fleet_cli(emulator: Emulator, azurite: Azurite, size: int, one: float) -> None:
    _, env = adopted_fleet(emulator, azurite, f"bench-cli-{size}", size)
    fresh_budgets(emulator)
    probe = ("import sys; from cosmos_key_rotation.cli import main\n"
             "code = main(['rotate', '--all', '--json'])\n"
             "print(" + PEAK_RSS_KIB + ", file=sys.stderr); sys.exit(code)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    metrics = emulator.admin.reset_metrics()
    results = json.loads(done.stdout)["results"]
    succeeded = sum(1 for r in results if r["outcome"] == "succeeded")
    rss_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
    throttled = metrics["arm"]["throttled"] + metrics["vault"]["throttled"]
    counts = per_rotation(metrics, size)
    ratio = elapsed / one
    target = {100: "<= x1.5", 300: "all complete"}.get(size, "")
    met = ratio <= 1.5 if size == 100 else (succeeded == size if size == 300 else None)
    row("fleet: rotate --all", f"{size} accounts: wall time ({succeeded}/{size} succeeded)", f"{elapsed:.1f} s "
        f"(x{ratio:.2f})", target, met, size=size, elapsed=elapsed, succeeded=succeeded, throttled=throttled)
    row("fleet: rotate --all", f"{size} accounts: requests per rotation (ARM/KV/data)",
        f"{counts['arm']:.1f} / {counts['vault']:.1f} / {counts['dataplane']:.1f}", "ARM <= 7", counts["arm"] <= 7,
        **{f"{k}_per_rotation": v for k, v in counts.items()})
    row("fleet: rotate --all", f"{size} accounts: peak memory; 429s absorbed", f"{rss_mib:.0f} MiB; {throttled}",
        "<= 250 MB" if size == 300 else "", rss_mib * 1.048576 <= 250 if size == 300 else None, rss_mib=rss_mib)


def fleet_workers(emulator: Emulator, azurite: Azurite, size: int, one: float) -> None:
    import function_app
    from local_azure.functions_host import FunctionsHost

    _, env = adopted_fleet(emulator, azurite, f"bench-fn-{size}", size)
    use(env)
    host = FunctionsHost(function_app.app, azurite.connection_string, ROOT / "host.json", visibility_timeout=5)
    fresh_budgets(emulator)
    started = time.perf_counter()
    host.run_timer("scheduled_rotation")
    enqueued = time.perf_counter() - started
    deliveries = host.process_queues(timeout=1800, idle=1.0)
    elapsed = time.perf_counter() - started
    metrics = emulator.admin.reset_metrics()
    counts = per_rotation(metrics, size)
    throttled = metrics["arm"]["throttled"] + metrics["vault"]["throttled"]
    row("fleet: timer -> queue -> worker", f"{size} accounts: wall time (one instance, {host.concurrency} at once)",
        f"{elapsed:.1f} s (x{elapsed / one:.2f})", "", None, size=size, elapsed=elapsed, deliveries=deliveries)
    row("fleet: timer -> queue -> worker", f"{size} accounts: timer enqueued all in; deliveries; 429s",
        f"{enqueued:.2f} s; {deliveries}; {throttled}", "", None, enqueued=enqueued)
    row("fleet: timer -> queue -> worker", f"{size} accounts: requests per rotation (ARM/KV/data)",
        f"{counts['arm']:.1f} / {counts['vault']:.1f} / {counts['dataplane']:.1f}", "ARM <= 7", counts["arm"] <= 7)


def fleet_shared(emulator: Emulator, azurite: Azurite, size: int, one: float) -> None:
    """Two `rotate --all` processes at once, half the fleet each: each keeps its own budgets, both spend the
    subscription's buckets (as the CLI beside the function app, or two Flex instances, do in Azure)."""
    names = fleet(emulator, f"bench-two-{size}", size)
    halves = [names[: size // 2], names[size // 2:]]
    envs = [environment(emulator, azurite, ROTATION_TARGETS=targets_setting(emulator, half)) for half in halves]
    for env in envs:
        adopt_all(env)
    emulator.admin.configure(regenerationSeconds=3.0, pollRetryAfterMs=0, propagationFailures=0)
    fresh_budgets(emulator)
    started = time.perf_counter()
    runs = [subprocess.Popen([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--all", "--json"],
                             env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True) for env in envs]
    outputs = [run.communicate(timeout=1800)[0] for run in runs]
    elapsed = time.perf_counter() - started
    metrics = emulator.admin.reset_metrics()
    results = [r for out in outputs for r in json.loads(out)["results"]]
    succeeded = sum(1 for r in results if r["outcome"] == "succeeded")
    throttled = metrics["arm"]["throttled"] + metrics["vault"]["throttled"]
    row("fleet: two CLIs share the buckets", f"{size} accounts, two CLIs at once: wall time; 429s",
        f"{elapsed:.1f} s (x{elapsed / one:.2f}); {throttled} absorbed ({succeeded}/{size} ok)", "all complete",
        succeeded == size, size=size,
        elapsed=elapsed, succeeded=succeeded, throttled=throttled)


# -- 4. cold start ---------------------------------------------------------------------------------------


def cold_start() -> None:
    def median_import(module: str) -> float:
        probe = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        runs = [float(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                                     check=True).stdout) for _ in range(15)]
        return statistics.median(runs)

    base, app = median_import("azure.functions"), median_import("function_app")
    row("cold start", "import function_app vs import azure.functions (median of 15)",
        f"{app * 1000:.0f} ms vs {base * 1000:.0f} ms (x{app / base:.2f})", "<= x1.15", app / base <= 1.15,
        function_app_ms=app * 1000, azure_functions_ms=base * 1000)


def main(argv: list[str]) -> int:
    import logging

    quick = "--quick" in argv
    logging.disable(logging.CRITICAL)  # figures only
    with tempfile.TemporaryDirectory() as tmp:
        azurite = Azurite(ROOT).start()
        emulator = Emulator(Path(tmp) / "emulator").start()
        try:
            print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs{', quick' if quick else ''}")
            print(f"   {'what':<58} {'figure':<28} {'target':<24}")
            one = one_rotation(emulator, azurite, 3.0)
            if not quick:
                one_rotation(emulator, azurite, 60.0)
                one_rotation(emulator, azurite, 300.0)
                continuation(emulator, azurite, 60.0, 1.0)
            else:
                continuation(emulator, azurite, 6.0, 0.1)
            for size in (1, 10, 100) if quick else (1, 10, 100, 300):
                fleet_cli(emulator, azurite, size, one)
                fleet_workers(emulator, azurite, size, one)
            fleet_shared(emulator, azurite, 100 if quick else 300, one)
            cold_start()
        finally:
            emulator.stop()
            azurite.stop()
    out = ROOT / ".bench" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "quick": quick,
                               "rows": ROWS}, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
