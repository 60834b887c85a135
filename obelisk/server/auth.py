"""Who sent an ``/exchange`` request: signer recovery, API wallets and nonces.

A signature always recovers to *some* address, so validity means "the
recovered address is a known account or an agent an account approved". L1
actions are hashed as received (the SDK hashes and sends keys in one order) and
signed as the SDK signs any non-mainnet URL: phantom agent source ``"b"``.
Nonces are kept per signer as the exchange keeps them: the 100 highest, each
new one unused, above the smallest kept, and within (now - 2 days, now + 1 day).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from obelisk.hyperliquid.signing import (
    APPROVE_AGENT_SIGN_TYPES,
    USD_CLASS_TRANSFER_SIGN_TYPES,
    USD_SEND_SIGN_TYPES,
    l1_action_digest,
    recover_signer,
    recover_user_from_user_signed_action,
)
from obelisk.hyperliquid.wire import WireError

KEPT_NONCES = 100
NONCE_PAST_MS = 2 * 24 * 3_600_000
NONCE_FUTURE_MS = 24 * 3_600_000
MAX_NAMED_AGENTS = 3

# user-signed actions the server accepts: EIP-712 types and primary type
USER_SIGNED = {
    "approveAgent": (APPROVE_AGENT_SIGN_TYPES, "HyperliquidTransaction:ApproveAgent"),
    "usdClassTransfer": (USD_CLASS_TRANSFER_SIGN_TYPES,
                         "HyperliquidTransaction:UsdClassTransfer"),
    "usdSend": (USD_SEND_SIGN_TYPES, "HyperliquidTransaction:UsdSend"),
}


class Rejected(Exception):
    """A whole request refused with the exchange's text: ``{"status": "err", ...}``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Agent:
    address: str
    master: str
    name: str


class Signers:
    """Agents by address, and the nonces each signer has used."""

    def __init__(self, *, mainnet: bool = False) -> None:
        self.mainnet = mainnet
        self.agents: dict[str, Agent] = {}
        self._nonces: dict[str, list[int]] = {}

    # ------------------------------------------------------------ recovery

    def l1_signer(self, body: Mapping[str, Any]) -> str:
        """The lower-case address that signed an L1 action's envelope."""
        try:
            digest = l1_action_digest(body["action"], body.get("vaultAddress"), body["nonce"],
                                      body.get("expiresAfter"), self.mainnet,
                                      check_floats=False)    # hash what was received
            return recover_signer(digest, body["signature"]).lower()
        except (WireError, KeyError, TypeError, ValueError, OverflowError):
            # OverflowError: a number too large for the field it is packed into
            raise Rejected("Unable to recover signer") from None

    def user_signer(self, body: Mapping[str, Any]) -> str:
        """The lower-case address that signed a user-signed action (never an agent's)."""
        action = body["action"]
        types, primary = USER_SIGNED[action["type"]]
        if action["type"] == "approveAgent" and "agentName" not in action:
            action = {**action, "agentName": ""}         # the SDK signs "" and omits the key
        try:
            return recover_user_from_user_signed_action(action, body["signature"], types,
                                                        primary, self.mainnet).lower()
        except (WireError, KeyError, TypeError, ValueError, OverflowError):
            # OverflowError: a signatureChainId outside 0..2**256 - 1
            raise Rejected("Unable to recover signer") from None

    def master_of(self, signer: str) -> str:
        """The account an address acts for: its master if it is an approved agent."""
        agent = self.agents.get(signer)
        return agent.master if agent is not None else signer

    # ------------------------------------------------------------- agents

    def approve(self, master: str, address: str, name: str, *, is_user: bool = False) -> None:
        """Register an API wallet; one with the same name (or a new unnamed one) replaces
        the old, whose address is pruned. `is_user`: the address is an account's own, which
        no other account may take as its agent (its orders would land on the taker's)."""
        address = address.lower()
        if address == master:
            raise Rejected("Cannot approve the account itself as an agent")
        if is_user:
            raise Rejected(f"Agent {address} is already a user's address")
        if len(name) > 16:
            raise Rejected("Agent name must be at most 16 characters")
        named = [a for a in self.agents.values() if a.master == master and a.name]
        replaced = [a for a in self.agents.values() if a.master == master and a.name == name]
        if name and not replaced and len(named) >= MAX_NAMED_AGENTS:
            raise Rejected(f"Cannot approve more than {MAX_NAMED_AGENTS} named agents")
        existing = self.agents.get(address)
        if existing is not None and existing.master != master:
            raise Rejected(f"Agent {address} is already used by another account")
        for old in replaced:
            del self.agents[old.address]
        self.agents[address] = Agent(address, master, name)

    # ------------------------------------------------------------- nonces

    def check_nonce(self, signer: str, nonce: int, now_ms: int,
                    wall_ms: int | None = None) -> None:
        """Refuse a nonce the exchange would refuse; changes nothing.

        With a simulated clock `wall_ms` is the wall clock's time too: a nonce inside
        either window is on time, so clients that take nonces from the wall clock (the
        SDK does) keep working after a test advances the exchange by days.
        """
        on_time = any(now - NONCE_PAST_MS < nonce < now + NONCE_FUTURE_MS
                      for now in (now_ms, now_ms if wall_ms is None else wall_ms))
        if not on_time:
            raise Rejected(f"Invalid nonce: {nonce} is outside the allowed time window "
                           f"({now_ms - NONCE_PAST_MS}, {now_ms + NONCE_FUTURE_MS})")
        kept = self._nonces.get(signer, [])
        at = bisect.bisect_left(kept, nonce)
        if at < len(kept) and kept[at] == nonce:
            raise Rejected(f"Invalid nonce: duplicate nonce {nonce}")
        if len(kept) >= KEPT_NONCES and nonce < kept[0]:
            raise Rejected(f"Invalid nonce: nonce too low {nonce} < {kept[0]}")

    def use_nonce(self, signer: str, nonce: int) -> None:
        """Record a nonce that `check_nonce` accepted."""
        kept = self._nonces.setdefault(signer, [])
        bisect.insort(kept, nonce)
        if len(kept) > KEPT_NONCES:
            del kept[0]
