"""The experimental agents (PRD §3.2.2 items 11–16): methods from physics, ecology and topology applied to
prices, each named for what it computes (docs/agents.md). Off by default."""
