"""Cockpit panes: candles, agents, grid, orders, logs, status bar."""
