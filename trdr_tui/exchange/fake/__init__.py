"""A local fake Coinbase Advanced Trade exchange for tests, demos and benchmarks (`python -m trdr_tui.exchange.fake`)."""

from trdr_tui.exchange.fake.server import FakeExchange, Faults

__all__ = ["FakeExchange", "Faults"]
