"""Trading core: trailing orders, grid, sizing, risk, order lifecycle and the portfolio ledger."""
