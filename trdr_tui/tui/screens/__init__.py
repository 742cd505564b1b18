"""Cockpit screens: main, help, mode switch, backtest form and results."""
