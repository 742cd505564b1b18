"""Each agent's directional votes scored against what price did next, after a round trip of fees.

    python bench/eval_agent_edge.py [--horizon 24] [--fee 0.006] [--split 2019-01-01]

On the real Coinbase BTC-USD hourly candles (2017-07 → 2019-10), every agent's batch signals are
computed once; each TRAIL_BUY is scored by the log return over the next `horizon` bars and each
TRAIL_SELL by its negative. Printed per agent and per period (before / from `--split`): the number
of votes, the hit rate, the mean signed move, and that mean minus a taker round trip (2 × `--fee`):
a vote whose mean net is negative does not pay for a trade on its own. The orchestrator's consensus
of the core and experimental agents together (equal base weights, adaptive) is scored the same way
("panel"). Agents with thresholds tuned on this data (see docs/agents.md) are
in-sample on both periods for those thresholds; nothing here is fitted to the returns.
"""

from __future__ import annotations

import argparse
import calendar
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.agents.realdata import load_cdd_hourly
from trdr_tui.agents.orchestrator import Orchestrator, OrchestratorConfig
from trdr_tui.agents.registry import BUILTINS, CORE_IDS, EXPERIMENTAL_IDS
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--fee", type=float, default=0.006)
    ap.add_argument("--split", default="2019-01-01")
    args = ap.parse_args()
    bars = load_cdd_hourly()
    split_ns = calendar.timegm(time.strptime(args.split, "%Y-%m-%d")) * 1_000_000_000
    ids = [*CORE_IDS, *EXPERIMENTAL_IDS]
    orch = Orchestrator([BUILTINS[i]() for i in ids], OrchestratorConfig(symbol="BTC-USD"), bus=EventBus(),
                        clock=SimClock(0))
    a = orch.precompute(bars)
    logc = np.log(bars.close)
    h = args.horizon
    fwd = np.full(len(bars), np.nan)
    fwd[:-h] = logc[h:] - logc[:-h]
    periods = {f"before {args.split}": bars.ts < split_ns, f"from {args.split}": bars.ts >= split_ns}
    print(f"{len(bars)} hourly candles; horizon {h} bars; round-trip taker cost {2 * args.fee * 100:.2f}%")
    print(f"{'agent':24s} {'period':18s} {'votes':>6s} {'hit':>6s} {'mean':>8s} {'net of fees':>12s}")
    columns = [("panel", a.action, a.valid)] + [(aid, a.agent_action[:, j], a.valid) for j, aid in enumerate(ids)]
    for name, act, valid in columns:
        for label, mask in periods.items():
            sign = np.where(act == 1, 1.0, np.where(act == 2, -1.0, 0.0))
            sel = valid & mask & (sign != 0) & ~np.isnan(fwd)
            moves = sign[sel] * fwd[sel]
            if moves.size == 0:
                print(f"{name:24s} {label:18s} {0:6d} {'—':>6s} {'—':>8s} {'—':>12s}")
                continue
            mean = float(moves.mean())
            print(f"{name:24s} {label:18s} {moves.size:6d} {np.mean(moves > 0) * 100:5.1f}% {mean * 100:+7.2f}% "
                  f"{(mean - 2 * args.fee) * 100:+11.2f}%")


if __name__ == "__main__":
    main()
