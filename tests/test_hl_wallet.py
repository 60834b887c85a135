"""obelisk.hyperliquid.wallet: a key that shows only its address, and the account it acts for.

Tracebacks of every failing path are searched for the key in tests/test_hl_secrets.py.
"""

import copy
import pickle
import traceback

import pytest

from obelisk.hyperliquid.wallet import Wallet, WalletError, to_checksum_address

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"      # eth-account's address of KEY
OWNER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_wallet_address_matches_eth_account():
    eth_account = pytest.importorskip("eth_account")
    assert eth_account.Account.from_key(KEY).address == ADDRESS
    assert Wallet(KEY).address == Wallet(KEY[2:]).address == ADDRESS
    assert Wallet(bytes.fromhex(KEY[2:])).address == Wallet(f"  {KEY.upper()}\n").address
    assert to_checksum_address(ADDRESS.lower()) == ADDRESS


def test_wallet_never_shows_its_key():
    wallet = Wallet(KEY)
    secret = KEY[2:]
    for text in (repr(wallet), str(wallet), f"{wallet}", repr([wallet])):
        assert secret not in text and ADDRESS in text
    with pytest.raises(TypeError):
        pickle.dumps(wallet)
    with pytest.raises(TypeError):
        copy.copy(wallet)


def test_repr_and_str_of_a_half_built_wallet_do_not_raise():
    """Locals-capturing reporters call repr on the `self` of a failed __init__."""
    blank = Wallet.__new__(Wallet)
    assert repr(blank) == str(blank) == "Wallet(<no key>)"
    with pytest.raises(WalletError) as caught:
        Wallet(KEY, owner="not an address")            # raised after the key was parsed
    assert "Wallet" in "".join(traceback.TracebackException.from_exception(
        caught.value, capture_locals=True).format())


@pytest.mark.parametrize("bad", [
    "0x0123456789012345678901234567890123456789012345678901234567890123ff",  # too long
    "0x01234567890123456789012345678901234567890123456789012345678901zz",  # not hex
    "0x" + "00" * 32,                                                       # zero scalar
    f"0x{N:064x}",                                                          # = group order
])
def test_bad_key_error_does_not_echo_it(bad):
    with pytest.raises(WalletError) as caught:
        Wallet(bad)
    shown = "".join(traceback.format_exception(caught.value))
    assert bad[2:] not in shown and bad[2:20] not in shown
    assert isinstance(caught.value, ValueError)


def test_wallet_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OBELISK_TEST_KEY", KEY)
    assert Wallet.from_env("OBELISK_TEST_KEY").address == ADDRESS
    path = tmp_path / "key.hex"
    path.write_text(KEY + "\n")
    assert Wallet.from_file(path).address == ADDRESS
    monkeypatch.setenv("OBELISK_TEST_KEY", KEY[:-1] + "g")
    with pytest.raises(WalletError, match="OBELISK_TEST_KEY.*not all hex"):
        Wallet.from_env("OBELISK_TEST_KEY")
    monkeypatch.delenv("OBELISK_TEST_KEY")
    with pytest.raises(WalletError, match="not set"):
        Wallet.from_env("OBELISK_TEST_KEY")
    with pytest.raises(WalletError, match="cannot read.*FileNotFoundError"):
        Wallet.from_file(tmp_path / "missing")
    path.write_bytes(KEY[:-1].encode() + b"\xe9")
    with pytest.raises(WalletError, match="key.hex.*not all hex"):
        Wallet.from_file(path)


def test_an_agent_knows_its_owner(monkeypatch):
    agent = Wallet(KEY, owner=OWNER)
    assert agent.owner == to_checksum_address(OWNER) and agent.account == agent.owner
    assert agent.address == ADDRESS and OWNER in repr(agent).lower()
    plain = Wallet(KEY)
    assert plain.owner is None and plain.account == ADDRESS
    monkeypatch.setenv("OBELISK_TEST_AGENT_KEY", KEY)
    assert Wallet.from_env("OBELISK_TEST_AGENT_KEY", owner=OWNER).account == agent.owner
    with pytest.raises(WalletError, match="not a 20-byte hex address"):
        Wallet(KEY, owner="0x1234")
