"""Test support for trdr, kept out of the shipped wheel: a fake Coinbase exchange (`fake_coinbase`)."""
