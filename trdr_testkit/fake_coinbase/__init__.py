"""A local fake Coinbase Advanced Trade exchange for tests, demos and benchmarks (`python -m trdr_testkit.fake_coinbase`).

Modules by job: `wire` (paths, time and decimal formats), `auth` (JWT verification), `faults` (fault
injection), `matching` (the market: price path, accounts, orders, fills), `rest` (REST endpoints and
the rate limit), `ws` (WebSocket channels), `server` (`FakeExchange`, which wires them), `prices`
(candles and the price path), `__main__` (the command line).
"""

from trdr_testkit.fake_coinbase.faults import Faults
from trdr_testkit.fake_coinbase.server import FakeExchange

__all__ = ["FakeExchange", "Faults"]
