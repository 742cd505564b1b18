"""A local fake Coinbase Advanced Trade exchange for tests, demos and benchmarks (`python -m trdr_testkit.fake_coinbase`)."""

from trdr_testkit.fake_coinbase.server import FakeExchange, Faults

__all__ = ["FakeExchange", "Faults"]
