"""`trdr attach [URL]`: the cockpit driving a trdr that runs elsewhere, through its control API.

    ssh -L 8765:127.0.0.1:8765 server            # on the laptop: a tunnel to the bot's API
    trdr attach http://127.0.0.1:8765 --token-file ~/.trdr-server-token

The same panes and keys as a local cockpit: space pauses the remote bot, +/- change an agent's
weight there, q stops it (shutdown checkpoint) and leaves — or only leaves with `--detach-on-quit`.
Without URL, attaches to the instance running on this database. The token comes from `--token-file`,
else `$TRDR_API_TOKEN`, else the instance's (or this database's) token file.
"""

from __future__ import annotations

import argparse
import os

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext
from trdr_tui.core import stop_signals
from trdr_tui.core.errors import ConfigError, StopError, TrdrError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attach", help="open the cockpit on a trdr running elsewhere (over its control API)",
                       description="Drive a running trdr (e.g. trdr --headless on a server, through an SSH "
                                   "tunnel) with the cockpit: same panes and keys. q stops the remote bot "
                                   "unless --detach-on-quit.")
    p.add_argument("url", nargs="?", help="the bot's API, e.g. http://127.0.0.1:8765 (default: the instance "
                                         "running on this database)")
    p.add_argument("--token-file", type=path_arg, help="file holding the bot's API token (default: $TRDR_API_TOKEN, "
                                                    "else the token file beside the database)")
    p.add_argument("--detach-on-quit", action="store_true", help="q leaves the cockpit and the bot keeps running")
    p.set_defaults(handler=run)


def resolve(ctx: CliContext) -> tuple[str, str]:
    """(url, token) from the arguments, the environment or the instance on this database."""
    from trdr_tui.api.auth import read_token
    from trdr_tui.api.host import default_token_path, find_instance

    args = ctx.args
    url = args.url
    inst = None
    if url is None:
        inst = find_instance(ctx.db_path)
        if inst is None:
            raise StopError(f"no trdr instance is running on {ctx.db_path}",
                            hint="give the bot's API URL: trdr attach http://127.0.0.1:8765")
        url = inst.url
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"'{url}' is not an http(s) URL", hint="e.g. trdr attach http://127.0.0.1:8765")
    if args.token_file is not None:
        token = read_token(args.token_file)
    elif os.environ.get("TRDR_API_TOKEN"):
        token = os.environ["TRDR_API_TOKEN"].strip()
    elif inst is not None:
        token = inst.token()
    else:
        token = read_token(default_token_path(ctx.db_path))
    if not token:
        raise ConfigError("the API token is empty", hint="pass --token-file with the bot's api-token file")
    return url, token


def run(ctx: CliContext) -> int:
    from trdr_tui.api.client import RemoteEngine
    from trdr_tui.commands.run import open_log_files
    from trdr_tui.core.logs import EventLog
    from trdr_tui.tui.app import make_app

    url, token = resolve(ctx)
    local = ctx.settings
    files = open_log_files(ctx, local)

    async def main() -> int:
        remote = await RemoteEngine.connect(url, token, stop_remote=not ctx.args.detach_on_quit)
        events = EventLog(remote.bus, remote.clock, min_level=files.level)
        try:
            app = make_app(remote.settings_for(local), remote)
            await app.run_async()
        finally:
            events.close()
            if not remote.session.closed:
                await remote.session.close()
        if app.engine_error is not None:
            error = app.engine_error
            raise error if isinstance(error, TrdrError) else StopError(f"{type(error).__name__}: {error}")
        return app.return_code or 0

    try:
        return stop_signals.run(main())
    finally:
        files.close()
