"""Self-tuning (PRD §3.5, §12.2, §13.5): three inputs → derived parameters, adaptive values, the
optimizer (Optuna) with a walk-forward objective, and the daily loop of paper and live trading."""
