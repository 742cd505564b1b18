"""The `trdr` command line. Each subcommand lives in `trdr_tui/commands/<name>.py`.

Exit codes: 0 success, 1 a runtime failure, 2 bad usage, bad configuration or a feature not yet
available, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trdr_tui import __version__
from trdr_tui.commands import COMMANDS, CliContext
from trdr_tui.core.errors import ConfigError, NotAvailable, TrdrError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trdr",
        description=(
            "trdr — a grid-trading bot for Coinbase with trailing orders decided by a panel of agents. "
            "With no command it opens the terminal cockpit in paper mode."
        ),
        epilog="Run 'trdr COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"trdr {__version__}")
    parser.add_argument("--config", type=Path, help="config file (default: $XDG_CONFIG_HOME/trdr/config.toml)")
    parser.add_argument("--db", type=Path, help="DuckDB database file (default: $XDG_DATA_HOME/trdr/trdr.duckdb)")
    parser.add_argument("--headless", action="store_true", help="run the engine without the UI; JSON logs to stdout")
    parser.add_argument("--feed", choices=["replay", "coinbase"], default=None,
                        help="market data: 'replay' (offline demo of real candles) or 'coinbase' (live data)")
    parser.add_argument("--data", type=Path, help="candle file to replay with --feed replay (default: bundled)")
    parser.add_argument("--speed", default="2", help="replay speed in candles per second, or 'max' (default 2)")
    parser.add_argument("--live", action="store_true",
                        help="trade real money on Coinbase (needs credentials; asks for confirmation)")
    parser.add_argument("--log-file", type=Path, help="JSON log file, rotated; errors and fills also go to "
                        "FILE's .errors.log and .trades.log siblings (default: trdr.log beside the database)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None,
                        help="lowest level logged, headless or cockpit (default info, or $TRDR_LOG_LEVEL)")
    api = parser.add_argument_group("control API (docs/operations.md)")
    api.add_argument("--api", metavar="HOST:PORT", help="serve the control API and /metrics here "
                     "(default: [api] listen, a free loopback port)")
    api.add_argument("--no-api", action="store_true", help="run without the control API")
    api.add_argument("--api-allow-remote", action="store_true",
                     help="allow --api on a non-loopback address (prefer an SSH tunnel)")
    api.add_argument("--api-tls-cert", metavar="FILE", help="serve the API over TLS with this PEM certificate")
    api.add_argument("--api-tls-key", metavar="FILE", help="the certificate's PEM private key")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    ctx = CliContext(args)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None and args.command in argv:
            from trdr_tui.commands.remote import forward_if_running

            forwarded = forward_if_running(ctx, argv[argv.index(args.command):])
            if forwarded is not None:
                return forwarded
        if handler is None:
            from trdr_tui.commands.run import run_app

            return run_app(ctx)
        return int(handler(ctx) or 0)
    except (ConfigError, NotAvailable) as exc:
        print(f"trdr: error: {exc}", file=sys.stderr)
        return 2
    except TrdrError as exc:
        print(f"trdr: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a DuckDB error (damage, a full disk) found after the database opened
        if not type(exc).__module__.startswith(("duckdb", "_duckdb")):
            raise
        from trdr_tui.store.db import database_error

        print(f"trdr: error: {database_error(str(ctx.db_path), exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("trdr: interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
