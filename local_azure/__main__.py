"""Command line: run the emulator as a process, or print shell settings for one.

  python -m local_azure serve --state-dir DIR [--host 127.0.0.1] [--arm-port 0]
  python -m local_azure env --state-dir DIR [--wait SECONDS]

``serve`` writes ``DIR/emulator.json`` once every endpoint listens, logs one line
per request to stderr (service, method, path, status: never a token or key),
and exits cleanly on SIGTERM or SIGINT. ``env`` prints ``export`` lines.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from . import INFO_FILE, Emulator
from .admin import read_info
from .state import StateError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_azure", description="Local Azure endpoints emulator.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator until SIGTERM or SIGINT")
    serve.add_argument("--state-dir", required=True, type=Path, help="where ca.pem and emulator.json go")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    serve.add_argument("--arm-port", type=int, default=0, help="Resource Manager + admin port (0: any free port)")
    serve.add_argument("--identity-port", type=int, default=0, help="identity endpoint port (0: any free port)")
    serve.add_argument("--vault-port", type=int, default=0, help="default vault port (0: any free port)")
    serve.add_argument("--regeneration-seconds", type=float, help="how long a key regeneration takes")
    serve.add_argument("--propagation-failures", type=int, help="401s a new key gets before it works")
    serve.add_argument("--quiet", action="store_true", help="do not log each request")
    env = commands.add_parser("env", help="print export lines for a running emulator")
    env.add_argument("--state-dir", required=True, type=Path)
    env.add_argument("--wait", type=float, default=0.0, help="seconds to wait for emulator.json")
    return parser


def _configure_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("local_azure")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _serve(args: argparse.Namespace) -> int:
    _configure_logging(args.quiet)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = Emulator(args.state_dir, host=args.host, arm_port=args.arm_port,
                        identity_port=args.identity_port, vault_port=args.vault_port)
    emulator.start()
    try:
        config = {"regenerationSeconds": args.regeneration_seconds, "propagationFailures": args.propagation_failures}
        emulator.state.configure({k: v for k, v in config.items() if v is not None})
        info_path = emulator.write_info()
        logging.getLogger("local_azure").warning("local_azure emulator ready: %s, Resource Manager %s",
                                                 info_path, emulator.arm_url)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        (args.state_dir / INFO_FILE).unlink(missing_ok=True)
    return 0


def _env(args: argparse.Namespace) -> int:
    try:
        info = read_info(args.state_dir, args.wait)
    except FileNotFoundError:
        print(f"no {INFO_FILE} in {args.state_dir}: is 'python -m local_azure serve' running?", file=sys.stderr)
        return EXIT_USAGE
    settings = {
        "IDENTITY_ENDPOINT": info["identityEndpoint"],
        "IDENTITY_HEADER": info["identityHeader"],
        "REQUESTS_CA_BUNDLE": info["caFile"],
        "ARM_ENDPOINT": info["armUrl"],
    }
    for name, value in settings.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _serve(args) if args.command == "serve" else _env(args)
    except (StateError, OSError) as exc:
        print(f"local_azure: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
