"""The hand-computed EIP-712 digest is the digest eth-account computes, for every action type.

eth-account (the reference client stack) encodes the same typed data, signs it and recovers
from it; the sequencer's digest, signature and recovery must agree with it both ways, over
hypothesis-generated field values covering each type's whole range.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seq_helpers import (
    ACTION_KINDS,
    DOMAIN,
    OWNER,
    action_strategy,
    address_of,
    quote_ladders,
    u16,
    u32,
    u64,
)

from rollbook._pure import is_compiled
from rollbook.execution.crypto import SECP256K1_N, keccak256
from rollbook.execution.txs import (
    CancelAll,
    Deposit,
    FundingTick,
    MassQuote,
    MoveIsolatedMargin,
    PlaceOrder,
    Quote,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    Withdraw,
)
from rollbook.sequencer import (
    MASS_QUOTE_QUOTES_MAX,
    AdmissionCode,
    AdmissionError,
    Eip712Domain,
    RegisterAgent,
    SignedTransaction,
    recover_signer,
    sign_action,
    signing_digest,
    typed_data,
)
from rollbook.sequencer.eip712 import USER_ACTION_TYPES, type_string

private_keys = st.integers(1, SECP256K1_N - 1).map(lambda n: n.to_bytes(32, "big"))
chain_ids = st.integers(1, (1 << 256) - 1)
contracts = st.binary(min_size=20, max_size=20)


def eip191_digest(signable: SignableMessage) -> bytes:
    return keccak256(b"\x19" + bytes(signable.version) + signable.header + signable.body)


def test_every_user_action_has_a_type() -> None:
    assert set(ACTION_KINDS) == set(USER_ACTION_TYPES)


@pytest.mark.parametrize("kind", ACTION_KINDS, ids=lambda kind: kind.__name__)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), key=private_keys, nonce_ms=u64, chain_id=chain_ids, contract=contracts)
def test_digest_signature_and_recovery_match_eth_account(
        kind: type, data: st.DataObject, key: bytes, nonce_ms: int, chain_id: int,
        contract: bytes) -> None:
    action = data.draw(action_strategy(kind))
    domain = Eip712Domain(chain_id, contract)
    signable = encode_typed_data(full_message=typed_data(domain, action, nonce_ms))
    assert signable.header == domain.separator
    assert eip191_digest(signable) == signing_digest(domain, action, nonce_ms)

    address = address_of(key)
    # eth-account signs, the sequencer recovers
    theirs = Account.sign_message(signable, private_key=key).signature
    assert recover_signer(domain, SignedTransaction(action, nonce_ms, bytes(theirs))).signer \
        == address
    # the sequencer signs, eth-account recovers
    ours = sign_action(key, domain, action, nonce_ms)
    recovered = Account.recover_message(signable, signature=ours.signature)
    assert bytes.fromhex(recovered[2:]) == address


def test_type_strings_are_pinned() -> None:
    # wallets and SDKs sign these exact strings: changing one is a protocol change
    expected = {
        "PlaceOrder": "PlaceOrder(address owner,uint16 subaccount,uint16 marketId,uint8 side,"
                      "uint64 priceTicks,uint64 sizeLots,uint8 orderType,uint8 timeInForce,"
                      "bool reduceOnly,uint64 clientOrderId,uint8 selfTradePrevention,"
                      "uint64 nonce)",
        "CancelOrder": "CancelOrder(address owner,uint16 subaccount,uint64 orderId,uint64 nonce)",
        "CancelOrderByClientId": "CancelOrderByClientId(address owner,uint16 subaccount,"
                                 "uint64 clientOrderId,uint64 nonce)",
        "CancelAll": "CancelAll(address owner,uint16 subaccount,uint16 marketId,uint64 nonce)",
        "ModifyOrder": "ModifyOrder(address owner,uint16 subaccount,uint64 orderId,"
                       "uint64 priceTicks,uint64 sizeLots,uint64 nonce)",
        "Withdraw": "Withdraw(address owner,uint16 subaccount,uint64 amountQuantums,"
                    "uint64 nonce)",
        "Transfer": "Transfer(address owner,uint16 subaccount,address toOwner,"
                    "uint16 toSubaccount,uint64 amountQuantums,uint64 nonce)",
        "SetMarginMode": "SetMarginMode(address owner,uint16 subaccount,uint16 marketId,"
                         "bool isolated,uint64 nonce)",
        "MoveIsolatedMargin": "MoveIsolatedMargin(address owner,uint16 subaccount,"
                              "uint16 marketId,int64 amountQuantums,uint64 nonce)",
        "RegisterAgent": "RegisterAgent(address owner,bool allSubaccounts,uint16 subaccount,"
                         "address agent,uint64 expiryMs,uint64 nonce)",
        "RevokeAgent": "RevokeAgent(address owner,address agent,uint64 nonce)",
        "SetPortfolioMargin": "SetPortfolioMargin(address owner,uint16 subaccount,bool enabled,"
                              "uint64 nonce)",
        "SetMmp": "SetMmp(address owner,uint16 subaccount,uint32 indexId,uint32 windowMs,"
                  "uint32 frozenMs,uint64 quantityLimitNanounits,uint64 deltaLimitNanounits,"
                  "uint64 vegaLimitQuantums,uint64 nonce)",
        "MassQuote": "MassQuote(address owner,uint16 subaccount,uint32 indexId,Quote[] quotes,"
                     "uint64 nonce)Quote(uint16 marketId,uint8 side,uint64 priceTicks,"
                     "uint64 sizeLots)",
    }
    assert {kind.__name__: type_string(kind) for kind in ACTION_KINDS} == expected


def test_golden_digest() -> None:
    action = PlaceOrder(OWNER, 1, 2, Side.SELL, 1_000_000, 7, client_order_id=42)
    assert signing_digest(DOMAIN, action, 1_700_000_000_000).hex() == (
        "b43e53eefd074377799f4c266ab03967fc963cc827663d719c35d796cf51c3f7")


def test_domain_binds_chain_and_contract() -> None:
    action = Withdraw(OWNER, 0, 10)
    digests = {signing_digest(domain, action, 1) for domain in (
        DOMAIN, Eip712Domain(DOMAIN.chain_id + 1, DOMAIN.verifying_contract),
        Eip712Domain(DOMAIN.chain_id, bytes(20)))}
    assert len(digests) == 3


def test_register_agent_scope_has_one_spelling() -> None:
    every = typed_data(DOMAIN, RegisterAgent(OWNER, b"\x01" * 20, 5, None), 1)["message"]
    one = typed_data(DOMAIN, RegisterAgent(OWNER, b"\x01" * 20, 5, 0), 1)["message"]
    assert (every["allSubaccounts"], every["subaccount"]) == (True, 0)
    assert (one["allSubaccounts"], one["subaccount"]) == (False, 0)


# Built in the test, not at collection. The ill-typed ones (``type: ignore``) are refused by
# signing_digest when interpreted; compiled (mypyc), their constructors or the first typed access
# raise TypeError instead (test_ill_typed_actions_raise_type_error_when_compiled).
_OUT_OF_RANGE: list[tuple[Callable[[], object], int]] = [
    (lambda: PlaceOrder(OWNER, 1 << 16, 1, Side.BUY, 1, 1), 1),  # subaccount beyond uint16
    (lambda: PlaceOrder(OWNER, 0, 1, Side.BUY, 1 << 64, 1), 1),  # price beyond uint64
    (lambda: PlaceOrder(OWNER, 0, 1, Side.BUY, -1, 1), 1),  # negative uint
    (lambda: PlaceOrder(OWNER[:19], 0, 1, Side.BUY, 1, 1), 1),  # short address
    (lambda: MoveIsolatedMargin(OWNER, 0, 1, 1 << 63), 1),  # beyond int64
    (lambda: CancelAll(OWNER, 0, 0), 1 << 64),  # nonce beyond uint64
    (lambda: RegisterAgent(OWNER, b"\x01" * 20, 1, 1 << 16), 1),
    (lambda: SetMmp(OWNER, 0, 1 << 32, 1, 1, 1, 1, 1), 1),  # index beyond uint32
    (lambda: SetMmp(OWNER, 0, 1, 1 << 32, 1, 1, 1, 1), 1),  # window beyond uint32
    (lambda: SetMmp(OWNER, 0, 1, 1, 1, 1, -1, 1), 1),  # negative limit
    (lambda: SetMmp(OWNER, 0, 1, 1, 1, 1, 1, 1 << 64), 1),  # vega limit beyond uint64
    (lambda: MassQuote(OWNER, 0, 1 << 32, ()), 1),
    (lambda: MassQuote(OWNER, 0, 1, (Quote(1 << 16, Side.BUY, 1, 1),)), 1),  # market beyond uint16
    (lambda: MassQuote(OWNER, 0, 1, (Quote(1, Side.BUY, 1 << 64, 1),)), 1),
    (lambda: MassQuote(OWNER, 0, 1, (Quote(1, Side.SELL, 1, -1),)), 1),
    (lambda: MassQuote(OWNER, 0, 1, (Quote(1, Side.BUY, 1, 1),) * (MASS_QUOTE_QUOTES_MAX + 1)), 1),
    # ill-typed, but the same in both builds: the tuple is typed, its items reach the sequencer
    (lambda: MassQuote(OWNER, 0, 1, ((1, Side.BUY, 1, 1),)), 1),  # type: ignore[arg-type]  # no Quote
]
_ILL_TYPED: list[tuple[Callable[[], object], int]] = [
    (lambda: PlaceOrder(OWNER, 0, 1, 3, 1, 1), 1),  # type: ignore[arg-type]  # not a Side
    (lambda: PlaceOrder(OWNER, 0, 1, Side.BUY, 1, 1, reduce_only=2), 1),  # type: ignore[arg-type]
    (lambda: SetMarginMode(OWNER, 0, 1, 1), 1),  # type: ignore[arg-type]  # int for a bool
    (lambda: SetPortfolioMargin(OWNER, 0, 1), 1),  # type: ignore[arg-type]  # int for a bool
    (lambda: MassQuote(OWNER, 0, 1, (Quote(1, 3, 1, 1),)), 1),  # type: ignore[arg-type]  # not a Side
    (lambda: MassQuote(OWNER, 0, 1, [Quote(1, Side.BUY, 1, 1)]), 1),  # type: ignore[arg-type]  # list
]


@pytest.mark.parametrize("make, nonce_ms", [
    *_OUT_OF_RANGE,
    *(pytest.param(make, nonce_ms, marks=pytest.mark.pure_only) for make, nonce_ms in _ILL_TYPED),
])
def test_out_of_range_fields_are_refused(make: Callable[[], object], nonce_ms: int) -> None:
    with pytest.raises(AdmissionError) as refused:
        signing_digest(DOMAIN, make(), nonce_ms)  # type: ignore[arg-type]
    assert refused.value.code == AdmissionCode.FIELD_OUT_OF_RANGE


@pytest.mark.skipif(not is_compiled(), reason="needs the mypyc-compiled build")
@pytest.mark.parametrize("make, nonce_ms", _ILL_TYPED)
def test_ill_typed_actions_raise_type_error_when_compiled(make: Callable[[], object],
                                                          nonce_ms: int) -> None:
    with pytest.raises(TypeError):
        signing_digest(DOMAIN, make(), nonce_ms)  # type: ignore[arg-type]


@pytest.mark.pure_only  # compiled, eip712 refuses the ill-typed argument with a TypeError
@pytest.mark.parametrize("action", [Deposit(1, OWNER, 0, 5), FundingTick()])
def test_unsignable_transactions_are_refused(action: object) -> None:
    with pytest.raises(AdmissionError) as refused:
        signing_digest(DOMAIN, action, 1)  # type: ignore[arg-type]
    assert refused.value.code == AdmissionCode.UNSUPPORTED_ACTION


def test_domain_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        Eip712Domain(0, bytes(20))
    with pytest.raises(ValueError):
        Eip712Domain(1, bytes(19))


# --- MassQuote: an array of structs ---------------------------------------------------------------

_QUOTE_TYPE = b"Quote(uint16 marketId,uint8 side,uint64 priceTicks,uint64 sizeLots)"


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@settings(max_examples=60, deadline=None)
@given(owner=st.binary(min_size=20, max_size=20), subaccount=u16, index_id=u32,
       quotes=quote_ladders(), nonce_ms=u64)
def test_mass_quote_digest_is_eip712_over_the_quote_array(
        owner: bytes, subaccount: int, index_id: int, quotes: tuple[Quote, ...],
        nonce_ms: int) -> None:
    action = MassQuote(owner, subaccount, index_id, quotes)
    # written out from the EIP-712 rules, independently of the implementation
    element_hashes = b"".join(
        keccak256(keccak256(_QUOTE_TYPE) + _word(q.market_id) + _word(q.side)
                  + _word(q.price_ticks) + _word(q.size_lots)) for q in quotes)
    primary = (b"MassQuote(address owner,uint16 subaccount,uint32 indexId,Quote[] quotes,"
               b"uint64 nonce)" + _QUOTE_TYPE)
    struct_hash = keccak256(keccak256(primary) + bytes(12) + owner + _word(subaccount)
                            + _word(index_id) + keccak256(element_hashes) + _word(nonce_ms))
    assert signing_digest(DOMAIN, action, nonce_ms) == keccak256(
        b"\x19\x01" + DOMAIN.separator + struct_hash)
    signable = encode_typed_data(full_message=typed_data(DOMAIN, action, nonce_ms))
    assert eip191_digest(signable) == signing_digest(DOMAIN, action, nonce_ms)
    message = typed_data(DOMAIN, action, nonce_ms)["message"]
    assert len(message["quotes"]) == len(quotes)


@pytest.mark.parametrize("count", [0, 1, 2, MASS_QUOTE_QUOTES_MAX])
def test_mass_quote_sizes_sign_and_recover(count: int) -> None:
    key = (0xC0FFEE).to_bytes(32, "big")
    quotes = tuple(Quote(2 + i % 3, Side(1 + i % 2), 1_000 + i, 1 + i) for i in range(count))
    action = MassQuote(address_of(key), 0, 1, quotes)
    signable = encode_typed_data(full_message=typed_data(DOMAIN, action, 5))
    theirs = Account.sign_message(signable, private_key=key).signature
    assert recover_signer(DOMAIN, SignedTransaction(action, 5, bytes(theirs))).signer \
        == address_of(key)


def test_quote_order_and_content_change_the_digest() -> None:
    a, b = Quote(1, Side.BUY, 10, 1), Quote(1, Side.SELL, 11, 1)
    digests = {signing_digest(DOMAIN, MassQuote(OWNER, 0, 1, quotes), 1)
               for quotes in [(), (a,), (b,), (a, b), (b, a), (a, a)]}
    assert len(digests) == 6
