"""A local fake of the Anthropic Messages API for tests (`python -m trdr_testkit.fake_anthropic`).

The real `anthropic` SDK is pointed at it through `base_url`. It checks each request the way the
service would reject it (key and version headers, model, tool schema and forced tool choice, an image
block that is a real 800×600 PNG) and answers as scripted: a valid tool call, malformed JSON, numbers
out of range, 429, 529 overloaded, 500, no tool call, or a reply slower than the client's timeout.
"""

from trdr_testkit.fake_anthropic.server import FakeAnthropic, serve_in_thread

__all__ = ["FakeAnthropic", "serve_in_thread"]
