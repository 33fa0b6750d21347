"""The escape hatch without the operator: proofs and claims from the verifier's own state.

After ``freeze()`` every account leaves with its equity at the escape root (the latest final
root), proven leaf by leaf against that root. A user needs the leaves and their Merkle proofs
at that root; the operator, who is gone, would normally serve them. A verifier has them
already: its replica, rolled back to the escape batch, *is* the state at the escape root, and
``build_escape_kit`` reads every proof out of its commitment.

``EscapeKit`` holds, for the escape batch:
- every market leaf and its proof (``escape_register_market`` stores the prices that value
  positions; register each market once, before the accounts);
- every subaccount except the insurance fund, with its proof and its equity as the settlement
  contract will compute it (``rollbook.settlement.reference.escape_equity``, the bit-exact
  model of the contract), so a user knows the claim before sending anything;
- every withdrawal leaf (queued withdrawals are claims on the escape pool too, unless paid).

Invariants: every proof in a kit verifies against ``kit.root`` (checked when the kit is built);
equities are the reference model's, which the contract tests hold equal to the contract's.
The registering helpers skip what is already registered, so anyone may run them for anyone, in
any order, any number of times (the contract pays each claim once).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from rollbook.commitment.leaves import LEAF_MARKET, LEAF_SUBACCOUNT, LEAF_WITHDRAWAL
from rollbook.commitment.merkle import hash_leaf, verify_proof
from rollbook.commitment.state_tree import TREE_DEPTH, LeafProof, StateCommitment
from rollbook.execution.state import INSURANCE_OWNER, State
from rollbook.settlement import reference as ref
from rollbook.settlement.client import (
    EscapeMarketRegisteredEvent,
    EscapeRegisteredEvent,
    SettlementClient,
)

__all__ = [
    "EscapeAccount",
    "EscapeError",
    "EscapeKit",
    "EscapeWithdrawal",
    "build_escape_kit",
    "register_account",
    "register_markets",
    "register_withdrawal",
]


class EscapeError(RuntimeError):
    """The kit does not belong to the contract's escape root, or a claim does not exist."""


@dataclass(frozen=True, slots=True)
class EscapeAccount:
    owner: bytes
    subaccount: int
    proof: LeafProof
    equity_quantums: int  # signed: what the contract's escape_equity computes for the leaf

    @property
    def claim_quantums(self) -> int:
        return ref.escape_claim(self.equity_quantums)


@dataclass(frozen=True, slots=True)
class EscapeWithdrawal:
    withdrawal_id: int
    owner: bytes
    amount_quantums: int
    proof: LeafProof


@dataclass(frozen=True, slots=True)
class EscapeKit:
    """Everything the escape hatch needs at batch ``batch_index`` (root ``root``)."""

    batch_index: int
    root: bytes
    markets: tuple[LeafProof, ...]
    accounts: tuple[EscapeAccount, ...]
    withdrawals: tuple[EscapeWithdrawal, ...]

    def account(self, owner: bytes, subaccount: int = 0) -> EscapeAccount:
        for account in self.accounts:
            if account.owner == owner and account.subaccount == subaccount:
                return account
        raise EscapeError(f"no subaccount 0x{owner.hex()}/{subaccount} at the escape root")

    def withdrawal(self, withdrawal_id: int) -> EscapeWithdrawal:
        for withdrawal in self.withdrawals:
            if withdrawal.withdrawal_id == withdrawal_id:
                return withdrawal
        raise EscapeError(f"no withdrawal {withdrawal_id} at the escape root")

    def check_against(self, client: SettlementClient) -> None:
        """Raise ``EscapeError`` unless the contract is frozen at this kit's root."""
        if not client.frozen():
            raise EscapeError("the settlement contract is not frozen")
        if client.escape_batch() != self.batch_index or client.escape_root() != self.root:
            raise EscapeError(f"the contract escapes at batch {client.escape_batch()}, the kit "
                              f"is for batch {self.batch_index}")


def build_escape_kit(state: State, commitment: StateCommitment) -> EscapeKit:
    """The kit of the state at a batch boundary (``commitment`` committed ``state``)."""
    root = commitment.root
    markets = tuple(_checked(commitment.proof((LEAF_MARKET, market_id)), root)
                    for market_id in sorted(state.markets))
    prices = {}
    for proof in markets:
        market = ref.decode_market_leaf(proof.leaf)
        prices[market.market_id] = ref.EscapeMarket(market.index_price_quantums,
                                                    market.lot_size_nanounits)
    accounts = []
    for owner, number in sorted(state.subaccounts):
        if owner == INSURANCE_OWNER:
            continue  # the insurance fund has no claim: it absorbs bad debt first
        proof = _checked(commitment.proof((LEAF_SUBACCOUNT, owner, number)), root)
        equity = ref.escape_equity(ref.decode_subaccount_leaf(proof.leaf), prices)
        accounts.append(EscapeAccount(owner, number, proof, equity))
    withdrawals = []
    for withdrawal_id in range(1, state.next_withdrawal_id):
        proof = _checked(commitment.proof((LEAF_WITHDRAWAL, withdrawal_id)), root)
        queued = ref.decode_withdrawal_leaf(proof.leaf)
        withdrawals.append(EscapeWithdrawal(withdrawal_id, queued.owner,
                                            queued.amount_quantums, proof))
    return EscapeKit(state.batch_index, root, markets, tuple(accounts), tuple(withdrawals))


def register_markets(client: SettlementClient, kit: EscapeKit, *,
                     sender: LocalAccount) -> list[EscapeMarketRegisteredEvent]:
    """Register every market's escape prices not registered yet."""
    kit.check_against(client)
    registered = []
    for proof in kit.markets:
        market_id = ref.decode_market_leaf(proof.leaf).market_id
        if not client.escape_market(market_id).registered:
            registered.append(client.escape_register_market(proof.leaf_index, proof.leaf,
                                                            proof.siblings, sender=sender))
    return registered


def register_account(client: SettlementClient, kit: EscapeKit, owner: bytes,
                     subaccount: int = 0, *, sender: LocalAccount) -> EscapeRegisteredEvent | None:
    """Register a subaccount's claim (markets first); None if it has no positive equity or is
    registered already."""
    account = kit.account(owner, subaccount)
    if account.claim_quantums == 0 or client.escape_account_claim(
            to_checksum_address(owner), subaccount) != 0:
        return None
    register_markets(client, kit, sender=sender)
    return client.escape_register_account(account.proof.leaf_index, account.proof.leaf,
                                          account.proof.siblings, sender=sender)


def register_withdrawal(client: SettlementClient, kit: EscapeKit, withdrawal_id: int, *,
                        sender: LocalAccount) -> EscapeRegisteredEvent | None:
    """Register an unpaid withdrawal leaf's claim; None if paid or registered already."""
    kit.check_against(client)
    withdrawal = kit.withdrawal(withdrawal_id)
    if (withdrawal.amount_quantums == 0 or client.withdrawal_paid(withdrawal_id)
            or client.escape_withdrawal_claim(withdrawal_id) != 0):
        return None
    proof = withdrawal.proof
    return client.escape_register_withdrawal(proof.leaf_index, proof.leaf, proof.siblings,
                                             sender=sender)


def _checked(proof: LeafProof, root: bytes) -> LeafProof:
    if proof.root != root or not verify_proof(root, TREE_DEPTH, proof.leaf_index,
                                              hash_leaf(proof.leaf), proof.siblings):
        raise EscapeError(f"the proof of leaf {proof.leaf_index} does not verify")
    return proof
