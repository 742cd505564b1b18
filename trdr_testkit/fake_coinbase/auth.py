"""JWT verification: the CDP keys the fake accepts and the checks Coinbase makes on each token."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.exchange.coinbase_auth import JwtError, PublicKey, format_uri, verify_jwt

LEEWAY_S = 1
"""Seconds of clock skew allowed on `nbf`/`exp`."""


class JwtGate:
    """Verifies CDP JWTs (signature by a registered key, `nbf`/`exp`, and for REST the `uri` claim naming
    this request's method, host:port and path) against the wall clock `now_ns` (UNIX nanoseconds)."""

    def __init__(self, now_ns: Callable[[], int]) -> None:
        self.keys: dict[str, PublicKey] = {}
        self._now_ns = now_ns

    def add_key(self, key_name: str, public_key: PublicKey) -> None:
        """Accept tokens signed by `public_key` for the CDP key `key_name` (`organizations/.../apiKeys/...`)."""
        self.keys[key_name] = public_key

    def check_request(self, request: web.Request) -> str:
        """What is wrong with the request's `Authorization: Bearer` token, or "" when it is valid."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return "missing bearer token"
        expected = format_uri(request.method, request.host, request.path)
        try:
            verify_jwt(auth[7:], self.keys, now_s=self._now_ns() // NS_PER_SECOND, expected_uri=expected,
                       leeway_s=LEEWAY_S)
        except JwtError as exc:
            return str(exc)
        return ""

    def token_ok(self, token: str) -> bool:
        """True when a WebSocket subscription's token is valid (no `uri` claim is expected there)."""
        try:
            verify_jwt(token, self.keys, now_s=self._now_ns() // NS_PER_SECOND, leeway_s=LEEWAY_S)
        except JwtError:
            return False
        return True
