"""Fault injection: the knobs tests turn (`Faults`) and the injector that applies them and counts hits."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from trdr_tui.core.clock import NS_PER_SECOND

HTML_429 = b"<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>"

Counter = Literal["rest_429_html", "rest_5xx", "rest_timeout", "rest_reset", "timestamp_expired",
                  "lose_create_response", "stall_create_response", "ws_gap", "reject_create"]
"""The `Faults` fields that count down: each names the fault it fires."""


@dataclass
class Faults:
    """Faults to inject. Counters are consumed one per matching event; set them from tests."""

    rest_429_html: int = 0          # next N private/public requests answer 429 with an HTML body
    rest_5xx: int = 0               # next N requests answer `rest_5xx_status`
    rest_5xx_status: int = 503
    rest_timeout: int = 0           # next N requests stall for `timeout_s` before answering
    timeout_s: float = 2.0
    rest_reset: int = 0             # next N requests: connection closed before any answer
    timestamp_expired: int = 0      # next N private requests: 401 "request timestamp expired"
    lose_create_response: int = 0   # next N POST /orders are executed, then the connection drops
    stall_create_response: int = 0  # next N POST /orders are executed, then answered only after `timeout_s`
    slow_s: float = 0.0             # every request waits this long first
    duplicate_reject: bool = False  # a repeated client_order_id: False answers with the existing order (the
    #                                 create-order reference), True fails with DUPLICATE_CLIENT_ORDER_ID
    ws_gap: int = 0                 # next N market messages skip a sequence number
    ws_stale: bool = False          # send nothing at all (no heartbeats either)
    reject_create: int = 0          # next N POST /orders fail with `reject_reason`
    reject_reason: str = "INSUFFICIENT_FUND"  # e.g. COMMANDER_REJECTED_NEW_ORDER (transient), INVALID_LIMIT_PRICE
    visibility_lag_s: float = 0.0   # new orders stay invisible to get/list/cancel this long (listed late)
    fill_listing_lag_s: float = 0.0  # fills stay out of the fills list this long (an order reads FILLED first)
    transit_jitter_s: float = 0.0   # each REST request reaches the server after a random 0..this delay
    transit_seed: int = 1           # seed of those delays (the same run draws the same delays)
    clock_skew_s: float = 0.0       # the server's clock runs this far ahead of ours: JWTs (valid 2 minutes)
    #                                 read as expired, every private request answers 401, subscriptions fail


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering; `reason` is the message of the error raised."""

    reason: str


class FaultInjector:
    """Applies `faults` where the REST and WebSocket parts ask, and counts in `fired` (fault name → hits)
    how often each fault actually hit a request or a message."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.fired: dict[str, int] = {}
        self._transit_rng: random.Random | None = None

    def fire(self, fault: str) -> None:
        """Count one hit of `fault`."""
        self.fired[fault] = self.fired.get(fault, 0) + 1

    def take(self, counter: Counter) -> bool:
        """True (and one hit counted, one consumed) when the counter `counter` is still above zero."""
        left: int = getattr(self.faults, counter)
        if not left:
            return False
        setattr(self.faults, counter, left - 1)
        self.fire(counter)
        return True

    async def transit(self) -> None:
        """The request's time on the network: a seeded random delay of up to `transit_jitter_s`."""
        jitter = self.faults.transit_jitter_s
        if not jitter:
            return
        if self._transit_rng is None:
            self._transit_rng = random.Random(self.faults.transit_seed)
        self.fire("transit_jitter")
        await asyncio.sleep(self._transit_rng.uniform(0.0, jitter))

    async def before_request(self, *, private: bool) -> web.Response | Drop | None:
        """The faults that strike a REST request before its handler, in order: slowness, reset, stall,
        HTML 429, 5xx, and (private endpoints only) an expired timestamp. Returns the answer to send
        instead of the handler's, a `Drop`, or None to go on."""
        f = self.faults
        if f.slow_s:
            self.fire("slow")
            await asyncio.sleep(f.slow_s)
        if self.take("rest_reset"):
            return Drop("fault: reset")
        if self.take("rest_timeout"):
            await asyncio.sleep(f.timeout_s)
        if self.take("rest_429_html"):
            return web.Response(status=429, body=HTML_429, content_type="text/html")
        if self.take("rest_5xx"):
            return web.json_response({"error": "unavailable", "code": 14, "message": "upstream unavailable"},
                                     status=f.rest_5xx_status)
        if private and self.take("timestamp_expired"):
            return web.json_response({"error": "UNAUTHENTICATED", "code": 16, "message": "request timestamp expired"},
                                     status=401)
        return None

    def hidden(self, created_ns: int, now_ns: int) -> bool:
        """True while an order created at `created_ns` is still inside the visibility lag at `now_ns`."""
        lag = self.faults.visibility_lag_s
        if lag and created_ns > now_ns - int(lag * NS_PER_SECOND):
            self.fire("visibility_lag")
            return True
        return False

    def fill_unlisted(self, fill_ns: int, now_ns: int) -> bool:
        """True while a fill made at `fill_ns` is still inside the fill-listing lag at `now_ns`."""
        lag = self.faults.fill_listing_lag_s
        if lag and fill_ns > now_ns - int(lag * NS_PER_SECOND):
            self.fire("fill_listing_lag")
            return True
        return False
