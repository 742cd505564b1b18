"""Fault injection: the knobs tests turn (`Faults`) and the injector that applies them and counts hits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from trdr_tui.core.clock import NS_PER_SECOND

HTML_429 = b"<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>"

Counter = Literal["rest_429_html", "rest_5xx", "rest_timeout", "rest_reset", "timestamp_expired",
                  "lose_create_response", "ws_gap", "reject_create"]
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
    slow_s: float = 0.0             # every request waits this long first
    duplicate_reject: bool = False  # a repeated client_order_id fails with DUPLICATE_CLIENT_ORDER_ID
    ws_gap: int = 0                 # next N market messages skip a sequence number
    ws_stale: bool = False          # send nothing at all (no heartbeats either)
    reject_create: int = 0          # next N POST /orders fail with INSUFFICIENT_FUND-style errors
    visibility_lag_s: float = 0.0   # new orders stay invisible to get/list this long (eventual consistency)


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
