"""Backtesting: runner, statistics, baselines, sessions, parameter versions, Monte Carlo, walk-forward, reports."""
