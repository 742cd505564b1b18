"""`ClaudeService`: every call trdr makes to Claude goes through here — cache, budget, validation.

One service is shared by the `ai_pattern` agent and the AI meta-resolver. For each question (a kind,
a prompt version and a key: the sha256 of the model, the prompt version and the input):

1. the response cache (`ai_responses` in DuckDB) answers if it can: free, and a backtest re-run
   reads exactly the answers of the first run;
2. mode `cache` stops there (`NotCached`); mode `live` asks Claude if the budget allows: a normal
   call is refused once today's spend (UTC day, wall time) plus the expected cost passes
   `ai.daily_budget_usd`, or when `ai.max_calls_per_hour` calls were made in the last hour; a
   critical call is always made (PRD §12.1). A refused call raises `BudgetExceeded`; the caller falls
   back (cached or rule-based analysis);
3. the answer is a forced tool call (structured output) decoded with msgspec; a malformed or
   out-of-range answer raises `InvalidResponse` (E004), is counted and never cached;
4. each call's tokens come from the response's `usage`, its cost from `ai.prices` (USD per million
   tokens; cache-write and cache-read tokens are priced as input), recorded in `ai_calls` (so the
   budget survives restarts) and logged (`log.info` on the bus).

Without a key, when the key file is readable by others, or when the service fails (429, 529
overloaded, 5xx, timeout, no connection), calls raise `AIUnavailable` with the reason: the agent
votes HOLD at no confidence, the resolver uses the rules, the panel goes on.

The key comes from `ANTHROPIC_API_KEY` or `[ai] key_file` (owner-only permissions), is handed to the
SDK and never printed, logged or stored. The budget counts real money in real time: its clock is a
`WallClock` even in backtests (tests pass a `SimClock`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from trdr_tui.agents.ai.answers import decode_answer
from trdr_tui.config import AIConfig, AIMode, Settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import NS_PER_SECOND, Clock
from trdr_tui.core.errors import ConfigError, InvalidResponse, SkipError
from trdr_tui.core.events import LogEvent
from trdr_tui.store.ai_cache import AICall, AIResponseRepository
from trdr_tui.store.db import Store

log = logging.getLogger(__name__)

T = TypeVar("T", bound=msgspec.Struct)
Priority = Literal["normal", "critical"]
DAY_NS = 86_400 * NS_PER_SECOND
HOUR_NS = 3_600 * NS_PER_SECOND
# Before the first call: a chart question is about 1,500 input tokens (an 800×600 image is ~640).
FIRST_ESTIMATE_TOKENS = (1_500, 300)


class AIUnavailable(SkipError):
    """Claude cannot answer now (no key, service down, rate limited); `reason` says why."""


class NotCached(AIUnavailable):
    """Mode `cache` and no cached answer for this input."""


class BudgetExceeded(AIUnavailable):
    """A normal-priority call refused by the daily budget or the hourly call limit."""


class AIStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the cockpit and the logs show about Claude: USD today (and the budget), paid calls made
    by this service, cache hits, E004 answers, and why it is unavailable ('' when it is not)."""

    mode: str
    model: str
    spend_today_usd: float
    budget_usd: float
    calls: int
    cache_hits: int
    invalid: int
    unavailable: str


def deprecation_of(model: str) -> str | None:
    """The end-of-life date the installed SDK gives for `model`, or None when it lists none.

    Reads the SDK's deprecation table (`anthropic._data.DEPRECATED_MODELS`, a private module: an SDK
    without it means no warning, never an error)."""
    try:
        from anthropic._data import DEPRECATED_MODELS
    except ImportError:
        return None
    table: Mapping[str, str] = DEPRECATED_MODELS
    return table.get(model)


def read_api_key(cfg: AIConfig, env: Mapping[str, str]) -> tuple[str | None, str]:
    """(key, '') from `ANTHROPIC_API_KEY`, else from `cfg.key_file`; (None, why not) otherwise.
    A key file that group or others may read is refused (the reason says `chmod 600`)."""
    key = env.get("ANTHROPIC_API_KEY", "").strip()
    if key:
        return key, ""
    if cfg.key_file is None:
        return None, "no Anthropic API key: set ANTHROPIC_API_KEY or [ai] key_file (a file with chmod 600)"
    path = Path(cfg.key_file).expanduser()
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            return None, f"the key file {path} is readable by others: run `chmod 600 {path}`"
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return None, f"cannot read the key file {path} ({exc.strerror or exc}): fix [ai] key_file"
    if not key:
        return None, f"the key file {path} is empty: put the Anthropic API key in it"
    return key, ""


def input_key(*parts: str | bytes) -> str:
    """sha256 (hex) over length-prefixed parts: the cache key of one question."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class ClaudeService:
    def __init__(self, cfg: AIConfig, *, mode: AIMode, store: Store, clock: Clock, bus: EventBus | None = None,
                 api_key: str | None = None, key_problem: str = "") -> None:
        self.cfg = cfg
        self.model = cfg.model
        self.mode: AIMode = mode
        self.repo = AIResponseRepository(store)
        self.clock = clock
        self.bus = bus
        self._api_key = api_key
        self._client: Any = None
        self._cache: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.calls = 0
        self.cache_hits = 0
        self.invalid = 0
        self.unavailable = key_problem if mode == "live" else ""
        self._costs: list[float] = []
        self._refusing = False
        price = cfg.prices.get(self.model)
        if mode == "live" and price is None:
            raise ConfigError(f"no price for model '{self.model}'", where="[ai.prices]",
                              hint=f"add [ai.prices.{self.model}] with input and output (USD per million tokens) "
                                   "from Anthropic's price list, so the daily budget can be kept")
        self._price = price
        eol = deprecation_of(self.model)
        if eol is not None:
            self._emit("warning", f"the configured model '{self.model}' is deprecated (end of life {eol}); "
                                  "set [ai] model to a current one, e.g. claude-sonnet-4-6", code="deprecated")
        if self.unavailable:
            self._emit("warning", f"Claude unavailable: {self.unavailable}")

    @classmethod
    def from_settings(cls, settings: Settings, *, mode: AIMode, store: Store, clock: Clock,
                      bus: EventBus | None = None, env: Mapping[str, str] | None = None) -> ClaudeService:
        key, problem = read_api_key(settings.ai, os.environ if env is None else env)
        return cls(settings.ai, mode=mode, store=store, clock=clock, bus=bus, api_key=key, key_problem=problem)

    def __repr__(self) -> str:  # never the key
        return f"ClaudeService(model={self.model!r}, mode={self.mode!r}, key={'set' if self._api_key else 'none'})"

    # -- asking ------------------------------------------------------------------------------------

    def cached(self, kind: str, version: str, key: str, answer: type[T], *, where: str) -> T | None:
        """The cached answer for `key`, decoded (counted as a cache hit), or None."""
        table = self._cache.get((kind, version))
        if table is None:
            table = self._cache[(kind, version)] = self.repo.load(self.model, version, kind)
        raw = table.get(key)
        if raw is None:
            return None
        self.cache_hits += 1
        return decode_answer(raw, answer, where=where)

    async def ask(self, *, kind: str, version: str, key: str, answer: type[T], tool: dict[str, Any],
                  content: Callable[[], Awaitable[list[dict[str, Any]]]], system: str, priority: Priority = "normal",
                  where: str, check: Callable[[T], None] | None = None) -> tuple[T, str]:
        """(answer, 'cache' | 'live') for one question. `content` builds the user message blocks (awaited
        only for a live call); `check` may refuse a decoded answer (raising InvalidResponse) before
        it is cached. Raises NotCached, BudgetExceeded, AIUnavailable or InvalidResponse."""
        hit = self.cached(kind, version, key, answer, where=where)
        if hit is not None:
            if check is not None:
                check(hit)
            return hit, "cache"
        if self.mode != "live":
            raise NotCached("not cached" if self.mode == "cache" else "AI off")
        if self._api_key is None:
            raise AIUnavailable(self.unavailable)
        refusal = self.refusal(priority)
        if refusal:
            if not self._refusing:  # said once when refusals start, not on every bar
                self._emit("warning", f"Claude calls refused: {refusal}; using the fallback until the limit "
                                      "allows again", code="budget")
            self._refusing = True
            raise BudgetExceeded(refusal)
        self._refusing = False
        raw, usage = await self._call(kind, tool, await content(), system, priority)
        try:
            got = decode_answer(raw, answer, where=where)
            if check is not None:
                check(got)
        except InvalidResponse as exc:
            self._paid(kind, priority, "invalid", usage)
            self.invalid += 1
            self._emit("warning", exc.render(), code="E004")
            raise
        self._paid(kind, priority, "ok", usage)
        stored = msgspec.to_builtins(got)
        self.repo.put(key, kind=kind, model=self.model, prompt_version=version, response=stored,
                      created_ns=self.clock.now_ns())
        self._cache.setdefault((kind, version), {})[key] = stored
        return got, "live"

    async def _call(self, kind: str, tool: dict[str, Any], content: list[dict[str, Any]], system: str,
                    priority: Priority) -> tuple[Any, Any]:
        import anthropic

        if self._client is None:
            self._client = anthropic.AsyncAnthropic(api_key=self._api_key, base_url=self.cfg.base_url,
                                                    timeout=self.cfg.timeout_seconds, max_retries=0)
        try:
            response = await self._client.messages.create(
                model=self.model, max_tokens=self.cfg.max_tokens, system=system, tools=[tool],
                tool_choice={"type": "tool", "name": tool["name"]},
                messages=[{"role": "user", "content": content}])
        except anthropic.APIResponseValidationError as exc:
            self._failed(kind, priority)
            self.invalid += 1
            err = InvalidResponse(f"Claude's response could not be read: {exc.message}", where=f"ai {kind}",
                                  hint="the answer is dropped; the caller falls back")
            self._emit("warning", err.render(), code="E004")
            raise err from None
        except anthropic.APIError as exc:
            self._failed(kind, priority)
            reason = _failure(exc, self.cfg.timeout_seconds)
            self.unavailable = reason
            self._emit("warning", f"Claude unavailable: {reason}", code="unavailable")
            raise AIUnavailable(reason) from None
        except ValueError as exc:  # a body that is not JSON at all
            self._failed(kind, priority)
            self.invalid += 1
            err = InvalidResponse(f"Claude's response is not JSON: {exc}", where=f"ai {kind}",
                                  hint="the answer is dropped; the caller falls back")
            self._emit("warning", err.render(), code="E004")
            raise err from None
        self.unavailable = ""
        blocks = [b for b in getattr(response, "content", None) or []
                  if getattr(b, "type", None) == "tool_use" and getattr(b, "name", None) == tool["name"]]
        usage = getattr(response, "usage", None)
        if not blocks:
            self._paid(kind, priority, "invalid", usage)
            self.invalid += 1
            err = InvalidResponse(f"Claude answered without calling {tool['name']}", where=f"ai {kind}",
                                  hint="the answer is dropped; the caller falls back")
            self._emit("warning", err.render(), code="E004")
            raise err
        return blocks[0].input, usage

    # -- money -------------------------------------------------------------------------------------

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for a call: tokens × the model's price per million (0 without a price: cache mode)."""
        p = self._price
        return 0.0 if p is None else (input_tokens * p.input + output_tokens * p.output) / 1e6

    def spend_today(self) -> float:
        now = self.clock.now_ns()
        return self.repo.spend_since(now - now % DAY_NS)[0]

    def refusal(self, priority: Priority) -> str:
        """Why a call of this priority may not be made now ('' when it may)."""
        if priority == "critical":
            return ""
        now = self.clock.now_ns()
        estimate = (sum(self._costs[-20:]) / len(self._costs[-20:])) if self._costs \
            else self.cost(*FIRST_ESTIMATE_TOKENS)
        spent = self.repo.spend_since(now - now % DAY_NS)[0]
        if spent + estimate > self.cfg.daily_budget_usd:
            return (f"daily budget reached (${spent:.2f} spent of ${self.cfg.daily_budget_usd:.2f} today, "
                    f"next call ~${estimate:.3f})")
        recent = len(self.repo.call_times_since(now - HOUR_NS))
        if recent >= self.cfg.max_calls_per_hour:
            return f"{recent} calls in the last hour (max_calls_per_hour = {self.cfg.max_calls_per_hour})"
        return ""

    def _paid(self, kind: str, priority: Priority, outcome: str, usage: Any) -> None:
        tin = sum(int(getattr(usage, f, 0) or 0) for f in
                  ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        tout = int(getattr(usage, "output_tokens", 0) or 0)
        usd = self.cost(tin, tout)
        self.calls += 1
        self._costs.append(usd)
        self.repo.record_call(AICall(ts=self.clock.now_ns(), kind=kind, model=self.model, priority=priority,
                                     outcome=outcome, input_tokens=tin, output_tokens=tout, cost_usd=usd))
        self._emit("info", f"Claude {kind} call ({priority}, {outcome}): {tin} in + {tout} out tokens, "
                           f"${usd:.4f}; ${self.spend_today():.2f} of ${self.cfg.daily_budget_usd:.2f} today",
                   code="cost", usd=usd)

    def _failed(self, kind: str, priority: Priority) -> None:
        """A call that got no answer: no tokens billed, still counted against the hourly limit."""
        self.calls += 1
        self.repo.record_call(AICall(ts=self.clock.now_ns(), kind=kind, model=self.model, priority=priority,
                                     outcome="failed", input_tokens=0, output_tokens=0, cost_usd=0.0))

    # -- reporting ---------------------------------------------------------------------------------

    def status(self) -> AIStatus:
        return AIStatus(mode=self.mode, model=self.model, spend_today_usd=self.spend_today() if self.calls else 0.0,
                        budget_usd=self.cfg.daily_budget_usd, calls=self.calls, cache_hits=self.cache_hits,
                        invalid=self.invalid, unavailable=self.unavailable)

    def status_line(self) -> str:
        """e.g. 'AI live: $0.42 of $10.00 today · 12 calls · 30 cached · 0 E004'."""
        s = self.status()
        return (f"AI {s.mode}: ${s.spend_today_usd:.2f} of ${s.budget_usd:.2f} today · {s.calls} calls · "
                f"{s.cache_hits} cached · {s.invalid} E004")

    def _emit(self, level: str, message: str, *, code: str = "", usd: float | None = None) -> None:
        getattr(log, level)("%s", message)
        if self.bus is not None:
            fields: dict[str, str | float | int | bool | None] = {"code": code, "model": self.model}
            if usd is not None:
                fields["usd"] = usd
            self.bus.publish(f"log.{level}", LogEvent(ts=self.clock.now_ns(), level=level, source="ai",
                                                      message=message, fields=fields))


def _failure(exc: Exception, timeout_s: float) -> str:
    """Why a call failed, in words (never the request, which holds no secret anyway, nor headers)."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return f"no answer within {timeout_s:g} s (timeout)"
    if isinstance(exc, anthropic.APIConnectionError):
        return "cannot reach the Anthropic API (connection failed)"
    if isinstance(exc, anthropic.RateLimitError):
        return "rate limited by Anthropic (429)"
    if isinstance(exc, anthropic.AuthenticationError):
        return "the API key was refused (401): check ANTHROPIC_API_KEY or [ai] key_file"
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 529:
            return "Anthropic is overloaded (529)"
        return f"Anthropic answered HTTP {exc.status_code}"
    return f"{type(exc).__name__}"
