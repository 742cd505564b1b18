"""Claude in trdr: the `ai_pattern` agent, the AI meta-resolver and the service they share
(cache, budget, validation). See docs/ai.md."""
