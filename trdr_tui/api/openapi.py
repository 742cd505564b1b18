"""The API's routes and its OpenAPI 3.1 document, both from one table (`ROUTES`).

The server registers exactly these routes; the schemas come from the msgspec types the handlers decode
and encode (`msgspec.json.schema_components`), so the document cannot drift from the code. Served at
`GET /api/openapi.json` (no token needed: it holds no data).
"""

from __future__ import annotations

from typing import Any

import msgspec

from trdr_tui import __version__
from trdr_tui.api import schemas as s

OPENAPI_PATH = "/api/openapi.json"
WS_PATH = "/api/ws"


class Param(msgspec.Struct, frozen=True):
    name: str
    where: str  # "path" | "query"
    schema: dict[str, Any]


class Route(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str  # aiohttp style: /api/agents/{id}/weight
    op: str  # operationId, also the handler's name
    summary: str
    response: type
    body: type | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    auth: bool = True


LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
OFFSET = Param("offset", "query", {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0})
ID = Param("id", "path", {"type": "string", "minLength": 1, "maxLength": 200})

ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/api/health", op="health", summary="Liveness; no token needed", response=s.Health,
          auth=False),
    Route(method="GET", path="/api/status", op="status", summary="Mode, symbol, run state, equity", response=s.Status),
    Route(method="POST", path="/api/trading/start", op="trading_start",
          summary="Resume placing orders (after a pause)", response=s.Ack, errors=(409,)),
    Route(method="POST", path="/api/trading/stop", op="trading_stop",
          summary="Stop the run: shutdown checkpoint, then the engine ends", response=s.Ack, status=202, errors=(409,)),
    Route(method="POST", path="/api/trading/pause", op="trading_pause",
          summary="Stop placing new orders; feed, ledger and open orders go on", response=s.Ack, errors=(409,)),
    Route(method="POST", path="/api/trading/funding", op="trading_funding",
          summary="Paper: book a deposit (+) or withdrawal (−) of quote currency now and resize the grid; "
                  "refused in live (the exchange balance is the source)", response=s.Ack, body=s.FundingRequest,
          errors=(400, 409, 422)),
    Route(method="PUT", path="/api/trading/mode", op="trading_mode",
          summary="Switch paper ↔ live; live needs confirm='live' and credentials", response=s.Ack,
          body=s.ModeRequest, errors=(400, 403, 409, 422)),
    Route(method="GET", path="/api/config", op="config_get", summary="The settings in force (secrets redacted)",
          response=s.ConfigDoc),
    Route(method="PUT", path="/api/config", op="config_put",
          summary="Validate a whole config like the file; apply all of it or nothing", response=s.ConfigDoc,
          body=s.ConfigPut, errors=(400, 409, 422)),
    Route(method="GET", path="/api/agents", op="agents", summary="The panel and its weights", response=s.AgentList),
    Route(method="PUT", path="/api/agents/{id}/weight", op="agent_weight",
          summary="Set one agent's base weight (as the cockpit's +/-)", response=s.AgentList, body=s.WeightRequest,
          errors=(400, 404, 409, 422), params=(ID,)),
    Route(method="GET", path="/api/performance", op="performance", summary="P&L, drawdown, win rate",
          response=s.Performance),
    Route(method="GET", path="/api/trades", op="trades", summary="Round trips, newest first", response=s.TradeList,
          errors=(400,), params=(LIMIT, OFFSET)),
    Route(method="GET", path="/api/agents/performance", op="agents_performance",
          summary="Per agent: scored calls, accuracy, edge, failures, call time, memory", response=s.AgentPerformanceList),
    Route(method="POST", path="/api/agents/profile", op="agents_profile",
          summary="Measure the memory of the agents' next calls (tracemalloc while sampling)",
          response=s.AgentPerformanceList, body=s.ProfileRequest, status=202, errors=(400, 404, 409, 422)),
    Route(method="GET", path="/api/execution-quality", op="execution_quality",
          summary="Fills, maker share, slippage, fill time, failed orders", response=s.ExecutionQuality),
    Route(method="GET", path="/api/decisions", op="decisions", summary="Recent actionable decisions, newest first",
          response=s.Decisions, errors=(400,), params=(LIMIT,)),
    Route(method="GET", path="/api/orders/{id}/trace", op="order_trace",
          summary="An order's creation, status changes and fills in time order", response=s.OrderTrace,
          errors=(404,), params=(ID,)),
    Route(method="POST", path="/api/backtest/run", op="backtest_run", summary="Start a backtest in the background",
          response=s.BacktestJob, body=s.BacktestRequestBody, status=202, errors=(400, 409, 422)),
    Route(method="GET", path="/api/backtest/{id}/status", op="backtest_status", summary="A backtest's progress",
          response=s.BacktestJob, errors=(404,), params=(ID,)),
    Route(method="GET", path="/api/backtest/{id}/results", op="backtest_results",
          summary="A finished backtest's statistics", response=s.BacktestResults, errors=(404, 409), params=(ID,)),
    Route(method="POST", path="/api/cli", op="cli",
          summary="Run a read-only trdr command here (the process holding the database)", response=s.CliResult,
          body=s.CliRequest, errors=(400, 403, 409, 422)),
)

STATUS_TEXT = {400: "Malformed request", 401: "Missing or wrong bearer token", 403: "Refused",
               404: "Not found", 409: "Refused in the current state", 413: "Request body too large",
               422: "Invalid value"}


def openapi_document(max_weight: float) -> dict[str, Any]:
    """The document; `max_weight` (`[agents] max_weight`) bounds `WeightRequest.weight`, as the engine does
    (`config.base_weight_problem`)."""
    types = [r.response for r in ROUTES] + [r.body for r in ROUTES if r.body is not None] + [s.ErrorBody]
    refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    components[s.WeightRequest.__name__]["properties"]["weight"].update(minimum=0, maximum=max_weight)
    ref = dict(zip(types, refs, strict=True))
    error = {"content": {"application/json": {"schema": ref[s.ErrorBody]}}}
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        responses: dict[str, Any] = {str(r.status): {"description": "OK",
                                                     "content": {"application/json": {"schema": ref[r.response]}}}}
        codes = set(r.errors) | ({401} if r.auth else set()) | ({413} if r.body is not None else set())
        for code in sorted(codes):
            responses[str(code)] = {"description": STATUS_TEXT[code], **error}
        op: dict[str, Any] = {"operationId": r.op, "summary": r.summary, "responses": responses}
        if r.params:
            op["parameters"] = [{"name": p.name, "in": p.where, "required": p.where == "path", "schema": p.schema}
                                for p in r.params]
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[r.body]}}}
        if not r.auth:
            op["security"] = []
        paths.setdefault(r.path, {})[r.method.lower()] = op
    paths["/metrics"] = {"get": {"operationId": "metrics", "summary": "Prometheus metrics (text exposition)",
                                 "responses": {"200": {"description": "OK", "content": {"text/plain": {
                                     "schema": {"type": "string"}}}},
                                     "401": {"description": STATUS_TEXT[401], **error}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "trdr control API", "version": __version__,
                 "description": f"Control and observe a running trdr engine. WebSocket channels at {WS_PATH} "
                                "(see docs/operations.md): send `{\"type\": \"subscribe\", \"channels\": [...]}` "
                                "and get one `{\"channel\", \"data\"}` message a text frame; add "
                                "`\"batch_ms\": N` (1-1000) to get each frame as a JSON array of those messages "
                                "in publish order (flushed within N ms, at most 1,000 a frame; replies are arrays "
                                "too). Every endpoint but /api/health and this document "
                                "needs `Authorization: Bearer <token>`."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
