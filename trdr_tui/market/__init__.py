"""Market data: feeds, market state, indicators, candle arrays and file import."""
