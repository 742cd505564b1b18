"""The control API server: aiohttp on the engine's event loop, in the engine's process.

    server = ApiServer(lambda: engine, Hooks(settings=settings), token=token)
    url = await server.start("127.0.0.1", 8765)      # also /metrics and the WebSocket at /api/ws
    ...
    await server.close()

Every route but `/api/health` and `/api/openapi.json` needs `Authorization: Bearer <token>` (compared in
constant time). Request bodies above `max_body_bytes` are refused (413); bodies are decoded into the
msgspec types of `schemas.py` (malformed JSON 400, a wrong field 422); errors are JSON
`{"error", "hint", "code"}`. Secrets never appear in a response. See docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from trdr_tui.api.alerts import WebhookAlerts
from trdr_tui.api.auth import token_matches
from trdr_tui.api.control import ApiError, Controller, Hooks
from trdr_tui.api.metrics import EngineMetrics
from trdr_tui.api.openapi import OPENAPI_PATH, ROUTES, WS_PATH, Route, openapi_document
from trdr_tui.api.schemas import ErrorBody, Health
from trdr_tui.core.errors import ConfigError, CredentialsError, DataError, TrdrError
from trdr_tui.core.types import Fill
from trdr_tui.engine.loop import Engine

log = logging.getLogger("trdr.api")
ENGINE_POLL_S = 0.5  # how often the server checks whether the host swapped its engine (mode switch)
PUBLIC = frozenset({"/api/health", OPENAPI_PATH})


def parse_listen(text: str, option: str = "--api") -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:8765`) → (host, port). Raises ConfigError naming `option` and the value
    (a URL's scheme and spaces included: the address is a host and a port, nothing else)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if (not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535 or "/" in host
            or host != host.strip()):
        hint = f"e.g. {option} 127.0.0.1:8765 (port 0 picks a free one)"
        if "://" in text:
            hint = f"give the address without a scheme, e.g. {option} 127.0.0.1:8765"
        raise ConfigError(f"{option} {text!r} is not HOST:PORT", hint=hint)
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from a certificate and key file (PEM), or None when neither is given."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both --api-tls-cert and --api-tls-key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from None
    return ctx


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(obj), status=status, content_type="application/json")


def _error(status: int, message: str, hint: str = "", code: str = "") -> web.Response:
    return _json(ErrorBody(error=message, hint=hint, code=code), status)


def _status_of(exc: TrdrError) -> int:
    if isinstance(exc, ConfigError | DataError):
        return 422
    if isinstance(exc, CredentialsError):
        return 403
    return 409


class ApiServer:
    """One API server for the engine `engine()` returns (the host may swap it on a mode switch)."""

    def __init__(self, engine: Callable[[], Engine], hooks: Hooks, *, token: str, max_body_bytes: int | None = None,
                 ws_queue: int | None = None) -> None:
        from trdr_tui.api.ws import WsHub

        api = hooks.settings.api
        self.token = token
        self.control = Controller(engine, hooks)
        self.hub = WsHub(ws_queue or api.ws_queue, self._trade_pnl)
        self.metrics = EngineMetrics(engine, self.control.performance, self.control.uptime, self.hub.stats,
                                     self.control.note_agent_times)
        self.app = web.Application(client_max_size=max_body_bytes or api.max_body_bytes,
                                   middlewares=[self._middleware])
        for route in ROUTES:
            self.app.router.add_route(route.method, route.path, self._handler(route))
        self.app.router.add_get(OPENAPI_PATH, self._openapi)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get(WS_PATH, self._ws)
        self._openapi_body = msgspec.json.encode(openapi_document(hooks.settings.agents.max_weight))
        self.alerts = WebhookAlerts(api.webhook_url) if api.webhook_url else None
        self._runner: web.AppRunner | None = None
        self._watch: asyncio.Task[None] | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None) -> str:
        """Listen on host:port (port 0: a free one); returns the base URL."""
        self._bind()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        scheme = "https" if ssl_context is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{bound}"
        self._watch = asyncio.get_running_loop().create_task(self._watch_engine())
        if self.alerts is not None:
            self.alerts.start()
        log.info("control API listening on %s", self.url)
        return self.url

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.alerts is not None:
            await self.alerts.close()
        await self.hub.drain(timeout=1.0)  # the last events (the engine's final status) reach the clients
        for client in list(self.hub.clients):
            await client.ws.close()
        await self.control.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.hub.unbind()
        self.metrics.unbind()

    def _bind(self) -> None:
        bus = self.control.engine.bus
        self.hub.bind(bus)
        self.metrics.bind(bus)
        if self.alerts is not None:
            self.alerts.bind(bus)

    async def _watch_engine(self) -> None:
        while True:
            await asyncio.sleep(ENGINE_POLL_S)
            self._bind()

    def _trade_pnl(self, fill: Fill) -> float | None:
        trades = self.control.engine.portfolio.trades
        if trades and trades[-1].exit_order_id == fill.order_id and trades[-1].exit_ts == fill.ts:
            return trades[-1].pnl
        return None

    # -- middleware and handlers -----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path not in PUBLIC and not token_matches(request.headers.get("Authorization"), self.token):
            response = _error(401, "missing or wrong bearer token",
                              "send 'Authorization: Bearer <token>'; the token is in the API token file")
            response.headers["WWW-Authenticate"] = 'Bearer realm="trdr"'
            return response
        try:
            return await handler(request)
        except ApiError as exc:
            return _error(exc.status, exc.message, exc.hint, exc.code)
        except TrdrError as exc:
            return _error(_status_of(exc), exc.message, exc.hint or "", exc.code or "")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _error(exc.status, exc.reason)
            if "Allow" in exc.headers:  # 405 names the methods the path takes (RFC 9110)
                response.headers["Allow"] = exc.headers["Allow"]
            return response

    def _handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
        method = getattr(self, f"op_{route.op}")

        known = {p.name for p in route.params if p.where == "query"}

        async def handle(request: web.Request) -> web.Response:
            unknown = sorted(set(request.query) - known)
            if unknown:
                raise ApiError(400, f"unknown query parameter(s): {', '.join(map(repr, unknown))}",
                               f"this operation takes: {', '.join(sorted(known)) or 'none'}")
            args: dict[str, Any] = {}
            for p in route.params:
                raw = request.match_info.get(p.name) if p.where == "path" else request.query.get(p.name)
                if raw is None:
                    continue
                if p.schema.get("type") == "integer":
                    lo, hi = p.schema.get("minimum", 0), p.schema.get("maximum", 10**9)
                    if not raw.lstrip("-").isdigit() or not lo <= int(raw) <= hi:
                        raise ApiError(400, f"query parameter '{p.name}' must be an integer in [{lo}, {hi}], got {raw!r}")
                    args[p.name] = int(raw)
                else:
                    args[p.name] = raw
            if route.body is not None:
                raw_body = await request.read()
                try:
                    args["body"] = msgspec.json.decode(raw_body, type=route.body)
                except msgspec.ValidationError as exc:
                    raise ApiError(422, f"invalid request body: {exc}", "see the schema in /api/openapi.json") from None
                except msgspec.DecodeError as exc:
                    raise ApiError(400, f"request body is not valid JSON: {exc}") from None
            result = method(**args)
            if asyncio.iscoroutine(result):
                result = await result
            return _json(result, route.status)

        return handle

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._openapi_body, content_type="application/json")

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        return await self.hub.serve(request, self.ws_command)

    async def ws_command(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """A WebSocket `command`: the same engine commands as the REST routes."""
        c = self.control
        try:
            if action == "pause":
                result: Any = c.pause()
            elif action in ("resume", "start"):
                result = c.start()
            elif action == "stop":
                result = c.stop()
            elif action == "set_weight":
                agent, weight = params.get("agent_id"), params.get("weight")
                if not isinstance(agent, str) or isinstance(weight, bool) or not isinstance(weight, int | float):
                    raise ApiError(422, "set_weight needs params {\"agent_id\": str, \"weight\": number}")
                result = c.set_weight(agent, float(weight))
            elif action == "mode":
                result = await c.switch_mode(str(params.get("mode")), params.get("confirm"))
            elif action == "fund":
                amount = params.get("amount")
                if isinstance(amount, bool) or not isinstance(amount, int | float):
                    raise ApiError(422, "fund needs params {\"amount\": number}")
                result = c.fund(float(amount))
            else:
                raise ApiError(400, f"unknown action {action!r}", "actions: pause, resume, stop, set_weight, mode, fund")
        except ApiError as exc:
            return {"type": "error", "action": action, "error": exc.message, "hint": exc.hint}
        except TrdrError as exc:
            return {"type": "error", "action": action, "error": exc.message, "hint": exc.hint or ""}
        return {"type": "ack", "action": action, "result": msgspec.to_builtins(result)}

    # -- REST operations (names are the OpenAPI operationIds) ------------------------------------

    def op_health(self) -> Health:
        from trdr_tui import __version__

        return Health(version=__version__, uptime_seconds=self.control.uptime())

    def op_status(self) -> Any:
        return self.control.status()

    def op_trading_start(self) -> Any:
        return self.control.start()

    def op_trading_stop(self) -> Any:
        return self.control.stop()

    def op_trading_pause(self) -> Any:
        return self.control.pause()

    def op_trading_funding(self, body: Any) -> Any:
        return self.control.fund(body.amount)

    async def op_trading_mode(self, body: Any) -> Any:
        return await self.control.switch_mode(body.mode, body.confirm)

    def op_config_get(self) -> Any:
        return self.control.config()

    def op_config_put(self, body: Any) -> Any:
        return self.control.put_config(body.config)

    def op_agents(self) -> Any:
        return self.control.agents()

    def op_agent_weight(self, id: str, body: Any) -> Any:
        return self.control.set_weight(id, body.weight)

    def op_performance(self) -> Any:
        return self.control.performance()

    def op_trades(self, limit: int = 100, offset: int = 0) -> Any:
        return self.control.trades(limit, offset)

    def op_agents_performance(self) -> Any:
        return self.control.agent_performance()

    def op_agents_profile(self, body: Any) -> Any:
        return self.control.profile_memory(body.agents, int(body.calls))

    def op_execution_quality(self) -> Any:
        return self.control.execution_quality()

    def op_decisions(self, limit: int = 100) -> Any:
        return self.control.decisions(limit)

    def op_order_trace(self, id: str) -> Any:
        return self.control.order_trace(id)

    def op_backtest_run(self, body: Any) -> Any:
        return self.control.start_backtest(body)

    def op_backtest_status(self, id: str) -> Any:
        return self.control.job_status(id)

    def op_backtest_results(self, id: str) -> Any:
        return self.control.job_results(id)

    def op_cli(self, body: Any) -> Any:
        reader = self.control.hooks.cli_reader
        if reader is None:
            raise ApiError(409, "this instance does not answer trdr commands")
        return reader(list(body.argv))
