"""No private key in a traceback: every failing path is rendered as an error reporter would
(locals of every frame, the whole __cause__/__context__ chain) and searched for the key.

The keys live in module globals and reach obelisk as temporaries, so the only frames that
can hold them are obelisk's own.
"""

import asyncio
import traceback
from types import SimpleNamespace

import pytest

from obelisk.hyperliquid import signing
from obelisk.hyperliquid.actions import ExchangeActions
from obelisk.hyperliquid.exchange import AsyncExchange, Exchange
from obelisk.hyperliquid.wallet import Wallet, WalletError

SECRET = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
RAW = bytes.fromhex(SECRET)
TYPO = "0x" + SECRET[:-1] + "g"                     # a typo still holds 63 digits of the key
ABOVE_N = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364146"
NOOP = {"type": "noop"}
USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"


def _windows(text: str, width: int = 12) -> set[str]:
    return {text[i:i + width] for i in range(len(text) - width + 1)}


def fragments(secret: str) -> set[str]:
    """Pieces of a hex key as any frame could show it: hex (either case, with or without 0x,
    compared lower-cased), the bytes' repr, and the integer."""
    digits = secret.lower()
    if not digits:
        return set()
    found = _windows(digits)
    raw = bytes.fromhex(digits[:len(digits) // 2 * 2])
    found |= _windows(repr(raw)[2:-1])
    found |= _windows(str(int(digits, 16)))
    return found


def chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception reachable through __cause__ and __context__."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is not None and all(error is not seen for seen in found):
            found.append(error)
            pending += [error.__cause__, error.__context__]
    return found


def rendered(exc: BaseException) -> str:
    """Everything a locals-capturing reporter could record, for `exc` and every exception
    chained to it (suppressed contexts included)."""
    parts: list[str] = []
    for error in chain(exc):
        report = traceback.TracebackException.from_exception(error, capture_locals=True)
        parts.extend(report.format())
        parts.append(repr(error.args))
        parts.append(repr(getattr(error, "__dict__", {})))
    return "".join(parts)


def held_values(exc: BaseException) -> list[tuple[str, str, object]]:
    """(function, name, value) of every local of every frame in the chain's tracebacks."""
    held = []
    for error in chain(exc):
        tb = error.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            held += [(code.co_name, name, value) for name, value in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
    return held


def raised(call, where):
    try:
        call(where)
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


# name -> (the call, the key text it must not leak, the exception expected)
CASES = {
    # Wallet(...) with malformed keys
    "too long": (lambda _: Wallet("0x" + SECRET + "ab"), SECRET, WalletError),
    "too short": (lambda _: Wallet(SECRET[:-1]), SECRET[:-1], WalletError),
    "non-hex char": (lambda _: Wallet(TYPO), SECRET[:-1], WalletError),
    "upper case typo": (lambda _: Wallet("0X" + SECRET.upper()[:-1] + "Z"), SECRET[:-1],
                        WalletError),
    "space inside": (lambda _: Wallet(SECRET[:32] + " " + SECRET[32:]), SECRET[:32],
                     WalletError),
    "above the curve order": (lambda _: Wallet("0x" + ABOVE_N), ABOVE_N, WalletError),
    "empty": (lambda _: Wallet(""), "", WalletError),
    "bare 0x": (lambda _: Wallet("0x"), "", WalletError),
    "31 bytes": (lambda _: Wallet(RAW[:31]), SECRET[:62], WalletError),
    "33 bytes": (lambda _: Wallet(RAW + b"\x01"), SECRET, WalletError),
    "bytearray above n": (lambda _: Wallet(bytearray.fromhex(ABOVE_N)), ABOVE_N, WalletError),
    "an int": (lambda _: Wallet(int(SECRET, 16)), SECRET, WalletError),
    "bad owner": (lambda _: Wallet(SECRET, owner="0xnot-an-address"), SECRET, WalletError),
    # the environment and files
    "env unset": (lambda _: Wallet.from_env("OBELISK_TEST_UNSET_KEY"), "", WalletError),
    "env empty": (lambda _: Wallet.from_env("OBELISK_TEST_EMPTY_KEY"), "", WalletError),
    "env typo": (lambda _: Wallet.from_env("OBELISK_TEST_TYPO_KEY"), SECRET[:-1], WalletError),
    "env short": (lambda _: Wallet.from_env("OBELISK_TEST_SHORT_KEY"), SECRET[:-2],
                  WalletError),
    "file missing": (lambda where: Wallet.from_file(where / "missing.hex"), "", WalletError),
    "file is a directory": (lambda where: Wallet.from_file(where), "", WalletError),
    "file typo": (lambda where: Wallet.from_file(where / "typo.hex"), SECRET[:-1], WalletError),
    "file not ascii": (lambda where: Wallet.from_file(where / "latin.hex"), SECRET[:-1],
                       WalletError),
    "file empty": (lambda where: Wallet.from_file(where / "empty.hex"), "", WalletError),
    # signing with a malformed key
    "sign typo key": (lambda _: signing.sign_l1_action(TYPO, NOOP, None, 1, None, True),
                      SECRET[:-1], WalletError),
    "sign user-signed typo key": (
        lambda _: signing.sign_usd_transfer_action(TYPO, {}, True), SECRET[:-1], WalletError),
    "sign account with short key": (
        lambda _: signing.sign_l1_action(SimpleNamespace(key=RAW[:31]), NOOP, None, 1, None,
                                         True), SECRET[:62], WalletError),
    # signing with a good key and a bad action or argument
    "float in action": (lambda _: signing.sign_l1_action(
        SECRET, {"type": "updateLeverage", "leverage": 1.5}, None, 1, None, True),
        SECRET, ValueError),
    "bad vault": (lambda _: signing.sign_l1_action(SECRET, NOOP, "0x1234", 1, None, True),
                  SECRET, ValueError),
    "negative nonce": (lambda _: signing.sign_l1_action(SECRET, NOOP, None, -1, None, True),
                       SECRET, ValueError),
    "expiry too big": (lambda _: signing.sign_l1_action(SECRET, NOOP, None, 1, 2**64, True),
                       SECRET, ValueError),
    "action not a dict": (lambda _: signing.sign_user_signed_action(
        SECRET, "usdSend", signing.USD_SEND_SIGN_TYPES, "HyperliquidTransaction:UsdSend",
        True), SECRET, TypeError),
    "float amount": (lambda _: signing.sign_usd_transfer_action(
        SECRET, {"destination": USER, "amount": 1.0, "time": 1}, True), SECRET, ValueError),
    "bad agent address": (lambda _: signing.sign_agent(
        SECRET, {"agentAddress": "0xzz", "agentName": "", "nonce": 1}, True), SECRET,
        ValueError),
    "account with key, bad action": (lambda _: signing.sign_l1_action(
        SimpleNamespace(key=RAW), {"px": 0.5}, None, 1, None, True), SECRET, ValueError),
    "not a signer": (lambda _: signing.sign_l1_action(
        SimpleNamespace(secret=SECRET), NOOP, None, 1, None, True), SECRET, TypeError),
    # a key where the clients take a Wallet
    "Exchange with a key": (lambda _: Exchange(SECRET, None), SECRET, TypeError),
    "AsyncExchange with a key": (lambda _: AsyncExchange(SECRET, None, None), SECRET, TypeError),
    "AsyncExchange.create with a key": (
        lambda _: asyncio.run(AsyncExchange.create(SECRET, None)), SECRET, TypeError),
    "ExchangeActions with a key": (lambda _: ExchangeActions(SECRET, len, is_mainnet=False),
                                   SECRET, TypeError),
}
CASES |= {
    f"{sign.__name__} missing fields": (
        lambda _, sign=sign: sign(SECRET, {}, True), SECRET, ValueError)
    for sign in (signing.sign_usd_transfer_action, signing.sign_spot_transfer_action,
                 signing.sign_withdraw_from_bridge_action,
                 signing.sign_usd_class_transfer_action, signing.sign_send_asset_action,
                 signing.sign_agent, signing.sign_approve_builder_fee)
}


@pytest.fixture
def where(tmp_path, monkeypatch):
    """Environment variables and key files for the cases above."""
    monkeypatch.delenv("OBELISK_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("OBELISK_TEST_EMPTY_KEY", "")
    monkeypatch.setenv("OBELISK_TEST_TYPO_KEY", TYPO)
    monkeypatch.setenv("OBELISK_TEST_SHORT_KEY", "0x" + SECRET[:-2])
    (tmp_path / "typo.hex").write_text(TYPO + "\n")
    (tmp_path / "latin.hex").write_bytes(b"0x" + SECRET[:-1].encode() + b"\xe9\n")
    (tmp_path / "empty.hex").write_text("")
    return tmp_path


@pytest.mark.parametrize("case", list(CASES))
def test_no_key_in_a_locals_capturing_traceback(case, where):
    call, secret, expected = CASES[case]
    exc = raised(call, where)
    assert isinstance(exc, expected), repr(exc)
    pieces = fragments(secret)
    holding = [(function, name) for function, name, value in held_values(exc)
               if isinstance(value, str | bytes | bytearray | int)
               and any(piece in (value.hex() if isinstance(value, bytes | bytearray)
                                 else str(value)).lower() for piece in pieces)]
    assert not holding, f"{case}: frames holding the key: {holding}"
    text = rendered(exc)
    assert "raised" in text and "where =" in text        # locals really were captured
    lowered = text.lower()
    leaked = sorted(piece for piece in pieces if piece.lower() in lowered)
    assert not leaked, f"{case}: key fragments in the traceback: {leaked[:3]}"


def test_the_render_finds_a_key_a_frame_holds():
    """The search itself works: a frame that keeps the key is caught."""
    def holds(_):
        key = "0x" + SECRET.upper()
        raise ValueError(f"bad key of length {len(key)}")

    text = rendered(raised(holds, None)).lower()
    assert any(piece in text for piece in fragments(SECRET))


def test_repr_of_a_half_built_wallet_does_not_raise():
    blank = Wallet.__new__(Wallet)
    assert "Wallet" in repr(blank) and "Wallet" in str(blank)
    traceback.TracebackException.from_exception(raised(lambda _: Wallet(TYPO), None),
                                                capture_locals=True)
