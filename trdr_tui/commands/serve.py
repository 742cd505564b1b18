"""`trdr serve`: the cockpit in a web browser (textual-serve), behind the control API's bearer token.

Each browser tab runs its own `trdr ARGS...` process (the cockpit, with the arguments after `--`), its
terminal drawn in the page by textual-serve. The page, its static files and its WebSocket need the token
of the control API (`api-token` beside the database, or `[api] token_file`; created 0600 if absent):
open `http://HOST:PORT/?token=TOKEN` once — the server answers with an HttpOnly, SameSite=Strict cookie
and a redirect to the address without the token — or send `Authorization: Bearer TOKEN`. Anything else
gets 401. Loopback by default, like the API: another address needs `--allow-remote` (and an SSH tunnel
or a TLS-terminating proxy in front, since textual-serve speaks plain HTTP).
"""

from __future__ import annotations

import argparse
import hmac
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import ConfigError

COOKIE = "trdr_token"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve the cockpit to a web browser (token-protected, loopback by default)",
                       description="Serve the cockpit with textual-serve: each browser tab runs `trdr ARGS` "
                                   "(the cockpit; e.g. `-- attach` to drive the bot running on this database, "
                                   "or `-- --feed replay`). Open http://HOST:PORT/?token=TOKEN once; the token "
                                   "is the control API's (docs/operations.md).")
    p.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                   help="address to serve on (default 127.0.0.1:8000)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --listen address (plain HTTP: prefer an SSH tunnel)")
    p.add_argument("cockpit", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help="arguments of the trdr each browser tab runs (default: none, the cockpit)")
    p.set_defaults(handler=run)


def cockpit_command(ctx: CliContext, args: list[str]) -> str:
    """The shell command a browser tab runs: this Python's trdr on the same config and database."""
    argv = [sys.executable, "-m", "trdr_tui"]
    if ctx.args.config is not None:
        argv += ["--config", str(ctx.args.config)]
    argv += ["--db", ctx.db_path, *(args[1:] if args[:1] == ["--"] else args)]
    return shlex.join(argv)


def token_gate(token: str) -> Callable[..., Awaitable[Any]]:
    """aiohttp middleware: the bearer header or the cookie must carry `token` (constant-time); a
    `?token=` on any GET sets the cookie and redirects to the same path without it."""
    from aiohttp import web

    from trdr_tui.api.auth import token_matches

    @web.middleware
    async def gate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        offered = request.query.get("token")
        if offered is not None and request.method == "GET" and hmac.compare_digest(offered.encode(), token.encode()):
            query = {k: v for k, v in request.query.items() if k != "token"}
            resp = web.HTTPFound(request.rel_url.with_query(query))
            resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return resp
        cookie = request.cookies.get(COOKIE, "")
        if token_matches(request.headers.get("Authorization"), token) or (
                cookie and hmac.compare_digest(cookie.encode(), token.encode())):
            return await handler(request)
        return web.Response(status=401, text="trdr serve: open this address with ?token=TOKEN (the control "
                                             "API's token file) or send Authorization: Bearer TOKEN\n")

    return gate


def run(ctx: CliContext) -> int:
    from textual_serve.server import Server

    from trdr_tui.api.auth import load_or_create_token
    from trdr_tui.api.host import default_token_path
    from trdr_tui.api.server import is_loopback, parse_listen

    host, port = parse_listen(ctx.args.listen, "--listen")
    if not is_loopback(host) and not ctx.args.allow_remote:
        raise ConfigError(f"--listen {ctx.args.listen} is not a loopback address",
                          hint="add --allow-remote, or better serve on 127.0.0.1 and use an SSH tunnel")
    if port == 0:
        raise ConfigError("--listen needs a fixed port (the page links to it)", hint="e.g. --listen 127.0.0.1:8000")
    settings = ctx.settings
    token_file = Path(settings.api.token_file) if settings.api.token_file else default_token_path(ctx.db_path)
    token = load_or_create_token(token_file)
    gate = token_gate(token)

    class GatedServer(Server):
        async def _make_app(self) -> Any:
            app = await super()._make_app()
            app.middlewares.append(gate)
            return app

    if not is_loopback(host):
        print(f"warning: serving the cockpit on {host} over plain HTTP; anyone who can reach it and has the "
              "token drives the bot", file=sys.stderr)
    command = cockpit_command(ctx, ctx.args.cockpit)
    shown = host if ":" not in host else f"[{host}]"
    print(f"trdr serve: http://{shown}:{port}/?token=… (token in {token_file})", flush=True)
    GatedServer(command, host=host, port=port, title="trdr").serve()
    return 0
