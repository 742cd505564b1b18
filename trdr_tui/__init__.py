"""trdr: a terminal grid-trading bot for Coinbase."""

__version__ = "0.1.0"
