"""Commands while a bot holds the database: reads are answered by the running instance, writes refused.

DuckDB lets one process open a database file for writing and then no other process may open it. A
running `trdr` (headless or cockpit) therefore announces itself next to the database
(`<database>.api.json`, see `api/host.py`); another `trdr` on that database sends its read-only
commands (`READ_COMMANDS`) to the instance's `POST /api/cli`, which runs them on its open store and
returns their output and exit code. Any other command that needs the store is refused with a message
naming the instance (`CliContext.store`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from trdr_tui.commands.anywhere import ANYWHERE, accept_anywhere
from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import StopError

if TYPE_CHECKING:
    from trdr_tui.api.host import Instance
    from trdr_tui.api.schemas import CliResult

READ_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("data", "list"), ("data", "gaps"), ("sessions", "list"), ("sessions", "show"), ("sessions", "compare"),
    ("params", "list"), ("params", "show"), ("params", "diff"), ("params", "tuning"),
    ("agents",),
)
TIMEOUT_S = 30.0


def is_read(argv: Sequence[str]) -> bool:
    return any(tuple(argv[:len(cmd)]) == cmd for cmd in READ_COMMANDS) and not any(
        a in ("--report",) or a.startswith("--report=") for a in argv)  # a report writes a file


def api_call(inst: Instance, method: str, path: str, body: Any = None) -> Any:
    """One JSON request to a running instance (stdlib HTTP: no event loop needed in a CLI command)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(inst.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {inst.token()}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", "")
        except ValueError:
            detail = exc.reason
        raise StopError(f"{inst.describe()} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise StopError(f"cannot reach {inst.describe()}: {exc}",
                        hint="is it still running? its discovery file is removed when it stops") from None


def forward_if_running(ctx: CliContext, argv: Sequence[str]) -> int | None:
    """Run a read command through the instance on this database; None when no instance runs or the
    command is not a read (then it runs here as usual)."""
    from trdr_tui.api.host import find_instance

    if not is_read(argv):
        return None
    inst = find_instance(ctx.db_path)
    if inst is None:
        return None
    result = api_call(inst, "POST", "/api/cli", {"argv": list(argv)})
    print(result.get("stdout", ""), end="")
    err = result.get("stderr", "")
    if err:
        import sys

        print(err, end="", file=sys.stderr)
    return int(result.get("code", 1))


def _parser() -> argparse.ArgumentParser:
    """The subcommands that hold read commands (`READ_COMMANDS`), registered as the CLI does, with the
    options it accepts after a command (`trdr sessions list --db x.duckdb`)."""
    from trdr_tui.commands.agents import register as register_agents
    from trdr_tui.commands.data import register as register_data
    from trdr_tui.commands.params import register as register_params
    from trdr_tui.commands.sessions import register as register_sessions

    parser = argparse.ArgumentParser(prog="trdr", exit_on_error=False, add_help=False)
    sub = parser.add_subparsers(dest="command")
    for register in (register_data, register_agents, register_sessions, register_params):
        register(sub)
    accept_anywhere(sub)
    return parser


def make_cli_reader(ctx: CliContext) -> Callable[[list[str]], CliResult]:
    """The instance side: run an allowed read command on this process's store, capturing its output."""
    from trdr_tui.api.control import ApiError
    from trdr_tui.api.schemas import CliResult
    from trdr_tui.core.errors import ConfigError, NotAvailable, TrdrError

    def read(argv: list[str]) -> CliResult:
        if not is_read(argv):
            allowed = ", ".join(" ".join(c) for c in READ_COMMANDS)
            raise ApiError(403, f"'trdr {' '.join(argv)[:200]}' is not a read-only command", f"allowed: {allowed}")
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                parsed = _parser().parse_args(argv)
                for dest, _, _ in ANYWHERE:  # this instance's database, config and log apply, as before the command
                    parsed.__dict__.pop(dest, None)
                child = CliContext(argparse.Namespace(**{**vars(ctx.args), **vars(parsed)}))
                child.__dict__["settings"] = ctx.settings
                child.share_store(ctx.store)
                code = int(parsed.handler(child) or 0)
            except SystemExit as exc:  # argparse: bad usage or --help
                code = exc.code if isinstance(exc.code, int) else 2
            except argparse.ArgumentError as exc:
                print(f"trdr: error: {exc}", file=err)
                code = 2
            except (ConfigError, NotAvailable) as exc:
                print(f"trdr: error: {exc}", file=err)
                code = 2
            except TrdrError as exc:
                print(f"trdr: error: {exc}", file=err)
                code = 1
        return CliResult(code=code, stdout=out.getvalue(), stderr=err.getvalue())

    return read
