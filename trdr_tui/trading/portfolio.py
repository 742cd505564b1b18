"""The portfolio ledger: cash, position, average entry, realized/unrealized P&L, fees, round trips.

One symbol, spot, long-only (a SELL never exceeds the position). Accounting rules:

* a BUY of `size` at `price` costs `price × size` plus its fee; a SELL brings `price × size` minus
  its fee. Fees are charged on top of the notional, in the quote currency.
* realized P&L is gross of fees, matched first-in first-out against the lots bought; the average
  entry is the size-weighted price of the lots still held.
* equity = cash + position × price, so equity − initial cash = realized + unrealized − fees.
* a fill that would make cash or the position negative is refused whole (E002) and changes nothing;
  a fill id seen before is refused too (every fill appears once).

Round trips (`core.types.Trade`) pair each exit with the entry lots it closed; a trade's `pnl` is net
of the entry and exit fees allocated to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from trdr_tui.core.errors import InsufficientFunds, StateCorruption
from trdr_tui.core.types import Fill, Side, Trade

# Sizes below this fraction of a lot count as fully consumed (float noise from partial fills).
_DUST = 1e-12


class Lot:
    __slots__ = ("fee", "order_id", "price", "size", "ts")

    def __init__(self, order_id: str, ts: int, price: float, size: float, fee: float) -> None:
        self.order_id = order_id
        self.ts = ts
        self.price = price
        self.size = size
        self.fee = fee  # the entry fee still allocated to the remaining size


class Portfolio:
    """The ledger for one symbol. All amounts float64 in the quote currency (Decimal lives at the boundary)."""

    def __init__(self, symbol: str, cash: float, *, tolerance: float = 1e-9) -> None:
        if not cash >= 0.0:
            raise ValueError(f"starting cash must be ≥ 0, got {cash}")
        self.symbol = symbol
        self.initial_cash = cash
        self.cash = cash
        self.position = 0.0
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.peak_equity = cash
        self.last_price = 0.0
        self.lots: list[Lot] = []
        self.trades: list[Trade] = []
        self.fills: list[Fill] = []
        self._fill_ids: set[str] = set()
        self._tolerance = tolerance

    # -- reading ---------------------------------------------------------------------------------

    @property
    def avg_entry(self) -> float:
        size = 0.0
        cost = 0.0
        for lot in self.lots:
            size += lot.size
            cost += lot.size * lot.price
        return cost / size if size > 0.0 else 0.0

    def equity(self, price: float) -> float:
        return self.cash + self.position * price

    def unrealized_pnl(self, price: float) -> float:
        return sum((price - lot.price) * lot.size for lot in self.lots)

    def mark(self, price: float) -> float:
        """Mark to market at `price`; keeps the peak for drawdown. Returns equity."""
        self.last_price = price
        eq = self.cash + self.position * price
        if eq > self.peak_equity:
            self.peak_equity = eq
        return eq

    def drawdown(self, price: float) -> float:
        peak = self.peak_equity
        return (peak - self.equity(price)) / peak if peak > 0 else 0.0

    # -- writing ---------------------------------------------------------------------------------

    def apply_fill(self, fill: Fill) -> Trade | None:
        """Book one fill; returns the round trip it closed (SELL), if any. All-or-nothing."""
        if fill.symbol != self.symbol:
            raise StateCorruption(f"fill {fill.id} is for {fill.symbol}, this ledger holds {self.symbol}")
        if fill.id in self._fill_ids:
            raise StateCorruption(f"fill {fill.id} was already booked", hint="fills are applied exactly once")
        if not (fill.size > 0.0 and fill.price > 0.0 and fill.fee >= 0.0):
            raise StateCorruption(f"fill {fill.id} has size {fill.size}, price {fill.price}, fee {fill.fee}",
                                  hint="sizes and prices must be positive and fees not negative")
        notional = fill.price * fill.size
        trade: Trade | None = None
        if fill.side is Side.BUY:
            self._buy(fill, notional)
        else:
            trade = self._sell(fill, notional)
        self._fill_ids.add(fill.id)
        self.fills.append(fill)
        self.fees += fill.fee
        return trade

    def _buy(self, fill: Fill, notional: float) -> None:
        cash = self.cash - (notional + fill.fee)
        if cash < -self._tolerance * max(1.0, self.cash):
            raise InsufficientFunds(
                f"BUY {fill.size} {self.symbol} at {fill.price} needs {notional + fill.fee:.8f}, cash is {self.cash:.8f}")
        self.cash = max(cash, 0.0)
        self.position += fill.size
        self.lots.append(Lot(fill.order_id, fill.ts, fill.price, fill.size, fill.fee))
        return None

    def _sell(self, fill: Fill, notional: float) -> Trade:
        size = fill.size
        if size > self.position * (1.0 + self._tolerance) + _DUST:
            raise InsufficientFunds(f"SELL {size} {self.symbol} exceeds the position {self.position}")
        entry_cost = 0.0
        entry_fee = 0.0
        entry_ts = 0
        entry_order = ""
        left = size
        lots = self.lots
        while left > 0.0 and lots:
            lot = lots[0]
            if not entry_order:
                entry_order, entry_ts = lot.order_id, lot.ts
            take = lot.size if lot.size <= left * (1.0 + _DUST) else left
            share = take / lot.size
            entry_cost += take * lot.price
            fee_part = lot.fee * share
            entry_fee += fee_part
            left -= take
            if take >= lot.size:
                lots.pop(0)
            else:
                lot.size -= take
                lot.fee -= fee_part
        gross = notional - entry_cost
        self.realized_pnl += gross
        self.cash += notional - fill.fee
        self.position = self.position - size if lots else 0.0
        return self._record_trade(fill, size, entry_order, entry_ts, entry_cost, gross - entry_fee - fill.fee,
                                  entry_fee + fill.fee)

    def _record_trade(self, fill: Fill, size: float, entry_order: str, entry_ts: int, entry_cost: float,
                      pnl: float, fees: float) -> Trade:
        trade = Trade(symbol=self.symbol, entry_order_id=entry_order, exit_order_id=fill.order_id,
                      entry_ts=entry_ts, exit_ts=fill.ts, entry_price=entry_cost / size, exit_price=fill.price,
                      size=size, pnl=pnl, fees=fees)
        self.trades.append(trade)
        return trade

    # -- checkpoints -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "initial_cash": self.initial_cash, "cash": self.cash,
            "position": self.position, "realized_pnl": self.realized_pnl, "fees": self.fees,
            "peak_equity": self.peak_equity, "last_price": self.last_price,
            "lots": [[lot.order_id, lot.ts, lot.price, lot.size, lot.fee] for lot in self.lots],
            "fill_ids": sorted(self._fill_ids),
        }

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Portfolio:
        p = cls(str(state["symbol"]), float(state["initial_cash"]))  # type: ignore[arg-type]
        p.restore(state)
        return p

    def restore(self, state: dict[str, object]) -> None:
        """Become the ledger a checkpoint's `to_state()` describes, in place (whoever holds this ledger
        sees the restored one). The checkpoint's fills and round trips are not in the state: the fill
        and trade lists start empty, the booked fill ids are kept so none is booked twice.

        Raises StateCorruption when the state is for another symbol.
        """
        if state["symbol"] != self.symbol:
            raise StateCorruption(f"ledger state is for {state['symbol']}, this ledger holds {self.symbol}")
        self.initial_cash = float(state["initial_cash"])  # type: ignore[arg-type]
        self.cash = float(state["cash"])  # type: ignore[arg-type]
        self.position = float(state["position"])  # type: ignore[arg-type]
        self.realized_pnl = float(state["realized_pnl"])  # type: ignore[arg-type]
        self.fees = float(state["fees"])  # type: ignore[arg-type]
        self.peak_equity = float(state["peak_equity"])  # type: ignore[arg-type]
        self.last_price = float(state["last_price"])  # type: ignore[arg-type]
        self.lots = [Lot(str(o), int(t), float(pr), float(s), float(f))
                     for o, t, pr, s, f in state["lots"]]  # type: ignore[attr-defined]
        self.trades = []
        self.fills = []
        self._fill_ids = set(state["fill_ids"])  # type: ignore[call-overload]

    def rebuild_from_fills(self, fills: Iterable[Fill]) -> None:
        """Reset to the initial cash with nothing booked, then book `fills` in the order given (the
        store's write-through record of a run): the ledger those fills imply, in place.

        Raises what `apply_fill` raises (StateCorruption, InsufficientFunds); the ledger is then left
        at the fills booked so far.
        """
        cash = self.initial_cash
        self.cash = cash
        self.position = 0.0
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.peak_equity = cash
        self.last_price = 0.0
        self.lots = []
        self.trades = []
        self.fills = []
        self._fill_ids = set()
        for fill in fills:
            self.apply_fill(fill)
