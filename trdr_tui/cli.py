"""The `trdr` command line. Each subcommand lives in `trdr_tui/commands/<name>.py`.

Exit codes (`TrdrError.exit_code`): 0 success; 1 a runtime failure (the exchange or the network failed, an
engine error, a database error such as a full disk — `store.db.database_error` maps every DuckDB class — or
the output was cut short because its reader closed the pipe: `trdr agents --json | head` ends quietly,
as Rich does); 2 bad input the user must fix (usage, configuration, a data file, credentials, a feature
not yet available); 130 interrupted.

The options that say where things are (`--config`, `--db`, `--log-file`) are accepted before or after
the command (`trdr data import FILE --db x.duckdb`). The run options (`--data`, `--timeframe`, `--feed`,
`--speed`, `--headless`, `--live`, the API's) belong to the cockpit and headless runs: given before a
command that has the same option (`trdr --data FILE backtest`) they are that command's; before a command
without it they are refused (exit 2), never silently ignored.
"""

from __future__ import annotations

import sys

from trdr_tui.core import stop_signals

# The process's own entry (the `trdr` script, `python -m trdr_tui`) or a headless run: a stop signal while it
# imports is noted and taken in `main` (Ctrl-C: exit 130, never a traceback); tests that import `main` keep
# their handlers. The imports below stay light: the commands, argparse and numpy are imported by `main`.
if stop_signals.trdr_process() or "--headless" in sys.argv[1:]:
    stop_signals.catch_early()

import contextlib
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from trdr_tui.core.errors import TrdrError

if TYPE_CHECKING:
    import argparse


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from trdr_tui import __version__
    from trdr_tui.commands import COMMANDS
    from trdr_tui.commands.anywhere import ANYWHERE, accept_anywhere, path_arg
    from trdr_tui.core.timeframes import TIMEFRAME_SECONDS

    parser = argparse.ArgumentParser(
        prog="trdr",
        description=(
            "trdr — a grid-trading bot for Coinbase with trailing orders decided by a panel of agents. "
            "With no command it opens the terminal cockpit in paper mode."
        ),
        epilog="Run 'trdr COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"trdr {__version__}")
    for dest, flag, text in ANYWHERE[:2]:
        parser.add_argument(flag, dest=dest, type=path_arg, help=text)
    parser.add_argument("--headless", action="store_true", help="run the engine without the UI; JSON logs to stdout")
    parser.add_argument("--feed", choices=["replay", "coinbase"], default=None,
                        help="market data: 'replay' (offline demo of real candles) or 'coinbase' (live data)")
    parser.add_argument("--data", type=path_arg, help="candle file to replay with --feed replay (default: bundled)")
    parser.add_argument("--speed", default="2", help="replay speed in candles per second, or 'max' (default 2)")
    parser.add_argument("--timeframe", dest="run_timeframe", metavar="TF", choices=list(TIMEFRAME_SECONDS),
                        help="bar length for the run, e.g. 1d (default: the config's; with --data, the file's)")
    parser.add_argument("--live", action="store_true",
                        help="trade real money on Coinbase (needs credentials; asks for confirmation)")
    parser.add_argument("--log-file", dest="log_file", type=path_arg, help=ANYWHERE[2][2])
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
    accept_anywhere(sub)
    _record_flags(sub)
    return parser


# The run options (flag → dest on the top-level parser): used by `trdr` alone, refused or handed on before a command.
RUN_OPTIONS: dict[str, str] = {"--data": "data", "--timeframe": "run_timeframe", "--feed": "feed", "--speed": "speed",
                               "--headless": "headless", "--live": "live", "--api": "api", "--no-api": "no_api",
                               "--api-allow-remote": "api_allow_remote", "--api-tls-cert": "api_tls_cert",
                               "--api-tls-key": "api_tls_key"}
_SUB_FLAGS = "_run_option_dests"  # namespace attribute: the chosen command's own run-option flags → (dest, default)


def _record_flags(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Let each (sub)command say which run options it has itself, under what dest and default (the
    deepest command parsed sets it last, so its own table wins)."""
    import argparse

    for parser in set(sub.choices.values()):
        own = {flag: (a.dest, a.default) for a in parser._actions for flag in a.option_strings if flag in RUN_OPTIONS}
        parser.set_defaults(**{_SUB_FLAGS: own})
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _record_flags(action)


def _route_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A run option given before a command: the command's own option when it has one (unless given there
    with another value), else a usage error (exit 2) — it is never silently dropped."""
    own: dict[str, tuple[str, object]] = getattr(args, _SUB_FLAGS, {})
    for flag, dest in RUN_OPTIONS.items():
        value = getattr(args, dest)
        if value == parser.get_default(dest):
            continue
        if flag not in own:
            parser.error(f"{flag} is an option of the cockpit and headless runs, not of 'trdr {args.command}' "
                         f"(give it without a command, or see 'trdr {args.command} --help')")
        sub_dest, sub_default = own[flag]
        given = getattr(args, sub_dest)
        if given == sub_default:
            setattr(args, sub_dest, value)
        elif given != value:
            parser.error(f"{flag} given twice with different values ({value} before '{args.command}', {given} "
                         "after it): give it once")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `trdr ARGV` (default: this process's command line) and return its exit code (README).

    A Ctrl-C anywhere in it, its imports included, ends it with `trdr: interrupted` and 130, and so does an
    error that follows one (DuckDB fails the statements after an interrupted query: `stop_signals.
    interrupted_by`). When it returns on the process's own entry SIGINT is ignored from then on: a late
    Ctrl-C cannot kill the exiting process by the signal once its output is printed."""
    entry = argv is None and stop_signals.trdr_process()
    previous = signal.getsignal(signal.SIGINT)
    try:
        try:
            return _main(argv)
        finally:  # a Ctrl-C before this is caught below; after it, the exit ignores it
            if entry or previous is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN if entry else previous)
    except KeyboardInterrupt:
        print("trdr: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not stop_signals.interrupted_by(exc):  # an import a Ctrl-C broke (ImportError from KeyboardInterrupt)
            raise
        print("trdr: interrupted", file=sys.stderr)
        return 130
    finally:
        if entry:
            # CPython 3.11 notes a KeyboardInterrupt that escapes exec() of a string (dataclasses, typing build
            # their methods so) as unhandled, even when caught, and then kills the exiting process by SIGINT;
            # every exec of a string resets that note.
            exec("")


def _refuse_unknown_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """An unknown option before the command is a usage error naming it, with the nearest known option.
    argparse alone reports the misspelt option's value as the command (`--spede max` → "invalid choice:
    'max'"). A long option with one dash (`-speed`) or a pasted dash (`—speed`) is named with its
    two-hyphen form; a prefix of a known option (`--spe`) is left to argparse, which accepts it when
    unambiguous."""
    import argparse

    known = [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
    commands = next((set(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)), set())
    for token in argv:
        if token == "--" or token in commands:
            return
        said = name = token.split("=", 1)[0]
        if name[:1] in "\u2012\u2013\u2014\u2015\u2212" and len(name) > 1:  # a dash pasted from a document
            parser.error(f"unrecognized option {name}: options start with two hyphens (--{name[1:]})")
        if name.startswith("-") and not name.startswith("--") and len(name) > 2 and not name[1].isdigit():
            name = "-" + name  # `-speed`: argparse would read `-s peed`
        elif not name.startswith("--"):
            continue
        if name != said or not any(flag.startswith(name) for flag in known):
            import difflib

            near = difflib.get_close_matches(name, known, n=1)
            parser.error(f"unrecognized option {said}" + (f" (did you mean {near[0]}?)" if near else ""))


def _main(argv: Sequence[str] | None) -> int:
    from trdr_tui.commands import CliContext

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _refuse_unknown_options(parser, argv)
    args = parser.parse_args(argv)
    if args.command is not None:
        _route_run_options(parser, args)
    if args.command is not None or not args.headless:
        stop_signals.release()  # noted early only for a headless run
    if args.command is not None:
        stop_signals.note_interrupts()  # a Ctrl-C is still KeyboardInterrupt, and is remembered
    ctx = CliContext(args)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            _ = ctx.settings  # every command validates the configuration first, whether it reads it or not
        if handler is not None and args.command in argv:
            from trdr_tui.commands.remote import forward_if_running, is_read

            ctx.reads_only = is_read(argv[argv.index(args.command):])

            forwarded = forward_if_running(ctx, argv[argv.index(args.command):])
            if forwarded is not None:
                return forwarded
        if handler is None:
            from trdr_tui.commands.run import run_app

            code = run_app(ctx)
        else:
            code = int(handler(ctx) or 0)
        sys.stdout.flush()
        ctx.close()  # the journal's last records into the database: its failure (a full disk) is this run's
        return code
    except TrdrError as exc:  # exit_code: 2 bad input (StopError), 1 a runtime failure, 130 interrupted
        if exc.exit_code == 130 or stop_signals.interrupted_by(exc):
            raise KeyboardInterrupt from None
        print(f"trdr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except Exception as exc:  # any DuckDB error class found after the database opened: store.db.database_error
        if stop_signals.interrupted_by(exc):  # DuckDB's "Query interrupted", or an error that followed a Ctrl-C
            raise KeyboardInterrupt from None
        if not type(exc).__module__.startswith(("duckdb", "_duckdb")):
            raise
        from trdr_tui.store.db import database_error

        error = database_error(str(ctx.db_path), exc)
        print(f"trdr: error: {error}", file=sys.stderr)
        return error.exit_code
    finally:
        with contextlib.suppress(TrdrError):  # after another error, already reported; the journal keeps the rest
            ctx.close()


def _silence_stdout() -> None:
    """The reader closed the pipe (`| head`): point stdout at /dev/null so the exit flush cannot fail."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
