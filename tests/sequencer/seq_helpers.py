"""Shared fixtures of the sequencer tests: a domain, keys, and hypothesis strategies per action.

(A module with its own name rather than a second ``conftest.py``: the suite imports the root
conftest as ``conftest``.)
"""

from __future__ import annotations

import coincurve
from hypothesis import strategies as st

from rollbook.execution.crypto import address_of_public_key
from rollbook.execution.txs import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    OrderType,
    PlaceOrder,
    Quote,
    SelfTradePrevention,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    TimeInForce,
    Transfer,
    Withdraw,
)
from rollbook.sequencer import (
    MASS_QUOTE_QUOTES_MAX,
    Eip712Domain,
    RegisterAgent,
    RevokeAgent,
    UserAction,
    VerifiedTransaction,
    recover_signer,
    sign_action,
)
from rollbook.sequencer.signatures import SignedTransaction

CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5e771e0000000000000000000000000000c0ffee")
DOMAIN = Eip712Domain(CHAIN_ID, CONTRACT)
T0_MS = 1_700_000_000_000  # a batch time in November 2023
DAY_MS = 86_400_000


def private_key(n: int) -> bytes:
    return n.to_bytes(32, "big")


def address_of(key: bytes) -> bytes:
    return address_of_public_key(coincurve.PrivateKey(key).public_key.format(compressed=False))


OWNER_KEY = private_key(0xA11CE)
AGENT_KEY = private_key(0xA6E17)
OTHER_KEY = private_key(0xB0B)
OWNER = address_of(OWNER_KEY)
AGENT = address_of(AGENT_KEY)
OTHER = address_of(OTHER_KEY)


def signed(key: bytes, action: UserAction, nonce_ms: int,
           domain: Eip712Domain = DOMAIN) -> VerifiedTransaction:
    """Sign with ``key`` in ``domain`` and recover in the venue's ``DOMAIN``."""
    return recover_signer(DOMAIN, sign_action(key, domain, action, nonce_ms))


def unsigned(signer: bytes, action: UserAction, nonce_ms: int) -> VerifiedTransaction:
    """A verified transaction without the ECDSA cost (admission trusts ``signer``)."""
    return VerifiedTransaction(SignedTransaction(action, nonce_ms, bytes(65)), signer)


def place(owner: bytes = OWNER, subaccount: int = 0) -> PlaceOrder:
    return PlaceOrder(owner, subaccount, 1, Side.BUY, 1_000_000, 5)


# --- strategies: every field over its whole signed range --------------------------------------

addresses = st.binary(min_size=20, max_size=20)
u16 = st.integers(0, 0xFFFF)
u64 = st.integers(0, (1 << 64) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
u32 = st.integers(0, (1 << 32) - 1)
quotes = st.builds(Quote, u16, st.sampled_from(Side), u64, u64)


def quote_ladders(max_size: int = MASS_QUOTE_QUOTES_MAX) -> st.SearchStrategy[tuple[Quote, ...]]:
    """0..max_size quotes (the empty ladder pulls every quote)."""
    return st.lists(quotes, max_size=max_size).map(tuple)


def action_strategy(kind: type) -> st.SearchStrategy[UserAction]:
    strategies: dict[type, st.SearchStrategy[UserAction]] = {
        PlaceOrder: st.builds(PlaceOrder, addresses, u16, u16, st.sampled_from(Side), u64, u64,
                              st.sampled_from(OrderType), st.sampled_from(TimeInForce),
                              st.booleans(), u64, st.sampled_from(SelfTradePrevention)),
        CancelOrder: st.builds(CancelOrder, addresses, u16, u64),
        CancelOrderByClientId: st.builds(CancelOrderByClientId, addresses, u16, u64),
        CancelAll: st.builds(CancelAll, addresses, u16, u16),
        ModifyOrder: st.builds(ModifyOrder, addresses, u16, u64, u64, u64),
        Withdraw: st.builds(Withdraw, addresses, u16, u64),
        Transfer: st.builds(Transfer, addresses, u16, addresses, u16, u64),
        SetMarginMode: st.builds(SetMarginMode, addresses, u16, u16, st.booleans()),
        MoveIsolatedMargin: st.builds(MoveIsolatedMargin, addresses, u16, u16, i64),
        RegisterAgent: st.builds(RegisterAgent, addresses, addresses, u64, st.none() | u16),
        RevokeAgent: st.builds(RevokeAgent, addresses, addresses),
        SetPortfolioMargin: st.builds(SetPortfolioMargin, addresses, u16, st.booleans()),
        SetMmp: st.builds(SetMmp, addresses, u16, u32, u32, u32, u64, u64, u64),
        MassQuote: st.builds(MassQuote, addresses, u16, u32, quote_ladders()),
    }
    return strategies[kind]


ACTION_KINDS: tuple[type, ...] = (
    PlaceOrder, CancelOrder, CancelOrderByClientId, CancelAll, ModifyOrder, Withdraw, Transfer,
    SetMarginMode, MoveIsolatedMargin, RegisterAgent, RevokeAgent, SetPortfolioMargin, SetMmp,
    MassQuote,
)
any_action = st.one_of(*(action_strategy(kind) for kind in ACTION_KINDS))


def replay_digest(seed: int, steps: int = 3_000) -> str:
    """Admit a seeded stream of actions; the digest of every decision and the final snapshot.

    Run in processes with different ``PYTHONHASHSEED`` by the determinism test.
    """
    import hashlib
    import json
    import random

    from rollbook.sequencer import AdmissionError, AdmissionState

    rng = random.Random(seed)
    owners = [bytes([0x10 + i]) * 20 for i in range(5)]
    agents = [bytes([0xA0 + i]) * 20 for i in range(5)]
    state = AdmissionState()
    t_ms = T0_MS
    decisions = []
    for _ in range(steps):
        t_ms += rng.choice([0, 0, 1, 1_000, DAY_MS])
        owner = rng.choice(owners)
        signer = rng.choice([owner, owner, *agents])
        nonce_ms = t_ms + rng.randint(-3 * DAY_MS, 2 * DAY_MS) if rng.random() < 0.1 \
            else t_ms + rng.randint(-50, 50)
        action: UserAction
        if rng.random() < 0.2:
            action = RegisterAgent(owner, rng.choice(agents), t_ms + rng.randint(0, 3 * DAY_MS),
                                   rng.choice([None, 0, 1]))
        elif rng.random() < 0.05:
            action = RevokeAgent(owner, rng.choice(agents))
        else:
            action = place(owner, rng.randint(0, 1))
        try:
            state.admit(unsigned(signer, action, nonce_ms), t_ms)
            decisions.append(0)
        except AdmissionError as refused:
            decisions.append(int(refused.code))
    blob = json.dumps([decisions, state.snapshot()], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()
