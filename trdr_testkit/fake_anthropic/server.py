"""`FakeAnthropic`: POST /v1/messages on 127.0.0.1 (aiohttp)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import struct
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BEHAVIOURS = ("valid", "malformed_json", "bad_fields", "out_of_range", "no_tool", "429", "529", "500", "timeout")


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when `data` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


class FakeAnthropic:
    """The fake. `await start()` binds 127.0.0.1 on a free port; the SDK's base URL is `url`.

    `script` holds the behaviours of the next requests (one each, see BEHAVIOURS); when it is empty
    every request gets `default`. `requests` keeps every request body received, `problems` what was
    wrong with a request (such a request gets the API's 400 invalid_request_error).
    """

    def __init__(self, *, api_key: str = "sk-ant-test", model: str | None = None, default: str = "valid",
                 delay_s: float = 5.0, chart_size: tuple[int, int] = (800, 600)) -> None:
        self.api_key = api_key
        self.model = model
        self.default = default
        self.delay_s = delay_s
        self.chart_size = chart_size
        self.script: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.answers: dict[str, dict[str, Any]] = {}  # tool name → a fixed tool input (else derived)
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the endpoint ------------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "invalid_request_error", "body is not JSON")
        self.requests.append(body)
        problem = self._check(request, body)
        if problem:
            self.problems.append(problem)
            status = 401 if problem.startswith("x-api-key") else 400
            kind = "authentication_error" if status == 401 else "invalid_request_error"
            return self._error(status, kind, problem)
        behaviour = self.script.popleft() if self.script else self.default
        if behaviour == "429":
            return self._error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                               headers={"retry-after": "1"})
        if behaviour == "529":
            return self._error(529, "overloaded_error", "Overloaded")
        if behaviour == "500":
            return self._error(500, "api_error", "Internal server error")
        if behaviour == "timeout":
            await asyncio.sleep(self.delay_s)
        tool = body["tool_choice"]["name"]
        answer = self._answer(tool, body)
        if behaviour == "bad_fields":
            answer = {**answer, "confidence": "very", "surprise": True}
        elif behaviour == "out_of_range":
            answer = {**answer, "confidence": 150}
            if "support" in answer:
                answer["support"] = answer["support"] * 100
        content: list[dict[str, Any]] = [{"type": "tool_use", "id": f"toolu_{len(self.requests):06d}", "name": tool,
                                          "input": answer}]
        if behaviour == "no_tool":
            content = [{"type": "text", "text": "I think the chart looks bullish."}]
        message = {"id": f"msg_{len(self.requests):06d}", "type": "message", "role": "assistant",
                   "model": body["model"], "content": content, "stop_reason": "tool_use", "stop_sequence": None,
                   "usage": {"input_tokens": self._input_tokens(body), "output_tokens": 120}}
        if behaviour == "malformed_json":
            text = json.dumps(message)
            return web.Response(status=200, text=text[: len(text) // 2], content_type="application/json")
        return web.json_response(message)

    def _check(self, request: web.Request, body: dict[str, Any]) -> str:
        bearer = request.headers.get("authorization", "")
        if request.headers.get("x-api-key") != self.api_key and bearer != f"Bearer {self.api_key}":
            return "x-api-key (or Authorization: Bearer) header missing or wrong"
        if not request.headers.get("anthropic-version"):
            return "anthropic-version header missing"
        model = body.get("model")
        if not isinstance(model, str) or not model or (self.model is not None and model != self.model):
            return f"model {model!r} is not the expected {self.model!r}"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens missing"
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {}
        names = {t.get("name") for t in tools}
        if choice.get("type") != "tool" or choice.get("name") not in names:
            return f"tool_choice {choice!r} does not force one of the tools {sorted(n for n in names if n)}"
        for t in tools:
            schema = t.get("input_schema") or {}
            if schema.get("type") != "object" or not schema.get("properties") or not schema.get("required"):
                return f"tool {t.get('name')!r} has no object input_schema with properties and required fields"
        messages = body.get("messages") or []
        if not messages or messages[0].get("role") != "user":
            return "messages must start with a user message"
        blocks = messages[0].get("content") or []
        for block in blocks if isinstance(blocks, list) else []:
            if block.get("type") == "image":
                source = block.get("source") or {}
                if source.get("type") != "base64" or source.get("media_type") != "image/png":
                    return "image block must be base64 image/png"
                try:
                    data = base64.b64decode(source.get("data", ""), validate=True)
                except (binascii.Error, ValueError):
                    return "image data is not base64"
                size = png_size(data)
                if size is None:
                    return "image data is not a PNG"
                if size != self.chart_size:
                    return f"image is {size[0]}×{size[1]}, expected {self.chart_size[0]}×{self.chart_size[1]}"
        if choice.get("name") == "report_chart_analysis" and not any(
                isinstance(b, dict) and b.get("type") == "image" for b in blocks):
            return "a chart question carries no image block"
        return ""

    def _answer(self, tool: str, body: dict[str, Any]) -> dict[str, Any]:
        if tool in self.answers:
            return dict(self.answers[tool])
        if tool == "report_chart_analysis":
            text = " ".join(b.get("text", "") for b in body["messages"][0]["content"] if b.get("type") == "text")
            m = re.search(r"Recent price sequence: ([^\n]+)", text)
            prices = [float(x) for x in m.group(1).split(",")] if m else [100.0]
            rising = prices[-1] >= prices[0]
            return {"pattern": "ascending channel" if rising else "descending channel",
                    "support": round(min(prices) * 0.99, 2), "resistance": round(max(prices) * 1.01, 2),
                    "momentum": "BULLISH" if rising else "BEARISH",
                    "action": "TRAIL_BUY" if rising else "TRAIL_SELL", "confidence": 72, "trail_distance": 1.5}
        return {"action": "HOLD", "confidence": 64, "reasoning": "the sides cancel out; wait for the next bar"}

    @staticmethod
    def _input_tokens(body: dict[str, Any]) -> int:
        images = sum(1 for b in body["messages"][0]["content"] if isinstance(b, dict) and b.get("type") == "image")
        text = json.dumps({k: v for k, v in body.items() if k != "messages"}) + json.dumps(
            [b for b in body["messages"][0]["content"] if isinstance(b, dict) and b.get("type") == "text"])
        return len(text) // 4 + images * 640  # ~4 characters a token; an 800×600 image ~640 tokens

    @staticmethod
    def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status,
                                 headers=headers)


@contextmanager
def serve_in_thread(fake: FakeAnthropic) -> Iterator[FakeAnthropic]:
    """Run `fake` on its own event loop in a daemon thread (for code that runs its own loop, e.g. a
    CLI backtest); stopped on exit."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-anthropic", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake Anthropic API did not start")
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
