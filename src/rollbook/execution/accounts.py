"""Collateral transactions: deposit, withdraw, transfer, margin mode and isolated margin moves.

- Deposits are L1-origin and credited strictly in deposit-id order, so each id is credited
  exactly once and the state keeps one counter instead of an ever-growing set.
- Withdrawals move collateral out of the venue into a pending-withdrawal record (claimed on
  L1 against a finalised root in the settlement issue); they count in ``withdrawals_total``.
- Withdrawals, transfers and moves out of a margin group must pass
  ``margin.withdrawal_allowed`` (no unrealised profit leaves, a margin floor stays behind) and
  are refused while the group waits in the liquidation queue.
- A transfer may top up the insurance fund (its zero-address subaccount); nothing can move
  collateral out of the fund except the liquidation engine.
- Forced withdrawals (requested on L1) withdraw what the rules allow, up to the request, and
  are processed strictly in request-id order, like deposits.
- A subaccount holds at most ``GROUPS_PER_SUBACCOUNT_MAX`` margin groups (its leaf must decode
  in the settlement contract).
- Margin mode changes only when the market has no position and no open orders for the
  subaccount; switching back to cross returns the isolated collateral.
- Portfolio margin (``SetPortfolioMargin``) is the cross group's choice between portfolio margin
  (per index: options and perpetuals on one scenario grid, ``options.engine``) and standard
  margin (perpetual tiers, per-position option margin). It may change at any time the group is
  not queued for liquidation, provided that under the new mode the group meets its initial
  requirement or no requirement rises.
"""

from __future__ import annotations

from rollbook.execution.config import (
    DEPOSIT_QUANTUMS_MAX,
    GROUPS_PER_SUBACCOUNT_MAX,
    SUBACCOUNT_NUMBER_MAX,
)
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.events import (
    DepositCredited,
    ForcedWithdrawalProcessed,
    PortfolioMarginSet,
    TransferDone,
    WithdrawalQueued,
)
from rollbook.execution.margin import group_risk, withdrawable_quantums, withdrawal_allowed
from rollbook.execution.options.engine import options_group_risk
from rollbook.execution.orders import require_subaccount
from rollbook.execution.state import (
    INSURANCE_OWNER,
    MarginGroup,
    PendingWithdrawal,
    State,
    Subaccount,
    mark_subaccount,
)
from rollbook.execution.txs import (
    Deposit,
    ForcedWithdrawal,
    MoveIsolatedMargin,
    SetMarginMode,
    SetPortfolioMargin,
    Transfer,
    Withdraw,
)

__all__ = [
    "deposit",
    "forced_withdrawal",
    "move_isolated_margin",
    "set_margin_mode",
    "set_portfolio_margin",
    "transfer",
    "withdraw",
]

ADDRESS_BYTES = 20


def _check_address(owner: bytes) -> None:
    if len(owner) != ADDRESS_BYTES or owner == INSURANCE_OWNER:
        raise TxRejected(ErrorCode.INVALID_ADDRESS)


def _check_subaccount_number(number: int) -> None:
    if not 0 <= number <= SUBACCOUNT_NUMBER_MAX:
        raise TxRejected(ErrorCode.INVALID_SUBACCOUNT, f"{number}")


def _check_amount(state: State, amount_quantums: int) -> None:
    if not 0 < amount_quantums <= state.config.deposit_quantums_max:
        raise TxRejected(ErrorCode.INVALID_AMOUNT, f"{amount_quantums}")


def _open_subaccount(state: State, owner: bytes, number: int,
                     from_l1: bool = False) -> Subaccount:
    """The subaccount, created if new; an L1 deposit may exceed ``subaccounts_max``
    (``config.DEPOSIT_QUANTUMS_MAX`` says why)."""
    sub = state.subaccount(owner, number)
    if sub is None:
        if not from_l1 and len(state.subaccounts) >= state.config.subaccounts_max:
            raise TxRejected(ErrorCode.ACCOUNTS_LIMIT)
        sub = Subaccount(owner, number)
        state.add_subaccount(sub)
    return sub


def _check_can_release(state: State, group: MarginGroup, amount_quantums: int) -> None:
    if group.key in state.liquidation_queue:
        raise TxRejected(ErrorCode.ACCOUNT_IN_LIQUIDATION)
    if not withdrawal_allowed(state.markets, group, -amount_quantums,
                              state.config.withdrawal_margin_floor_ppm):
        raise TxRejected(ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)


def deposit(state: State, tx: Deposit, events: list[object]) -> None:
    if tx.deposit_id < state.next_deposit_id:
        raise TxRejected(ErrorCode.DEPOSIT_ALREADY_CREDITED, f"deposit {tx.deposit_id}")
    if tx.deposit_id > state.next_deposit_id:
        raise TxRejected(ErrorCode.DEPOSIT_OUT_OF_ORDER,
                         f"expected {state.next_deposit_id}, got {tx.deposit_id}")
    _check_address(tx.owner)
    _check_subaccount_number(tx.subaccount)
    if not 0 < tx.amount_quantums <= DEPOSIT_QUANTUMS_MAX:
        raise TxRejected(ErrorCode.INVALID_AMOUNT, f"{tx.amount_quantums}")
    sub = _open_subaccount(state, tx.owner, tx.subaccount, from_l1=True)
    sub.cross.collateral_quantums += tx.amount_quantums
    mark_subaccount(state, sub)
    state.deposits_quantums_total += tx.amount_quantums
    state.next_deposit_id += 1
    events.append(DepositCredited(tx.deposit_id, tx.owner, tx.subaccount, tx.amount_quantums))


def withdraw(state: State, tx: Withdraw, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    _check_amount(state, tx.amount_quantums)
    _check_can_release(state, sub.cross, tx.amount_quantums)
    withdrawal_id = _queue_withdrawal(state, sub, tx.amount_quantums)
    events.append(WithdrawalQueued(withdrawal_id, tx.owner, tx.subaccount, tx.amount_quantums))


def _queue_withdrawal(state: State, sub: Subaccount, amount_quantums: int) -> int:
    """Move ``amount_quantums`` out of the cross group into a pending withdrawal (the leaf the
    owner claims on the settlement contract once the batch's root is final)."""
    assert amount_quantums > 0
    sub.cross.collateral_quantums -= amount_quantums
    mark_subaccount(state, sub)
    state.withdrawals_quantums_total += amount_quantums
    withdrawal_id = state.next_withdrawal_id
    state.next_withdrawal_id += 1
    state.pending_withdrawals[withdrawal_id] = PendingWithdrawal(
        withdrawal_id, sub.owner, sub.number, amount_quantums, state.batch_index)
    return withdrawal_id


def forced_withdrawal(state: State, tx: ForcedWithdrawal, events: list[object]) -> None:
    """Settle an L1 forced-withdrawal request: withdraw what the rules allow, up to the request.

    Only the request order can reject it, so an operator can always include a request and the
    contract's deadline measures only whether it did.
    """
    if tx.request_id < state.next_forced_id:
        raise TxRejected(ErrorCode.FORCED_WITHDRAWAL_ALREADY_PROCESSED, f"request {tx.request_id}")
    if tx.request_id > state.next_forced_id:
        raise TxRejected(ErrorCode.FORCED_WITHDRAWAL_OUT_OF_ORDER,
                         f"expected {state.next_forced_id}, got {tx.request_id}")
    state.next_forced_id += 1
    sub = state.subaccount(tx.owner, tx.subaccount)
    amount = 0
    withdrawal_id = 0
    if sub is not None and sub is not state.insurance and (
            sub.cross.key not in state.liquidation_queue):
        free = withdrawable_quantums(state.markets, sub.cross,
                                     state.config.withdrawal_margin_floor_ppm)
        amount = max(0, min(tx.amount_quantums, free))
        if amount:
            withdrawal_id = _queue_withdrawal(state, sub, amount)
            events.append(WithdrawalQueued(withdrawal_id, tx.owner, tx.subaccount, amount))
    events.append(ForcedWithdrawalProcessed(tx.request_id, tx.owner, tx.subaccount,
                                            tx.amount_quantums, amount, withdrawal_id))


def transfer(state: State, tx: Transfer, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    if (tx.to_owner, tx.to_subaccount) != state.insurance.key:  # topping up the fund is allowed
        _check_address(tx.to_owner)
        _check_subaccount_number(tx.to_subaccount)
    if (tx.owner, tx.subaccount) == (tx.to_owner, tx.to_subaccount):
        raise TxRejected(ErrorCode.TRANSFER_TO_SELF)
    _check_amount(state, tx.amount_quantums)
    _check_can_release(state, sub.cross, tx.amount_quantums)
    destination = _open_subaccount(state, tx.to_owner, tx.to_subaccount)
    sub.cross.collateral_quantums -= tx.amount_quantums
    destination.cross.collateral_quantums += tx.amount_quantums
    mark_subaccount(state, sub)
    mark_subaccount(state, destination)
    events.append(TransferDone(tx.owner, tx.subaccount, tx.to_owner, tx.to_subaccount,
                               tx.amount_quantums))


def set_margin_mode(state: State, tx: SetMarginMode, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    if tx.market_id not in state.markets:
        raise TxRejected(ErrorCode.UNKNOWN_MARKET, f"market {tx.market_id}")
    group = sub.group_for(tx.market_id)
    if tx.market_id in group.positions:  # a position or open orders exist
        raise TxRejected(ErrorCode.MARGIN_MODE_BUSY)
    currently_isolated = tx.market_id in sub.isolated
    if tx.isolated == currently_isolated:
        return
    if tx.isolated:
        if 1 + len(sub.isolated) >= GROUPS_PER_SUBACCOUNT_MAX:
            raise TxRejected(ErrorCode.ISOLATED_GROUPS_LIMIT, f"{GROUPS_PER_SUBACCOUNT_MAX - 1}")
        sub.isolated[tx.market_id] = MarginGroup(sub, tx.market_id)
        mark_subaccount(state, sub)
        return
    isolated = sub.isolated.pop(tx.market_id)
    sub.cross.collateral_quantums += isolated.collateral_quantums
    mark_subaccount(state, sub)


def move_isolated_margin(state: State, tx: MoveIsolatedMargin, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    isolated = sub.isolated.get(tx.market_id)
    if isolated is None:
        raise TxRejected(ErrorCode.NOT_ISOLATED, f"market {tx.market_id}")
    amount = tx.amount_quantums
    if amount == 0:
        raise TxRejected(ErrorCode.INVALID_AMOUNT, "0")
    _check_amount(state, abs(amount))
    source, destination = (sub.cross, isolated) if amount > 0 else (isolated, sub.cross)
    _check_can_release(state, source, abs(amount))
    source.collateral_quantums -= abs(amount)
    destination.collateral_quantums += abs(amount)
    mark_subaccount(state, sub)


def set_portfolio_margin(state: State, tx: SetPortfolioMargin, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    group = sub.cross
    enabled = bool(tx.enabled)
    if enabled == group.portfolio_margin:
        return
    if group.key in state.liquidation_queue:
        raise TxRejected(ErrorCode.ACCOUNT_IN_LIQUIDATION)
    markets = state.markets
    after = options_group_risk(markets, group, {}, 0, portfolio=enabled)
    if after.equity_quantums < after.initial_quantums:
        before = group_risk(markets, group)
        if (after.initial_quantums > before.initial_quantums
                or after.maintenance_quantums > before.maintenance_quantums):
            raise TxRejected(ErrorCode.INSUFFICIENT_MARGIN,
                             f"equity {after.equity_quantums} < initial {after.initial_quantums}")
    group.set_portfolio_margin(enabled)
    state.touched_risk_modes.add(sub.key)
    events.append(PortfolioMarginSet(sub.owner, sub.number, enabled))
