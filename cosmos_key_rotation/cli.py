"""Command line for operators (PRODUCT.md §6): the same rotation code as the function app.

Exit codes: 0 done (or skipped), 1 a rotation failed, 2 bad usage or settings. Events go to stderr as
JSON lines; `--json` prints exactly one JSON document on stdout and nothing else there, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, NoReturn, TextIO

from .accounts import READ_WRITE_KINDS
from .events import configure_local_logging
from .names import PRODUCT_SETTINGS
from .rotation import RotationRequest, RotationResult
from .runtime import Runtime
from .settings import SettingsError, load_settings, read_settings_file

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Threads for --all. Most of a rotation is waiting for Azure, and the request budgets (budgets.py) keep
# the rate within Azure's limits, so this only caps memory and connections (clients.POOL_SIZE per host).
DEFAULT_CONCURRENCY = 128

EPILOG = f"""\
settings (from the environment, or the Values of --settings local.settings.json; README "Configuration"):
  {", ".join(PRODUCT_SETTINGS)},
  AzureWebJobsStorage or AzureWebJobsStorage__accountName (the lease and the records live there)

exit codes:
  0  done, or skipped (cooldown, another rotation running, already adopted)
  1  a rotation, adoption or rollback failed (or `status` could not read a target)
  2  bad usage or settings

examples:
  python -m cosmos_key_rotation adopt --target docdb-prod --key-kind primary   # first: the key apps use today
  python -m cosmos_key_rotation rotate --all --dry-run --json                  # what the next run would do
  python -m cosmos_key_rotation rotate --target docdb-prod --all-keys          # a leak: replace every key
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Raises UsageError instead of printing and exiting, so `--json` can still print its one document."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        return _usage_error(error, as_json, stdout, stderr)
    except SystemExit as exit_:  # --help
        return EXIT_USAGE if exit_.code else EXIT_OK
    handler = configure_local_logging(stream=stderr)
    try:
        runtime = Runtime(load_settings(_environment(args.settings)))
        return COMMANDS[args.command](runtime, args, stdout, stderr)
    except (SettingsError, UsageError) as error:
        return _usage_error(error, as_json, stdout, stderr)
    finally:
        logging.getLogger().removeHandler(handler)


def _usage_error(error: Exception, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    code = "ConfigurationError" if isinstance(error, SettingsError) else "UsageError"
    if as_json:
        _print_json({"error": {"code": code, "message": str(error)}}, stdout)
    print(f"error: {error}", file=stderr)
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cosmos_key_rotation", description="Rotate Azure Cosmos DB keys into Key Vault.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rotate = commands.add_parser("rotate", help="rotate one target, or all of them", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _which(rotate, "rotate")
    which_keys = rotate.add_mutually_exclusive_group()
    which_keys.add_argument("--key-kind", choices=READ_WRITE_KINDS, help="the key kind to regenerate")
    which_keys.add_argument("--all-keys", action="store_true",
                            help="an incident: replace every key of the account (rotate, wait "
                                 "INCIDENT_GRACE_SECONDS for applications to re-read, then regenerate the keys that "
                                 "were live, read-only ones included); ignores the cooldown and the in-use guard")
    rotate.add_argument("--force", action="store_true", help="rotate even inside the cooldown")
    rotate.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
    adopt = commands.add_parser(
        "adopt", help="publish the key applications use today, regenerating nothing (do this first)",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _which(adopt, "adopt")
    adopt.add_argument("--key-kind", choices=READ_WRITE_KINDS, required=True,
                       help="the key applications use today (the read-only secret gets its read-only twin)")
    adopt.add_argument("--force", action="store_true",
                       help="publish even over a live secret (after a key was regenerated outside the product)")
    rollback = commands.add_parser("rollback", help="publish the previous secret version again, if its key is valid",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rollback.add_argument("--target", metavar="NAME", help="the target to roll back (needed with several targets)")
    status = commands.add_parser("status", help="show every target: live key, last rotation, key ages, pauses",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for sub in (rotate, adopt, rollback, status):
        sub.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        sub.add_argument("--settings", metavar="FILE", help="a local.settings.json to read settings from")
    return parser


def _which(parser: argparse.ArgumentParser, verb: str) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="NAME", help=f"the target to {verb}")
    which.add_argument("--all", action="store_true", help=f"{verb} every target, concurrently")
    parser.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"targets handled at once with --all (default {DEFAULT_CONCURRENCY})")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


def _environment(settings_file: str | None) -> dict[str, str]:
    """The settings file's Values under the process environment, as Core Tools does: the environment wins."""
    values = read_settings_file(settings_file) if settings_file else {}
    return {**values, **os.environ}


def _rotate(runtime: Runtime, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if not args.dry_run:
        runtime.settings.require_storage()  # the lease and the records live there
    # A regeneration can take hours: say so on stderr while waiting.
    rotator = runtime.rotator(dry_run=args.dry_run, progress=lambda line: print(line, file=stderr, flush=True))
    who = _who(runtime)
    return _run_each(runtime, args, stdout, stderr, lambda name: rotator.rotate(
        RotationRequest.new(name, "cli", args.key_kind, args.force, args.dry_run,
                            scope="all-keys" if args.all_keys else "rotation", requested_by=who)))


def _adopt(runtime: Runtime, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from .onboarding import adopt

    runtime.settings.require_storage()
    rotator = runtime.rotator()
    who = _who(runtime)
    return _run_each(runtime, args, stdout, stderr, lambda name: adopt(
        rotator, RotationRequest.new(name, "cli", args.key_kind, requested_by=who), args.key_kind, args.force))


def _rollback(runtime: Runtime, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from .onboarding import rollback

    runtime.settings.require_storage()
    args.all, args.concurrency = False, 1
    rotator = runtime.rotator()
    who = _who(runtime)
    return _run_each(runtime, args, stdout, stderr,
                     lambda name: rollback(rotator, RotationRequest.new(name, "cli", requested_by=who)))


def _who(runtime: Runtime) -> str:
    """The audit trail's `requestedBy` for this run (caller.cli_caller)."""
    from .caller import cli_caller

    scope = runtime.settings.cloud.arm_scope(runtime.settings.arm_endpoint)
    return cli_caller(lambda: runtime.clients.credential.get_token(scope).token)


def _run_each(runtime: Runtime, args: argparse.Namespace, stdout: TextIO, stderr: TextIO,
              run: Callable[[str], RotationResult]) -> int:
    names = _chosen_targets(runtime, args)
    results: list[RotationResult] = []
    with ThreadPoolExecutor(max_workers=min(args.concurrency, len(names))) as pool:
        futures = [pool.submit(run, name) for name in names]
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            results.append(result)
            if len(names) > 1:
                print(f"[{done}/{len(names)}] {_summary(result)}", file=stderr, flush=True)
    results.sort(key=lambda result: names.index(result.target))
    if args.json:
        _print_json({"results": [result.to_dict() for result in results]}, stdout)
    else:
        for result in results:
            print(_summary(result), file=stdout)
    return EXIT_FAILED if any(result.outcome == "failed" for result in results) else EXIT_OK


def _chosen_targets(runtime: Runtime, args: argparse.Namespace) -> list[str]:
    known = [target.name for target in runtime.targets()]
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
        if result.reason:
            detail += f" ({result.reason})"
    elif result.outcome == "skipped":
        detail = result.reason or ""
    else:
        detail = f"{result.error_code}: {result.error_message}"
    return f"{result.target}: {result.outcome} - {detail}"


def _status(runtime: Runtime, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from .status import all_targets, render_table

    targets = all_targets(runtime)
    if args.json:
        _print_json({"timerDisabled": runtime.settings.timer_disabled, "targets": targets}, stdout)
    else:
        stdout.write(render_table(targets, runtime.settings.timer_disabled))
    return EXIT_FAILED if any("error" in target for target in targets) else EXIT_OK


def _print_json(document: dict[str, Any], stdout: TextIO) -> None:
    json.dump(document, stdout, indent=2)
    stdout.write("\n")


COMMANDS: dict[str, Callable[[Runtime, argparse.Namespace, TextIO, TextIO], int]] = {
    "rotate": _rotate, "adopt": _adopt, "rollback": _rollback, "status": _status,
}
