"""Headless control: the REST + WebSocket control API on aiohttp, Prometheus metrics, structured logs.

`server.ApiServer` runs in the engine's process (headless or cockpit) and drives the engine only through
the commands the cockpit uses (`core.engine_api.EngineControl`). See docs/operations.md.
"""
