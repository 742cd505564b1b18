"""The advanced agents (PRD §3.2.2): time decay, microstructure, cross-asset correlation, sentiment,
and the Claude-powered chart-pattern agent."""
