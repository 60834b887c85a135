"""Exchange clients: the official SDK's method names and arguments, typed results.

Each call builds one signed body (:class:`ExchangeActions`), posts it once
through the transport (which may resend the identical bytes after a dropped
connection, never a re-signed copy), drops the cached info answers about every
account the action changes (the account traded, a transfer's destination),
and parses the answer into an :class:`ExchangeResult` with a status per order.

The account is never the agent: an agent (API wallet) signs for the account
that approved it, named by ``account_address`` or by the agent Wallet's
``owner`` (which the Wallet that ``approve_agent`` returns carries). A key
given with neither is taken for the account itself, as the official SDK does:
nothing offline tells an agent key from an account key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from obelisk.hyperliquid.actions import WALLET_REQUIRED, Body, ExchangeActions, ExchangeResult
from obelisk.hyperliquid.actions import parse_exchange_response as _parse
from obelisk.hyperliquid.info import AssetDirectory, AsyncInfo, Info
from obelisk.hyperliquid.transport import MAINNET_URL, AsyncTransport, Transport
from obelisk.hyperliquid.twins import AsyncClient, BlockingClient, Request, client_method
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.wire import Cloid, OrderWire, WireError, slippage_price

__all__ = ["AsyncExchange", "Exchange", "SignedAction", "slippage_price"]

DEFAULT_SLIPPAGE = 0.05
IOC = {"limit": {"tif": "Ioc"}}
_SPOT_ASSETS = 10_000


@dataclass(frozen=True, slots=True)
class SignedAction(Request[ExchangeResult]):
    """A signed body, how many orders or cancels it carries (a status is kept for each),
    and the accounts whose state it changes when not just the account traded. Its nonce
    was taken when it was signed: send it soon, and only once (``send``)."""

    body: Body
    batch: int = 1
    changes: tuple[str, ...] = ()


class _ExchangeMethods:
    """Every action both clients take, written once; `_submit` posts it (sync or a coroutine)."""

    transport: Transport | AsyncTransport

    def __init__(self, wallet: Wallet, directory: AssetDirectory, base_url: str, *,
                 vault_address: str | None, account_address: str | None,
                 expires_after: int | None) -> None:
        self.wallet = wallet
        self.directory = directory
        self.vault_address = vault_address
        self.account_address = account_address
        self.actions = ExchangeActions(wallet, directory.asset,
                                       is_mainnet=base_url.rstrip("/") == MAINNET_URL,
                                       vault_address=vault_address, expires_after=expires_after)

    @property
    def account(self) -> str:
        """The account traded: the vault, else the signer's account (:attr:`own_account`)."""
        return self.vault_address or self.own_account

    @property
    def own_account(self) -> str:
        """The account the signer acts for, which user-signed transfers move funds from:
        ``account_address``, else the wallet's owner when it is a known agent, else the
        wallet itself."""
        return self.account_address or self.wallet.account

    def _invalidate(self, action: SignedAction) -> None:
        for user in action.changes or (self.account,):
            self.transport.invalidate_user(user)

    def set_expires_after(self, expires_after: int | None) -> None:
        """Actions are refused after this ms time (not for user-signed actions)."""
        self.actions.expires_after = expires_after

    @client_method
    def order(self, name: str, is_buy: bool, sz: float, limit_px: float,
              order_type: Mapping[str, Any], reduce_only: bool = False,
              cloid: Cloid | None = None, builder: Mapping[str, Any] | None = None) -> SignedAction:
        return SignedAction(self.actions.order(name, is_buy, sz, limit_px, order_type,
                                               reduce_only, cloid, builder))

    @client_method
    def bulk_orders(self, order_requests: Sequence[Mapping[str, Any]],
                    builder: Mapping[str, Any] | None = None, grouping: str = "na") -> SignedAction:
        return SignedAction(self.actions.bulk_orders(order_requests, builder, grouping),
                            len(order_requests))

    @client_method
    def bulk_order_wires(self, wires: Sequence[OrderWire], grouping: str = "na") -> SignedAction:
        """Orders already in wire form (``a``, ``b``, ``p``, ``s``, ``r``, ``t``, ``c``, as
        :func:`~obelisk.hyperliquid.wire.order_request_to_order_wire` makes them) as one
        action: for callers that hold prices and sizes as wire strings, such as
        :class:`~obelisk.hyperliquid.batch_venue.HyperliquidBatchVenue`."""
        return self.sign_order_wires(wires, grouping)

    def sign_order_wires(self, wires: Sequence[OrderWire], grouping: str = "na") -> SignedAction:
        """``bulk_order_wires`` signed but not sent: a caller signs its next action while
        the last one is on its way, then hands it to ``send``."""
        return SignedAction(self.actions.order_wires(wires, grouping=grouping), len(wires))

    @client_method
    def modify_order(self, oid: int | Cloid, name: str, is_buy: bool, sz: float,
                     limit_px: float, order_type: Mapping[str, Any], reduce_only: bool = False,
                     cloid: Cloid | None = None) -> SignedAction:
        return SignedAction(self.actions.bulk_modify([{"oid": oid, "order": {
            "coin": name, "is_buy": is_buy, "sz": sz, "limit_px": limit_px,
            "order_type": order_type, "reduce_only": reduce_only, "cloid": cloid}}]))

    @client_method
    def bulk_modify_orders_new(self, modify_requests: Sequence[Mapping[str, Any]]) -> SignedAction:
        return SignedAction(self.actions.bulk_modify(modify_requests), len(modify_requests))

    @client_method
    def cancel(self, name: str, oid: int) -> SignedAction:
        return SignedAction(self.actions.bulk_cancel([(name, oid)]))

    @client_method
    def cancel_by_cloid(self, name: str, cloid: Cloid) -> SignedAction:
        return SignedAction(self.actions.bulk_cancel_by_cloid([(name, cloid)]))

    @client_method
    def bulk_cancel(self, cancel_requests: Sequence[Mapping[str, Any]]) -> SignedAction:
        return SignedAction(self.actions.bulk_cancel(
            [(c["coin"], c["oid"]) for c in cancel_requests]), len(cancel_requests))

    @client_method
    def bulk_cancel_by_cloid(self, cancel_requests: Sequence[Mapping[str, Any]]) -> SignedAction:
        return self.sign_cancels_by_cloid(cancel_requests)

    def sign_cancels_by_cloid(self, cancel_requests: Sequence[Mapping[str, Any]]
                              ) -> SignedAction:
        """``bulk_cancel_by_cloid`` signed but not sent (see ``sign_order_wires``)."""
        return SignedAction(self.actions.bulk_cancel_by_cloid(
            [(c["coin"], c["cloid"]) for c in cancel_requests]), len(cancel_requests))

    @client_method
    def schedule_cancel(self, time: int | None) -> SignedAction:
        """Cancel every open order at `time` (ms, >= 5 s ahead), or unset it with None."""
        return SignedAction(self.actions.schedule_cancel(time))

    @client_method
    def update_leverage(self, leverage: int, name: str, is_cross: bool = True) -> SignedAction:
        return SignedAction(self.actions.update_leverage(leverage, name, is_cross))

    @client_method
    def update_isolated_margin(self, amount: float, name: str) -> SignedAction:
        return SignedAction(self.actions.update_isolated_margin(amount, name))

    @client_method
    def usd_transfer(self, amount: float, destination: str) -> SignedAction:
        return SignedAction(self.actions.usd_transfer(amount, destination),
                            changes=(self.own_account, destination))

    @client_method
    def spot_transfer(self, amount: float, destination: str, token: str) -> SignedAction:
        return SignedAction(self.actions.spot_transfer(amount, destination, token),
                            changes=(self.own_account, destination))

    @client_method
    def withdraw_from_bridge(self, amount: float, destination: str) -> SignedAction:
        return SignedAction(self.actions.withdraw_from_bridge(amount, destination),
                            changes=(self.own_account,))

    @client_method
    def usd_class_transfer(self, amount: float, to_perp: bool) -> SignedAction:
        return SignedAction(self.actions.usd_class_transfer(amount, to_perp))

    @client_method
    def send_asset(self, destination: str, source_dex: str, destination_dex: str, token: str,
                   amount: float) -> SignedAction:
        return SignedAction(self.actions.send_asset(destination, source_dex, destination_dex,
                                                    token, amount),
                            changes=(self.account, destination))

    @client_method
    def approve_builder_fee(self, builder: str, max_fee_rate: str) -> SignedAction:
        return SignedAction(self.actions.approve_builder_fee(builder, max_fee_rate),
                            changes=(self.own_account,))

    def _slippage(self, coin: str, is_buy: bool, slippage: float, px: float) -> float:
        instrument = self.directory.instrument(coin)
        return slippage_price(px, is_buy, slippage, instrument.sz_decimals,
                              instrument.asset >= _SPOT_ASSETS)


class Exchange(_ExchangeMethods, BlockingClient):
    """Blocking exchange client over the transport of `info`."""

    def __init__(self, wallet: Wallet, info: Info, *, directory: AssetDirectory | None = None,
                 vault_address: str | None = None, account_address: str | None = None,
                 expires_after: int | None = None) -> None:
        if not isinstance(wallet, Wallet):
            del wallet
            raise TypeError(WALLET_REQUIRED)
        self.info = info
        self.transport = info.transport
        super().__init__(wallet, directory or info.directory(), self.transport.base_url,
                         vault_address=vault_address, account_address=account_address,
                         expires_after=expires_after)

    def _submit(self, action: SignedAction,
                post: Callable[[Body], Any] | None = None) -> ExchangeResult:
        try:
            return _parse((post or self.transport.post_exchange)(action.body), action.batch)
        finally:
            self._invalidate(action)

    def send(self, action: SignedAction,
             post: Callable[[Body], Any] | None = None) -> ExchangeResult:
        """Post an action signed earlier (``sign_order_wires``); its parsed answer.

        `post` takes the body and returns the exchange's JSON answer: by default the
        transport's HTTP post; a :class:`~obelisk.hyperliquid.ws_post.WebsocketPoster`'s
        answer, for one.
        """
        return self._submit(action, post)

    def approve_agent(self, name: str | None = None) -> tuple[ExchangeResult, Wallet]:
        """Approve a fresh agent; the answer, and the agent's Wallet (its owner: this account)."""
        body, agent = self.actions.approve_agent(name)
        return self._submit(SignedAction(body, changes=(self.own_account,))), agent

    def market_open(self, name: str, is_buy: bool, sz: float, px: float | None = None,
                    slippage: float = DEFAULT_SLIPPAGE, cloid: Cloid | None = None,
                    builder: Mapping[str, Any] | None = None) -> ExchangeResult:
        """An IOC limit at the mid (or `px`) moved by `slippage` against the taker."""
        price = self._slippage(name, is_buy, slippage,
                               px if px else self.info.all_mids()[name])
        return self.order(name, is_buy, sz, price, IOC, False, cloid, builder)

    def market_close(self, coin: str, sz: float | None = None, px: float | None = None,
                     slippage: float = DEFAULT_SLIPPAGE, cloid: Cloid | None = None,
                     builder: Mapping[str, Any] | None = None) -> ExchangeResult:
        """Close (all or `sz` of) the position in `coin` with a reduce-only IOC."""
        position = next((p for p in self.info.clearinghouse_state(self.account).positions
                         if p.coin == coin and p.szi), None)
        if position is None:
            raise WireError(f"{self.account} has no {coin} position to close")
        is_buy = position.szi < 0
        price = self._slippage(coin, is_buy, slippage, px if px else self.info.all_mids()[coin])
        return self.order(coin, is_buy, sz or abs(position.szi), price, IOC, True, cloid, builder)


class AsyncExchange(_ExchangeMethods, AsyncClient):
    """asyncio exchange client over the transport of `info`; build it with ``create``."""

    def __init__(self, wallet: Wallet, info: AsyncInfo, directory: AssetDirectory, *,
                 vault_address: str | None = None, account_address: str | None = None,
                 expires_after: int | None = None) -> None:
        if not isinstance(wallet, Wallet):
            del wallet
            raise TypeError(WALLET_REQUIRED)
        self.info = info
        self.transport = info.transport
        super().__init__(wallet, directory, self.transport.base_url,
                         vault_address=vault_address, account_address=account_address,
                         expires_after=expires_after)

    @classmethod
    async def create(cls, wallet: Wallet, info: AsyncInfo, **options: Any) -> AsyncExchange:
        """A client with the asset directory fetched from ``meta`` and ``spotMeta``."""
        if not isinstance(wallet, Wallet):
            del wallet
            raise TypeError(WALLET_REQUIRED)
        return cls(wallet, info, await info.directory(), **options)

    async def _submit(self, action: SignedAction) -> ExchangeResult:
        try:
            return _parse(await self.transport.post_exchange(action.body), action.batch)
        finally:
            self._invalidate(action)

    async def send(self, action: SignedAction) -> ExchangeResult:
        """Post an action signed earlier (``sign_order_wires``); its parsed answer."""
        return await self._submit(action)

    async def approve_agent(self, name: str | None = None) -> tuple[ExchangeResult, Wallet]:
        body, agent = self.actions.approve_agent(name)
        return await self._submit(SignedAction(body, changes=(self.own_account,))), agent

    async def market_open(self, name: str, is_buy: bool, sz: float, px: float | None = None,
                          slippage: float = DEFAULT_SLIPPAGE, cloid: Cloid | None = None,
                          builder: Mapping[str, Any] | None = None) -> ExchangeResult:
        mid = px if px else (await self.info.all_mids())[name]
        price = self._slippage(name, is_buy, slippage, mid)
        return await self.order(name, is_buy, sz, price, IOC, False, cloid, builder)

    async def market_close(self, coin: str, sz: float | None = None, px: float | None = None,
                           slippage: float = DEFAULT_SLIPPAGE, cloid: Cloid | None = None,
                           builder: Mapping[str, Any] | None = None) -> ExchangeResult:
        state = await self.info.clearinghouse_state(self.account)
        position = next((p for p in state.positions if p.coin == coin and p.szi), None)
        if position is None:
            raise WireError(f"{self.account} has no {coin} position to close")
        is_buy = position.szi < 0
        mid = px if px else (await self.info.all_mids())[coin]
        price = self._slippage(coin, is_buy, slippage, mid)
        return await self.order(coin, is_buy, sz or abs(position.szi), price, IOC, True, cloid,
                                builder)
