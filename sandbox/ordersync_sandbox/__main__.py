"""``python -m ordersync_sandbox serve [--demo] [--host-port-base N] [--env-file PATH]``

Starts the sandbox stores on 127.0.0.1 (the demo data with ``--demo``; otherwise the same three
stores, empty), prints the Airflow environment (``KEY='VALUE'`` lines) that points ordersync at
them, writes it to ``--env-file`` when given, and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from . import Sandbox
from .seed import create_stores, env_lines, seed_demo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ordersync_sandbox", description="Local Shopify and WooCommerce stores for ordersync."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the stores until interrupted")
    serve.add_argument("--demo", action="store_true", help="seed the demo catalogues and merchant orders")
    serve.add_argument(
        "--host-port-base",
        type=int,
        default=None,
        metavar="N",
        help="serve the stores on ports N, N+1, N+2 (default: free ports)",
    )
    serve.add_argument(
        "--env-file", default=None, metavar="PATH", help="also write the environment lines here"
    )
    serve.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="delay every store request by this much"
    )
    serve.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser


def serve(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    sb = Sandbox(port_base=args.host_port_base, verbose=args.verbose)
    try:
        info: dict[str, Any] = seed_demo(sb) if args.demo else create_stores(sb)
        for store in sb.stores.values():
            store.latency = args.latency
        lines = env_lines(info["env"])
        if args.env_file:
            tmp = f"{args.env_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            os.replace(tmp, args.env_file)  # readers never see a half-written file
        print("\n".join(lines), flush=True)
        for name, store in sb.stores.items():
            print(f"# {name}: {store.platform} store at {store.url}", file=sys.stderr, flush=True)
        print("# serving; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sb.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    return serve(args, stop)


if __name__ == "__main__":
    sys.exit(main())
