"""The portfolio ledger: cash, position, average entry, realized/unrealized P&L, fees, round trips.

One symbol, spot, long-only (a SELL never exceeds the position). Accounting rules:

* a BUY of `size` at `price` costs `price × size` plus its fee; a SELL brings `price × size` minus
  its fee. Fees are charged on top of the notional, in the quote currency, as the executor reports them.
* realized P&L is gross of fees, matched first-in first-out against the lots bought; the average
  entry is the size-weighted price of the lots still held.
* equity = cash + position × price, so equity − initial cash − contributions = realized + unrealized − fees.
* deposits and withdrawals (`fund`, PRD §3.3.3) change cash and `contributed_exact`, never P&L; each is
  kept in `flows` as (ts ns, amount) so returns and drawdown can leave them out (`trading.funding`).
* coins sent in or out (`transfer`) are contributions in kind valued at the mark: coins in become a
  lot at the mark; coins out leave the oldest lots first, and their gain since bought is realized (it
  was the run's: they left at the mark, like a sale without a fee). Kept in `transfers`.
* a fill that would make cash or the position negative is refused whole (E002) and changes nothing;
  a fill id seen before is refused too (every fill appears once).
* except a fill a real exchange made (`apply_fill(..., overdraw=True)`): the money moved, so it is
  booked. A Coinbase spot account cannot go below zero, so a BUY costing more than the cash or a SELL
  of more than the position means the account held more than the ledger (the ledger was behind, or
  the run used money of the user's beside it). The part the ledger lacked is booked first as a
  contribution from the account, never as P&L: cash for a BUY, coins valued at the fill's price for a
  SELL (a lot at that price, so the excess closes with no gross P&L). Each such booking is kept in
  `overdrafts` (an `Overdraft`) for the operator and the restart reconciliation; cash and the position
  never go negative.

Exact arithmetic. The ledger's amounts are `Decimal`s (`cash_exact`, `position_exact`,
`realized_exact`, `fees_exact`, each `Lot`): a fill's price, size and fee are read as the decimal
numbers the executor reported (`trading.sizing.to_decimal`: 0.1 is 0.1) and every sum and product is
computed in `LEDGER_CONTEXT`, which traps `Inexact` — an amount the ledger cannot hold exactly is an
error (StateCorruption), never a silent rounding. So the rules above hold with `==`: Σ lot sizes is the
position, a position of zero has no lots, equity − initial cash is realized + unrealized − fees.
With the product's `Increments` given, a fill's size must be a multiple of the base increment and
its price of the price tick (the executor rounds; the ledger checks). The one rounding inside the
ledger is the share of an entry fee carried to a partly closed lot (rounded down to `FEE_QUANTUM`;
the rest stays on the lot, so no fee is lost or counted twice).

The float attributes `cash`, `position`, `realized_pnl` and `fees` are the nearest floats to the exact
values, refreshed on every fill: indicators, analytics and per-bar marks read them.

Round trips (`core.types.Trade`, floats: analytics) pair each exit with the entry lots it closed; a
trade's `pnl` is net of the entry and exit fees allocated to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_DOWN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

from trdr_tui.core.errors import InsufficientFunds, StateCorruption
from trdr_tui.core.types import BUY_SIDE, Fill, Side, Trade
from trdr_tui.trading.sizing import Increments, to_decimal

# 80 significant digits: a float's shortest repr has ≤ 17, a product of two ≤ 34; cash of 10^12 kept
# to 10^-40 still fits. Anything that does not fit raises instead of rounding.
LEDGER_CONTEXT = Context(prec=80, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
FEE_QUANTUM = Decimal("1e-18")  # the entry fee carried to a partly closed lot is floored to this
_ALLOCATE = Context(prec=80)  # the fee share's division may round (then floored to FEE_QUANTUM)
# Valuing the ledger at a mark is not booking: cash (up to 80 digits) plus position × price can need more
# digits than any one entry, so valuations add and multiply at unbounded precision, which is always exact.
_VALUATION = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, InvalidOperation])
_ZERO = Decimal(0)


class Overdraft:
    """A fill the exchange made beyond the ledger (module doc): its time (ns), fill, order and side, and
    what the ledger lacked and booked as a contribution from the account first: `base` coins (a SELL,
    valued at the fill price) or `quote` cash (a BUY); `value` is that contribution in quote currency."""

    __slots__ = ("base", "fill_id", "order_id", "quote", "side", "ts", "value")

    def __init__(self, ts: int, fill_id: str, order_id: str, side: Side, base: Decimal, quote: Decimal,
                 value: Decimal) -> None:
        self.ts = ts
        self.fill_id = fill_id
        self.order_id = order_id
        self.side = side
        self.base = base
        self.quote = quote
        self.value = value

    def to_list(self) -> list[object]:
        return [self.ts, self.fill_id, self.order_id, self.side.value, str(self.base), str(self.quote),
                str(self.value)]

    @classmethod
    def from_list(cls, item: list[object]) -> Overdraft:
        ts, fill_id, order_id, side, base, quote, value = item
        return cls(int(ts), str(fill_id), str(order_id), Side(side), exact(base), exact(quote),  # type: ignore[call-overload, arg-type]
                   exact(value))


class Lot:
    """An open entry: its order, time (ns), price (quote per base unit), size (base units) and the entry
    fee still allocated to the remaining size (quote), all exact."""

    __slots__ = ("fee", "order_id", "price", "size", "ts")

    def __init__(self, order_id: str, ts: int, price: Decimal, size: Decimal, fee: Decimal) -> None:
        self.order_id = order_id
        self.ts = ts
        self.price = price
        self.size = size
        self.fee = fee


def exact(value: object) -> Decimal:
    """A ledger amount from a checkpoint or a caller: a decimal string or a Decimal exactly, an int
    exactly, a float as its shortest repr. Raises StateCorruption for anything else or a non-finite value."""
    if isinstance(value, str):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise StateCorruption(f"ledger amount {value!r} is not a decimal number") from None
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        d = to_decimal(value)
    else:
        raise StateCorruption(f"ledger amount {value!r} is not a number")
    if not d.is_finite():
        raise StateCorruption(f"ledger amount {value!r} is not finite")
    return d


class Portfolio:
    """The ledger for one symbol, exact (see the module docstring). `increments`: the product's steps
    that every fill must be on; None books any decimal (the ideal-arithmetic presets)."""

    def __init__(self, symbol: str, cash: float | Decimal | str, *, increments: Increments | None = None) -> None:
        start = exact(cash)
        if not start >= 0:
            raise ValueError(f"starting cash must be ≥ 0, got {cash}")
        self.symbol = symbol
        self.increments = increments
        self.initial_exact = start
        self.initial_cash = float(start)
        self.peak_equity = self.initial_cash
        self.last_price = 0.0
        self.contributed_exact = _ZERO  # Σ deposits − Σ withdrawals (quote)
        self.flows: list[tuple[int, float]] = []  # deposits and withdrawals (`fund`)
        self.transfers: list[tuple[int, Decimal, Decimal]] = []  # coins in/out (`transfer`): ts, size ±, mark
        self._reset()

    def _reset(self) -> None:
        with localcontext(LEDGER_CONTEXT):
            self.cash_exact = self.initial_exact + self.contributed_exact
        self.position_exact = _ZERO
        self.realized_exact = _ZERO
        self.fees_exact = _ZERO
        self.cost_exact = _ZERO  # Σ lot price × lot size: what the open lots cost (quote)
        self.lots: list[Lot] = []
        self.trades: list[Trade] = []
        self.fills: list[Fill] = []
        self._fill_ids: set[str] = set()
        self.overdrafts: list[Overdraft] = []
        self._sync()

    def _sync(self) -> None:
        """Refresh the float views from the exact values (after every change)."""
        self.cash = float(self.cash_exact)
        self.position = float(self.position_exact)
        self.realized_pnl = float(self.realized_exact)
        self.fees = float(self.fees_exact)
        self._cost = float(self.cost_exact)

    # -- reading ---------------------------------------------------------------------------------

    @property
    def avg_entry(self) -> float:
        return self._cost / self.position if self.position > 0.0 else 0.0

    def equity(self, price: float) -> float:
        return self.cash + self.position * price

    def unrealized_pnl(self, price: float) -> float:
        return self.position * price - self._cost

    def equity_exact(self, price: Decimal) -> Decimal:
        """cash + position × price, exact (quote currency)."""
        with localcontext(_VALUATION):
            return self.cash_exact + self.position_exact * price

    def unrealized_exact(self, price: Decimal) -> Decimal:
        """Σ (price − lot price) × lot size over the open lots, exact (quote currency)."""
        with localcontext(_VALUATION):
            return sum(((price - lot.price) * lot.size for lot in self.lots), _ZERO)

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

    def contributions(self) -> list[tuple[int, float]]:
        """Every contribution as (ts ns, quote amount), in time order: the deposits and withdrawals of
        `flows` and the contributions `overdrafts` booked. Returns and drawdown leave them out
        (`trading.funding.performance_curve`)."""
        if not self.overdrafts and not self.transfers:
            return self.flows
        return sorted([*self.flows, *((o.ts, float(o.value)) for o in self.overdrafts),
                       *((t, float(_VALUATION.multiply(q, m))) for t, q, m in self.transfers)], key=lambda f: f[0])

    # -- writing ---------------------------------------------------------------------------------

    def apply_fill(self, fill: Fill, *, overdraw: bool = False) -> Trade | None:
        """Book one fill exactly; returns the round trip it closed (SELL), if any. All-or-nothing.

        Raises StateCorruption (another symbol, a fill id booked before, a size or price that is not
        positive or off the product's increments, a negative fee, an amount the ledger cannot hold
        exactly) and InsufficientFunds (a BUY costing more than the cash, a SELL of more than the
        position); the ledger is unchanged then. `overdraw`: a fill a real exchange already made (or one
        the store holds) is a fact, booked even beyond the cash or the position; what the ledger lacked
        is booked first as a contribution from the account and kept in `overdrafts` (module doc).
        Refusing it would lose money the account really spent or coins it really sold.
        """
        if fill.symbol != self.symbol:
            raise StateCorruption(f"fill {fill.id} is for {fill.symbol}, this ledger holds {self.symbol}")
        if fill.id in self._fill_ids:
            raise StateCorruption(f"fill {fill.id} was already booked", hint="fills are applied exactly once")
        if not (fill.size > 0.0 and fill.price > 0.0 and fill.fee >= 0.0):
            raise StateCorruption(f"fill {fill.id} has size {fill.size}, price {fill.price}, fee {fill.fee}",
                                  hint="sizes and prices must be positive and fees not negative")
        price, size, fee = to_decimal(fill.price), to_decimal(fill.size), to_decimal(fill.fee)
        inc = self.increments
        if inc is not None and (_off_step(size, inc.base) or _off_step(price, inc.price)):
            raise StateCorruption(f"fill {fill.id} of {size} at {price} is off the product's increments "
                                  f"(size step {inc.base}, price tick {inc.price})",
                                  hint="the executor rounds every size and price to the product's increments")
        try:
            with localcontext(LEDGER_CONTEXT):
                trade = None
                if fill.side is BUY_SIDE:
                    self._buy(fill, price, size, fee, overdraw)
                else:
                    trade = self._sell(fill, price, size, fee, overdraw)
        except (Inexact, InvalidOperation, Overflow) as exc:  # raised before anything changed
            raise StateCorruption(f"fill {fill.id} ({size} at {price}, fee {fee}) cannot be booked exactly "
                                  f"in {LEDGER_CONTEXT.prec} digits ({type(exc).__name__})",
                                  hint="fills carry decimal amounts on the product's increments") from None
        self._fill_ids.add(fill.id)
        self.fills.append(fill)
        self._sync()
        return trade

    def _buy(self, fill: Fill, price: Decimal, size: Decimal, fee: Decimal, overdraw: bool) -> None:
        notional = price * size
        cost = notional + fee
        cash = self.cash_exact - cost
        lacked = _ZERO
        if cash < 0:
            if not overdraw:
                raise InsufficientFunds(
                    f"BUY {size} {self.symbol} at {price} needs {cost}, cash is {self.cash_exact}")
            lacked, cash = -cash, _ZERO
        contributed = self.contributed_exact + lacked
        position = self.position_exact + size
        fees = self.fees_exact + fee
        lots_cost = self.cost_exact + notional
        self.cash_exact, self.position_exact, self.fees_exact, self.cost_exact = cash, position, fees, lots_cost
        self.lots.append(Lot(fill.order_id, fill.ts, price, size, fee))
        if lacked:
            self.contributed_exact = contributed
            self.overdrafts.append(Overdraft(fill.ts, fill.id, fill.order_id, Side.BUY, _ZERO, lacked, lacked))

    def _sell(self, fill: Fill, price: Decimal, size: Decimal, fee: Decimal, overdraw: bool) -> Trade:
        lacked = size - self.position_exact
        if lacked > 0 and not overdraw:
            raise InsufficientFunds(f"SELL {size} {self.symbol} exceeds the position {self.position_exact}")
        # every amount first, the ledger changed only when all of them are exact (no partial update)
        notional = price * size
        cash = self.cash_exact + notional - fee
        fees = self.fees_exact + fee
        lots = self.lots
        in_kind: Lot | None = None
        if lacked > 0:  # coins the account held beyond the ledger: a lot at the fill price, then sold
            in_kind = Lot(fill.order_id, fill.ts, price, lacked, _ZERO)
            lots = [*lots, in_kind]
        entry_cost = entry_fee = _ZERO
        closed = 0
        split: tuple[Decimal, Decimal] | None = None  # the partly closed lot's new size and fee
        left = size
        for lot in lots:
            if lot.size <= left:
                entry_cost += lot.size * lot.price
                entry_fee += lot.fee
                left -= lot.size
                closed += 1
                if left == 0:
                    break
            else:
                entry_cost += left * lot.price
                with localcontext(_ALLOCATE):
                    part = (lot.fee * left / lot.size).quantize(FEE_QUANTUM, rounding=ROUND_DOWN)
                entry_fee += part
                split = (lot.size - left, lot.fee - part)
                break
        gross = notional - entry_cost
        realized = self.realized_exact + gross
        position = self.position_exact - size
        net = gross - entry_fee - fee
        value = _ZERO if in_kind is None else price * in_kind.size
        contributed = self.contributed_exact + value
        lots_cost = self.cost_exact + value - entry_cost
        first = lots[0]
        entry_order, entry_ts = first.order_id, first.ts
        # commit
        if in_kind is not None:
            position = _ZERO
            self.lots.append(in_kind)
            self.contributed_exact = contributed
            self.overdrafts.append(Overdraft(fill.ts, fill.id, fill.order_id, Side.SELL, in_kind.size, _ZERO, value))
        del self.lots[:closed]
        if split is not None:
            self.lots[0].size, self.lots[0].fee = split
        self.cash_exact, self.fees_exact, self.realized_exact, self.position_exact = cash, fees, realized, position
        self.cost_exact = lots_cost
        trade = Trade(symbol=self.symbol, entry_order_id=entry_order, exit_order_id=fill.order_id,
                      entry_ts=entry_ts, exit_ts=fill.ts, entry_price=float(_ALLOCATE.divide(entry_cost, size)),
                      exit_price=float(price), size=float(size), pnl=float(net), fees=float(entry_fee + fee))
        self.trades.append(trade)
        return trade

    def fund(self, amount: float | Decimal | str, ts: int) -> None:
        """Book a deposit (`amount` > 0) or a withdrawal (< 0) of quote currency at `ts` (ns): cash and
        `contributed_exact` change by it, realized P&L and fees do not; the peak equity is scaled by the
        same factor as equity at the last mark (a withdrawal is not a drawdown).

        Raises InsufficientFunds when a withdrawal exceeds the cash, StateCorruption for an amount the
        ledger cannot hold exactly; nothing changes then. A position is never sold to pay a withdrawal.
        """
        d = exact(amount)
        try:
            with localcontext(LEDGER_CONTEXT):
                cash = self.cash_exact + d
                contributed = self.contributed_exact + d
        except (Inexact, InvalidOperation, Overflow):
            raise StateCorruption(f"funding of {amount} cannot be booked exactly") from None
        if cash < 0:
            raise InsufficientFunds(f"withdrawal of {-d} exceeds the cash {self.cash_exact}",
                                    hint="withdraw at most the free cash; positions are never sold for it")
        before = self.equity(self.last_price)
        self.cash_exact, self.contributed_exact = cash, contributed
        self.flows.append((ts, float(d)))
        self._sync()
        after = self.equity(self.last_price)
        self.peak_equity = self.peak_equity * after / before if before > 0 else after

    def transfer(self, size: Decimal, price: Decimal, ts: int) -> Decimal:
        """Book coins sent into (`size` > 0) or out of (< 0) the run at `ts` (ns), valued at the mark
        `price` (quote per base unit): a contribution in kind, never P&L (module doc). Coins out beyond
        the position are not the run's: at most the position leaves. Returns the size booked (signed;
        0 when nothing was). Raises StateCorruption for an amount the ledger cannot hold exactly, or a
        price that is not positive; nothing changes then."""
        if not price > 0:
            raise StateCorruption(f"coin transfer valued at {price}", hint="value a transfer at a positive mark")
        try:
            with localcontext(LEDGER_CONTEXT):
                if size > 0:
                    value = size * price
                    lots = [*self.lots, Lot(f"transfer-{ts}", ts, price, size, _ZERO)]
                    position, cost, realized = self.position_exact + size, self.cost_exact + value, self.realized_exact
                    booked = size
                else:
                    out = min(-size, self.position_exact)
                    if not out > 0:
                        return _ZERO
                    value = -(out * price)
                    lots = [Lot(lot.order_id, lot.ts, lot.price, lot.size, lot.fee) for lot in self.lots]
                    left, removed = out, _ZERO
                    while left > 0:
                        lot = lots[0]
                        take = min(lot.size, left)
                        removed += take * lot.price
                        if take == lot.size:
                            lots.pop(0)
                        else:
                            with localcontext(_ALLOCATE):
                                part = (lot.fee * take / lot.size).quantize(FEE_QUANTUM, rounding=ROUND_DOWN)
                            lot.size, lot.fee = lot.size - take, lot.fee - part
                        left -= take
                    position, cost = self.position_exact - out, self.cost_exact - removed
                    realized = self.realized_exact + out * price - removed
                    booked = -out
                contributed = self.contributed_exact + value
        except (Inexact, InvalidOperation, Overflow):
            raise StateCorruption(f"coin transfer of {size} at {price} cannot be booked exactly") from None
        before = self.equity(self.last_price)
        self.lots, self.position_exact, self.cost_exact, self.realized_exact = lots, position, cost, realized
        self.contributed_exact = contributed
        self.transfers.append((ts, booked, price))
        self._sync()
        after = self.equity(self.last_price)
        self.peak_equity = self.peak_equity * after / before if before > 0 else after
        return booked

    # -- checkpoints -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, object]:
        """The ledger as JSON-ready data: exact amounts as decimal strings, lots as
        `[order_id, ts, price, size, fee]`, the booked fill ids."""
        return {
            "symbol": self.symbol, "initial_cash": str(self.initial_exact), "cash": str(self.cash_exact),
            "position": str(self.position_exact), "realized_pnl": str(self.realized_exact),
            "fees": str(self.fees_exact), "peak_equity": self.peak_equity, "last_price": self.last_price,
            "lots": [[lot.order_id, lot.ts, str(lot.price), str(lot.size), str(lot.fee)] for lot in self.lots],
            "fill_ids": sorted(self._fill_ids),
            "contributed": str(self.contributed_exact), "flows": [[t, a] for t, a in self.flows],
            "overdrafts": [o.to_list() for o in self.overdrafts],
            "transfers": [[t, str(q), str(m)] for t, q, m in self.transfers],
        }

    @classmethod
    def from_state(cls, state: dict[str, object], *, increments: Increments | None = None) -> Portfolio:
        p = cls(str(state["symbol"]), exact(state["initial_cash"]), increments=increments)
        p.restore(state)
        return p

    def restore(self, state: dict[str, object]) -> None:
        """Become the ledger a checkpoint's `to_state()` describes, in place (whoever holds this ledger
        sees the restored one). The checkpoint's fills and round trips are not in the state: the fill
        and trade lists start empty, the booked fill ids are kept so none is booked twice. Amounts may be
        decimal strings or numbers (checkpoints written before the ledger was exact hold floats).

        Raises StateCorruption when the state is for another symbol, holds an amount that is not a
        finite number, or lots whose sizes do not add up to the position; the ledger is unchanged then.
        """
        if state["symbol"] != self.symbol:
            raise StateCorruption(f"ledger state is for {state['symbol']}, this ledger holds {self.symbol}")
        lots = [Lot(str(o), int(t), exact(pr), exact(s), exact(f))
                for o, t, pr, s, f in state["lots"]]  # type: ignore[attr-defined]
        position = exact(state["position"])
        try:
            with localcontext(LEDGER_CONTEXT):
                held = sum((lot.size for lot in lots), _ZERO)
                cost = sum((lot.price * lot.size for lot in lots), _ZERO)
        except (Inexact, Overflow):
            raise StateCorruption("ledger state holds lots too fine to add up exactly",
                                  hint="rebuild the ledger from the stored fills") from None
        if held != position:
            raise StateCorruption(f"ledger state holds lots of {held} for a position of {position}",
                                  hint="rebuild the ledger from the stored fills")
        initial, cash = exact(state["initial_cash"]), exact(state["cash"])
        realized, fees = exact(state["realized_pnl"]), exact(state["fees"])
        self.initial_exact, self.initial_cash = initial, float(initial)
        self.contributed_exact = exact(state.get("contributed", "0"))
        self.flows = [(int(t), float(a)) for t, a in state.get("flows", [])]  # type: ignore[attr-defined]
        overdrafts = [Overdraft.from_list(o) for o in state.get("overdrafts", [])]  # type: ignore[attr-defined]
        transfers = [(int(t), exact(q), exact(m)) for t, q, m in state.get("transfers", [])]  # type: ignore[attr-defined]
        self.peak_equity = float(state["peak_equity"])  # type: ignore[arg-type]
        self.last_price = float(state["last_price"])  # type: ignore[arg-type]
        self.cash_exact, self.position_exact, self.realized_exact, self.fees_exact = cash, position, realized, fees
        self.lots, self.cost_exact = lots, cost
        self.trades = []
        self.fills = []
        self._fill_ids = set(state["fill_ids"])  # type: ignore[call-overload]
        self.overdrafts = overdrafts
        self.transfers = transfers
        self._sync()

    def rebuild_from_fills(self, fills: Iterable[Fill]) -> None:
        """Reset to the initial cash with nothing booked, then book `fills` in the order given (the
        store's write-through record of a run) with the deposits and withdrawals of `flows` and the
        coin `transfers` between them by time (one at a fill's time: an inflow before it, an outflow
        after): the ledger those fills and flows imply, in place.

        Raises what `apply_fill` and `fund` raise (StateCorruption, InsufficientFunds for a withdrawal; a
        fill the store holds is booked even beyond the cash or the position, as it was the first time,
        and its `overdrafts` are derived again); the ledger is then left at what was booked so far.
        """
        # cash flows (amount) and coin transfers (size, mark), by time
        events: list[tuple[int, float, Decimal | None, Decimal | None]] = sorted(
            [*((t, a, None, None) for t, a in self.flows), *((t, 0.0, q, m) for t, q, m in self.transfers)],
            key=lambda e: e[0])
        self.peak_equity = self.initial_cash
        self.last_price = 0.0
        self.contributed_exact = _ZERO
        self.flows = []
        self.transfers = []
        self._reset()
        k = 0

        def book(event: tuple[int, float, Decimal | None, Decimal | None]) -> None:
            ts, amount, size, mark = event
            if size is None or mark is None:
                self.fund(amount, ts)
            else:
                self.transfer(size, mark, ts)

        for fill in fills:
            while k < len(events) and (events[k][0] < fill.ts or (events[k][0] == fill.ts and _inflow(events[k]))):
                book(events[k])
                k += 1
            self.apply_fill(fill, overdraw=True)
        for event in events[k:]:
            book(event)


def _inflow(event: tuple[int, float, Decimal | None, Decimal | None]) -> bool:
    """A deposit or coins in (booked before a fill at the same time; outflows after it)."""
    return event[1] > 0 if event[2] is None else event[2] > 0


def _off_step(value: Decimal, step: Decimal) -> bool:
    """True when `value` is not a whole number of `step`s (a step ≤ 0 means any value is on it)."""
    return step > 0 and _ALLOCATE.remainder(value, step) != 0


def overdraft_note(symbol: str, od: Overdraft) -> tuple[str, str]:
    """What an operator reads about an overdrawn booking of `symbol`: (what happened, what to check)."""
    base_ccy, quote_ccy = symbol.split("-", 1)
    if od.side is Side.SELL:
        what = (f"SELL fill {od.fill_id} of order {od.order_id} sold {od.base} {base_ccy} more than the ledger held; "
                f"booked as {od.base} {base_ccy} contributed by the account (worth {od.value:.2f} {quote_ccy} "
                "at the fill price, not P&L)")
        check = (f"a fill of this run not booked yet (a BUY listed late), or {base_ccy} of yours beside the run "
                 "that the exchange sold; compare the account ('trdr account') with the run's position")
    else:
        what = (f"BUY fill {od.fill_id} of order {od.order_id} cost {od.quote:.2f} {quote_ccy} more than the "
                f"ledger's cash; booked as {od.quote:.2f} {quote_ccy} contributed by the account (not P&L)")
        check = (f"{quote_ccy} of yours beside the run paid for it (a market order that filled above the price it was "
                 "sized at); compare the account ('trdr account') with the run's cash, keep spare cash or lower "
                 "`capital` if it repeats")
    return what, check
