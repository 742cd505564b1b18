"""The control API against a real headless bot on loopback: every endpoint, auth, config, mode, limits."""

from __future__ import annotations

import stat

from tests.api.conftest import Bot
from trdr_tui.api.openapi import ROUTES

SAMPLE = {"id": "nope"}


def concrete(path: str) -> str:
    return path.replace("{id}", SAMPLE["id"])


def test_token_file_is_private_and_every_route_needs_it(bot: Bot) -> None:
    assert stat.S_IMODE(bot.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(bot.discovery.stat().st_mode) == 0o600
    for route in ROUTES:
        if not route.auth:
            continue
        for token in (None, "wrong-token", bot.token + "x"):
            status, body = bot.call(route.method, concrete(route.path), {}, token=token)
            assert status == 401, (route.path, token, status)
            assert "token" in body["error"] and bot.token not in str(body)
    assert bot.call("GET", "/metrics", token=None)[0] == 401
    assert bot.call("GET", "/api/health", token=None)[0] == 200
    status, doc = bot.call("GET", "/api/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert {r.path for r in ROUTES} <= set(doc["paths"])


def test_read_endpoints_answer_with_the_running_engine(bot: Bot) -> None:
    status = bot.wait_for("a few fills", lambda s: s["fills"] >= 4)
    assert status["mode"] == "paper" and status["symbol"] == "BTC-USD" and status["running"]
    perf = bot.get("/api/performance")
    assert perf["equity"] > 0 and perf["trades"] >= 0
    # after fees, as the cockpit shows it: realized P&L is gross of fees (trading/portfolio.py)
    assert perf["fees"] > 0
    assert abs(perf["total_pnl"] - (perf["realized_pnl"] + perf["unrealized_pnl"] - perf["fees"])) < 1e-6
    agents = bot.get("/api/agents")["agents"]
    assert {a["id"] for a in agents} >= {"volatility", "momentum", "regime"}
    quality = bot.get("/api/execution-quality")
    assert quality["fills"] >= 4 and quality["orders"] >= quality["fills"] - quality["fills"]
    assert quality["maker_fills"] + quality["taker_fills"] == quality["fills"]
    perf_agents = bot.get("/api/agents/performance")["agents"]
    assert all(a["mean_ms"] is None or a["mean_ms"] >= 0 for a in perf_agents)
    assert any(a["mean_ms"] is not None for a in perf_agents)
    trades = bot.get("/api/trades?limit=2")
    assert len(trades["trades"]) == min(2, trades["total"])
    assert bot.call("GET", "/api/trades?limit=0")[0] == 400
    assert bot.call("GET", "/api/trades?limit=abc")[0] == 400
    decisions = bot.get("/api/decisions?limit=3")["decisions"]
    assert 1 <= len(decisions) <= 3 and decisions[0]["action"] in ("TRAIL_BUY", "TRAIL_SELL")
    config = bot.get("/api/config")["config"]
    assert config["symbol"] == "BTC-USD" and "api" in config


def test_order_trace_puts_creation_status_and_fills_in_order(bot: Bot) -> None:
    bot.wait_for("a round trip", lambda s: s["fills"] >= 2)
    trades = bot.get("/api/trades?limit=1")
    if trades["trades"]:
        order_id = trades["trades"][0]["exit_order_id"]
    else:  # no round trip yet: any order's trace, through the decisions' run
        order_id = bot.get("/api/status")["run_id"] + "-1"
    trace = bot.get(f"/api/orders/{order_id}/trace")
    kinds = [row["kind"] for row in trace["timeline"]]
    assert kinds[0] == "created" and "status" in kinds
    assert [row["ts"] for row in trace["timeline"]] == sorted(row["ts"] for row in trace["timeline"])
    assert bot.call("GET", "/api/orders/no-such-order/trace")[0] == 404


def test_pause_start_and_weights_go_through_the_engine(bot: Bot) -> None:
    status, ack = bot.call("POST", "/api/trading/pause")
    assert status == 200 and ack["status"]["paused"] is True
    assert bot.get("/api/status")["paused"] is True
    status, ack = bot.call("POST", "/api/trading/start")
    assert status == 200 and ack["status"]["paused"] is False
    status, body = bot.call("PUT", "/api/agents/momentum/weight", {"weight": 2.5})
    assert status == 200
    assert {a["id"]: a["base_weight"] for a in body["agents"]}["momentum"] == 2.5
    before = bot.get("/api/agents")
    for bad in (-1, 1e308, 3.01):  # outside [0, [agents] max_weight]: refused naming the range
        status, body = bot.call("PUT", "/api/agents/momentum/weight", {"weight": bad})
        assert status == 422 and "must be a number from 0 to 3 ([agents] max_weight)" in body["error"], body
    weight_schema = bot.get("/api/openapi.json")["components"]["schemas"]["WeightRequest"]["properties"]["weight"]
    assert (weight_schema["minimum"], weight_schema["maximum"]) == (0, 3.0)  # the document states the same range
    assert bot.call("PUT", "/api/agents/ghost/weight", {"weight": 1.0})[0] == 404
    assert bot.call("PUT", "/api/agents/momentum/weight", {"weight": "heavy"})[0] == 422
    assert bot.call("PUT", "/api/agents/momentum/weight", raw=b"{not json")[0] == 400
    after = bot.get("/api/agents")
    assert [a["base_weight"] for a in after["agents"]] == [a["base_weight"] for a in before["agents"]]


def test_a_bad_config_put_changes_nothing(bot: Bot) -> None:
    doc = bot.get("/api/config")
    config = doc["config"]
    status, body = bot.call("PUT", "/api/config", {"config": config})
    assert status == 200  # the same document is a no-op
    bad = {**config, "grid": {**config["grid"], "levels": "many"}}
    status, body = bot.call("PUT", "/api/config", {"config": bad})
    assert status == 422 and "levels" in body["error"]
    typo = {**config, "gird": {}}
    status, body = bot.call("PUT", "/api/config", {"config": typo})
    assert status == 422 and "grid" in (body["error"] + body["hint"])
    risky = {**config, "risk": {**config["risk"], "max_position": 0.9},
             "agents": {**config["agents"], "weights": {"momentum": 0.5}}}
    status, body = bot.call("PUT", "/api/config", {"config": risky})
    assert status == 409 and "risk.max_position" in body["error"]
    assert bot.get("/api/config") == doc  # nothing changed: neither the risk limit nor the weight
    assert {a["id"]: a["base_weight"] for a in bot.get("/api/agents")["agents"]}["momentum"] != 0.5
    weights = {**config, "agents": {**config["agents"], "weights": {"momentum": 0.5}}}
    status, body = bot.call("PUT", "/api/config", {"config": weights})
    # the document is layered over the shipped defaults, like a config file: unnamed agents keep theirs
    assert status == 200 and body["config"]["agents"]["weights"] == {**config["agents"]["weights"], "momentum": 0.5}
    assert {a["id"]: a["base_weight"] for a in bot.get("/api/agents")["agents"]}["momentum"] == 0.5


def test_live_switch_needs_confirmation_and_credentials(bot: Bot) -> None:
    status, body = bot.call("PUT", "/api/trading/mode", {"mode": "live"})
    assert status == 403 and "confirmation" in body["error"] and '"confirm": "live"' in body["hint"]
    status, body = bot.call("PUT", "/api/trading/mode", {"mode": "live", "confirm": "yes"})
    assert status == 422
    status, body = bot.call("PUT", "/api/trading/mode", {"mode": "live", "confirm": "live"})
    assert status == 403 and "credentials" in body["error"]
    assert bot.call("PUT", "/api/trading/mode", {"mode": "paper"})[0] == 200  # already paper
    assert bot.call("PUT", "/api/trading/mode", {"mode": "moon"})[0] == 422
    assert bot.get("/api/status")["mode"] == "paper"


def test_request_size_is_limited(bot: Bot) -> None:
    status, _ = bot.call("PUT", "/api/config", raw=b'{"config": {"x": "' + b"a" * 200_000 + b'"}}')
    assert status == 413


def test_backtest_runs_in_the_background(bot: Bot) -> None:
    import time

    status, job = bot.call("POST", "/api/backtest/run", {"preset": "simple-trailing"})
    assert status == 202 and job["status"] == "running"
    deadline = time.monotonic() + 120
    while job["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = bot.get(f"/api/backtest/{job['id']}/status")
    assert job["status"] == "done", job
    results = bot.get(f"/api/backtest/{job['id']}/results")["stats"]
    assert results["bars"] > 1000 and "sharpe" in results
    assert bot.call("GET", "/api/backtest/nope/status")[0] == 404
    assert bot.call("POST", "/api/backtest/run", {"start": "not a date"})[0] == 202  # fails in the job
