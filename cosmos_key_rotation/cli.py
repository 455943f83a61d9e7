"""Command line for operators (PRODUCT.md §6): the same rotation code as the function app.

Exit codes: 0 done (or skipped), 1 a rotation failed, 2 bad usage or settings. Events go to stderr as
JSON lines; `--json` prints exactly one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TextIO

from .accounts import READ_WRITE_KINDS
from .events import configure_local_logging
from .rotation import RotationRequest, RotationResult
from .runtime import Runtime
from .settings import SettingsError, load_settings, read_settings_file

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage error
        return EXIT_USAGE if exit_.code else EXIT_OK
    handler = configure_local_logging(stream=stderr)
    try:
        runtime = Runtime(load_settings(_environment(args.settings)))
        if args.command == "status":
            return _status(runtime, args, stdout)
        return _rotate(runtime, args, stdout, stderr)
    except (SettingsError, UsageError) as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    finally:
        logging.getLogger().removeHandler(handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cosmos_key_rotation",
                                     description="Rotate Azure Cosmos DB keys into Key Vault.")
    commands = parser.add_subparsers(dest="command", required=True)
    rotate = commands.add_parser("rotate", help="rotate one target, or all of them")
    which = rotate.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="NAME", help="the target to rotate")
    which.add_argument("--all", action="store_true", help="rotate every target, concurrently")
    rotate.add_argument("--key-kind", choices=READ_WRITE_KINDS, help="the key kind to regenerate")
    rotate.add_argument("--force", action="store_true", help="rotate even inside the cooldown")
    rotate.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
    rotate.add_argument("--concurrency", type=_positive, default=4, metavar="N",
                        help="targets rotated at once with --all (default 4)")
    status = commands.add_parser("status", help="show every target: live key, last rotation, key ages")
    for sub in (rotate, status):
        sub.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        sub.add_argument("--settings", metavar="FILE", help="a local.settings.json to read settings from")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _environment(settings_file: str | None) -> dict[str, str]:
    """The settings file's Values under the process environment, as Core Tools does: the environment wins."""
    values = read_settings_file(settings_file) if settings_file else {}
    return {**values, **os.environ}


def _rotate(runtime: Runtime, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    names = _chosen_targets(runtime, args)
    if not args.dry_run:
        runtime.settings.require_storage()  # the lease and the records live there
    rotator = runtime.rotator(dry_run=args.dry_run)
    requests = [RotationRequest.new(name, "cli", args.key_kind, args.force, args.dry_run) for name in names]
    results: list[RotationResult] = []
    with ThreadPoolExecutor(max_workers=min(args.concurrency, len(requests))) as pool:
        futures = [pool.submit(rotator.rotate, request) for request in requests]
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            results.append(result)
            if len(requests) > 1:
                print(f"[{done}/{len(requests)}] {_summary(result)}", file=stderr, flush=True)
    results.sort(key=lambda result: names.index(result.target))
    if args.json:
        json.dump({"results": [result.to_dict() for result in results]}, stdout, indent=2)
        stdout.write("\n")
    else:
        for result in results:
            print(_summary(result), file=stdout)
    return EXIT_FAILED if any(result.outcome == "failed" for result in results) else EXIT_OK


def _chosen_targets(runtime: Runtime, args: argparse.Namespace) -> list[str]:
    known = [target.name for target in runtime.settings.targets]
    if args.all:
        return known
    if args.target:
        if args.target not in known:
            raise UsageError(f"no target named {args.target!r}; targets: {', '.join(known)}")
        return [args.target]
    if len(known) == 1:
        return known
    raise UsageError(f"give --target NAME or --all; targets: {', '.join(known)}")


def _summary(result: RotationResult) -> str:
    if result.outcome == "succeeded":
        detail = f"{result.key_kind} published as version {result.secret_version}"
    elif result.outcome == "skipped":
        detail = result.reason or ""
    else:
        detail = f"{result.error_code}: {result.error_message}"
    return f"{result.target}: {result.outcome} - {detail}"


def _status(runtime: Runtime, args: argparse.Namespace, stdout: TextIO) -> int:
    from .status import all_targets

    targets = all_targets(runtime)
    if args.json:
        json.dump({"targets": targets}, stdout, indent=2)
        stdout.write("\n")
    else:
        _print_table(targets, stdout)
    return EXIT_FAILED if any("error" in target for target in targets) else EXIT_OK


_KEY_COLUMNS = (("primaryMasterKey", "primary"), ("secondaryMasterKey", "secondary"),
                ("primaryReadonlyMasterKey", "primary-ro"), ("secondaryReadonlyMasterKey", "secondary-ro"))


def _print_table(targets: list[dict[str, Any]], stdout: TextIO) -> None:
    header = ["target", "live key", "secret version", "last rotation",
              *[f"{label} age (d)" for _, label in _KEY_COLUMNS], "compliant"]
    rows = [header]
    for target in targets:
        if "error" in target:
            rows.append([target["target"], "error", target["error"]["code"], target["error"]["message"][:60]])
            continue
        last = target.get("lastRotation") or {}
        keys = target.get("keys", {})
        rows.append([
            target["target"],
            target.get("liveKeyKind") or "-",
            (target.get("secretVersion") or "-")[:12],
            f"{last.get('lastStatus', '-')} {last.get('lastFinishedAt', '')}".strip(),
            *[_age(keys.get(name, {})) for name, _ in _KEY_COLUMNS],
            "yes" if target.get("compliant") else f"NO (max {target.get('maxKeyAgeDays')} d)",
        ])
    widths = [max(len(str(row[i])) for row in rows if i < len(row)) for i in range(len(header))]
    for row in rows:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=stdout)


def _age(entry: dict[str, Any]) -> str:
    age = entry.get("ageDays")
    return "?" if age is None else f"{age:g}"
