"""Stateful property test of admission: a reference model, snapshot/restore and pruning agree.

A hypothesis ``RuleBasedStateMachine`` drives three owners and three agent keys through orders,
cancels, withdrawals, transfers, agent registrations and revocations, with nonces drawn around
every boundary (time window edges, replays, the window's smallest kept nonce) and batch time
moving on by milliseconds to days. Four states see the same stream:

- ``subject``: the state under test;
- ``twin``: restored from a JSON round trip of ``subject.snapshot()`` whenever the machine
  chooses; its snapshot must always equal the subject's, and so must its decisions;
- ``pruned``: calls ``prune_idle_signers`` whenever the machine chooses; its decisions must equal
  the subject's (pruning is decision-preserving);
- ``Reference``: a naive re-statement of the rules (it keeps *every* admitted nonce), whose
  decision codes must match, and which checks that no nonce is ever admitted twice per signer.

Signatures are out of scope here (``test_signed_transactions``): transactions carry their
signer directly, which is what admission receives after recovery.
"""

from __future__ import annotations

import json
from bisect import bisect_left, insort
from collections import Counter
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from seq_helpers import DAY_MS, T0_MS, place, unsigned

from rollbook.execution.txs import CancelOrder, Transfer, Withdraw
from rollbook.sequencer import (
    AGENT_PERMITTED_ACTIONS,
    AGENTS_PER_OWNER_MAX,
    NONCE_FUTURE_WINDOW_MS,
    NONCE_PAST_WINDOW_MS,
    NONCES_KEPT_PER_SIGNER,
    AdmissionCode,
    AdmissionError,
    AdmissionState,
    RegisterAgent,
    RevokeAgent,
    UserAction,
)
from rollbook.sequencer.admission import AGENT_LIFETIME_MS_MAX

OWNERS = [bytes([0x10 + i]) * 20 for i in range(3)]
AGENTS = [bytes([0xA0 + i]) * 20 for i in range(3)]
SIGNERS = OWNERS + AGENTS
ZERO = bytes(20)


class Reference:
    """The admission rules stated as plainly as possible."""

    def __init__(self) -> None:
        self.admitted: dict[bytes, list[int]] = {}  # every nonce ever admitted, sorted
        self.grants: dict[bytes, dict[bytes, tuple[int, int | None]]] = {}

    def kept(self, signer: bytes) -> list[int]:
        return self.admitted.get(signer, [])[-NONCES_KEPT_PER_SIGNER:]

    def decide(self, signer: bytes, action: UserAction, nonce_ms: int,
               t_ms: int) -> AdmissionCode | None:
        owner = action.owner
        if signer != owner:
            grant = self.grants.get(owner, {}).get(signer)
            if grant is None:
                return AdmissionCode.SIGNER_NOT_AUTHORISED
            if not isinstance(action, AGENT_PERMITTED_ACTIONS):
                return AdmissionCode.AGENT_NOT_PERMITTED
            if t_ms >= grant[0]:
                return AdmissionCode.AGENT_EXPIRED
            if grant[1] is not None and grant[1] != action.subaccount:
                return AdmissionCode.AGENT_SUBACCOUNT_NOT_PERMITTED
        if not t_ms - NONCE_PAST_WINDOW_MS < nonce_ms:
            return AdmissionCode.NONCE_TOO_OLD
        if not nonce_ms < t_ms + NONCE_FUTURE_WINDOW_MS:
            return AdmissionCode.NONCE_TOO_FAR_AHEAD
        kept = self.kept(signer)
        if nonce_ms in kept:
            return AdmissionCode.NONCE_USED
        if len(kept) == NONCES_KEPT_PER_SIGNER and nonce_ms < kept[0]:
            return AdmissionCode.NONCE_BELOW_WINDOW
        everything = self.admitted.get(signer, [])
        i = bisect_left(everything, nonce_ms)
        assert i == len(everything) or everything[i] != nonce_ms, "a replay would pass"
        if isinstance(action, RegisterAgent):
            if action.agent in (owner, ZERO):
                return AdmissionCode.AGENT_REGISTRATION_INVALID
            if not t_ms < action.expiry_ms <= t_ms + AGENT_LIFETIME_MS_MAX:
                return AdmissionCode.AGENT_REGISTRATION_INVALID
            live = [a for a, (expiry, _) in self.grants.get(owner, {}).items()
                    if t_ms < expiry and a != action.agent]
            if len(live) >= AGENTS_PER_OWNER_MAX:
                return AdmissionCode.AGENTS_LIMIT
        return None

    def apply(self, signer: bytes, action: UserAction, nonce_ms: int, t_ms: int) -> None:
        insort(self.admitted.setdefault(signer, []), nonce_ms)
        if isinstance(action, RegisterAgent):
            grants = {a: g for a, g in self.grants.get(action.owner, {}).items() if t_ms < g[0]}
            grants[action.agent] = (action.expiry_ms, action.subaccount)
            self.grants[action.owner] = grants
        elif isinstance(action, RevokeAgent):
            self.grants.get(action.owner, {}).pop(action.agent, None)


class AdmissionMachine(RuleBasedStateMachine):
    outcomes: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.subject = AdmissionState()
        self.twin = AdmissionState()
        self.pruned = AdmissionState()
        self.reference = Reference()
        self.t_ms = T0_MS

    def _submit(self, signer: bytes, action: UserAction, nonce_ms: int) -> None:
        verified = unsigned(signer, action, nonce_ms)
        codes: list[AdmissionCode | None] = []
        for state in (self.subject, self.twin, self.pruned):
            try:
                state.admit(verified, self.t_ms)
                codes.append(None)
            except AdmissionError as refused:
                codes.append(refused.code)
        expected = self.reference.decide(signer, action, nonce_ms, self.t_ms)
        assert codes == [expected] * 3, (codes, expected)
        if expected is None:
            self.reference.apply(signer, action, nonce_ms, self.t_ms)
        self.outcomes[expected.name if expected else "ADMITTED"] += 1

    @rule(step_ms=st.sampled_from([0, 1, 999, 1_000, DAY_MS, NONCE_PAST_WINDOW_MS + 1]))
    def advance(self, step_ms: int) -> None:
        self.t_ms += step_ms
        for state in (self.subject, self.twin, self.pruned):
            state.advance_to(self.t_ms)

    def _nonce(self, data: st.DataObject, signer: bytes) -> int:
        t = self.t_ms
        kept = self.subject.nonces_of(signer)
        candidates = [t, t + 1, t - 1, t - NONCE_PAST_WINDOW_MS, t - NONCE_PAST_WINDOW_MS + 1,
                      t + NONCE_FUTURE_WINDOW_MS - 1, t + NONCE_FUTURE_WINDOW_MS]
        if kept:
            candidates += [kept[0] - 1, kept[0], kept[0] + 1, kept[-1], kept[-1] + 1]
        used = self.reference.admitted.get(signer, [])
        if used:
            candidates.append(data.draw(st.sampled_from(used)))  # a replay, maybe evicted
        return data.draw(st.sampled_from(candidates) | st.integers(t - 5, t + 5))

    @rule(data=st.data(), owner=st.sampled_from(OWNERS),
          kind=st.sampled_from(["place", "cancel", "withdraw", "transfer"]),
          subaccount=st.integers(0, 1))
    def trade(self, data: st.DataObject, owner: bytes, kind: str, subaccount: int) -> None:
        # mostly the owner or one of its agents: random signers stop at authorisation
        registered = list(self.reference.grants.get(owner, {}))
        signer = data.draw(st.sampled_from([owner, *registered * 3, *AGENTS, OWNERS[0]]))
        actions: dict[str, UserAction] = {
            "place": place(owner, subaccount),
            "cancel": CancelOrder(owner, subaccount, 1),
            "withdraw": Withdraw(owner, subaccount, 5),
            "transfer": Transfer(owner, subaccount, OWNERS[0], 1, 5),
        }
        action = actions[kind]
        self._submit(signer, action, self._nonce(data, signer))

    @rule(data=st.data(), owner=st.sampled_from(OWNERS),
          agent=st.sampled_from([*AGENTS, OWNERS[1], ZERO]),
          expiry_ms=st.sampled_from([0, 1, 1_000, DAY_MS, AGENT_LIFETIME_MS_MAX,
                                     AGENT_LIFETIME_MS_MAX + 1]),
          subaccount=st.none() | st.integers(0, 1))
    def register(self, data: st.DataObject, owner: bytes, agent: bytes, expiry_ms: int,
                 subaccount: int | None) -> None:
        signer = data.draw(st.sampled_from([owner, owner, owner, *SIGNERS]))
        action = RegisterAgent(owner, agent, self.t_ms + expiry_ms, subaccount)
        self._submit(signer, action, self._nonce(data, signer))

    @rule(data=st.data(), owner=st.sampled_from(OWNERS), agent=st.sampled_from(AGENTS))
    def revoke(self, data: st.DataObject, owner: bytes, agent: bytes) -> None:
        self._submit(owner, RevokeAgent(owner, agent), self._nonce(data, owner))

    @rule(signer=st.sampled_from(OWNERS), count=st.integers(1, NONCES_KEPT_PER_SIGNER))
    def burst(self, signer: bytes, count: int) -> None:
        """Many fresh nonces at once, so that windows fill and evict."""
        kept = self.subject.nonces_of(signer)
        start = max(kept[-1] + 1 if kept else self.t_ms, self.t_ms - DAY_MS)
        for nonce_ms in range(start, start + 2 * count, 2):  # gaps leave unused nonces inside
            self._submit(signer, place(signer), nonce_ms)
        kept = self.subject.nonces_of(signer)
        self._submit(signer, place(signer), kept[0] - 1)  # below a window that may be full

    @rule()
    def snapshot_and_restore(self) -> None:
        self.twin = AdmissionState.restore(json.loads(json.dumps(self.subject.snapshot())))

    @rule()
    def prune(self) -> None:
        self.pruned.prune_idle_signers()

    @invariant()
    def twin_matches(self) -> None:
        assert self.twin.snapshot() == self.subject.snapshot()

    @invariant()
    def limits_hold(self) -> None:
        snapshot = self.subject.snapshot()
        for entry in snapshot["nonces"]:
            kept = entry["nonces_ms"]
            assert 0 < len(kept) <= NONCES_KEPT_PER_SIGNER and kept == sorted(set(kept))
        owners = Counter(entry["owner"] for entry in snapshot["agents"])
        assert all(count <= AGENTS_PER_OWNER_MAX for count in owners.values())


def test_admission_machine() -> None:
    AdmissionMachine.outcomes.clear()
    run_state_machine_as_test(AdmissionMachine, settings=settings(
        max_examples=80, stateful_step_count=50, deadline=None))
    outcomes = AdmissionMachine.outcomes
    # the runs reached admissions and the common refusals (the rarer agent refusals, expiry and
    # subaccount scope, are reached too but not on every seed; test_admission pins them)
    for code in ("ADMITTED", "NONCE_USED", "NONCE_BELOW_WINDOW", "NONCE_TOO_OLD",
                 "NONCE_TOO_FAR_AHEAD", "SIGNER_NOT_AUTHORISED", "AGENT_NOT_PERMITTED",
                 "AGENT_REGISTRATION_INVALID"):
        assert outcomes[code] > 0, (code, outcomes)
