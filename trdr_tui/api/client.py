"""A running trdr driven from elsewhere: its engine's control surface over the control API (`trdr attach`).

    remote = await RemoteEngine.connect("http://127.0.0.1:8765", token)   # GET status, agents, config
    app = make_app(remote.settings_for(local), remote)                     # the same cockpit, same keys
    await app.run_async()                                                  # the app runs remote.run()

`RemoteEngine` implements `EngineControl`: `run()` subscribes to the API's `events` WebSocket channel
(batched: one frame, a JSON array of messages, every `BATCH_MS` ms at most) and republishes every
event, decoded into its own type, on a local `EventBus` — so the cockpit's bridge, panes and keys work
unchanged. Commands (`pause`, `resume`, `set_agent_weight`, `stop`) travel as
WebSocket `command` messages and run on the remote engine through the same engine commands as there;
the remote's answer (or refusal) comes back as an ack that updates the local view, or as an error log line.
The clock is the remote engine's time as its events carry it. A dropped connection is retried with
backoff (`RECONNECT_S`); `stop()` stops the remote engine, unless `stop_remote=False` (then it only
detaches).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import msgspec

from trdr_tui.api.ws import EVENT_TYPES
from trdr_tui.config import Settings, convert_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock, SimClock
from trdr_tui.core.errors import ConfigError, RejectError, StopError, TrdrError
from trdr_tui.core.events import EngineStatus, LogEvent, WeightsChanged
from trdr_tui.core.types import Mode

RECONNECT_S = (0.5, 1.0, 2.0, 5.0)  # waits between reconnection attempts (the last one repeats)
RECONNECT_TRIES = 30
STOP_ACK_S = 15.0
BATCH_MS = 50  # the events' flush interval asked of the bot: at most this much later on screen, far fewer frames
TIMEOUT = aiohttp.ClientTimeout(total=30)


class RemoteEngine:
    """The cockpit's engine handle for a trdr running elsewhere (see the module docstring)."""

    def __init__(self, url: str, token: str, session: aiohttp.ClientSession, status: dict[str, Any],
                 base_weights: dict[str, float], weights: dict[str, float], config: dict[str, Any], *,
                 stop_remote: bool = True) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.session = session
        self.bus = EventBus()
        self.remote_time = SimClock(int(status.get("engine_time") or 0))
        self.clock: Clock = self.remote_time
        self.config = config
        self.stop_remote = stop_remote
        self._mode = Mode(status["mode"])
        self._symbol = str(status["symbol"])
        self._paused = bool(status["paused"])
        self._stopped = bool(status["stopped"])
        self._base = base_weights
        self._weights = weights
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._detaching = False
        self._stop_acked = asyncio.Event()
        self._sends: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, url: str, token: str, *, stop_remote: bool = True) -> RemoteEngine:
        """Ask the instance at `url` for its status, panel and config. Raises StopError when it cannot be
        reached, ConfigError when the token is refused."""
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        try:
            status = await _get(session, url, "/api/status")
            agents = (await _get(session, url, "/api/agents"))["agents"]
            config = (await _get(session, url, "/api/config"))["config"]
        except BaseException:
            await session.close()
            raise
        return cls(url, token, session, status, {a["id"]: a["base_weight"] for a in agents},
                   {a["id"]: a["weight"] for a in agents}, config, stop_remote=stop_remote)

    def settings_for(self, local: Settings) -> Settings:
        """The remote bot's settings (what the panes show: symbol, grid, agents) with this machine's `[tui]`."""
        data = dict(self.config)
        data["api"] = {**data.get("api", {}), "webhook_url": None, "token_file": None}  # redacted there
        remote = convert_settings(data, f"the config of {self.url}")
        return msgspec.structs.replace(remote, tui=local.tui)

    # -- EngineControl ---------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True
        self._command("pause", {})

    def resume(self) -> None:
        self._paused = False
        self._command("resume", {})

    def agent_weights(self) -> dict[str, float]:
        return dict(self._weights)

    def agent_base_weights(self) -> dict[str, float]:
        return dict(self._base)

    async def fetch(self, path: str, body: Any = None) -> Any:
        """GET `path` of the remote API as JSON (POST `body` when given). Raises StopError (unreachable,
        or not 200/202)."""
        return await _get(self.session, self.url, path, body)

    def set_agent_weight(self, agent_id: str, weight: float) -> None:
        if agent_id not in self._base:
            raise ConfigError(f"no agent '{agent_id}' in the remote panel", hint=f"agents: {', '.join(self._base)}")
        self._base[agent_id] = weight
        self._command("set_weight", {"agent_id": agent_id, "weight": weight})

    def fund(self, amount: float, *, source: str = "manual") -> None:
        """Ask the bot to book a deposit or withdrawal (its `fund` command); a refusal comes back as an
        error in the log. A live bot's account is the source: refused here already."""
        if self._mode is Mode.LIVE:
            raise RejectError("a live run books no deposits or withdrawals by hand",
                              hint="deposit or withdraw at Coinbase; the bot reads the account's balance")
        self._command("fund", {"amount": amount})

    async def run(self) -> None:
        """Mirror the remote engine's events on the local bus until it stops or `stop()` is called."""
        failures = 0
        while not self._detaching:
            try:
                async with self.session.ws_connect(self.url + "/api/ws", heartbeat=30.0,
                                                   max_msg_size=16 * 1024 * 1024) as ws:
                    self._ws = ws
                    failures = 0
                    await ws.send_json({"type": "subscribe", "channels": ["events"], "batch_ms": BATCH_MS})
                    async for msg in ws:
                        if msg.type is aiohttp.WSMsgType.TEXT:
                            self._on_message(msg.data)
                        elif msg.type is aiohttp.WSMsgType.ERROR:
                            break
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status == 401:
                    raise ConfigError(f"{self.url} refused the API token") from None
                failures += 1
            finally:
                self._ws = None
            if self._detaching or self._stopped:
                return
            failures = max(failures, 1)
            if failures > RECONNECT_TRIES:
                raise StopError(f"lost the connection to {self.url}",
                                hint="is the bot still running, and the SSH tunnel still open?")
            wait = RECONNECT_S[min(failures, len(RECONNECT_S)) - 1]
            self._log("warning", f"connection to {self.url} lost; retrying in {wait:g} s")
            await asyncio.sleep(wait)

    async def stop(self, reason: str = "shutdown") -> None:
        """Stop the remote engine (it writes its shutdown checkpoint) and detach; with `stop_remote=False`
        only detach."""
        if self.stop_remote and not self._stopped and self._ws is not None:
            self._stop_acked.clear()
            await self._send("stop", {})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop_acked.wait(), STOP_ACK_S)
        self._detaching = True
        if self._ws is not None:
            await self._ws.close()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        await self.session.close()

    # -- messages --------------------------------------------------------------------------------

    def _on_message(self, text: str) -> None:
        """One frame: a JSON array of messages (batched), or one message."""
        frame = msgspec.json.decode(text)
        for msg in frame if isinstance(frame, list) else (frame,):
            if isinstance(msg, dict):
                self._on_one(msg)

    def _on_one(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") == "events":
            data = msg["data"]
            kind = EVENT_TYPES.get(data.get("type"))
            if kind is None:
                return
            try:
                event: Any = msgspec.convert(data["event"], kind)
            except msgspec.ValidationError as exc:
                self._log("error", f"undecodable {data.get('type')} from {self.url}: {exc}")
                return
            self._apply(event)
            self.bus.publish(str(data["topic"]), event)
        elif msg.get("type") == "ack":
            self._acked(str(msg.get("action")), msg.get("result") or {})
        elif msg.get("type") == "error":
            self._log("error", f"the bot refused {msg.get('action') or 'a message'}: {msg.get('error')} "
                               f"{msg.get('hint') or ''}".strip())

    def _apply(self, event: Any) -> None:
        ts = getattr(event, "ts", None)
        if isinstance(ts, int) and ts > self.clock.now_ns():
            self.remote_time.advance_to(ts)
        if isinstance(event, EngineStatus):
            self._mode, self._paused = event.mode, event.paused
            if not event.running and event.detail.startswith(("stopped", "failed")):
                self._stopped = True
        elif isinstance(event, WeightsChanged):
            self._weights.update(event.weights)

    def _acked(self, action: str, result: dict[str, Any]) -> None:
        status = result.get("status")
        if isinstance(status, dict):
            self._paused, self._stopped = bool(status["paused"]), bool(status["stopped"])
        agents = result.get("agents")
        if isinstance(agents, list):
            self._base = {a["id"]: a["base_weight"] for a in agents}
            self._weights = {a["id"]: a["weight"] for a in agents}
        if action == "stop":
            self._stop_acked.set()

    def _command(self, action: str, params: dict[str, Any]) -> None:
        """Send a command without waiting (the cockpit's actions are synchronous); the ack updates state."""
        task = asyncio.get_running_loop().create_task(self._send(action, params))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, action: str, params: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            self._log("error", f"not connected to {self.url}: '{action}' was not sent")
            return
        try:
            await ws.send_json({"type": "command", "action": action, "params": params})
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            self._log("error", f"'{action}' was not sent to {self.url}: {exc}")

    def _log(self, level: str, message: str) -> None:
        self.bus.publish(f"log.{level}", LogEvent(ts=self.clock.now_ns(), level=level, source="attach",
                                                  message=message))


async def _get(session: aiohttp.ClientSession, url: str, path: str, body: Any = None) -> Any:
    try:
        async with session.request("GET" if body is None else "POST", url.rstrip("/") + path, json=body) as resp:
            if resp.status == 401:
                raise ConfigError(f"{url} refused the API token",
                                  hint="pass the bot's token with --token-file or $TRDR_API_TOKEN")
            if resp.status not in (200, 202):
                raise StopError(f"{url}{path} answered {resp.status}: {(await resp.text())[:200]}")
            return await resp.json()
    except TrdrError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise StopError(f"cannot reach trdr at {url}: {exc}",
                        hint="check the URL and that the SSH tunnel is open (ssh -L 8765:127.0.0.1:8765 server)") from None
