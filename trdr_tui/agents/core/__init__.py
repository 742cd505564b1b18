"""The five core agents (PRD §3.2.2): volatility, momentum, volume profile, market structure, regime."""
