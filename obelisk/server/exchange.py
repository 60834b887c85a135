"""The local exchange: accounts, books, orders, fills, funding and liquidation in one place.

`LocalExchange` is a synchronous state machine. The network layer hands it
decoded JSON (`info`, `act`) and calls `step` as time passes; it answers in
Hyperliquid's shapes and texts, and tells its listeners what changed
(`obelisk.server.events`). Matching runs on obelisk's compiled order book, one
per coin; each account is an obelisk `Portfolio`, so margin, liquidation prices
and funding follow the same rules as the rest of the library.

Every request is decoded completely before anything changes: a malformed body
raises `Undecodable` (HTTP 422) and a refused action answers
``{"status": "err"}``, both with no effect. Orders of one batch are judged one
by one, as the exchange does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from obelisk._core.book import OrderBook, OrderStatus, Side, TimeInForce
from obelisk._core.codes import EVENT_CANCELLED as _CANCELLED
from obelisk.errors import InstrumentError, ObeliskError
from obelisk.fees import FeeRates
from obelisk.funding import hourly_funding_rate
from obelisk.hyperliquid.weights import exchange_weight, info_extra_weight, info_weight
from obelisk.instruments import Instrument, InstrumentTable, Rounding
from obelisk.portfolio import Portfolio
from obelisk.server.auth import USER_SIGNED, Rejected, Signers
from obelisk.server.clock import Clock, RealClock, SimClock
from obelisk.server.decode import (
    DECODERS,
    OrderSpec,
    Undecodable,
    decode_user_signed,
    envelope,
    parse_address,
    usdc_amount,
)
from obelisk.server.events import (
    BookChanged,
    Event,
    Liquidation,
    NonUserCancel,
    OrderUpdates,
    Trades,
    UserFills,
    UserFunding,
)
from obelisk.server.info import INTERVALS_MS
from obelisk.server.market import DEFAULT_COINS, Oracle, listings, maker_quotes
from obelisk.server.records import Order, StatusChange, Wire, direction, fill_wire, num, units_text

MIN_NOTIONAL = 10.0
REQUOTE_SLICES = 4                       # on the wall clock, makers requote over 4 steps
KEPT_FILLS = 10_000                      # per account: userFillsByTime reaches no further back
KEPT_FINISHED = 100_000                  # finished orders indexed by oid (and their cloids)
ORACLE_BAND = 0.8                        # a limit price may be at most 80 % from the oracle
REQUEST_BUFFER = 10_000                  # address budget: 10,000 + 1 per USDC traded
SCHEDULE_CANCEL_LEAD_MS = 5_000
SCHEDULE_CANCELS_PER_DAY = 10
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
MAKER_BALANCE = 1e12
LIQUIDATION_SLIPPAGE = 0.2
_TIF = {"Gtc": TimeInForce.GTC, "Ioc": TimeInForce.IOC, "Alo": TimeInForce.ALO}
_NEVER_PLACED = "Order was never placed, already canceled, or filled."
K = TypeVar("K")
V = TypeVar("V")


class OrderError(Exception):
    """One order of a batch refused; its text goes into ``statuses[i]``, and `status` is the
    order status the exchange records when the order was already live (a fired trigger's)."""

    def __init__(self, text: str, status: str = "rejected") -> None:
        super().__init__(text)
        self.status = status


@dataclass
class Account:
    address: str
    portfolio: Portfolio
    internal: bool = False                        # a market maker or the liquidator
    spot_usdc: float = 0.0
    volume: float = 0.0                           # cumulative USDC traded
    requests: int = 0                             # actions counted against the budget
    # the 10,000 most recent, as many as the exchange keeps reachable
    fills: deque[Wire] = field(default_factory=lambda: deque(maxlen=KEPT_FILLS))
    fundings: list[Wire] = field(default_factory=list)
    orders: dict[int, Order] = field(default_factory=dict)       # open, incl. triggers
    history: list[StatusChange] = field(default_factory=list)    # the recent status changes
    cloids: set[str] = field(default_factory=set)     # of its orders open or finished lately
    resting_notional: dict[int, float] = field(default_factory=dict)  # by row: orders' margin
    schedule_cancel: int | None = None
    schedule_cancels: dict[int, int] = field(default_factory=dict)   # fired, per UTC day

    @property
    def funded(self) -> bool:
        return self.portfolio.balance > 0 or self.spot_usdc > 0 or bool(
            self.portfolio.open_positions())


class LocalExchange:
    """A Hyperliquid-compatible exchange in memory; see the module docstring.

    Parameters
    ----------
    coins : the perps it lists, in asset-id order.
    seed : seeds the oracle walk and the makers.
    makers : how many internal market makers quote every coin.
    clock : RealClock or SimClock.
    accounts : address -> USDC deposited at start.
    fees : the rates every account pays.
    """

    def __init__(self, coins: Sequence[str] = DEFAULT_COINS, *, seed: int = 0, makers: int = 2,
                 clock: Clock | None = None, accounts: Mapping[str, float] | None = None,
                 fees: FeeRates | None = None) -> None:
        if makers < 0:
            raise ValueError(f"makers must be >= 0, got {makers}")
        self.clock = clock or SimClock()
        listed = listings(list(coins))
        self.instruments = InstrumentTable([x.instrument for x in listed])
        self.coins = list(self.instruments.coins)
        self._listed = tuple(self.instruments)                 # by asset id, for the order path
        self._by_coin = {instrument.name: instrument for instrument in self._listed}
        self.fees = fees or FeeRates()
        self.signers = Signers()
        self.oracle = Oracle(listed, seed, self.clock.now_ms())
        self.books = {coin: OrderBook(stp=0) for coin in self.coins}   # STP cancels the resting
        self.accounts: dict[str, Account] = {}
        self._owners: dict[str, int] = {}
        self._orders: dict[int, Order] = {}   # by oid: open, and the last finished (below)
        self._order_ages: deque[int] = deque()  # the oids in _orders, oldest first
        self._prices: dict[tuple[int, str], int] = {}  # wire text -> ticks, per asset
        self._sizes: dict[tuple[int, str], int] = {}   # wire text -> lots, per asset
        self._price_texts: dict[tuple[int, int], str] = {}   # ticks -> wire text, per asset
        self._fill_prices: dict[tuple[int, int], tuple[str, float]] = {}   # same, and float
        self._fill_sizes: dict[tuple[int, int], tuple[str, float]] = {}    # (decimals, lots)
        self._tick_sizes: list[float] = self.instruments.tick.tolist()   # by asset
        self._triggers: dict[str, dict[int, Order]] = {coin: {} for coin in self.coins}
        # resting reduce-only orders on each book, checked as a taker reaches them (_take)
        self._reduce_only: dict[str, dict[int, Order]] = {coin: {} for coin in self.coins}
        self._next_oid = 1
        self._next_tid = 1
        self._trades: dict[str, deque[Wire]] = {coin: deque(maxlen=1000) for coin in self.coins}
        self._candles: dict[tuple[str, str], dict[int, list[Any]]] = {
            (coin, interval): {} for coin in self.coins for interval in INTERVALS_MS}
        self._bars = {coin: [(ms, self._candles[(coin, interval)])
                             for interval, ms in INTERVALS_MS.items()] for coin in self.coins}
        self._minute: dict[str, list[Any]] = {}      # per coin: the trades of its open minute
        self._funding_history: dict[str, list[Wire]] = {coin: [] for coin in self.coins}
        self._premiums: dict[str, list[float]] = {coin: [] for coin in self.coins}
        self._day_volume: dict[str, float] = dict.fromkeys(self.coins, 0.0)
        self._prev_day_px = dict(self.oracle.prices)
        self._next_funding = (self.clock.now_ms() // HOUR_MS + 1) * HOUR_MS
        self._listeners: list[Callable[[Event], None]] = []
        # what changed since listeners were last told (see _flush_events)
        self._pending: list[Event] = []
        self._changes_out: dict[str, list[StatusChange]] = {}     # by user
        self._fills_out: dict[str, list[Wire]] = {}               # by user
        self._trades_out: dict[str, list[Wire]] = {}              # by coin
        self._books_out: dict[str, None] = {}                     # coins, in order
        self._makers = [self._internal(f"0x{'ee' * 19}{i:02x}") for i in range(makers)]
        self._stale_makers = 0                 # the last ones, still quoting the old oracle
        self._liquidator = self._internal("0x" + "11" * 20)
        for address, usdc in (accounts or {}).items():
            self.deposit(address, usdc)
        self._requote()
        self._flush_events()

    # ================================================================ admin

    def listen(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def __getstate__(self) -> dict[str, Any]:
        """The exchange without its listeners: they are this process's sockets and event
        loop, not the exchange's state, and a saved exchange is heard by a new server's."""
        state = self.__dict__.copy()
        state["_listeners"] = []
        return state

    def deposit(self, user: str, usdc: float) -> None:
        """Credit USDC to an account's perp balance (creating the account): admin only."""
        if not (isinstance(usdc, (int, float)) and 0 < usdc < 1e15):
            raise ValueError(f"a deposit must be a positive amount of USDC, got {usdc!r}")
        self._account(parse_address(user)).portfolio.deposit(float(usdc))

    def set_oracle(self, coin: str, price: float) -> None:
        """Move a coin's oracle price now (admin only: tests of triggers and liquidation);
        the makers requote around it and the next `step` marks, triggers and liquidates."""
        if coin not in self.oracle.prices:
            raise ValueError(f"{coin!r} is not listed")
        if not (isinstance(price, (int, float)) and 0 < price < 1e12):
            raise ValueError(f"an oracle price must be positive, got {price!r}")
        instrument = self.instruments.of(coin)
        self.oracle.prices[coin] = float(instrument.round_price(price, Rounding.NEAREST))
        self._requote()
        self._flush_events()

    def step(self) -> None:
        """Run everything due by the clock: oracle and marks, funding, scheduled cancels,
        triggers, liquidations and the makers' quotes."""
        now = self.clock.now_ms()
        if self.oracle.advance(now):
            self._stale_makers = len(self._makers)
        if self._stale_makers:
            # On the wall clock a step comes every 0.1 s: a slice of the makers per step,
            # as makers do not all requote in one instant (and no one step stalls for all).
            simulated = getattr(self.clock, "simulated", False)
            self._requote(None if simulated else -(-len(self._makers) // REQUOTE_SLICES))
        self._sample_premiums()
        while self._next_funding <= now:
            self._pay_funding(self._next_funding)
            self._next_funding += HOUR_MS
        for account in list(self.accounts.values()):
            if account.schedule_cancel is not None and account.schedule_cancel <= now:
                day = account.schedule_cancel // DAY_MS       # a trigger counts when it fires
                account.schedule_cancels = {day: account.schedule_cancels.get(day, 0) + 1}
                account.schedule_cancel = None
                self._cancel_all(account, "scheduledCancel")
        self._mark_all()
        self._fire_triggers()
        self._liquidate()
        self._flush_events()

    # ================================================================ /info

    def info(self, request: Any) -> Any:
        from obelisk.server.info import answer  # the queries live in their own module

        if not isinstance(request, dict) or not isinstance(request.get("type"), str):
            raise Undecodable()
        return answer(self, request)

    @staticmethod
    def info_weight(request: Any, result: Any) -> int:
        """The IP weight an info request costs, with its per-item surcharge."""
        if not isinstance(request, dict):
            return info_weight({})
        return info_weight(request) + info_extra_weight(str(request.get("type")), result)

    @staticmethod
    def action_weight(body: Any) -> int:
        """The IP weight of an ``/exchange`` request: 1 + one per 40 orders or cancels."""
        action = body.get("action") if isinstance(body, dict) else None
        return exchange_weight(action) if isinstance(action, dict) else 1

    # ============================================================ /exchange

    def act(self, body: Any) -> Wire:
        """Authenticate, check the nonce and the budgets, then run one action."""
        action, nonce = envelope(body)
        kind = action["type"]
        now = self.clock.now_ms()
        try:
            if kind in USER_SIGNED:
                return self._user_signed(body, action, nonce, now)
            handler = self._L1.get(kind)
            if handler is None:
                raise Undecodable(f"unknown action type {kind!r}")
            decoded = DECODERS[kind](action)
            signer = self.signers.l1_signer(body)
            account = self._acting_account(signer, body.get("vaultAddress"))
            expires = body.get("expiresAfter")
            if expires is not None and expires < now:
                raise Rejected(f"Action expired: expiresAfter {expires} is before {now}")
            self.signers.check_nonce(signer, nonce, now, self._wall_ms())
            self._charge_requests(account, kind, decoded)
            self.signers.use_nonce(signer, nonce)
            answer = handler(self, account, decoded)
        except Rejected as refused:
            return {"status": "err", "response": refused.text}
        finally:
            self._flush_events()
        return answer

    def _user_signed(self, body: Wire, action: Wire, nonce: int, now: int) -> Wire:
        decode_user_signed(action, nonce)
        signer = self.signers.user_signer(body)
        if signer in self.signers.agents:
            raise Rejected(f"User or API Wallet {signer} does not exist.")
        account = self._known(signer)
        self.signers.check_nonce(signer, nonce, now, self._wall_ms())
        kind = action["type"]
        if kind == "approveAgent":
            self.signers.approve(account.address, action["agentAddress"],
                                 action.get("agentName") or "",
                                 is_user=str(action["agentAddress"]).lower() in self.accounts)
        elif kind == "usdClassTransfer":
            self._usd_class_transfer(account, action)
        else:
            self._usd_send(account, action)
        self.signers.use_nonce(signer, nonce)
        return {"status": "ok", "response": {"type": "default"}}

    def _acting_account(self, signer: str, vault: Any) -> Account:
        if vault is not None:
            master = self.signers.master_of(signer)
            raise Rejected(f"Sub-account {str(vault).lower()} is not registered to {master}")
        return self._known(self.signers.master_of(signer), signer)

    def _known(self, address: str, signer: str | None = None) -> Account:
        account = self.accounts.get(address)
        if account is None or account.internal:
            raise Rejected(f"User or API Wallet {signer or address} does not exist.")
        if not account.funded:
            raise Rejected(f"Must deposit before performing actions. User: {address}")
        return account

    def _charge_requests(self, account: Account, kind: str, decoded: Any) -> None:
        """The per-address budget: one request per order or cancel in the batch."""
        weight = len(decoded) if isinstance(decoded, list) else 1
        cap = REQUEST_BUFFER + int(account.volume)
        if kind in ("cancel", "cancelByCloid"):
            cap = min(cap + 100_000, 2 * cap)
        if account.requests + weight > cap:
            raise Rejected(
                f"Too many cumulative requests sent ({account.requests + weight} > {cap}) for "
                f"cumulative volume traded ${account.volume:.2f}. Place taker orders to free "
                "up 1 request per USDC traded.")
        account.requests += weight

    # ------------------------------------------------------------ actions

    def _act_order(self, account: Account, decoded: tuple[list[OrderSpec], str]) -> Wire:
        specs, grouping = decoded
        statuses: list[Wire | str] = []
        parent: Order | None = None
        for i, spec in enumerate(specs):
            if grouping == "normalTpsl" and i > 0:
                statuses.append(self._attach_child(account, parent, spec))
            elif grouping == "positionTpsl" and spec.trigger is not None:
                statuses.append(self._place_trigger(account, spec, position_tpsl=True))
            else:
                status = self._place(account, spec)
                statuses.append(status)
                parent = self._orders.get(_oid_of(status)) if i == 0 else parent
        return _statuses("order", statuses)

    def _act_cancel(self, account: Account, cancels: list[tuple[int, int]]) -> Wire:
        statuses: list[Wire | str] = []
        for asset, oid in cancels:
            order = account.orders.get(oid)
            if order is None or order.asset != asset:
                statuses.append({"error": _NEVER_PLACED})
                continue
            self._close(order, "canceled")
            statuses.append("success")
        return _statuses("cancel", statuses)

    def _act_cancel_by_cloid(self, account: Account, cancels: list[tuple[int, str]]) -> Wire:
        statuses: list[Wire | str] = []
        for asset, cloid in cancels:
            order = next((o for o in account.orders.values()
                          if o.cloid == cloid and o.asset == asset), None)
            if order is None:
                statuses.append({"error": _NEVER_PLACED})
                continue
            self._close(order, "canceled")
            statuses.append("success")
        return _statuses("cancel", statuses)

    def _act_batch_modify(self, account: Account, modifies: list[tuple[int | str,
                                                                       OrderSpec]]) -> Wire:
        statuses: list[Wire | str] = []
        for ref, spec in modifies:
            statuses.append(self._modify(account, ref, spec))
        return _statuses("order", statuses)

    def _act_modify(self, account: Account, modifies: list[tuple[int | str, OrderSpec]]) -> Wire:
        (ref, spec), = modifies
        status = self._modify(account, ref, spec)
        if isinstance(status, dict) and "error" in status:
            return {"status": "err", "response": status["error"]}
        return _DEFAULT

    def _modify(self, account: Account, ref: int | str, spec: OrderSpec) -> Wire | str:
        """Cancel the order and place its replacement (a new oid), as one step."""
        order = (account.orders.get(ref) if isinstance(ref, int) else
                 next((o for o in account.orders.values() if o.cloid == ref), None))
        if order is None:
            return {"error": "Cannot modify canceled or filled order"}
        self._close(order, "canceled")
        if order.cloid is not None and spec.cloid == order.cloid:
            account.cloids.discard(order.cloid)     # the replacement keeps the order's cloid
        return self._place(account, spec)

    def _act_update_leverage(self, account: Account, decoded: tuple[int, bool, int]) -> Wire:
        asset, is_cross, leverage = decoded
        instrument = self._instrument(asset)
        if not 1 <= leverage <= instrument.max_leverage:
            raise Rejected(f"Invalid leverage value {leverage}; {instrument.name} allows "
                           f"1 to {instrument.max_leverage}")
        position = account.portfolio.position(instrument.name)
        if position.size:
            if position.isolated == is_cross:
                raise Rejected("Cannot switch leverage type with open position.")
            if position.isolated and leverage < position.leverage and \
                    position.margin + position.unrealized_pnl < \
                    abs(position.position_value) / leverage - 1e-9:
                raise Rejected("Isolated position does not have sufficient margin available to "
                               "decrease leverage. To decrease leverage, add margin to the "
                               "position.")
        try:
            account.portfolio.set_leverage(instrument.name, leverage, isolated=not is_cross)
        except ObeliskError as exc:
            raise Rejected(f"Cannot update leverage: {exc}") from None
        return _DEFAULT

    def _act_update_isolated_margin(self, account: Account, decoded: tuple[int, int]) -> Wire:
        asset, ntli = decoded
        instrument = self._instrument(asset)
        try:
            account.portfolio.update_isolated_margin(instrument.name, ntli / 1e6)
        except ObeliskError as exc:
            raise Rejected(f"Cannot update isolated margin: {exc}") from None
        return _DEFAULT

    def _act_schedule_cancel(self, account: Account, time: int | None) -> Wire:
        now = self.clock.now_ms()
        if time is None:
            account.schedule_cancel = None
            return _DEFAULT
        if time < now + SCHEDULE_CANCEL_LEAD_MS:
            raise Rejected("Scheduled cancel time too early, must be at least 5 seconds "
                           "from now.")
        day = now // DAY_MS
        if account.schedule_cancels.get(day, 0) >= SCHEDULE_CANCELS_PER_DAY:
            raise Rejected("Too many scheduled cancel triggers today (at most 10).")
        account.schedule_cancel = time           # renewing before it fires costs nothing
        return _DEFAULT

    def _act_noop(self, account: Account, decoded: None) -> Wire:
        return _DEFAULT

    _L1: dict[str, Callable[..., Wire]] = {
        "order": _act_order, "cancel": _act_cancel, "cancelByCloid": _act_cancel_by_cloid,
        "batchModify": _act_batch_modify, "modify": _act_modify,
        "updateLeverage": _act_update_leverage,
        "updateIsolatedMargin": _act_update_isolated_margin,
        "scheduleCancel": _act_schedule_cancel, "noop": _act_noop,
    }

    def _usd_class_transfer(self, account: Account, action: Wire) -> None:
        amount = usdc_amount(action["amount"])
        if action["toPerp"]:
            if amount > account.spot_usdc:
                raise Rejected("Insufficient balance for transfer")
            account.spot_usdc -= amount
            account.portfolio.deposit(amount)
        else:
            self._withdraw(account, amount)
            account.spot_usdc += amount

    def _usd_send(self, account: Account, action: Wire) -> None:
        amount = usdc_amount(action["amount"])
        destination = parse_address(action["destination"])
        self._withdraw(account, amount)
        self._account(destination).portfolio.deposit(amount)

    @staticmethod
    def _withdraw(account: Account, amount: float) -> None:
        try:
            account.portfolio.withdraw(amount)
        except ObeliskError:
            raise Rejected("Insufficient balance for withdrawal") from None

    # ------------------------------------------------------------ placing

    def _place(self, account: Account, spec: OrderSpec) -> Wire | str:
        """One order through the exchange's checks and the book; its status entry."""
        try:
            instrument = self._instrument(spec.asset, per_order=True)
            ticks, lots = self._grid(instrument, spec)
            _check_cloid(account, spec)
            if spec.trigger is not None:
                return self._place_trigger(account, spec)
            lots = self._admissible(account, instrument, spec, ticks, lots)
        except OrderError as refused:
            return {"error": str(refused)}
        order = self._new_order(account, instrument, spec, ticks, lots)
        return self._match(account, instrument, order, _TIF[spec.tif])

    def _grid(self, instrument: Instrument, spec: OrderSpec) -> tuple[int, int]:
        try:
            ticks = self._parsed(self._prices, instrument, spec.price, _ticks)
        except InstrumentError:
            raise OrderError(f"Order has invalid price. asset={spec.asset}") from None
        try:
            lots = self._parsed(self._sizes, instrument, spec.size, _lots)
        except InstrumentError:
            raise OrderError(f"Order has invalid size. asset={spec.asset}") from None
        if lots == 0:
            raise OrderError(f"Order has zero size. asset={spec.asset}")
        if spec.trigger is not None:
            try:
                instrument.price_to_ticks(spec.trigger.trigger_px)
            except InstrumentError:
                raise OrderError(f"Invalid TP/SL price. asset={spec.asset}") from None
        return ticks, lots

    @staticmethod
    def _parsed(cache: dict[tuple[int, K], V], instrument: Instrument, text: K,
                parse: Callable[[Instrument, K], V]) -> V:
        """`parse(instrument, text)`, remembered: prices and sizes repeat, and parsing them
        exactly (or printing them) is the costliest step of an order. Invalid texts are not
        remembered."""
        key = (instrument.asset, text)
        value = cache.get(key)
        if value is None:
            value = _remember(cache, key, parse(instrument, text))
        return value

    def _price_text(self, instrument: Instrument, ticks: int) -> str:
        """A price on the grid as the exchange prints it."""
        return self._parsed(self._price_texts, instrument, ticks, _price_wire)

    def _fill_price(self, instrument: Instrument, ticks: int) -> tuple[str, float]:
        """A fill's price as printed and as the float it prints (remembered: fills repeat
        prices)."""
        px = self._price_text(instrument, ticks)
        return _remember(self._fill_prices, (instrument.asset, ticks), (px, float(px)))

    def _fill_size(self, decimals: int, lots: int) -> tuple[str, float]:
        """A fill's size as printed and as the float it prints (remembered likewise)."""
        sz = units_text(lots, decimals)
        return _remember(self._fill_sizes, (decimals, lots), (sz, float(sz)))

    def _admissible(self, account: Account, instrument: Instrument, spec: OrderSpec,
                    ticks: int, lots: int) -> int:
        """The lots the exchange accepts for this order, or the error that refuses it."""
        a = spec.asset
        price = ticks * self._tick_sizes[instrument.asset]
        oracle = self.oracle.prices[instrument.name]
        if abs(price / oracle - 1) > ORACLE_BAND:
            raise OrderError(f"Price too far from oracle asset={a}", "oracleRejected")
        book = account.portfolio.book
        reducible = _reducible(book.size_of(a), instrument, spec.is_buy)
        if spec.reduce_only:
            if reducible == 0:
                raise OrderError(f"Reduce only order would increase position. asset={a}",
                                 "reduceOnlyRejected")
            lots = min(lots, reducible)
        elif price * lots / 10 ** instrument.sz_decimals < MIN_NOTIONAL:
            raise OrderError(f"Order must have minimum value of $10. asset={a}",
                             "minTradeNtlRejected")
        if spec.tif == "Alo":
            resting = self.books[instrument.name]
            bid, ask = resting.best_bid(), resting.best_ask()
            if (ask is not None and spec.is_buy and ticks >= ask) or \
                    (bid is not None and not spec.is_buy and ticks <= bid):
                raise OrderError(
                    "Post only order would have immediately matched, bbo was "
                    f"{self._px(instrument, bid)}@{self._px(instrument, ask)}. asset={a}")
        increase = max(0, lots - reducible) if not spec.reduce_only else 0
        if increase and not account.internal:
            needed = price * increase / 10 ** instrument.sz_decimals / book.leverage_of(a)
            if needed > self._free_margin(account) + 1e-9:
                raise OrderError(f"Insufficient margin to place order. asset={a}",
                                 "perpMarginRejected")
        return lots

    @staticmethod
    def _free_margin(account: Account) -> float:
        """What a new order may use: the cross account value (isolated collateral has left
        it) less the cross initial margin in use and what resting orders hold."""
        book = account.portfolio.book
        leverage_of, reserved = book.leverage_of, 0.0
        for row, notional in account.resting_notional.items():
            if notional:
                reserved += notional / leverage_of(row)
        return book.cross_account_value - book.cross_initial_margin - reserved

    def _add_open(self, account: Account, order: Order) -> None:
        """An order that now rests on the book or waits for its trigger."""
        account.orders[order.oid] = order
        if order.trigger is not None:
            self._triggers[order.coin][order.oid] = order
        elif order.reduce_only:
            self._reduce_only[order.coin][order.oid] = order
        self._hold(account, order, order.lots)

    @staticmethod
    def _hold(account: Account, order: Order, lots: int) -> None:
        """Count `lots` more (or fewer) of a resting order in the margin it reserves (not for
        makers and the liquidator: their margin is never checked)."""
        if order.trigger is None and not order.reduce_only and not account.internal:
            notional = float(order.limit_px) * lots / 10 ** order.sz_decimals
            held = account.resting_notional.get(order.asset, 0.0) + notional
            account.resting_notional[order.asset] = held if held > 1e-9 else 0.0

    def _new_order(self, account: Account, instrument: Instrument, spec: OrderSpec,
                   ticks: int, lots: int) -> Order:
        now = self.clock.now_ms()
        trigger = spec.trigger
        if trigger is not None:                   # as the exchange prints it: "3300.0"
            trigger = replace(trigger, trigger_px=num(instrument.ticks_to_price(
                instrument.price_to_ticks(trigger.trigger_px))))
        order = Order(self._next_oid, account.address, instrument.name, spec.asset,
                      spec.is_buy, self._price_text(instrument, ticks), ticks, lots, lots,
                      instrument.sz_decimals, now, spec.tif, spec.reduce_only, spec.cloid,
                      trigger, status_ts=now)
        self._next_oid += 1
        self._keep(order)
        if order.cloid is not None:
            account.cloids.add(order.cloid)
        return order

    def _match(self, account: Account, instrument: Instrument, order: Order,
               tif: TimeInForce) -> Wire | str:
        """Send `order` to its book, settle the fills; its status entry."""
        rested, filled_lots, notional = self._take(account, order, tif)
        if rested:
            order.status_ts = self.clock.now_ms()
            self._add_open(account, order)
            self._record(order)
        self._books_out[order.coin] = None
        if filled_lots and not rested:
            order.status = "filled" if order.lots == 0 else "canceled"
            order.status_ts = self.clock.now_ms()
            self._record(order)
            self._activate_children(account, order)
            return {"filled": self._filled(instrument, order, filled_lots, notional)}
        if rested:
            resting: Wire = {"oid": order.oid}
            if order.cloid is not None:
                resting["cloid"] = order.cloid
            return {"resting": resting}
        order.status = "iocCancelRejected" if tif == TimeInForce.IOC else "rejected"
        order.status_ts = self.clock.now_ms()
        self._record(order)
        return {"error": "Order could not immediately match against any resting orders. "
                         f"asset={order.asset}"}

    def _take(self, account: Account, order: Order, tif: TimeInForce,
              liquidation: Wire | None = None) -> tuple[bool, int, float]:
        """Send `order` to its book and settle its fills: whether it rested, and the lots
        and notional it took.

        A resting reduce-only order the taker reaches may fill only what reduces its
        owner's position at that moment; the rest of it is canceled
        (``reduceOnlyCanceled``) and the taker goes on past it. The compiled book cannot
        ask, so when such an order is in reach the taker goes in IOC steps, each up to
        the next cut (a walk over the book's queue finds it)."""
        book, owner = self.books[order.coin], self._owners[account.address]
        side = _BUY if order.is_buy else _SELL
        filled, notional = 0, 0.0
        while order.lots and self._reduce_only[order.coin]:
            cut = self._reduce_only_cut(order, owner)
            if cut is None:
                break
            lots, maker = cut
            if lots:
                book.add(order.oid, side, order.price_ticks, lots, TimeInForce.IOC, owner)
                took, value = self._settle(order.coin, order.oid, liquidation)
                filled, notional = filled + took, notional + value
            self._close(maker, "reduceOnlyCanceled")
            self._books_out[order.coin] = None
        if not order.lots:
            return False, filled, notional
        status = book.add(order.oid, side, order.price_ticks, order.lots, tif, owner)
        took, value = self._settle(order.coin, order.oid, liquidation)
        return status == _RESTED, filled + took, notional + value

    def _reduce_only_cut(self, taker: Order, owner: int) -> tuple[int, Order] | None:
        """Where `taker` must stop before its book fills a resting reduce-only order past
        the position it reduces: the lots it takes up to there (that order's allowed part
        included) and that order; None when it can go on to the end."""
        ticks, is_buy = taker.price_ticks, taker.is_buy
        if not any(o.is_buy != is_buy and (o.price_ticks <= ticks if is_buy
                                            else o.price_ticks >= ticks)
                   for o in self._reduce_only[taker.coin].values()):
            return None
        rows = self.books[taker.coin].orders()
        rows = rows[(rows["side"] == (_SELL if is_buy else _BUY)) &
                    ((rows["price"] <= ticks) if is_buy else (rows["price"] >= ticks))]
        rows = rows[np.lexsort((rows["queue_ahead"],
                                rows["price"] if is_buy else -rows["price"]))]
        positions: dict[str, int] = {}      # makers' positions in lots as the taker fills
        taken = 0
        for oid, qty, maker_owner in zip(rows["oid"].tolist(), rows["qty"].tolist(),
                                         rows["owner"].tolist(), strict=True):
            if maker_owner == owner and owner:
                continue                    # self-trade prevention cancels it: no fill
            maker = self._orders[oid]
            fill = min(qty, taker.lots - taken)
            if not self.accounts[maker.user].internal:
                held = positions.get(maker.user)
                if held is None:
                    held = self._position_lots(maker)
                if maker.reduce_only:
                    allowed = max(0, held if not maker.is_buy else -held)
                    if fill > allowed:
                        return taken + allowed, maker
                positions[maker.user] = held + (fill if maker.is_buy else -fill)
            taken += fill
            if taken == taker.lots:
                break
        return None

    def _position_lots(self, order: Order) -> int:
        """The position of `order`'s account in its asset, in signed lots."""
        size = float(self.accounts[order.user].portfolio.book.size_of(order.asset))
        return round(size * 10 ** order.sz_decimals)

    def _filled(self, instrument: Instrument, order: Order, lots: int, notional: float) -> Wire:
        size = lots / 10 ** instrument.sz_decimals
        out: Wire = {"totalSz": units_text(lots, instrument.sz_decimals),   # the grid's decimals:
                     "avgPx": num(notional / size, instrument.price_decimals), "oid": order.oid}
        if order.cloid is not None:
            out["cloid"] = order.cloid
        return out

    def _settle(self, coin: str, taker_oid: int, liquidation: Wire | None = None
                ) -> tuple[int, float]:
        """Book the last book call's fills (order `taker_oid` took) to both sides and close
        what they completed; the taker's filled lots and notional."""
        book = self.books[coin]
        fill_count, event_count = book.last_fill_count, book.last_order_event_count
        if not fill_count and event_count <= 1:
            return 0, 0.0                  # only the order's own event: it rested or ended
        instrument = self._by_coin[coin]
        now = self.clock.now_ms()
        taker_lots, taker_notional = 0, 0.0
        trades: list[Wire] = []
        prices: list[float] = []
        if fill_count:
            taker = self._orders.get(taker_oid)
            taker_account = self.accounts[taker.user] if taker else self._liquidator
            taker_oid, taker_cloid = (taker.oid, taker.cloid) if taker else (0, None)
            taker_user = taker.user if taker else ""
            asset, decimals = instrument.asset, instrument.sz_decimals
            fill_prices, fill_sizes = self._fill_prices, self._fill_sizes
            for maker_oid, _, ticks, lots in book.last_fill_rows():
                px, price = fill_prices.get((asset, ticks)) or self._fill_price(instrument, ticks)
                sz, amount = fill_sizes.get((decimals, lots)) or self._fill_size(decimals, lots)
                notional = price * amount
                maker = self._orders[maker_oid]
                maker_account = self.accounts[maker.user]
                is_buy = not maker.is_buy
                tid = self._next_tid
                self._next_tid += 1
                if maker_account.internal:           # a market maker: no fill row, no fee
                    _book_internal_fill(maker_account, asset, -amount if is_buy else amount,
                                        price, maker=True)
                else:
                    self._book_fill(maker_account, instrument, px, sz, price, amount,
                                    not is_buy, now, maker.oid, False, tid, maker.cloid, None)
                self._book_fill(taker_account, instrument, px, sz, price, amount, is_buy, now,
                                taker_oid, True, tid, taker_cloid, liquidation)
                maker.lots -= lots
                self._hold(maker_account, maker, -lots)
                if taker is not None:
                    taker.lots -= lots
                if maker.lots == 0:
                    self._close(maker, "filled", book_cancel=False)
                    self._activate_children(maker_account, maker)
                taker_lots += lots
                taker_notional += notional
                trades.append({"coin": coin, "side": "B" if is_buy else "A", "px": px,
                               "sz": sz, "hash": "0x" + f"{tid:064x}", "time": now, "tid": tid,
                               "users": [taker_user, maker.user] if is_buy
                               else [maker.user, taker_user]})
                prices.append(price)
                self._day_volume[coin] += notional
            self._candle(instrument, prices, taker_lots, now)
            self._trades[coin].extend(trades)
            self._trades_out.setdefault(coin, []).extend(trades)
        if event_count:
            for oid, kind, _ in book.last_order_event_rows():
                order = self._orders.get(oid) if kind == _CANCELLED else None
                if order is not None and order.status == "open" and \
                        oid in self.accounts[order.user].orders:
                    # a resting order self-trade prevention took
                    self._close(order, "selfTradeCanceled", book_cancel=False)
        return taker_lots, taker_notional

    def _book_fill(self, account: Account, instrument: Instrument, px: str, sz: str,
                   price: float, amount: float, is_buy: bool, now: int, oid: int,
                   crossed: bool, tid: int, cloid: str | None, liquidation: Wire | None) -> None:
        """One side of a fill (`px` and `sz` as printed, `price` and `amount` their values)."""
        book, row_of = account.portfolio.book, instrument.asset     # the server's rows are
        size = amount if is_buy else -amount                         # its asset ids
        if account.internal:                      # makers and the liquidator keep no fills
            _book_internal_fill(account, row_of, size, price, maker=not crossed)
            return
        account.volume += price * amount
        start = book.size_of(row_of)
        pnl = book.apply_fill(row_of, size, price, not crossed)
        fee = self.fees.fee(size, price, maker=not crossed)
        after = book.size_of(row_of)
        row = fill_wire(coin=instrument.name, px=px, sz=sz, is_buy=is_buy, time=now,
                        start_position=num(start), direction=direction(start, is_buy, after),
                        closed_pnl=pnl, oid=oid, crossed=crossed, fee=fee, tid=tid,
                        cloid=cloid, liquidation=liquidation)
        account.fills.append(row)
        self._fills_out.setdefault(account.address, []).append(row)

    # ------------------------------------------------------------ triggers

    def _place_trigger(self, account: Account, spec: OrderSpec, *,
                       position_tpsl: bool = False) -> Wire | str:
        try:
            instrument = self._instrument(spec.asset, per_order=True)
            ticks, lots = self._grid(instrument, spec)
            if spec.trigger is None or not spec.reduce_only and position_tpsl:
                raise OrderError(f"Invalid TP/SL price. asset={spec.asset}")
            _check_cloid(account, spec)
        except OrderError as refused:
            return {"error": str(refused)}
        order = self._new_order(account, instrument, spec, ticks, lots)
        order.tif, order.position_tpsl = None, position_tpsl
        self._add_open(account, order)
        self._record(order)
        if position_tpsl:
            return "waitingForTrigger"
        resting: Wire = {"oid": order.oid}
        if order.cloid is not None:
            resting["cloid"] = order.cloid
        return {"resting": resting}

    def _attach_child(self, account: Account, parent: Order | None,
                      spec: OrderSpec) -> Wire | str:
        """A normalTpsl child: live once its parent has filled, cancelled with it."""
        if spec.trigger is None or not spec.reduce_only:
            return {"error": f"Invalid TP/SL price. asset={spec.asset}"}
        if parent is None:
            return {"error": "Parent order was not placed"}
        if parent.status == "filled":
            placed = self._place_trigger(account, spec)
            return placed if isinstance(placed, dict) and "error" in placed \
                else "waitingForTrigger"
        try:
            instrument = self._instrument(spec.asset, per_order=True)
            ticks, lots = self._grid(instrument, spec)
            _check_cloid(account, spec)
        except OrderError as refused:
            return {"error": str(refused)}
        child = self._new_order(account, instrument, spec, ticks, lots)
        child.tif = None
        parent.children.append(child)
        return "waitingForFill"

    def _activate_children(self, account: Account, parent: Order) -> None:
        """A fully filled parent's normalTpsl children become live triggers."""
        if not parent.children or parent.lots:
            return
        for child in parent.children:
            child.timestamp = child.status_ts = self.clock.now_ms()
            self._add_open(account, child)
            self._record(child)
        parent.children = []

    def _fire_triggers(self) -> None:
        """Send every waiting trigger order the mark has crossed, oldest first."""
        for coin, waiting in self._triggers.items():
            if not waiting:
                continue
            mark = self._mark(coin)
            due = [o for o in waiting.values()
                   if o.trigger is not None and o.trigger.fires(o.is_buy, mark)]
            for order in sorted(due, key=lambda o: o.oid):
                self._trigger(self.accounts[order.user], order)

    def _trigger(self, account: Account, order: Order) -> None:
        assert order.trigger is not None
        self._close(order, "triggered")
        size = float(account.portfolio.book.positions["size"][order.asset])
        instrument = self._instrument(order.asset)
        reducible = _reducible(size, instrument, order.is_buy)
        lots = min(order.lots, reducible) if order.reduce_only else order.lots
        if not lots:
            return
        # a market trigger sends an IOC at its limit price (the SDK's slippage bound)
        tif = TimeInForce.IOC if order.trigger.is_market else TimeInForce.GTC
        live = Order(order.oid, order.user, order.coin, order.asset, order.is_buy,
                     order.limit_px, order.price_ticks, lots, lots,
                     order.sz_decimals, self.clock.now_ms(), "Ioc" if tif == TimeInForce.IOC
                     else "Gtc", order.reduce_only, None, status_ts=self.clock.now_ms())
        self._keep(live)
        # The order it becomes passes the checks of any new order (margin, the $10 minimum,
        # the oracle band) against the account as it is now, or is rejected.
        spec = OrderSpec(order.asset, order.is_buy, order.limit_px, "", order.reduce_only,
                         "Ioc" if tif == TimeInForce.IOC else "Gtc", None, None)
        try:
            live.lots = live.orig_lots = self._admissible(account, instrument, spec,
                                                          order.price_ticks, lots)
        except OrderError as refused:
            live.status = refused.status
            live.status_ts = self.clock.now_ms()
            self._record(live)
            return
        self._match(account, instrument, live, tif)

    # ------------------------------------------------------------ closing

    def _keep(self, order: Order) -> None:
        """Index `order` by oid while it is open and for a while after it finished (every
        lookup by oid is of an open order or of one the same action placed). Once more
        than KEPT_FINISHED orders are indexed, each order added looks at the two oldest: a
        finished one is forgotten with its cloid, an open one goes to the back. The index
        stays under about KEPT_FINISHED plus twice the open orders, however long the
        exchange runs."""
        self._orders[order.oid] = order
        ages = self._order_ages
        ages.append(order.oid)
        for _ in range(2 if len(ages) > KEPT_FINISHED else 0):
            oid = ages.popleft()
            kept = self._orders.get(oid)
            if kept is not None and kept.status == "open":
                ages.append(oid)
            elif kept is not None:
                del self._orders[oid]
                if kept.cloid is not None:
                    self.accounts[kept.user].cloids.discard(kept.cloid)

    def _close(self, order: Order, status: str, *, book_cancel: bool = True) -> None:
        """Take an open order off the book and the account, recording its final status."""
        account = self.accounts[order.user]
        if account.orders.pop(order.oid, None) is not None:
            self._hold(account, order, -order.lots)
            self._triggers[order.coin].pop(order.oid, None)
            self._reduce_only[order.coin].pop(order.oid, None)
        if book_cancel and order.trigger is None and order.oid in self.books[order.coin]:
            self.books[order.coin].cancel(order.oid)
            self._books_out[order.coin] = None
        order.status = status
        order.status_ts = self.clock.now_ms()
        self._record(order)
        for child in order.children:
            if status != "filled":
                child.status, child.status_ts = "canceled", order.status_ts
        if status in ("scheduledCancel", "marginCanceled", "liquidatedCanceled"):
            self._pending.append(NonUserCancel(order.user,
                                               [{"coin": order.coin, "oid": order.oid}]))

    def _cancel_all(self, account: Account, status: str) -> None:
        for order in sorted(account.orders.values(), key=lambda o: o.oid):
            self._close(order, status)

    def _record(self, order: Order) -> None:
        """Keep the status change for historicalOrders and tell orderUpdates."""
        account = self.accounts[order.user]
        if account.internal:
            return
        change = StatusChange(order, order.lots, order.status, order.status_ts)
        account.history.append(change)
        if len(account.history) > 4000:
            del account.history[:-2000]
        self._changes_out.setdefault(order.user, []).append(change)

    # ------------------------------------------------- marks, funding, liquidation

    def _mark(self, coin: str) -> float:
        """The mark: the median of the oracle and the book's best bid and ask."""
        oracle = self.oracle.prices[coin]
        book = self.books[coin]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return oracle
        instrument = self.instruments.of(coin)
        prices = sorted((oracle, float(instrument.ticks_to_price(bid)),
                         float(instrument.ticks_to_price(ask))))
        return prices[1]

    def marks(self) -> dict[str, float]:
        return {coin: self._mark(coin) for coin in self.coins}

    def _mark_all(self) -> None:
        marks = self.marks()
        for account in self.accounts.values():
            account.portfolio.mark(marks)

    def _sample_premiums(self) -> None:
        for coin in self.coins:
            mid = self.books[coin].mid()
            if mid is not None:
                instrument = self.instruments.of(coin)
                price = mid * self._tick_sizes[instrument.asset]
                oracle = self.oracle.prices[coin]
                samples = self._premiums[coin]
                samples.append((price - oracle) / oracle)
                del samples[:-3600]

    def funding_rate(self, coin: str) -> tuple[float, float]:
        """This hour's (rate, premium): an eighth of the 8-hour rate the hour's average
        premium gives, capped at 4 % an hour (hyperliquid.md section 10.5)."""
        samples = self._premiums[coin]
        premium = sum(samples) / len(samples) if samples else 0.0
        return hourly_funding_rate(premium), premium

    def _pay_funding(self, time: int) -> None:
        rates = {coin: self.funding_rate(coin) for coin in self.coins}
        for coin, (rate, premium) in rates.items():
            self._funding_history[coin].append({"coin": coin, "fundingRate": num(rate),
                                                "premium": num(premium), "time": time})
            self._premiums[coin].clear()
        oracle = dict(self.oracle.prices)
        for account in self.accounts.values():
            positions = account.portfolio.open_positions()
            if not positions:
                continue
            account.portfolio.apply_funding({c: r for c, (r, _) in rates.items()}, oracle)
            for p in positions:
                rate = rates[p.coin][0]
                usdc = -p.size * oracle[p.coin] * rate
                entry = {"time": time, "coin": p.coin, "usdc": num(usdc), "szi": num(p.size),
                         "fundingRate": num(rate), "nSamples": None}
                if not account.internal:
                    account.fundings.append({"time": time, "hash": "0x" + "0" * 64,
                                             "delta": {"type": "funding", **{
                                                 k: v for k, v in entry.items()
                                                 if k != "time"}}})
                    self._pending.append(UserFunding(account.address, entry))

    def _liquidate(self) -> None:
        """Close every position whose mark crossed its liquidation price, at the book and
        then (what the book cannot take) to the liquidator at the mark."""
        for account in list(self.accounts.values()):
            if account.internal:
                continue
            due = [p for p in account.portfolio.open_positions()
                   if p.liquidation_px is not None and (
                       p.mark_px <= p.liquidation_px if p.size > 0
                       else p.mark_px >= p.liquidation_px)]
            if not due:
                continue
            value = account.portfolio.account_value
            notional = sum(abs(p.position_value) for p in due)
            self._cancel_all(account, "liquidatedCanceled")
            for position in due:
                self._liquidate_position(account, position)
            self._pending.append(Liquidation(account.address, {
                "lid": self._next_tid, "liquidator": self._liquidator.address,
                "liquidated_user": account.address, "liquidated_ntl_pos": num(notional),
                "liquidated_account_value": num(value)}))

    def _liquidate_position(self, account: Account, position: Any) -> None:
        coin = position.coin
        instrument = self.instruments.of(coin)
        is_buy = position.size < 0
        lots = instrument.round_size_to_lots(abs(position.size), Rounding.NEAREST)
        mark = position.mark_px
        detail = {"liquidatedUser": account.address, "markPx": num(mark), "method": "market"}
        price = mark * (1 + LIQUIDATION_SLIPPAGE if is_buy else 1 - LIQUIDATION_SLIPPAGE)
        ticks = instrument.round_price_to_ticks(price, Rounding.UP if is_buy else Rounding.DOWN)
        order = Order(self._next_oid, account.address, coin, instrument.asset, is_buy,
                      num(instrument.ticks_to_price(ticks)), ticks, lots, lots,
                      instrument.sz_decimals, self.clock.now_ms(), "Ioc", True, None)
        self._next_oid += 1
        self._keep(order)
        _, filled, _ = self._take(account, order, TimeInForce.IOC, liquidation=detail)
        self._books_out[coin] = None
        left = lots - filled
        if left:                                  # the backstop takes the rest at the mark
            px = num(instrument.round_price(mark, Rounding.NEAREST))
            sz = units_text(left, instrument.sz_decimals)
            tid = self._next_tid
            self._next_tid += 1
            now = self.clock.now_ms()
            backstop = {**detail, "method": "backstop"}
            price, amount = float(px), float(sz)
            self._book_fill(account, instrument, px, sz, price, amount, is_buy, now, order.oid,
                            True, tid, None, backstop)
            self._book_fill(self._liquidator, instrument, px, sz, price, amount, not is_buy, now,
                            0, False, tid, None, None)

    # ------------------------------------------------------------ makers

    def _requote(self, count: int | None = None) -> None:
        """Makers cancel their ladders and quote afresh around the oracle: all of them, or
        the next `count` of those whose quotes are stale since the oracle last moved."""
        makers = len(self._makers)
        first, last = 0, makers
        if count is not None:
            first = makers - self._stale_makers
            last = min(first + count, makers)
        self._stale_makers = makers - last
        for index, maker in enumerate(self._makers[first:last], start=first):
            for order in list(maker.orders.values()):
                self._close(order, "canceled")
            for coin in self.coins:
                instrument = self.instruments.of(coin)
                for quote in maker_quotes(instrument, self.oracle.prices[coin], index):
                    spec = OrderSpec(instrument.asset, quote.is_buy, num(quote.price),
                                      num(quote.size), False, "Alo", None, None)
                    self._place(maker, spec)
        self._books_out.update(dict.fromkeys(self.coins))

    # ------------------------------------------------------------ helpers

    def _wall_ms(self) -> int | None:
        """The wall clock's time when the exchange runs on a simulated clock, else None."""
        return RealClock().now_ms() if getattr(self.clock, "simulated", False) else None

    def _internal(self, address: str) -> Account:
        account = self._account(address)
        account.internal = True
        account.portfolio.deposit(MAKER_BALANCE)
        return account

    def _account(self, address: str) -> Account:
        account = self.accounts.get(address)
        if account is None:
            account = Account(address, Portfolio(self.instruments, fees=self.fees))
            self.accounts[address] = account
            self._owners[address] = len(self._owners) + 1     # the book's owner id
            account.portfolio.mark({coin: self._mark(coin) for coin in self.coins})
        return account

    def _instrument(self, asset: int, *, per_order: bool = False) -> Instrument:
        if 0 <= asset < len(self._listed):
            return self._listed[asset]
        if per_order:
            raise OrderError(f"Asset {asset} does not exist.")
        raise Rejected(f"Asset {asset} does not exist.")

    def _px(self, instrument: Instrument, ticks: int | None) -> str:
        return "None" if ticks is None else self._price_text(instrument, ticks)

    def candles(self, coin: str, interval: str) -> dict[int, list[Any]]:
        """The coin's bars of `interval` by start time, each [open, high, low, close, lots,
        trades], up to the last trade."""
        self._fold_minute(coin)
        return self._candles.get((coin, interval), {})

    def _candle(self, instrument: Instrument, prices: list[float], lots: int,
                now: int) -> None:
        """Fold one book call's trades (all at `now`) into the coin's open minute, which goes
        into every interval's bar (all are whole minutes) when the next minute starts or the
        candles are read: one update per trade batch rather than one per interval. Volumes
        are kept in lots, exactly; prices are the trades' grid prices."""
        coin, minute = instrument.name, now - now % 60_000
        first, high, low, last, count = prices[0], max(prices), min(prices), prices[-1], len(prices)
        bar = self._minute.get(coin)
        if bar is not None and bar[0] == minute:
            bar[2], bar[3], bar[4] = max(bar[2], high), min(bar[3], low), last
            bar[5] += lots
            bar[6] += count
            return
        self._fold_minute(coin)
        self._minute[coin] = [minute, first, high, low, last, lots, count]

    def _fold_minute(self, coin: str) -> None:
        pending = self._minute.pop(coin, None)
        if pending is None:
            return
        minute, first, high, low, last, lots, count = pending
        for ms, candles in self._bars[coin]:
            start = minute - minute % ms
            bar = candles.get(start)
            if bar is None:
                candles[start] = [first, high, low, last, lots, count]
                if len(candles) > 5000:
                    del candles[min(candles)]
            else:
                bar[1], bar[2], bar[3] = max(bar[1], high), min(bar[2], low), last
                bar[4] += lots
                bar[5] += count

    def _flush_events(self) -> None:
        """Tell the listeners what the last call changed, batched as the exchange batches a
        block's changes: one OrderUpdates and one UserFills per user (each user's in the
        order they happened), then the other events in order, one Trades per coin and one
        BookChanged per book that changed. One event is one websocket frame."""
        events: list[Event] = [OrderUpdates(user, changes)
                               for user, changes in self._changes_out.items()]
        events += [UserFills(user, fills) for user, fills in self._fills_out.items()]
        events += self._pending
        events += [Trades(coin, trades) for coin, trades in self._trades_out.items()]
        events += [BookChanged(coin) for coin in self._books_out]
        self._pending, self._changes_out, self._fills_out = [], {}, {}
        self._trades_out, self._books_out = {}, {}
        for event in events:
            for listener in self._listeners:
                listener(event)


_DEFAULT: Wire = {"status": "ok", "response": {"type": "default"}}
_BUY, _SELL, _RESTED = Side.BUY, Side.SELL, OrderStatus.RESTED       # read once per order


def _book_internal_fill(account: Account, row: int, size: float, price: float, *,
                        maker: bool) -> None:
    """A market maker's or the liquidator's side of a fill: position and volume only."""
    account.volume += abs(size) * price
    account.portfolio.book.apply_fill(row, size, price, maker)


CACHE_ENTRIES = 100_000          # a cache of parsed or printed numbers is cleared when full


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    if len(cache) >= CACHE_ENTRIES:
        cache.clear()
    cache[key] = value
    return value



def _ticks(instrument: Instrument, price: str) -> int:
    return instrument.price_to_ticks(price)


def _lots(instrument: Instrument, size: str) -> int:
    return instrument.size_to_lots(size, allow_zero=True)


def _price_wire(instrument: Instrument, ticks: int) -> str:
    return num(instrument.ticks_to_price(ticks))


def _check_cloid(account: Account, spec: OrderSpec) -> None:
    """An order's cloid must be new to the account (its open and recent orders')."""
    if spec.cloid is not None and spec.cloid in account.cloids:
        raise OrderError(f"Duplicate cloid {spec.cloid}. asset={spec.asset}")


def _reducible(size: float, instrument: Instrument, is_buy: bool) -> int:
    """Lots an order on this side can close of a position of `size` (Portfolio.reducible_lots
    without the Decimal round trip: positions hold whole lots up to float noise)."""
    if not size or (size < 0) != is_buy:
        return 0
    return round(abs(size) * 10 ** instrument.sz_decimals)


def _statuses(kind: str, statuses: list[Wire | str]) -> Wire:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _oid_of(status: Wire | str) -> int:
    """The oid a status entry names (resting or filled), or -1."""
    for key in ("resting", "filled"):
        if isinstance(status, dict) and key in status:
            return int(status[key]["oid"])
    return -1
