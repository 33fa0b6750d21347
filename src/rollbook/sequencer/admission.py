"""Deterministic admission: who may sign what, and which nonces are still fresh.

``AdmissionState.admit(verified, batch_timestamp_ms)`` decides whether a signed action (its
signer already recovered, see ``signatures``) enters the batch being built, and records it. The
decision is a pure function of the sequence of admitted actions and their batch timestamps: no
wall clock, no randomness, no iteration whose order depends on hashing. The verifier replays the
same function over published batches; an action in a batch that it would refuse is fraud.

Authorisation. The recovered signer must be the action's ``owner``, or an agent the owner
registered (``RegisterAgent``) that is live (``batch_timestamp_ms < expiry_ms``), not revoked,
and scoped to the action's subaccount (or to all of them). Agents may sign only
``AGENT_PERMITTED_ACTIONS`` (orders, cancels, modifies, margin mode and isolated margin, which
keep collateral inside the owner's subaccount, and a market maker's option quoting: ``MassQuote``
and its protection ``SetMmp``, which a quoting bot must be able to reset after a trip);
``Withdraw``, ``Transfer``, ``RegisterAgent``, ``RevokeAgent`` and ``SetPortfolioMargin`` need
the owner's own key. ``SetPortfolioMargin`` changes the margin regime of the whole cross group
(how much leverage every position gets, and so how close the account is to liquidation): a
risk decision of the owner, not a trading action, so an agent key cannot flip it.

Nonces (Hyperliquid-style, one window per *signer*, agents included). A nonce is a millisecond
timestamp chosen by the signer. The ``NONCES_KEPT_PER_SIGNER`` highest admitted nonces are kept;
a new nonce must be unused, above the smallest kept one once the window is full, and inside
``(T - NONCE_PAST_WINDOW_MS, T + NONCE_FUTURE_WINDOW_MS)`` for batch time ``T`` (open bounds).
Concurrent clients therefore need no shared counter, and a signature can never be replayed:
its nonce is either still kept (``NONCE_USED``), evicted below the window
(``NONCE_BELOW_WINDOW``) or past the time window (``NONCE_TOO_OLD``). The nonce is marked, never
the signature, and an agent's nonces outlive its registration (re-registering an agent cannot
reopen its old signatures).

Invariants (asserted):
- batch timestamps never decrease (a decrease is the caller's bug: ``ValueError``);
- each signer's kept nonces are strictly increasing and at most ``NONCES_KEPT_PER_SIGNER``;
- an owner holds at most ``AGENTS_PER_OWNER_MAX`` grants, live or expired (expired grants are
  dropped when the owner registers again, so the count never grows past the limit);
- ``check`` never mutates; ``admit`` mutates only after every check passed.

``prune_idle_signers`` forgets signers whose every kept nonce is at or below ``T - PAST``. This
never changes a decision: batch time does not go back, so every nonce that can still pass the
time window is above all the forgotten ones; it is neither one of them (used) nor below a
window that contained them (a window holding one of them is not full once they are gone, and a
window holding none of them is unchanged). The stateful test runs a pruned twin to check it.

Not thread-safe: one sequencer thread drives it, in the total order it assigns (recover
signatures on a pool first, then admit one by one). ``snapshot``/``restore`` move the state as
plain data (JSON-ready: hex addresses, ints, lists, sorted), so that a restarted node or a
verifier resumes from a checkpoint.

Known gaps: the number of distinct signers has no deterministic cap (a cap would make decisions
depend on when pruning ran); memory is bounded by pruning plus the gateway's limits (rate limits,
funded accounts only). Rate limits are not part of this state: they depend on wall time and are
not replayed (see ``limits``).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final

from rollbook.execution.pickling import register_frozen_classes
from rollbook.execution.txs import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    PlaceOrder,
    SetMarginMode,
    SetMmp,
)
from rollbook.sequencer.eip712 import ADDRESS_BYTES, RegisterAgent, RevokeAgent
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.signatures import VerifiedTransaction

__all__ = [
    "AGENTS_PER_OWNER_MAX",
    "AGENT_LIFETIME_MS_MAX",
    "AGENT_PERMITTED_ACTIONS",
    "NONCES_KEPT_PER_SIGNER",
    "NONCE_FUTURE_WINDOW_MS",
    "NONCE_PAST_WINDOW_MS",
    "SNAPSHOT_VERSION",
    "AdmissionState",
    "AgentGrant",
]

# Final: the compiled build reads them as constants, not from the module's globals per admit
MS_PER_DAY: Final = 86_400_000
NONCES_KEPT_PER_SIGNER: Final = 100
NONCE_PAST_WINDOW_MS: Final = 2 * MS_PER_DAY  # nonce > T - this
NONCE_FUTURE_WINDOW_MS: Final = 1 * MS_PER_DAY  # nonce < T + this
AGENTS_PER_OWNER_MAX: Final = 8
AGENT_LIFETIME_MS_MAX: Final = 180 * MS_PER_DAY  # a forgotten agent key dies on its own
SNAPSHOT_VERSION: Final = 1
_UINT64_MAX = (1 << 64) - 1
_SUBACCOUNT_MAX = 0xFFFF
_ZERO_ADDRESS = bytes(ADDRESS_BYTES)

# what an agent key may sign for its owner: trading, never moving money out of a subaccount
AGENT_PERMITTED_ACTIONS = (
    PlaceOrder, CancelOrder, CancelOrderByClientId, CancelAll, ModifyOrder, SetMarginMode,
    MoveIsolatedMargin, SetMmp, MassQuote,
)


@dataclass(frozen=True, slots=True)
class AgentGrant:
    """An agent's right to trade for one owner until ``expiry_ms``; ``subaccount`` None = all."""

    expiry_ms: int
    subaccount: int | None


class AdmissionState:
    """Nonce windows and agent grants; see the module docstring for the rules."""

    __slots__ = ("_agents", "_batch_timestamp_ms", "_nonces")

    def __init__(self) -> None:
        self._nonces: dict[bytes, list[int]] = {}  # signer -> kept nonces, ascending
        self._agents: dict[bytes, dict[bytes, AgentGrant]] = {}  # owner -> agent -> grant
        self._batch_timestamp_ms = 0

    @property
    def batch_timestamp_ms(self) -> int:
        """The latest batch timestamp admitted against (0 before the first)."""
        return self._batch_timestamp_ms

    def advance_to(self, batch_timestamp_ms: int) -> None:
        """Move batch time forward without admitting anything (an empty batch, say)."""
        self._check_time(batch_timestamp_ms)
        self._batch_timestamp_ms = batch_timestamp_ms

    def _check_time(self, batch_timestamp_ms: int) -> None:
        # pruning and the nonce window's replay argument both rest on time never going back
        if batch_timestamp_ms < self._batch_timestamp_ms:
            raise ValueError(f"batch time went back: {batch_timestamp_ms} < "
                             f"{self._batch_timestamp_ms}")

    # --- decisions ------------------------------------------------------------------------------

    def check(self, verified: VerifiedTransaction, batch_timestamp_ms: int) -> None:
        """Raise ``AdmissionError`` if ``verified`` may not enter a batch stamped
        ``batch_timestamp_ms``; change nothing either way."""
        self._check(verified, batch_timestamp_ms)

    def _check(self, verified: VerifiedTransaction, batch_timestamp_ms: int) -> int:
        """``check``; returns where the nonce goes in its signer's kept list (see ``admit``)."""
        self._check_time(batch_timestamp_ms)
        self._check_authorised(verified, batch_timestamp_ms)
        index = self._check_nonce(verified.signer, verified.signed.nonce_ms, batch_timestamp_ms)
        action = verified.signed.action
        if isinstance(action, RegisterAgent):
            self._check_registration(action, batch_timestamp_ms)
        return index

    def admit(self, verified: VerifiedTransaction, batch_timestamp_ms: int) -> None:
        """Check, then record: the nonce is used and agent actions take effect."""
        index = self._check(verified, batch_timestamp_ms)
        self._batch_timestamp_ms = batch_timestamp_ms
        self._use_nonce(verified.signer, verified.signed.nonce_ms, index)
        action = verified.signed.action
        if isinstance(action, RegisterAgent):
            grants = self._live_grants(action.owner, batch_timestamp_ms)
            grants[action.agent] = AgentGrant(action.expiry_ms, action.subaccount)
            self._agents[action.owner] = grants
            assert len(grants) <= AGENTS_PER_OWNER_MAX
        elif isinstance(action, RevokeAgent):
            held = self._agents.get(action.owner)
            if held is not None and held.pop(action.agent, None) is not None and not held:
                del self._agents[action.owner]

    def _check_authorised(self, verified: VerifiedTransaction, batch_timestamp_ms: int) -> None:
        action = verified.signed.action
        signer = verified.signer
        if signer == action.owner:
            return
        grant = self._agents.get(action.owner, {}).get(signer)
        if grant is None:
            raise AdmissionError(AdmissionCode.SIGNER_NOT_AUTHORISED, "0x" + signer.hex())
        if not isinstance(action, AGENT_PERMITTED_ACTIONS):
            raise AdmissionError(AdmissionCode.AGENT_NOT_PERMITTED, type(action).__name__)
        if batch_timestamp_ms >= grant.expiry_ms:
            raise AdmissionError(AdmissionCode.AGENT_EXPIRED, f"at {grant.expiry_ms}")
        if grant.subaccount is not None and grant.subaccount != action.subaccount:
            raise AdmissionError(AdmissionCode.AGENT_SUBACCOUNT_NOT_PERMITTED,
                                 f"agent holds subaccount {grant.subaccount}")

    def _check_nonce(self, signer: bytes, nonce_ms: int, batch_timestamp_ms: int) -> int:
        """Where the nonce would be inserted in the signer's kept nonces (0 for none kept)."""
        if nonce_ms <= batch_timestamp_ms - NONCE_PAST_WINDOW_MS:
            raise AdmissionError(AdmissionCode.NONCE_TOO_OLD, f"{nonce_ms}")
        if nonce_ms >= batch_timestamp_ms + NONCE_FUTURE_WINDOW_MS:
            raise AdmissionError(AdmissionCode.NONCE_TOO_FAR_AHEAD, f"{nonce_ms}")
        kept = self._nonces.get(signer)
        if kept is None:
            return 0
        if kept and nonce_ms > kept[-1]:
            # above every kept nonce (a client's clock moves forward): bisect_left's answer
            # without its call; unused, and not below a window whose top it exceeds
            return len(kept)
        index = bisect_left(kept, nonce_ms)
        if index < len(kept) and kept[index] == nonce_ms:
            raise AdmissionError(AdmissionCode.NONCE_USED, f"{nonce_ms}")
        if len(kept) >= NONCES_KEPT_PER_SIGNER and index == 0:
            raise AdmissionError(AdmissionCode.NONCE_BELOW_WINDOW,
                                 f"{nonce_ms} < {kept[0]}")
        return index

    def _check_registration(self, action: RegisterAgent, batch_timestamp_ms: int) -> None:
        if action.agent == action.owner or action.agent == _ZERO_ADDRESS:
            raise AdmissionError(AdmissionCode.AGENT_REGISTRATION_INVALID, "agent address")
        if not batch_timestamp_ms < action.expiry_ms <= batch_timestamp_ms + AGENT_LIFETIME_MS_MAX:
            raise AdmissionError(AdmissionCode.AGENT_REGISTRATION_INVALID,
                                 f"expiry {action.expiry_ms}")
        live = self._live_grants(action.owner, batch_timestamp_ms)
        live.pop(action.agent, None)  # re-registering replaces a grant, it does not add one
        if len(live) >= AGENTS_PER_OWNER_MAX:
            raise AdmissionError(AdmissionCode.AGENTS_LIMIT, f"{len(live)} live agents")

    def _live_grants(self, owner: bytes, batch_timestamp_ms: int) -> dict[bytes, AgentGrant]:
        """A new dict of the owner's unexpired grants, in registration order."""
        return {agent: grant for agent, grant in self._agents.get(owner, {}).items()
                if batch_timestamp_ms < grant.expiry_ms}

    def _use_nonce(self, signer: bytes, nonce_ms: int, index: int) -> None:
        """Keep ``nonce_ms`` at ``index`` (``_check_nonce``'s answer: the list is sorted)."""
        kept = self._nonces.setdefault(signer, [])
        kept.insert(index, nonce_ms)
        if len(kept) > NONCES_KEPT_PER_SIGNER:
            del kept[0]  # the window keeps the highest nonces
            index -= 1
        assert len(kept) <= NONCES_KEPT_PER_SIGNER
        # O(1), not a scan of the window: _check_nonce refused index 0 in a full window
        assert index >= 0 and kept[index] == nonce_ms, "an admitted nonce is never evicted"
        assert index == 0 or kept[index - 1] < nonce_ms, "the kept nonces stay sorted"

    # --- housekeeping and inspection ------------------------------------------------------------

    def prune_idle_signers(self) -> int:
        """Forget signers none of whose nonces can matter again; returns how many.

        Decision-preserving (see the module docstring), so it may run at any time, on the
        sequencer and on the verifier independently.
        """
        horizon_ms = self._batch_timestamp_ms - NONCE_PAST_WINDOW_MS
        idle = [signer for signer, kept in self._nonces.items() if kept[-1] <= horizon_ms]
        for signer in idle:
            del self._nonces[signer]
        return len(idle)

    def nonces_of(self, signer: bytes) -> tuple[int, ...]:
        return tuple(self._nonces.get(signer, ()))

    def agents_of(self, owner: bytes) -> dict[bytes, AgentGrant]:
        """The owner's grants (expired ones too, until its next registration)."""
        return dict(self._agents.get(owner, {}))

    def signer_count(self) -> int:
        return len(self._nonces)

    # --- snapshot / restore ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain, JSON-ready data; equal states give equal snapshots (everything is sorted)."""
        return {
            "version": SNAPSHOT_VERSION,
            "batch_timestamp_ms": self._batch_timestamp_ms,
            "nonces": [{"signer": signer.hex(), "nonces_ms": list(self._nonces[signer])}
                       for signer in sorted(self._nonces)],
            "agents": [{"owner": owner.hex(), "agent": agent.hex(),
                        "expiry_ms": grant.expiry_ms, "subaccount": grant.subaccount}
                       for owner in sorted(self._agents)
                       for agent, grant in sorted(self._agents[owner].items())],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> AdmissionState:
        """The state of a ``snapshot``; ``ValueError`` for anything a snapshot cannot hold."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported admission snapshot version {data.get('version')!r}")
        state = cls()
        state._batch_timestamp_ms = _uint64(data["batch_timestamp_ms"])
        for entry in data["nonces"]:
            signer = _address(entry["signer"])
            kept = [_uint64(n) for n in entry["nonces_ms"]]
            if not 0 < len(kept) <= NONCES_KEPT_PER_SIGNER or any(
                    a >= b for a, b in pairwise(kept)):
                raise ValueError("a signer's nonces must be 1..N strictly increasing values")
            if signer in state._nonces:
                raise ValueError("duplicate signer")
            state._nonces[signer] = kept
        for entry in data["agents"]:
            owner, agent = _address(entry["owner"]), _address(entry["agent"])
            subaccount = entry["subaccount"]
            if subaccount is not None and (type(subaccount) is not int
                                           or not 0 <= subaccount <= _SUBACCOUNT_MAX):
                raise ValueError(f"agent subaccount out of range: {subaccount!r}")
            grants = state._agents.setdefault(owner, {})
            if agent in grants or len(grants) >= AGENTS_PER_OWNER_MAX:
                raise ValueError("duplicate agent or too many agents for one owner")
            grants[agent] = AgentGrant(_uint64(entry["expiry_ms"]), subaccount)
        return state


def _uint64(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= _UINT64_MAX:
        raise ValueError(f"not a uint64: {value!r}")
    return value


def _address(value: Any) -> bytes:
    if type(value) is not str or len(value) != 2 * ADDRESS_BYTES:
        raise ValueError(f"not a hex address: {value!r}")
    return bytes.fromhex(value)


# compiled (mypyc), a frozen dataclass cannot be unpickled attribute by attribute: pickle these
# by their fields in both builds (as rollbook.execution does for its own)
register_frozen_classes(AgentGrant)
