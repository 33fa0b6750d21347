"""Admission rules: who may sign what (owner, agents), and the per-signer nonce window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from seq_helpers import (
    AGENT,
    AGENT_KEY,
    CHAIN_ID,
    CONTRACT,
    DAY_MS,
    OTHER,
    OTHER_KEY,
    OWNER,
    OWNER_KEY,
    T0_MS,
    place,
    signed,
    unsigned,
)

from rollbook.execution.txs import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    Quote,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    Transfer,
    Withdraw,
)
from rollbook.sequencer import (
    AGENTS_PER_OWNER_MAX,
    NONCE_FUTURE_WINDOW_MS,
    NONCE_PAST_WINDOW_MS,
    NONCES_KEPT_PER_SIGNER,
    AdmissionCode,
    AdmissionError,
    AdmissionState,
    AgentGrant,
    Eip712Domain,
    RegisterAgent,
    RevokeAgent,
    UserAction,
    VerifiedTransaction,
)
from rollbook.sequencer.admission import AGENT_LIFETIME_MS_MAX

T = T0_MS


def refused(state: AdmissionState, verified: VerifiedTransaction,
            batch_timestamp_ms: int = T) -> AdmissionCode:
    before = state.snapshot()
    with pytest.raises(AdmissionError) as error:
        state.admit(verified, batch_timestamp_ms)
    assert state.snapshot() == before, "a refusal changes nothing"
    return error.value.code


@pytest.fixture
def state() -> AdmissionState:
    return AdmissionState()


# --- domain binding -------------------------------------------------------------------------------

@pytest.mark.parametrize("domain", [Eip712Domain(CHAIN_ID + 1, CONTRACT),
                                    Eip712Domain(CHAIN_ID, bytes.fromhex("11" * 20))],
                         ids=["wrong-chain-id", "wrong-contract"])
def test_signature_for_another_domain_is_refused(state: AdmissionState,
                                                 domain: Eip712Domain) -> None:
    # it recovers, but to an unrelated address: nobody the owner authorised
    verified = signed(OWNER_KEY, place(), T, domain=domain)
    assert verified.signer != OWNER
    assert refused(state, verified) == AdmissionCode.SIGNER_NOT_AUTHORISED
    state.admit(signed(OWNER_KEY, place(), T), T)


def test_someone_else_cannot_act_for_the_owner(state: AdmissionState) -> None:
    assert refused(state, signed(OTHER_KEY, place(), T)) == AdmissionCode.SIGNER_NOT_AUTHORISED
    assert refused(state, signed(OTHER_KEY, Withdraw(OWNER, 0, 5), T)) \
        == AdmissionCode.SIGNER_NOT_AUTHORISED


# --- nonces ---------------------------------------------------------------------------------------

def test_replay_is_refused(state: AdmissionState) -> None:
    state.admit(signed(OWNER_KEY, place(), T), T)
    assert refused(state, signed(OWNER_KEY, place(), T)) == AdmissionCode.NONCE_USED
    # a different action with the same nonce is refused too: the nonce is marked, not the message
    assert refused(state, signed(OWNER_KEY, CancelAll(OWNER, 0), T)) == AdmissionCode.NONCE_USED


def test_time_window_bounds_are_open(state: AdmissionState) -> None:
    oldest_ok = T - NONCE_PAST_WINDOW_MS + 1
    newest_ok = T + NONCE_FUTURE_WINDOW_MS - 1
    assert refused(state, unsigned(OWNER, place(), oldest_ok - 1)) == AdmissionCode.NONCE_TOO_OLD
    assert refused(state, unsigned(OWNER, place(), 0)) == AdmissionCode.NONCE_TOO_OLD
    assert refused(state, unsigned(OWNER, place(), newest_ok + 1)) \
        == AdmissionCode.NONCE_TOO_FAR_AHEAD
    assert refused(state, unsigned(OWNER, place(), (1 << 64) - 1)) \
        == AdmissionCode.NONCE_TOO_FAR_AHEAD
    state.admit(unsigned(OWNER, place(), oldest_ok), T)
    state.admit(unsigned(OWNER, place(), newest_ok), T)


def test_a_nonce_ages_out_with_batch_time(state: AdmissionState) -> None:
    state.admit(unsigned(OWNER, place(), T), T)
    later = T + NONCE_PAST_WINDOW_MS
    assert refused(state, unsigned(OWNER, place(), T + 1), later + 1) == AdmissionCode.NONCE_TOO_OLD
    state.admit(unsigned(OWNER, place(), T + 1), later)


def test_window_not_full_accepts_any_unused_nonce(state: AdmissionState) -> None:
    for nonce in (T + 50, T + 10, T + 30, T - 5):  # concurrent bots: out of order is fine
        state.admit(unsigned(OWNER, place(), nonce), T)
    assert state.nonces_of(OWNER) == (T - 5, T + 10, T + 30, T + 50)


def test_window_eviction_and_below_min(state: AdmissionState) -> None:
    for i in range(1, NONCES_KEPT_PER_SIGNER + 1):
        state.admit(unsigned(OWNER, place(), T + 10 * i), T)
    assert len(state.nonces_of(OWNER)) == NONCES_KEPT_PER_SIGNER
    # full: an unused nonce below the smallest kept one is refused
    assert refused(state, unsigned(OWNER, place(), T + 5)) == AdmissionCode.NONCE_BELOW_WINDOW
    # an unused nonce above it is accepted and evicts the smallest
    state.admit(unsigned(OWNER, place(), T + 15), T)
    assert state.nonces_of(OWNER)[0] == T + 15
    assert len(state.nonces_of(OWNER)) == NONCES_KEPT_PER_SIGNER
    # the evicted nonce can never come back: replaying its signature is refused
    assert refused(state, unsigned(OWNER, place(), T + 10)) == AdmissionCode.NONCE_BELOW_WINDOW
    assert refused(state, unsigned(OWNER, place(), T + 15)) == AdmissionCode.NONCE_USED
    assert refused(state, unsigned(OWNER, place(), T + 20)) == AdmissionCode.NONCE_USED
    state.admit(unsigned(OWNER, place(), T + 21), T)
    assert state.nonces_of(OWNER)[0] == T + 20


def test_windows_are_per_signer(state: AdmissionState) -> None:
    state.admit(signed(OWNER_KEY, RegisterAgent(OWNER, AGENT, T + DAY_MS), T), T)
    state.admit(signed(AGENT_KEY, place(), T), T)  # same nonce, other signer
    state.admit(signed(OTHER_KEY, place(OTHER), T), T)
    assert state.nonces_of(AGENT) == (T,)


def test_batch_time_cannot_go_back(state: AdmissionState) -> None:
    state.admit(unsigned(OWNER, place(), T), T)
    with pytest.raises(ValueError, match="went back"):
        state.admit(unsigned(OWNER, place(), T + 1), T - 1)
    with pytest.raises(ValueError, match="went back"):
        state.advance_to(T - 1)


def test_check_changes_nothing(state: AdmissionState) -> None:
    before = state.snapshot()
    state.check(unsigned(OWNER, place(), T), T)
    assert state.snapshot() == before


# --- agents ---------------------------------------------------------------------------------------

AGENT_TRADES: list[UserAction] = [
    place(), CancelOrder(OWNER, 0, 1), CancelOrderByClientId(OWNER, 0, 7), CancelAll(OWNER, 0),
    ModifyOrder(OWNER, 0, 1, 1_000_000, 3), SetMarginMode(OWNER, 0, 1, True),
    MoveIsolatedMargin(OWNER, 0, 1, -5), SetMmp(OWNER, 0, 1, 1_000, 5_000, 10**9, 0, 0),
    MassQuote(OWNER, 0, 1, (Quote(2, Side.BUY, 100, 1), Quote(2, Side.SELL, 120, 1))),
    MassQuote(OWNER, 0, 1, ()),
]
OWNER_ONLY: list[UserAction] = [
    Withdraw(OWNER, 0, 5), Transfer(OWNER, 0, OTHER, 0, 5),
    RegisterAgent(OWNER, OTHER, T + DAY_MS), RevokeAgent(OWNER, AGENT),
    SetPortfolioMargin(OWNER, 0, True),  # the margin regime is the owner's risk decision
]


def with_agent(state: AdmissionState, expiry_ms: int = T + DAY_MS,
               subaccount: int | None = None) -> None:
    state.admit(signed(OWNER_KEY, RegisterAgent(OWNER, AGENT, expiry_ms, subaccount), T), T)


def test_agent_may_trade_for_its_owner(state: AdmissionState) -> None:
    with_agent(state)
    for i, action in enumerate(AGENT_TRADES):
        state.admit(signed(AGENT_KEY, action, T + i), T)


@pytest.mark.parametrize("action", OWNER_ONLY, ids=lambda a: type(a).__name__)
def test_agent_may_not_move_money_or_manage_agents(state: AdmissionState,
                                                   action: UserAction) -> None:
    with_agent(state)
    assert refused(state, signed(AGENT_KEY, action, T + 1)) == AdmissionCode.AGENT_NOT_PERMITTED
    state.admit(signed(OWNER_KEY, action, T + 1), T)  # the owner may


def test_agent_of_one_owner_cannot_act_for_another(state: AdmissionState) -> None:
    with_agent(state)
    assert refused(state, signed(AGENT_KEY, place(OTHER), T + 1)) \
        == AdmissionCode.SIGNER_NOT_AUTHORISED


def test_expired_agent_is_refused(state: AdmissionState) -> None:
    with_agent(state, expiry_ms=T + 1_000)
    state.admit(signed(AGENT_KEY, place(), T + 1), T + 999)
    assert refused(state, signed(AGENT_KEY, place(), T + 2), T + 1_000) \
        == AdmissionCode.AGENT_EXPIRED


def test_revoked_agent_is_refused_and_its_old_signatures_stay_dead(
        state: AdmissionState) -> None:
    with_agent(state)
    old = signed(AGENT_KEY, place(), T + 1)
    state.admit(old, T)
    state.admit(signed(OWNER_KEY, RevokeAgent(OWNER, AGENT), T + 1), T)
    assert state.agents_of(OWNER) == {}
    assert refused(state, signed(AGENT_KEY, place(), T + 2)) \
        == AdmissionCode.SIGNER_NOT_AUTHORISED
    # registering the agent again does not reopen the signatures it made before
    state.admit(signed(OWNER_KEY, RegisterAgent(OWNER, AGENT, T + DAY_MS), T + 2), T)
    assert refused(state, old) == AdmissionCode.NONCE_USED
    state.admit(signed(OWNER_KEY, RevokeAgent(OWNER, OTHER), T + 3), T)  # idempotent


def test_agent_scoped_to_one_subaccount(state: AdmissionState) -> None:
    with_agent(state, subaccount=3)
    state.admit(signed(AGENT_KEY, place(subaccount=3), T + 1), T)
    assert refused(state, signed(AGENT_KEY, place(subaccount=4), T + 2)) \
        == AdmissionCode.AGENT_SUBACCOUNT_NOT_PERMITTED


def test_registration_rules(state: AdmissionState) -> None:
    def register(agent: bytes, expiry_ms: int) -> VerifiedTransaction:
        return unsigned(OWNER, RegisterAgent(OWNER, agent, expiry_ms), T + expiry_ms % 997)

    for agent, expiry_ms in [(OWNER, T + 1), (bytes(20), T + 1), (AGENT, T),
                             (AGENT, T + AGENT_LIFETIME_MS_MAX + 1)]:
        assert refused(state, register(agent, expiry_ms)) \
            == AdmissionCode.AGENT_REGISTRATION_INVALID
    state.admit(register(AGENT, T + AGENT_LIFETIME_MS_MAX), T)
    # someone else cannot register an agent for the owner
    assert refused(state, signed(OTHER_KEY, RegisterAgent(OWNER, OTHER, T + 5), T)) \
        == AdmissionCode.SIGNER_NOT_AUTHORISED


def test_agents_limit_counts_live_agents(state: AdmissionState) -> None:
    agents = [bytes([0xA0, i]) * 10 for i in range(AGENTS_PER_OWNER_MAX + 1)]
    for i, agent in enumerate(agents[:-1]):
        expiry_ms = T + 10 if i == 0 else T + DAY_MS
        state.admit(unsigned(OWNER, RegisterAgent(OWNER, agent, expiry_ms), T + i), T)
    last = unsigned(OWNER, RegisterAgent(OWNER, agents[-1], T + DAY_MS), T + 100)
    assert refused(state, last) == AdmissionCode.AGENTS_LIMIT
    # re-registering an agent replaces it
    state.admit(unsigned(OWNER, RegisterAgent(OWNER, agents[1], T + 2 * DAY_MS, 4), T + 101), T)
    assert state.agents_of(OWNER)[agents[1]] == AgentGrant(T + 2 * DAY_MS, 4)
    # once the first one expired there is room, and the expired grant is dropped
    state.admit(last, T + 10)
    assert agents[0] not in state.agents_of(OWNER)
    assert len(state.agents_of(OWNER)) == AGENTS_PER_OWNER_MAX


# --- pruning and snapshots ------------------------------------------------------------------------

def test_prune_forgets_only_signers_that_cannot_matter(state: AdmissionState) -> None:
    state.admit(unsigned(OWNER, place(), T), T)
    state.admit(unsigned(OTHER, place(OTHER), T + 5), T)
    state.advance_to(T + NONCE_PAST_WINDOW_MS)
    assert state.prune_idle_signers() == 1
    assert state.nonces_of(OWNER) == () and state.nonces_of(OTHER) == (T + 5,)
    # the forgotten nonce is still refused, by the time window
    assert refused(state, unsigned(OWNER, place(), T), T + NONCE_PAST_WINDOW_MS) \
        == AdmissionCode.NONCE_TOO_OLD


def test_snapshot_is_plain_data_and_restores(state: AdmissionState) -> None:
    with_agent(state, subaccount=2)
    state.admit(signed(OWNER_KEY, RegisterAgent(OWNER, OTHER, T + 7 * DAY_MS), T + 1), T)
    for i in range(NONCES_KEPT_PER_SIGNER + 5):
        state.admit(unsigned(AGENT, place(subaccount=2), T + i), T + 1)
    snapshot = state.snapshot()
    restored = AdmissionState.restore(json.loads(json.dumps(snapshot)))
    assert restored.snapshot() == snapshot
    probe = unsigned(AGENT, place(subaccount=2), T + 2)
    assert refused(restored, probe, T + 1) == refused(state, probe, T + 1) \
        == AdmissionCode.NONCE_BELOW_WINDOW


@pytest.mark.parametrize("damage", [
    lambda s: s.update(version=2),
    lambda s: s.update(batch_timestamp_ms=-1),
    lambda s: s["nonces"][0].update(nonces_ms=[3, 2]),
    lambda s: s["nonces"][0].update(nonces_ms=list(range(NONCES_KEPT_PER_SIGNER + 1))),
    lambda s: s["nonces"][0].update(nonces_ms=[]),
    lambda s: s["nonces"][0].update(signer="00"),
    lambda s: s["nonces"].append(dict(s["nonces"][0])),
    lambda s: s["agents"][0].update(subaccount=1 << 16),
    lambda s: s["agents"].append(dict(s["agents"][0])),
])
def test_restore_refuses_what_no_snapshot_holds(state: AdmissionState, damage: object) -> None:
    with_agent(state)
    snapshot = json.loads(json.dumps(state.snapshot()))
    damage(snapshot)  # type: ignore[operator]
    with pytest.raises(ValueError):
        AdmissionState.restore(snapshot)


def test_replay_is_identical_across_hash_seeds() -> None:
    # the verifier replays admission on other machines: no decision may depend on hashing
    helpers = Path(__file__).parent
    script = f"import sys; sys.path.insert(0, {str(helpers)!r}); " \
             "from seq_helpers import replay_digest; print(replay_digest(7))"
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("0", "1", "4242")}
    assert len(digests) == 1 and len(digests.pop().strip()) == 64
